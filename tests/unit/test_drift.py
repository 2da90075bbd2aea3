"""Drift detection with the Automation API and the host commands faked at their boundary."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from pulumi.automation import CommandError
from pulumi.automation._cmd import CommandResult
from pulumi.automation.events import EngineEvent

from hosts import dryplan
from operate import automation
from operate import cli as operate_cli
from operate.drift import cli, render
from operate.drift.cloud import check_cloud
from operate.drift.hosts import check_hosts
from operate.drift.report import Finding, HostOutcome, LayerResult, Report
from operate.targets import Files, HostFiles, from_stack_outputs

APP_URN = "urn:pulumi:prod::llm-platform::llm-platform:app:LlmApp$digitalocean:index/app:App::llm-app"
FW_URN = (
    "urn:pulumi:prod::llm-platform::llm-platform:host:ModelHost$digitalocean:index/firewall:Firewall::llm-prod-firewall"
)


def step(op: str, urn: str, type_: str, diff: dict | None = None) -> EngineEvent:
    return EngineEvent.from_json(
        {
            "sequence": 1,
            "timestamp": 0,
            "resourcePreEvent": {
                "metadata": {
                    "op": op,
                    "urn": urn,
                    "type": type_,
                    "provider": "",
                    "diffs": list((diff or {}).keys()),
                    "detailedDiff": {k: {"diffKind": v, "inputDiff": True} for k, v in (diff or {}).items()},
                }
            },
        }
    )


def diag(severity: str, message: str) -> EngineEvent:
    return EngineEvent.from_json(
        {"sequence": 2, "timestamp": 0, "diagnosticEvent": {"message": message, "severity": severity, "color": "never"}}
    )


class FakeStack:
    """Stands in for pulumi.automation.Stack: replays engine events, then returns or raises."""

    def __init__(self, events, fail: str | None = None):
        self.events, self.fail, self.name, self.calls = events, fail, "prod", []

    def preview(self, **kwargs):
        self.calls.append(kwargs)
        for ev in self.events:
            kwargs["on_event"](ev)
        if self.fail:
            raise CommandError(CommandResult(stdout="", stderr=self.fail, code=255))
        return object()


def cloud(events, fail=None) -> tuple[LayerResult, FakeStack]:
    stack = FakeStack(events, fail)
    return check_cloud("prod", select=lambda name: stack), stack


def test_clean_stack_is_clean_and_previews_with_refresh():
    result, stack = cloud(
        [step("refresh", APP_URN, "digitalocean:index/app:App"), step("same", APP_URN, "digitalocean:index/app:App")]
    )
    assert result.status == "clean" and result.findings == []
    assert stack.calls[0]["refresh"] is True


def test_changed_resource_is_drift_naming_resource_and_property():
    result, _ = cloud(
        [
            step("same", APP_URN, "digitalocean:index/app:App"),
            step("update", FW_URN, "digitalocean:index/firewall:Firewall", {"inboundRules[3]": "delete"}),
        ]
    )
    assert result.status == "drift"
    [f] = result.findings
    assert f.target == "digitalocean:index/firewall:Firewall llm-prod-firewall"
    assert f.detail == "update: inboundRules[3]"


def test_failed_preview_without_changes_is_not_checked_not_drift():
    result, _ = cloud([diag("error", "digitalocean: 401 Unable to authenticate you")], fail="error: update failed")
    assert result.status == "not_checked"
    assert "401 Unable to authenticate you" in result.reason


def test_failed_preview_that_proposed_changes_still_reports_them():
    # e.g. --expect-no-changes style failures: pulumi's exit code mixes the two (pulumi/pulumi#5144)
    result, _ = cloud([step("replace", FW_URN, "digitalocean:index/firewall:Firewall")], fail="error: changes")
    assert result.status == "drift"


def test_missing_cli_or_credentials_is_a_clear_error(tmp_path):
    assert "no Pulumi CLI" in automation.credentials_problem("prod", {"PATH": str(tmp_path)})
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    env = {"PATH": str(tmp_path), "PULUMI_HOME": str(tmp_path)}
    assert "PULUMI_ACCESS_TOKEN" in automation.credentials_problem("prod", env)
    env["PULUMI_ACCESS_TOKEN"] = "x"
    assert "DIGITALOCEAN_TOKEN" in automation.credentials_problem("prod", env)
    env["DIGITALOCEAN_TOKEN"] = "x"
    assert automation.credentials_problem("prod", env) is None
    assert "HCLOUD_TOKEN" in automation.credentials_problem("cpu", env)

    def unavailable(name):
        raise automation.Unavailable(automation.credentials_problem("prod", {"PATH": str(tmp_path / "none")}))

    result = check_cloud("prod", select=unavailable)
    assert result.status == "not_checked" and "no Pulumi CLI" in result.reason


# --------------------------------------------------------------------------------------------------
DRY_RUN = {
    "plan": [
        {"name": "base | apt: use the caching proxy", "hosts_with_change": [], "hosts_with_conditional_change": []},
        {
            "name": "firewall | ufw: default deny, only 22 (admins), 80, 443",
            "hosts_with_change": ["llm-prod"],
            "hosts_with_conditional_change": [],
        },
        {
            "name": "ollama | ollama: restart on change",
            "hosts_with_change": [],
            "hosts_with_conditional_change": ["llm-prod"],
        },
    ],
    "results": None,
}

JUNIT_FAIL = (
    '<?xml version="1.0"?><testsuites><testsuite>\n'
    '<testcase classname="tests.hosts.test_proxy" name="test_certbot_renewal_timer[ssh://x]"/>\n'
    '<testcase classname="tests.hosts.test_firewall" name="test_ufw_rules_are_exactly_the_catalogue[ssh://x]">'
    '<failure message="AssertionError: extra rule 11434/tcp ALLOW IN Anywhere&#10;assert [...] == [...]">'
    "traceback</failure></testcase>\n"
    "</testsuite></testsuites>"
)

PLAN = [
    {
        "name": "firewall | ufw: default deny, only 22 (admins), 80, 443",
        "commands": ["ufw --force delete allow 11434/tcp"],
        "diffs": [],
    }
]


def target(tmp_path) -> Files:
    data = tmp_path / "llm-prod.json"
    data.write_text("{}")
    return Files(
        "prod", tmp_path / "inv.py", {}, [HostFiles("llm-prod", ["--hosts=ssh://x"], data, address="203.0.113.10:22")]
    )


def fake_runner(
    dry_stdout: str, dry_rc: int = 0, junit: str | None = JUNIT_FAIL, dry_stderr: str = "", plan: list | None = None
):
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        if "--dry" in argv:
            if plan is not None:  # what hosts/deploy.py's dryplan.write leaves for each host
                (Path(kw["env"][dryplan.ENV]) / "llm-prod.json").write_text(json.dumps(plan))
            return subprocess.CompletedProcess(argv, dry_rc, dry_stdout, dry_stderr)
        if junit is not None:
            path = next(a.split("=", 1)[1] for a in argv if a.startswith("--junitxml="))
            Path(path).write_text(junit)
        return subprocess.CompletedProcess(argv, 1, "", "")

    return run, calls


def test_host_drift_from_the_json_plan_and_failed_checks(tmp_path):
    run, calls = fake_runner("some log line\n" + json.dumps(DRY_RUN))
    result = check_hosts(target(tmp_path), run=run)
    assert result.status == "drift"
    targets = [(f.host, f.target, f.detail) for f in result.findings]
    assert ("llm-prod", "firewall | ufw: default deny, only 22 (admins), 80, 443", "would change") in targets
    # conditional operations (restart-on-change) follow their trigger: not drift by themselves
    assert not [t for t in targets if "restart on change" in t[1]]
    assert ("llm-prod", "test_firewall::test_ufw_rules_are_exactly_the_catalogue[ssh://x]", "check failed") in targets
    assert "--dry" in calls[0] and "--json" in calls[0]


def test_host_findings_carry_commands_and_assertion_messages_grouped_by_role(tmp_path):
    run, _ = fake_runner(json.dumps(DRY_RUN), plan=PLAN)
    result = check_hosts(target(tmp_path), run=run)
    op, check = result.findings
    assert (op.kind, op.role, op.commands) == ("operation", "firewall", ["ufw --force delete allow 11434/tcp"])
    assert (check.kind, check.role) == ("check", "firewall")
    assert check.message.startswith("AssertionError: extra rule 11434/tcp ALLOW IN Anywhere")
    assert "traceback" not in check.message  # pytest's message, not the whole traceback
    report = Report("prod", [LayerResult("cloud", "clean"), result])
    text = render.text(report)
    # one group for the role: the operation (cause) with its command, then the check beneath it
    assert text.count("[llm-prod] firewall") == 1
    assert (
        text.index("$ ufw --force delete allow 11434/tcp") < text.index("check failed") < text.index("extra rule 11434")
    )
    doc = report.to_dict()["findings"][0]
    assert doc["commands"] == ["ufw --force delete allow 11434/tcp"] and doc["role"] == "firewall"
    md = render.markdown(report)
    assert "### hosts · llm-prod · firewall" in md and "  $ ufw --force delete allow 11434/tcp" in md


def test_no_secret_value_reaches_any_report(tmp_path):
    secret = "s3cr3t-value-0123456789abcdef"
    sec = tmp_path / "secrets.json"
    sec.write_text(json.dumps({"vllmApiKey": secret}))
    sec.chmod(0o600)
    plan = [{"name": PLAN[0]["name"], "commands": [f"echo {secret}"], "diffs": [f"-KEY={secret}"]}]
    junit = JUNIT_FAIL.replace("extra rule", f"saw {secret} in")
    run, _ = fake_runner(json.dumps(DRY_RUN), plan=plan, junit=junit)
    t = target(tmp_path)
    t.env["LLM_PLATFORM_SECRETS_FILE"] = str(sec)
    report = Report("prod", [check_hosts(t, run=run)])
    for text in (render.text(report), render.markdown(report), json.dumps(report.to_dict())):
        assert secret not in text and "***" in text


def test_markdown_goes_to_the_file_and_the_job_summary(tmp_path, monkeypatch):
    dirty = LayerResult(
        "hosts",
        "drift",
        [
            Finding(
                "hosts",
                "h",
                "proxy | nginx running",
                "would change",
                role="proxy",
                kind="operation",
                commands=["systemctl start nginx.service"],
            )
        ],
    )
    monkeypatch.setattr(cli, "run_drift", lambda stack, checks: Report(stack, [dirty]))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = operate_cli.main(
        ["drift", "prod", "--report", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")]
    )
    assert code == 1
    assert "systemctl start nginx.service" in (tmp_path / "r.md").read_text()
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "## ⚠️ Drift: `prod` — drift" in text


def test_clean_host(tmp_path):
    clean = {"plan": [{"name": "x", "hosts_with_change": [], "hosts_with_conditional_change": []}], "results": None}
    run, _ = fake_runner(
        json.dumps(clean), junit='<testsuites><testsuite><testcase classname="a" name="b"/></testsuite></testsuites>'
    )
    assert check_hosts(target(tmp_path), run=run).status == "clean"


def test_unreachable_host_is_not_checked_with_the_reason(tmp_path):
    run, _ = fake_runner("", dry_rc=1, dry_stderr="--> Could not connect to llm-prod: timed out")
    result = check_hosts(target(tmp_path), run=run)
    assert result.status == "not_checked" and "Could not connect" in result.reason


def test_report_exit_codes_and_json():
    clean = LayerResult("cloud", "clean")
    dirty = LayerResult("hosts", "drift", [Finding("hosts", "h", "op", "would change")])
    broken = LayerResult("hosts", "not_checked", reason="host unreachable")
    assert Report("s", [clean]).exit_code == 0
    assert Report("s", [clean, dirty]).exit_code == 1
    assert Report("s", [clean, broken]).exit_code == 2
    with pytest.raises(ValueError):  # a status nobody maps must not read as clean
        LayerResult("hosts", "error")
    doc = Report("s", [clean, dirty]).to_dict()
    assert doc["findings"] == [
        {
            "layer": "hosts",
            "host": "h",
            "target": "op",
            "detail": "would change",
            "role": "",
            "kind": "",
            "commands": [],
            "diffs": [],
            "message": "",
        }
    ]
    assert "[h]\n      - op: would change" in render.text(Report("s", [dirty]))


def prod_entry(**kw) -> dict:
    from tests.unit.conftest import plan_for

    entry = plan_for("prod").outputs["inventory"]["hosts"][0]
    return {**entry, "ssh_hostname": "203.0.113.10", "ssh_user": "llmadmin", **kw}


def test_stack_targets_keep_secrets_private(tmp_path):
    inv = {"hosts": [prod_entry(host_key=None)]}
    t = from_stack_outputs("prod", inv, {"vllmApiKey": "k" * 20}).files()
    sec = Path(t.env["LLM_PLATFORM_SECRETS_FILE"])
    assert oct(sec.stat().st_mode & 0o777) == "0o600" and oct(sec.parent.stat().st_mode & 0o777) == "0o700"
    assert t.hosts[0].testinfra_args == ["--hosts=ssh://llmadmin@203.0.113.10?sudo=true"]


def test_stack_target_takes_only_the_secrets_the_inventory_names():
    from types import SimpleNamespace

    from operate.targets import from_stack
    from tests.unit.conftest import automation_config, plan_for

    inventory = plan_for("prod").outputs["inventory"]
    values = automation_config(
        "prod",
        secrets={
            k: f"v-{k}-0123456789abcdef"
            for k in (
                "vllmApiKey",
                "llamafactoryApiKey",
                "llamafactoryUiPassword",
                "huggingfaceApiKey",
                "openaiApiKey",
                "langfuseSecretKey",
            )
        },
    )
    stack = SimpleNamespace(
        name="prod", outputs=lambda: {"inventory": SimpleNamespace(value=inventory)}, get_all_config=lambda: values
    )
    written = json.loads(Path(from_stack(stack).files().env["LLM_PLATFORM_SECRETS_FILE"]).read_text())
    assert sorted(written) == [
        "huggingfaceApiKey",
        "llamafactoryApiKey",
        "llamafactoryUiPassword",
        "vllmApiKey",
        "vllmLocalKey",
    ]  # vllmApiKeyPrevious: not set outside a rotation, not written
    assert written["vllmApiKey"] == "v-vllmApiKey-0123456789abcdef"


def test_dry_plan_describes_commands_and_file_diffs_but_never_a_secret_file():
    import io

    from pyinfra.api.command import FileUploadCommand, StringCommand

    from hosts.file_ops import UPLOAD_DIR, WriteFile

    class Host:  # the one fact describe() reads: the file on the host, as pyinfra's FileContents lines
        def get_fact(self, fact, path):
            return {"/etc/nginx/conf.d/llm.conf": ["server_tokens off;", "client_max_body_size 1m;"]}.get(path)

    line, diff = dryplan.describe(
        FileUploadCommand(
            io.StringIO("server_tokens off;\nclient_max_body_size 9m;\n"),
            "/etc/nginx/conf.d/llm.conf",
            remote_temp_filename="/tmp/x",
        ),
        Host(),
    )
    assert line == "upload /etc/nginx/conf.d/llm.conf"
    assert "-client_max_body_size 1m;" in diff and "+client_max_body_size 9m;" in diff
    assert (
        dryplan.describe(FileUploadCommand(io.StringIO("a\n"), "/etc/new", remote_temp_filename="/tmp/y"), Host())[1]
        == "/etc/new: new file (1 lines)"
    )
    # the deploy's own one-command file write (hosts.file_ops.put_file) gives the same diff, not its command
    written = WriteFile(
        "/etc/nginx/conf.d/llm.conf", b"server_tokens off;\nclient_max_body_size 9m;\n", "root", "root", "644"
    )
    line, diff = dryplan.describe(written, Host())
    assert line == "write /etc/nginx/conf.d/llm.conf" and "base64" not in line + diff
    assert "-client_max_body_size 1m;" in diff and "+client_max_body_size 9m;" in diff
    secret = FileUploadCommand(
        io.BytesIO(b"KEY=hunter2-0123456789\n"),
        "/etc/llm-platform/vllm.env",
        remote_temp_filename=f"{UPLOAD_DIR}/pyinfra-abc",
    )
    line, diff = dryplan.describe(secret, Host())
    assert "hunter2" not in line + diff and diff.endswith(dryplan.SECRET_DIFF)
    assert dryplan.describe(StringCommand("systemctl", "start", "nginx.service"), Host()) == (
        "systemctl start nginx.service",
        None,
    )
    long = dryplan.file_diff("/f", [str(i) for i in range(200)], [f"{i}x\n" for i in range(200)])
    assert len(long.splitlines()) == dryplan.MAX_DIFF_LINES + 1 and long.endswith("more diff lines")


# --------------------------------------------------------------------------------------------------
# Outcomes: clean (0), drift (1), not checked (2), per layer and per host; "not checked" never drift
# --------------------------------------------------------------------------------------------------
# pyinfra 3.10's stderr when the host's SSH port closes before the banner (captured against a local
# listener that accepts and closes; paths shortened). paramiko logs its traceback from its transport
# thread, so it can come before or after pyinfra's own line: both orders are tested.
BANNER_TRACEBACK = """Exception (client): Error reading SSH protocol banner[Errno 104] Connection reset by peer
Traceback (most recent call last):
  File ".../paramiko/transport.py", line 2363, in _check_banner
    buf = self.packetizer.readline(timeout)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
