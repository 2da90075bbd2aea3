"""scripts/plan, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components import yamlio

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "scripts" / "plan"


def run_plan_subprocess(*args, stacks_dir: Path | None = None) -> subprocess.CompletedProcess:
    """The script exactly as a user runs it (venv bootstrap included)."""
    env = dict(os.environ)
    if stacks_dir:
        env["LLM_PLATFORM_STACKS_DIR"] = str(stacks_dir)
    return subprocess.run([str(PLAN), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def run_plan(capsys, monkeypatch, pinned_stacks):
    """In-process run of the same entry point (fast: Pulumi is imported once per session), on the
    stack files with their Ollama pin (conftest.pinned_stacks) unless told another directory."""
    from components import stackfile
    from operate import cli

    def _run(*args, stacks_dir: Path | None = None) -> subprocess.CompletedProcess:
        monkeypatch.setattr(stackfile, "STACKS_DIR", stacks_dir or pinned_stacks)
        rc = cli.main(["plan", *args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out.out, out.err)

    return _run


@pytest.mark.parametrize("stack", ["dev", "prod", "cpu"])
def test_plan_prints_resources_outputs_and_cost(run_plan, stack):
    res = run_plan(stack)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert f"Stack {stack}" in out and "Resources (" in out and "Outputs:" in out and "Cost (USD/month):" in out
    assert "digitalocean:App" in out and "env HUGGINGFACE_API_KEY=[secret]" in out
    assert "offline-placeholder" not in out
    if stack != "dev":
        assert "[protect, retain-on-delete]" in out and "allow tcp/22 from" in out


def test_plan_json_is_parseable(run_plan):
    res = run_plan("cpu", "--json")
    doc = json.loads(res.stdout)
    assert doc["outputs"]["inventory"]["hosts"][0]["data"]["provider"] == "hetzner"


def _stack_copy(tmp_path: Path, stack: str, edit, src: Path = ROOT / "stacks") -> Path:
    shutil.copy(src / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    path = tmp_path / f"Pulumi.{stack}.yaml"
    doc = yamlio.load(path.read_text())
    edit(doc["config"])
    path.write_text(yamlio.dump(doc))
    return tmp_path


def test_bad_config_exits_non_zero_with_one_line(tmp_path):
    d = _stack_copy(tmp_path, "dev", lambda c: c.update({"llm-platform:phase": 3}))
    res = run_plan_subprocess("dev", stacks_dir=d)
    assert res.returncode == 1
    assert res.stdout == ""
    assert res.stderr.strip().splitlines() == ["error: llm-platform:phase = 3: must be one of 1, 2"]


def test_phase_edit_changes_the_plan(run_plan, tmp_path, pinned_stacks):
    d = _stack_copy(tmp_path, "dev", lambda c: c.update({"llm-platform:phase": 2}), src=pinned_stacks)
    res = run_plan("dev", stacks_dir=d)
    assert res.returncode == 0, res.stderr
    assert "digitalocean:Droplet" in res.stdout and 'LLM_PROVIDER="vllm"' in res.stdout
    assert "apps-s-2vcpu-4gb" in res.stdout


def test_unknown_stack_is_a_usage_error_in_one_line(run_plan):
    res = run_plan("nope")
    assert res.returncode == 3 and "no stack file" in res.stderr and "dev" in res.stderr
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("error: argument STACK: "), res.stderr
