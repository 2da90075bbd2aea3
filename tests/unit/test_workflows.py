"""The CI workflows: schema-valid (check-jsonschema's vendored GitHub workflow schema, offline) and in
step with the repository (every cloud stack is drift-checked and rebuildable; tests run the README
command through .ci/run); credentials only where a step needs them, actions pinned by commit, one
GitHub environment per stack, and the reachability check before any host step."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from components import stackfile, yamlio

ROOT = Path(__file__).resolve().parents[2]
WF = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    return yamlio.load((WF / name).read_text())  # YAML 1.2, as Actions reads it: the key `on` is a string


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_workflows_are_schema_valid():
    res = check_jsonschema(*sorted(WF.glob("*.yml")))
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_linter_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert check_jsonschema(bad).returncode != 0


def cloud_stacks() -> list[str]:
    return [s for s in stackfile.stack_names() if s != "homelab"]


def steps_of(doc: dict) -> list[tuple[str, dict]]:
    return [(job_id, step) for job_id, job in doc["jobs"].items() for step in job.get("steps", [])]


def test_drift_runs_daily_for_every_cloud_stack_and_uploads_the_report():
    doc = load("drift.yml")
    assert doc["on"]["schedule"][0]["cron"].count(" ") == 4
    job = doc["jobs"]["drift"]
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "scripts/drift" in runs and "--report" in runs and "--markdown" in runs
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "always()"
    assert any(str(s.get("uses", "")).startswith("pulumi/actions") for s in job["steps"])
    [check] = [s for s in job["steps"] if "scripts/drift" in s.get("run", "")]
    for var in ("PULUMI_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN", "HCLOUD_TOKEN"):
        assert check["env"][var] == f"${{{{ secrets.{var} }}}}"


def stacks_job_output(root: Path, out: Path) -> list[str]:
    """Run drift.yml's `stacks` job script, as the runner would, in ``root``; its `stacks` output
    (written to ``out``, the job's $GITHUB_OUTPUT)."""
    [step] = [s for s in load("drift.yml")["jobs"]["stacks"]["steps"] if "run" in s]
    out.write_text("")
    res = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GITHUB_OUTPUT": str(out)},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    [line] = [line for line in out.read_text().splitlines() if line.startswith("stacks=")]
    return json.loads(line.split("=", 1)[1])


def test_the_drift_matrix_is_every_cloud_stack_file_listed_by_a_job(tmp_path):
    doc = load("drift.yml")
    job = doc["jobs"]["drift"]
    assert job["needs"] == "stacks"
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert doc["jobs"]["stacks"]["outputs"]["stacks"] == "${{ steps.list.outputs.stacks }}"
    assert sorted(stacks_job_output(ROOT, tmp_path / "out1")) == sorted(cloud_stacks())
    # a stack file added is in the next run's matrix, with no edit to the workflow
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "stacks", copy / "stacks")
    shutil.copy(ROOT / "stacks" / "Pulumi.cpu.yaml", copy / "stacks" / "Pulumi.demo.yaml")
    assert sorted(stacks_job_output(copy, tmp_path / "out2")) == sorted([*cloud_stacks(), "demo"])


REBUILD = ".github/workflows/rebuild-host.yml"


def rebuild_options_missing(stacks: list[str], doc: dict) -> list[str]:
    """What to edit, per cloud stack the manual rebuild does not offer (a choice input cannot be
    generated, so this check stands in for it)."""
    options = doc["on"]["workflow_dispatch"]["inputs"]["stack"]["options"]
    return [
        f"stacks/Pulumi.{s}.yaml has no rebuild: add {s!r} to on.workflow_dispatch.inputs.stack.options "
        f"in {REBUILD}, and create the GitHub environment {s!r} with its secrets (docs/oncall.md, CI secrets)"
        for s in stacks
        if s not in options
    ] + [
        f"{REBUILD} offers {s!r}, which has no stack file: remove it from inputs.stack.options"
        for s in options
        if s not in stacks
    ]


def test_manual_rebuild_offers_every_cloud_stack():
    doc = load("rebuild-host.yml")
    problems = rebuild_options_missing(cloud_stacks(), doc)
    assert not problems, "\n".join(problems)
    # the check names the file to edit when a stack file is added
    [added] = rebuild_options_missing([*cloud_stacks(), "demo"], doc)
    assert REBUILD in added and "'demo'" in added and "environment 'demo'" in added
    runs = " ".join(step.get("run", "") for step in doc["jobs"]["rebuild"]["steps"])
    assert 'scripts/rebuild-host "$STACK" "$HOST"' in runs


# --------------------------------------------------------------------------------------------------
# Credentials, pinning, environments, reachability
# --------------------------------------------------------------------------------------------------
SECRET_REF = re.compile(r"\$\{\{[^}]*\bsecrets\b")


def credential_problems(name: str, doc: dict) -> list[str]:
    """Where a workflow exposes a secret beyond the one step that needs it."""
    problems = []
    if SECRET_REF.search(json.dumps(doc.get("env", {}))):
        problems.append(f"{name}: a secret in the workflow-level env (every job and step sees it)")
    for job_id, job in doc["jobs"].items():
        for key in ("env", "defaults", "container", "services"):
            if SECRET_REF.search(json.dumps(job.get(key, {}))):
                problems.append(f"{name}: job {job_id}: a secret in the job-level {key} (every step sees it)")
        if job.get("secrets") == "inherit":
            problems.append(f"{name}: job {job_id}: secrets: inherit")
        for step in job.get("steps", []):
            label = step.get("name") or step.get("uses") or step.get("run", "")[:40]
            if "uses" in step and SECRET_REF.search(json.dumps({k: step.get(k) for k in ("env", "with")})):
                problems.append(f"{name}: job {job_id}: step {label!r}: a secret handed to the action {step['uses']}")
            if SECRET_REF.search(step.get("run", "")):
                problems.append(
                    f"{name}: job {job_id}: step {label!r}: a secret expanded into the script "
                    "(pass it through the step's env)"
                )
    return problems


