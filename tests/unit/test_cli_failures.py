"""The operator commands with an old or broken Pulumi CLI: exit 2 (could not check), one line, never a
traceback (which would exit 1, and for drift 1 means "drift")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKES = {
    # `pulumi version` answers a version older than the SDK's minimum
    "old": "#!/bin/sh\necho v3.0.0\n",
    # every command fails the way a corrupt install does
    "broken": "#!/bin/sh\necho 'fatal: runtime: out of memory' >&2\nexit 2\n",
    # a fine version, but every stack command fails (e.g. a backend it cannot reach)
    "failing": '#!/bin/sh\nif [ "$1" = version ]; then echo v3.300.0; exit 0; fi\n'
    "echo 'error: could not reach the backend' >&2\nexit 255\n",
}

COMMANDS = [
    ("drift", "prod", "--no-checks"),
    ("converge", "prod", "--dry"),
    ("rebuild-host", "prod", "llm-prod"),
    ("smoke", "prod"),
]


@pytest.fixture(params=sorted(FAKES))
def fake_pulumi(request, tmp_path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "pulumi"
    exe.write_text(FAKES[request.param])
    exe.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PULUMI_ACCESS_TOKEN": "pul-fake",
        "DIGITALOCEAN_TOKEN": "dop-fake",
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
    }


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[0])
def test_cli_failure_is_exit_2_one_line(fake_pulumi, cmd, tmp_path):
    script, *args = cmd
    if script == "drift":
        args += ["--report", str(tmp_path / "r.json")]
    res = subprocess.run(
        [str(ROOT / "scripts" / script), *args], env=fake_pulumi, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 2, res.stdout + res.stderr
    if script != "drift":  # drift reports in its summary and JSON
        lines = res.stderr.strip().splitlines()
        if script == "rebuild-host":  # every exit of a rebuild also says what to do next, in one line
            assert len(lines) == 2 and lines[1].startswith("next: "), res.stderr
            lines = lines[:1]
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
