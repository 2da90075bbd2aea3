"""The CI workflows: schema-valid (check-jsonschema's vendored GitHub workflow schema, offline) and in
step with the repository (every cloud stack is drift-checked and rebuildable; tests run the README
command through .ci/run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from components import offline

ROOT = Path(__file__).resolve().parents[2]
WF = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    doc = yaml.safe_load((WF / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_workflows_are_schema_valid():
    res = check_jsonschema(*sorted(WF.glob("*.yml")))
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_linter_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert check_jsonschema(bad).returncode != 0


def cloud_stacks() -> list[str]:
    return [s for s in offline.stack_names() if s != "homelab"]


def test_drift_runs_daily_for_every_cloud_stack_and_uploads_the_report():
    doc = load("drift.yml")
    assert doc["on"]["schedule"][0]["cron"].count(" ") == 4
    job = doc["jobs"]["drift"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == sorted(cloud_stacks())
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "scripts/drift" in runs and "--report" in runs and "--markdown" in runs
    uploads = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "always()"
    assert any(str(s.get("uses", "")).startswith("pulumi/actions") for s in job["steps"])
    for var in ("PULUMI_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN", "HCLOUD_TOKEN"):
        assert "secrets." in job["env"][var]


def test_manual_rebuild_offers_every_cloud_stack():
    doc = load("rebuild-host.yml")
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert sorted(inputs["stack"]["options"]) == sorted(cloud_stacks())
    runs = " ".join(step.get("run", "") for step in doc["jobs"]["rebuild"]["steps"])
    assert 'scripts/rebuild-host "$STACK" "$HOST"' in runs


def test_pull_requests_run_the_readme_test_command():
    doc = load("test.yml")
    assert "pull_request" in doc["on"]
    runs = " ".join(step.get("run", "") for step in doc["jobs"]["test"]["steps"])
    assert ".ci/run" in runs
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in (ROOT / "README.md").read_text()
