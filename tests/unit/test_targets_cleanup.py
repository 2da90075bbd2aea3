"""Decrypted secrets the operator's machine writes (operate/targets.py) are gone when the command
ends, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time
from tests.unit.test_targets import stack_target
t = stack_target()
print(t.files().env["LLM_PLATFORM_SECRETS_FILE"], flush=True)
how = sys.argv[1]
if how == "error":
    raise RuntimeError("boom")
if how == "wait":
    time.sleep(60)
"""


def _default_sigint() -> None:
    # a test run in the background inherits SIGINT ignored, and Python keeps it so; an operator's
    # terminal does not
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(how: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, how],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    secrets = Path(proc.stdout.readline().strip())
    return proc, secrets


@pytest.mark.parametrize("how", ["ok", "error"])
def test_private_dir_removed_at_exit(how):
    proc, secrets = _start(how)
    proc.wait(timeout=30)
    assert (proc.returncode == 0) == (how == "ok")
    assert secrets.name == "secrets.json" and not secrets.parent.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_private_dir_removed_when_killed(sig):
    proc, secrets = _start("wait")
    assert secrets.exists() and oct(secrets.stat().st_mode)[-3:] == "600"
    assert oct(secrets.parent.stat().st_mode)[-3:] == "700"
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    for _ in range(20):
        if not secrets.parent.exists():
            break
        time.sleep(0.1)
    assert not secrets.parent.exists()
