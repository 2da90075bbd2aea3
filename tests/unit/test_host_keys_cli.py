"""scripts/host-keys against a stand-in `pulumi` CLI that keeps config in a file and logs its argv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PULUMI = """#!/bin/sh
echo "$@" >> "$FAKE_DIR/argv.log"
store="$FAKE_DIR/hostSshKey"
case "$1 $2" in
  "config get") [ -f "$store" ] && cat "$store" && exit 0; echo "error: configuration key not found" >&2; exit 255 ;;
  "config set") cat > "$store"; exit 0 ;;
esac
exit 1
"""


def run(tmp_path, *args):
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake = tmp_path / "bin" / "pulumi"
    fake.write_text(FAKE_PULUMI)
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "FAKE_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "operate", "host-keys", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_made_once_stored_as_a_secret_and_never_printed(tmp_path):
    from components import hostkeys

    out = run(tmp_path, "prod")
    assert out.returncode == 0, out.stderr
    key = (tmp_path / "hostSshKey").read_text()
    public = hostkeys.public_of(key)
    argv = (tmp_path / "argv.log").read_text()
    assert "config set --secret llm-platform:hostSshKey --stack prod" in argv
    body = key.splitlines()[1]
    assert body not in argv and body not in out.stdout + out.stderr  # stdin only
    assert public in out.stdout and hostkeys.fingerprint(public) in out.stdout
    assert out.stdout.splitlines()[-1].startswith("next: commit stacks/Pulumi.prod.yaml, then `pulumi up -s prod`")

    again = run(tmp_path, "prod")  # kept: the hosts keep answering with it
    assert again.returncode == 0 and "already set, kept" in again.stdout
    assert (tmp_path / "hostSshKey").read_text() == key

    rotated = run(tmp_path, "prod", "--rotate")
    assert rotated.returncode == 0 and (tmp_path / "hostSshKey").read_text() != key
