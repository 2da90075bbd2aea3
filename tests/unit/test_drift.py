"""Drift detection with the Automation API and the host commands faked at their boundary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pulumi.automation import CommandError
from pulumi.automation._cmd import CommandResult
from pulumi.automation.events import EngineEvent

from components import automation
from hosts import drift
from hosts.targets import HostTarget, Target, from_stack_outputs

APP_URN = "urn:pulumi:prod::llm-platform::llm-platform:app:LlmApp$digitalocean:index/app:App::llm-app"
FW_URN = "urn:pulumi:prod::llm-platform::llm-platform:host:ModelHost$digitalocean:index/firewall:Firewall::llm-prod-firewall"


def step(op: str, urn: str, type_: str, diff: dict | None = None) -> EngineEvent:
    return EngineEvent.from_json(
        {"sequence": 1, "timestamp": 0, "resourcePreEvent": {"metadata": {
            "op": op, "urn": urn, "type": type_, "provider": "",
            "diffs": list((diff or {}).keys()),
            "detailedDiff": {k: {"diffKind": v, "inputDiff": True} for k, v in (diff or {}).items()},
        }}}
    )


def diag(severity: str, message: str) -> EngineEvent:
    return EngineEvent.from_json({"sequence": 2, "timestamp": 0, "diagnosticEvent": {"message": message, "severity": severity, "color": "never"}})


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


def cloud(events, fail=None) -> tuple[drift.LayerResult, FakeStack]:
    stack = FakeStack(events, fail)
    return drift.check_cloud("prod", select=lambda name: stack), stack


def test_clean_stack_is_clean_and_previews_with_refresh():
    result, stack = cloud([step("refresh", APP_URN, "digitalocean:index/app:App"), step("same", APP_URN, "digitalocean:index/app:App")])
    assert result.status == "clean" and result.findings == []
    assert stack.calls[0]["refresh"] is True


def test_changed_resource_is_drift_naming_resource_and_property():
    result, _ = cloud([
        step("same", APP_URN, "digitalocean:index/app:App"),
        step("update", FW_URN, "digitalocean:index/firewall:Firewall", {"inboundRules[3]": "delete"}),
    ])
    assert result.status == "drift"
    [f] = result.findings
    assert f.target == "digitalocean:index/firewall:Firewall llm-prod-firewall"
    assert f.detail == "update: inboundRules[3]"


def test_failed_preview_without_changes_is_an_error_not_drift():
    result, _ = cloud([diag("error", "digitalocean: 401 Unable to authenticate you")], fail="error: update failed")
    assert result.status == "error"
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

    result = drift.check_cloud("prod", select=unavailable)
    assert result.status == "error" and "no Pulumi CLI" in result.reason


# --------------------------------------------------------------------------------------------------
DRY_RUN = {
    "plan": [
        {"name": "base | apt: use the caching proxy", "hosts_with_change": [], "hosts_with_conditional_change": []},
        {"name": "firewall | ufw: default deny, only 22 (admins), 80, 443", "hosts_with_change": ["llm-prod"],
         "hosts_with_conditional_change": []},
        {"name": "ollama | ollama: restart on change", "hosts_with_change": [], "hosts_with_conditional_change": ["llm-prod"]},
    ],
    "results": None,
}

JUNIT_FAIL = """<?xml version="1.0"?><testsuites><testsuite>
<testcase classname="tests.hosts.test_proxy" name="test_certbot_renewal_timer[ssh://x]"/>
<testcase classname="tests.hosts.test_firewall" name="test_ufw_rules_are_exactly_the_catalogue[ssh://x]"><failure message="x"/></testcase>
</testsuite></testsuites>"""


def target(tmp_path) -> Target:
    data = tmp_path / "llm-prod.json"
    data.write_text("{}")
    return Target("prod", tmp_path / "inv.py", {}, [HostTarget("llm-prod", ["--hosts=ssh://x"], data)])


def fake_runner(dry_stdout: str, dry_rc: int = 0, junit: str | None = JUNIT_FAIL, dry_stderr: str = ""):
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        if "--dry" in argv:
            return subprocess.CompletedProcess(argv, dry_rc, dry_stdout, dry_stderr)
        if junit is not None:
            path = next(a.split("=", 1)[1] for a in argv if a.startswith("--junitxml="))
            Path(path).write_text(junit)
        return subprocess.CompletedProcess(argv, 1, "", "")

    return run, calls


def test_host_drift_from_the_json_plan_and_failed_checks(tmp_path):
    run, calls = fake_runner("some log line\n" + json.dumps(DRY_RUN))
    result = drift.check_hosts(target(tmp_path), run=run)
    assert result.status == "drift"
    targets = [(f.host, f.target, f.detail) for f in result.findings]
    assert ("llm-prod", "firewall | ufw: default deny, only 22 (admins), 80, 443", "would change") in targets
    # conditional operations (restart-on-change) follow their trigger: not drift by themselves
    assert not [t for t in targets if "restart on change" in t[1]]
    assert ("llm-prod", "test_firewall::test_ufw_rules_are_exactly_the_catalogue[ssh://x]", "check failed") in targets
    assert "--dry" in calls[0] and "--json" in calls[0]


def test_clean_host(tmp_path):
    clean = {"plan": [{"name": "x", "hosts_with_change": [], "hosts_with_conditional_change": []}], "results": None}
    run, _ = fake_runner(json.dumps(clean), junit='<testsuites><testsuite><testcase classname="a" name="b"/></testsuite></testsuites>')
    assert drift.check_hosts(target(tmp_path), run=run).status == "clean"


def test_unreachable_host_is_an_error_with_the_reason(tmp_path):
    run, _ = fake_runner("", dry_rc=1, dry_stderr="--> Could not connect to llm-prod: timed out")
    result = drift.check_hosts(target(tmp_path), run=run)
    assert result.status == "error" and "Could not connect" in result.reason


def test_report_exit_codes_and_json():
    clean = drift.LayerResult("cloud", "clean")
    dirty = drift.LayerResult("hosts", "drift", [drift.Finding("hosts", "h", "op", "would change")])
    broken = drift.LayerResult("hosts", "error", reason="host unreachable")
    assert drift.Report("s", [clean]).exit_code == 0
    assert drift.Report("s", [clean, dirty]).exit_code == 1
    assert drift.Report("s", [clean, broken]).exit_code == 2
    doc = drift.Report("s", [clean, dirty]).to_dict()
    assert doc["findings"] == [{"layer": "hosts", "host": "h", "target": "op", "detail": "would change"}]
    assert "h] op: would change" in drift.Report("s", [dirty]).summary()


def test_stack_targets_keep_secrets_private(tmp_path):
    inv = {"hosts": [{"name": "llm-prod", "ssh_hostname": "203.0.113.10", "ssh_user": "llmadmin", "data": {}}]}
    t = from_stack_outputs("prod", inv, {"vllmApiKey": "k" * 20})
    sec = Path(t.env["LLM_PLATFORM_SECRETS_FILE"])
    assert oct(sec.stat().st_mode & 0o777) == "0o600" and oct(sec.parent.stat().st_mode & 0o777) == "0o700"
    assert t.hosts[0].testinfra_args == ["--hosts=ssh://llmadmin@203.0.113.10?sudo=true"]


def test_stack_target_takes_only_the_secrets_the_inventory_names():
    from types import SimpleNamespace

    from hosts.targets import from_stack
    from tests.unit.conftest import plan_for

    inventory = plan_for("prod").outputs["inventory"]
    values = {f"llm-platform:{k}": SimpleNamespace(value=f"v-{k}")
              for k in ("vllmApiKey", "llamafactoryApiKey", "llamafactoryUiPassword", "huggingfaceApiKey",
                        "openaiApiKey", "langfuseSecretKey")}
    stack = SimpleNamespace(name="prod", outputs=lambda: {"inventory": SimpleNamespace(value=inventory)},
                            get_all_config=lambda: values)
    written = json.loads(Path(from_stack(stack).env["LLM_PLATFORM_SECRETS_FILE"]).read_text())
    assert sorted(written) == ["huggingfaceApiKey", "llamafactoryApiKey", "llamafactoryUiPassword", "vllmApiKey"]