ConnectionResetError: [Errno 104] Connection reset by peer

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File ".../paramiko/transport.py", line 2179, in run
    self._check_banner()
  File ".../paramiko/transport.py", line 2367, in _check_banner
    raise SSHException(
paramiko.ssh_exception.SSHException: Error reading SSH protocol banner[Errno 104] Connection reset by peer
"""
BANNER_LINE = "    [llm-prod] SSH error (Error reading SSH protocol banner[Errno 104] Connection reset by peer)\n"
PYINFRA_HEAD = "--> Loading config...\n--> Loading inventory...\n--> Connecting to hosts...\n"
PYINFRA_TAIL = "\n--> Disconnecting from hosts...\n--> pyinfra error: No hosts remaining!"


def unreachable(tmp_path, line: str, traceback: str = "", traceback_last: bool = False) -> LayerResult:
    stderr = PYINFRA_HEAD + (
        line + PYINFRA_TAIL + "\n" + traceback if traceback_last else traceback + line + PYINFRA_TAIL
    )
    run, calls = fake_runner("", dry_rc=1, dry_stderr=stderr)
    result = check_hosts(target(tmp_path), run=run)
    # testinfra runs beside the dry run; for a host the dry run could not reach, its result is dropped
    assert not [f for f in result.findings if f.kind == "check"]
    return result


def test_unreachable_host_reason_is_one_clean_line_never_a_traceback(tmp_path):
    for last in (False, True):
        result = unreachable(tmp_path, BANNER_LINE, BANNER_TRACEBACK, traceback_last=last)
        assert result.status == "not_checked"
        assert result.reason == (
            "llm-prod: SSH to 203.0.113.10:22: the connection closed before the SSH banner "
            "(Connection reset by peer): a firewall in the way, or sshd not up yet"
        ), result.reason
        [host] = result.hosts
        assert (host.host, host.status, host.reason) == ("llm-prod", "not_checked", result.reason)


def test_each_ssh_failure_reads_as_one_line_naming_host_and_address(tmp_path):
    cases = {
        "Could not connect (timed out)": "llm-prod: SSH to 203.0.113.10:22 timed out after 10 s",
        "Could not connect ([Errno None] Unable to connect to port 22 on 203.0.113.10)": (
            "llm-prod: SSH to 203.0.113.10:22 refused (nothing listening, or a firewall rejecting)"
        ),
        "Could not connect ([Errno 113] No route to host)": "llm-prod: SSH to 203.0.113.10:22: no route to host",
        "SSH host key error (Host key for 203.0.113.10 does not match.)": (
            "llm-prod: host key mismatch for 203.0.113.10:22: known_hosts holds another key "
            "(the host was rebuilt, or someone is in between)"
        ),
        "Authentication error (username=llmadmin)": (
            "llm-prod: SSH to 203.0.113.10:22: authentication failed as llmadmin (key not accepted)"
        ),
        "Could not resolve hostname ([Errno -2] Name or service not known)": (
            "llm-prod: SSH to 203.0.113.10:22: cannot resolve the host name"
        ),
        "Could not connect ([Errno 2] No such file or directory: '/home/runner/.ssh/known_hosts')": (
            "llm-prod: no known_hosts file (/home/runner/.ssh/known_hosts): the host key cannot be checked"
        ),
    }
    for pyinfra_says, reason in cases.items():
        colour = "\x1b[31m" + pyinfra_says + "\x1b[0m"  # pyinfra colours the message on a terminal
        result = unreachable(tmp_path, f"    [llm-prod] {colour}\n")
        assert result.reason == reason, (pyinfra_says, result.reason)


def test_a_failed_dry_run_without_a_connect_line_gives_pyinfras_error_not_a_traceback_tail(tmp_path):
    stderr = (
        PYINFRA_HEAD
        + BANNER_TRACEBACK
        + "--> pyinfra error: Invalid inventory: hosts/inventory.py\n"
        + BANNER_TRACEBACK
    )
    run, _ = fake_runner("", dry_rc=1, dry_stderr=stderr)
    result = check_hosts(target(tmp_path), run=run)
    assert result.status == "not_checked"
    assert result.reason == "dry run failed: pyinfra error: Invalid inventory: hosts/inventory.py", result.reason


def two_hosts(tmp_path) -> Files:
    t = target(tmp_path)
    data = tmp_path / "llm-b.json"
    data.write_text("{}")
    t.hosts.append(HostFiles("llm-b", ["--hosts=ssh://y"], data, address="198.51.100.20:22"))
    return t


def test_one_host_unreachable_the_others_still_checked_and_the_layer_says_both(tmp_path):
    # pyinfra carries on with the hosts it reached, prints its JSON plan, and exits 1
    stderr = PYINFRA_HEAD + "    [llm-b] Could not connect (timed out)\n"
    run, calls = fake_runner(json.dumps(DRY_RUN), dry_rc=1, dry_stderr=stderr, plan=PLAN)
    result = check_hosts(two_hosts(tmp_path), run=run)
    assert [(h.host, h.status) for h in result.hosts] == [("llm-prod", "drift"), ("llm-b", "not_checked")]
    assert result.status == "not_checked" and result.drift_found
    assert result.reason == "llm-b: SSH to 198.51.100.20:22 timed out after 10 s"
    assert {f.host for f in result.findings} == {"llm-prod"} and len(result.findings) == 2
    report = Report("prod", [LayerResult("cloud", "clean"), result])
    assert report.exit_code == 2 and report.status == "incomplete"
    doc = report.to_dict()
    assert doc["drift_found"] is True
    assert doc["not_checked"] == [{"layer": "hosts", "host": "llm-b", "reason": result.reason}]
    assert doc["layers"][1]["hosts"] == [
        {"host": "llm-prod", "status": "drift", "exit_code": 1, "reason": ""},
        {"host": "llm-b", "status": "not_checked", "exit_code": 2, "reason": result.reason},
    ]


def test_testinfra_losing_ssh_is_not_checked_not_a_failed_check(tmp_path):
    lost = JUNIT_FAIL.replace(
        "AssertionError: extra rule 11434/tcp ALLOW IN Anywhere&#10;assert [...] == [...]",
        "RuntimeError: CommandResult(backend=&lt;SshBackend&gt;, exit_status=255, command=b'ssh llm-prod sudo ufw "
        "status', _stdout=b'', _stderr=b'ssh: connect to host 203.0.113.10 port 22: Connection timed out\\r\\n')",
    )
    clean = {"plan": [{"name": "x", "hosts_with_change": [], "hosts_with_conditional_change": []}], "results": None}
    run, _ = fake_runner(json.dumps(clean), junit=lost)
    result = check_hosts(target(tmp_path), run=run)
    assert result.findings == []
    assert result.status == "not_checked"
    assert result.reason == "llm-prod: checks lost SSH: ssh: connect to host 203.0.113.10 port 22: Connection timed out"


CREATE = Finding("cloud", None, "digitalocean:index/droplet:Droplet llm-prod", "create", kind="resource")
DOWN = "llm-prod: SSH to 203.0.113.10:22 timed out after 10 s"


def cloud_drift_hosts_down() -> Report:
    hosts = LayerResult("hosts", "not_checked", reason=DOWN, hosts=[HostOutcome("llm-prod", "not_checked", DOWN)])
    return Report("prod", [LayerResult("cloud", "drift", [CREATE]), hosts])


def test_cloud_drift_with_hosts_not_checked_is_incomplete_exit_2_and_says_both():
    report = cloud_drift_hosts_down()
    assert report.exit_code == 2 and report.status == "incomplete"
    text = render.text(report)
    first = text.splitlines()[0]
    assert first == "drift report for prod: INCOMPLETE (exit 2): drift found; not checked: hosts", first
    assert f"not checked: {DOWN}" in text
    assert "digitalocean:index/droplet:Droplet llm-prod: create" in text
    doc = report.to_dict()
    assert (doc["status"], doc["exit_code"], doc["drift_found"]) == ("incomplete", 2, True)
    assert doc["not_checked"] == [{"layer": "hosts", "host": "llm-prod", "reason": DOWN}]
    assert [(layer["layer"], layer["status"], layer["exit_code"]) for layer in doc["layers"]] == [
        ("cloud", "drift", 1),
        ("hosts", "not_checked", 2),
    ]
    md = render.markdown(report)
    assert md.splitlines()[0] == "## ❌ Drift: `prod` — incomplete: drift found; not checked: hosts"
    assert "| hosts | not checked |" in md and DOWN in md and "create" in md


def test_not_checked_alone_is_incomplete_without_drift():
    hosts = LayerResult("hosts", "not_checked", reason=DOWN, hosts=[HostOutcome("llm-prod", "not_checked", DOWN)])
    report = Report("prod", [LayerResult("cloud", "clean"), hosts])
    assert (report.status, report.exit_code, report.to_dict()["drift_found"]) == ("incomplete", 2, False)
    assert (
        render.text(report).splitlines()[0]
        == "drift report for prod: INCOMPLETE (exit 2): no drift found; not checked: hosts"
    )


def test_help_lists_the_exit_codes(capsys):
    assert operate_cli.main(["drift", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes (one table for every scripts/ command):" in out
    for line in ("here: clean", "here: drift", "here: incomplete"):
        assert line in out, out
    # the codes the drift workflow relies on keep their meaning, in the shared table's order
    assert out.index("here: clean") < out.index("here: drift") < out.index("here: incomplete")
    assert re.search(r"\n  0 +ok .*\n +here: clean", out) and re.search(r"\n  2 +not checked", out), out


# --------------------------------------------------------------------------------------------------
# Markdown: what came from a host stays text (issue 18 §4)
# --------------------------------------------------------------------------------------------------
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def fenced(md: str) -> tuple[list[str], list[list[str]]]:
    """CommonMark's fenced code blocks, as a renderer sees them: the lines outside any block, and each
    block's lines. A block opens with 3+ backticks and closes at a line of at least as many."""
    outside: list[str] = []
    blocks: list[list[str]] = []
    fence = None
    for line in md.splitlines():
        stripped = line.lstrip(" ")
        if fence is None:
            m = re.match(r"(`{3,}|~{3,})", stripped)
            if m:
                fence = m.group(1)
                blocks.append([])
            else:
                outside.append(line)
        else:
            m = re.match(r"(`{3,}|~{3,})[ \t]*$", stripped)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            else:
                blocks[-1].append(line)
    return outside, blocks


def test_markdown_keeps_host_derived_text_inside_code(tmp_path):
    hostile_diff = "```\n# Owned\n[click here](https://evil.example/steal)\n<img src=x onerror=alert(1)>\n````` five"
    hostile_msg = "AssertionError: banner ~~~\n## Not a heading\n\x1b[8mhidden"
    f = Finding(
        "hosts",
        "llm-prod",
        "proxy | nginx: API key map",
        "would change",
        role="proxy",
        kind="operation",
        commands=["echo ``` [x](https://evil.example)"],
        diffs=[hostile_diff],
    )
    check = Finding(
        "hosts",
        "llm-prod",
        "test_proxy::t[ssh://x] [y](https://evil.example)",
        "check failed",
        role="proxy",
        kind="check",
        message=hostile_msg,
    )
    why = "llm-prod: SSH to 203.0.113.10:22: banner `[z](https://evil.example)` | www.evil.example <b>"
    hosts = LayerResult(
        "hosts", "not_checked", [f, check], reason=why, hosts=[HostOutcome("llm-prod", "not_checked", why)]
    )
    md = render.markdown(Report("prod", [LayerResult("cloud", "clean"), hosts]))
    outside, blocks = fenced(md)
    # every host-derived line is inside a code block
    inside = [line.strip() for b in blocks for line in b]
    for line in (hostile_diff + "\n" + hostile_msg.replace("\x1b", "\\x1b")).splitlines():
        assert line in inside, (line, md)
    assert "$ echo ``` [x](https://evil.example)" in inside
    # outside the blocks, only our own headings, and nothing that renders as a link or HTML
    headings = [line for line in outside if line.lstrip().startswith("#")]
    assert headings == [
        "## ❌ Drift: `prod` — incomplete: drift found; not checked: hosts",
        "### not checked (exit 2, whatever else was found)",
        "### hosts · llm-prod · proxy",
    ], headings
    text = "\n".join(CODE_SPAN.sub("", line) for line in outside)
    for bad in ("](", "<img", "<b>", "www.", "https://"):
        assert bad not in text, (bad, md)
    # the reason is still there, whole, in the table and the list; the table keeps its four columns
    [row] = [line for line in outside if line.startswith("| hosts |")]
    assert row.replace("\\|", "").count("|") == 5, row
    assert "\x1b" not in md and "\x1b" not in render.text(Report("prod", [hosts]))


def test_no_secret_value_in_a_not_checked_reason(tmp_path):
    secret = "s3cr3t-value-0123456789abcdef"
    sec = tmp_path / "secrets.json"
    sec.write_text(json.dumps({"vllmApiKey": secret}))
    sec.chmod(0o600)
    run, _ = fake_runner("", dry_rc=1, dry_stderr=f"--> pyinfra error: bad value {secret} in host data\n")
    t = target(tmp_path)
    t.env["LLM_PLATFORM_SECRETS_FILE"] = str(sec)
    report = Report("prod", [check_hosts(t, run=run)])
    for text in (render.text(report), render.markdown(report), json.dumps(report.to_dict())):
        assert secret not in text and "***" in text


def test_dry_run_and_checks_run_side_by_side(tmp_path):
    """Drift in one pass: the dry run and the testinfra suite both only read the host, so the check
    takes the longer of the two, not their sum. Each fake waits (bounded) until the other started."""
    import threading

    started = threading.Barrier(2, timeout=5)
    run, calls = fake_runner(json.dumps(DRY_RUN))

    def side_by_side(argv, **kw):
        started.wait()  # BrokenBarrierError if the other never starts while this one runs
        return run(argv, **kw)

    result = check_hosts(target(tmp_path), run=side_by_side)
    assert result.status == "drift" and len(calls) == 2


def test_stack_targets_pin_the_host_key_for_pyinfra_and_testinfra(tmp_path):
    """Nothing trusted on first use: the stack's host key is the only one SSH accepts, for the
    converge and dry run (pyinfra, the inventory) and the checks (testinfra's ssh backend)."""
    import os
    import subprocess

    from components import hostkeys
    from hosts.inventory import hosts_from_output

    pub = hostkeys.public_of(hostkeys.from_seed(b"prod"))
    inv = {"hosts": [prod_entry(host_key=pub)]}
    t = from_stack_outputs("prod", inv, {}).files()
    known = Path(t.env["LLM_PLATFORM_KNOWN_HOSTS"])
    assert known.read_text() == f"203.0.113.10 {pub}\n"
    [(name, data)] = hosts_from_output(inv, str(known))
    assert data["ssh_known_hosts_file"] == str(known) and data["ssh_strict_host_key_checking"] == "yes"
    cfg = next(a for a in t.hosts[0].testinfra_args if a.startswith("--ssh-config="))[len("--ssh-config=") :]
    ssh = subprocess.run(
        ["ssh", "-G", "-F", cfg, "llmadmin@203.0.113.10"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    ).stdout
    assert f"userknownhostsfile {known}" in ssh and "stricthostkeychecking true" in ssh
    # a host the output pins no key for (an old output): still strict, against the operator's known_hosts
    [(_, old)] = hosts_from_output({"hosts": [{**inv["hosts"][0], "host_key": None}]}, str(known))
    assert old["ssh_strict_host_key_checking"] == "yes" and "ssh_known_hosts_file" not in old