def test_credentials_only_at_step_level():
    problems = [p for wf in sorted(WF.glob("*.yml")) for p in credential_problems(wf.name, load(wf.name))]
    assert not problems, "\n".join(problems)


def test_the_credential_check_catches_job_level_secrets():
    bad = {
        "env": {"T": "${{ secrets.T }}"},
        "jobs": {
            "j": {
                "env": {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"},
                "steps": [
                    {"uses": "some/action@" + "0" * 40, "with": {"token": "${{ secrets.X }}"}},
                    {"run": "echo ${{ secrets.Y }}"},
                ],
            }
        },
    }
    problems = credential_problems("bad.yml", bad)
    assert [p.split(": ")[-1].split(" (")[0] for p in problems] == [
        "a secret in the workflow-level env",
        "a secret in the job-level env",
        "a secret handed to the action some/action@" + "0" * 40,
        "a secret expanded into the script",
    ]


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
TAG_COMMENT = re.compile(r"^\s+#\s+v\d+(?:\.\d+)*\s*$")


def pinning_problems(name: str, text: str) -> list[str]:
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        m = USES.match(line)
        if not m or m["ref"].startswith(("./", "docker://")):
            continue
        if not PINNED.match(m["ref"]):
            problems.append(f"{name}:{n}: {m['ref']} is not pinned by a full commit SHA (owner/repo@<40 hex> # vX.Y.Z)")
        elif not TAG_COMMENT.match(m["comment"]):
            problems.append(f"{name}:{n}: {m['ref']} has no '# vX.Y.Z' comment naming the tag it is")
    return problems


def test_third_party_actions_are_pinned_by_commit_sha():
    problems = [p for wf in sorted(WF.glob("*.yml")) for p in pinning_problems(wf.name, wf.read_text())]
    assert not problems, "\n".join(problems)
    assert pinning_problems("x.yml", "    - uses: actions/checkout@v4\n") != []
    assert pinning_problems("x.yml", "      uses: pulumi/actions@" + "a" * 40 + "\n") != []  # no tag comment
    assert pinning_problems("x.yml", "    - uses: actions/checkout@" + "a" * 40 + " # v4.4.0\n") == []


def test_drift_and_rebuild_run_in_the_stacks_environment_on_the_hosts_runner():
    for name, job_id, stack in (
        ("drift.yml", "drift", "matrix.stack"),
        ("rebuild-host.yml", "rebuild", "inputs.stack"),
    ):
        job = load(name)["jobs"][job_id]
        assert job["environment"] == f"${{{{ {stack} }}}}", name  # its secrets: this stack's only
        assert job["runs-on"] == "${{ vars.HOSTS_RUNNER || 'ubuntu-24.04' }}", name
        ssh = [s for s in job["steps"] if "HOSTS_SSH_PRIVATE_KEY" in json.dumps(s.get("env", {}))]
        assert ssh and "HOSTS_KNOWN_HOSTS" in json.dumps(ssh[0]["env"]), name  # the stack's own key and host keys
        cleanup = [s for s in job["steps"] if s.get("if") == "always()" and "id_ed25519" in s.get("run", "")]
        assert cleanup, f"{name}: no always() step removes the key from the runner"


def test_reachability_is_said_before_any_host_step():
    for name, job_id, host_step in (
        ("drift.yml", "drift", "scripts/drift"),
        ("rebuild-host.yml", "rebuild", "scripts/rebuild-host"),
    ):
        steps = load(name)["jobs"][job_id]["steps"]
        runs = [s.get("run", "") for s in steps]
        reach = next(i for i, r in enumerate(runs) if "scripts/reach" in r)
        ssh = next(i for i, s in enumerate(steps) if "HOSTS_SSH_PRIVATE_KEY" in json.dumps(s.get("env", {})))
        host = next(i for i, r in enumerate(runs) if host_step in r)
        assert reach < ssh < host, name
        assert "--runner-ip" in runs[reach], name
    drift_run = next(s for s in load("drift.yml")["jobs"]["drift"]["steps"] if "scripts/drift" in s.get("run", ""))
    assert "--runner-ip" in drift_run["run"]  # hosts reported as not checked, with the line, when outside


def test_pull_requests_run_the_readme_test_command():
    doc = load("test.yml")
    assert "pull_request" in doc["on"]
    runs = " ".join(step.get("run", "") for step in doc["jobs"]["test"]["steps"])
    assert ".ci/run" in runs
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in (ROOT / "README.md").read_text()


def test_every_secret_and_variable_the_workflows_use_has_a_row_in_the_runbook():
    used = set()
    for wf in sorted(WF.glob("*.yml")):
        used |= set(re.findall(r"\b(?:secrets|vars)\.([A-Z][A-Z0-9_]*)", wf.read_text()))
    assert {
        "PULUMI_ACCESS_TOKEN",
        "DIGITALOCEAN_TOKEN",
        "HCLOUD_TOKEN",
        "HOSTS_SSH_PRIVATE_KEY",
        "HOSTS_KNOWN_HOSTS",
        "HOSTS_RUNNER",
    } <= used
    oncall = (ROOT / "docs" / "oncall.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", oncall, flags=re.M))
    missing = sorted(used - rows)
    assert not missing, f"docs/oncall.md §7 has no row (name, what, workflow, how to rotate) for {missing}"
    assert "rebuild-host.yml" in oncall
