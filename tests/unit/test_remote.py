"""The one remote runner (operate/remote.py): the ssh argv the resolver builds (the pinned key,
strictly checked), and its one-line errors, against a fake ``ssh`` on PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from operate import remote
from operate.remote import Remote, RemoteError
from tests.unit.test_targets import PUB, local_state, stack_target

FAKE_SSH = """#!/bin/sh
# a stand-in for ssh: records its argv, answers as $FAKE_SSH_MODE says
printf '%s\\n' "$@" > "$FAKE_SSH_ARGV"
case "$FAKE_SSH_MODE" in
  password) echo 'sudo: a password is required' >&2; exit 1 ;;
  hostkey) echo '@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@' >&2
           echo 'Host key verification failed.' >&2; exit 255 ;;
  down) echo 'ssh: connect to host 203.0.113.209 port 22: Connection timed out' >&2; exit 255 ;;
  *) cat; echo ok ;;
esac
"""


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    argv = tmp_path / "argv"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_ARGV", str(argv))

    def mode(m: str = "ok") -> Path:
        monkeypatch.setenv("FAKE_SSH_MODE", m)
        return argv

    return mode


def test_a_stack_host_is_reached_with_its_pinned_key_only(fake_ssh):
    argv_file = fake_ssh("ok")
    r = stack_target().remote("llm-prod")
    res = r.run("cat /etc/hostname", input="data\n")
    assert res.stdout == "data\nok\n"
    argv = argv_file.read_text().splitlines()
    assert argv[-2:] == ["llmadmin@203.0.113.209", "sudo -n sh -c 'cat /etc/hostname'"]
    opts = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert "StrictHostKeyChecking=yes" in opts and "BatchMode=yes" in opts and "GlobalKnownHostsFile=/dev/null" in opts
    known = Path(next(o for o in opts if o.startswith("UserKnownHostsFile=")).split("=", 1)[1])
    assert known.read_text() == f"203.0.113.209 {PUB}\n"
    assert oct(known.stat().st_mode & 0o777) == "0o600"


def test_an_old_output_without_a_key_is_still_strict_against_the_operators_known_hosts():
    argv = remote.ssh_argv("u@203.0.113.1", port=2222)
    assert argv == ["ssh", "-o", "StrictHostKeyChecking=yes", "-p", "2222", "u@203.0.113.1"]


def test_the_local_host_goes_through_its_generated_ssh_config(tmp_path, monkeypatch):
    from operate import targets
    from operate.automation import Unavailable
    from testhost import vm

    s = local_state(tmp_path)
    s.ssh_config.write_text("Host llm-local\n")
    monkeypatch.setattr(vm, "is_running", lambda s: True)
    r = targets.local(s).remote()
    assert r.prefix == ["ssh", "-F", str(s.ssh_config), "llm-local"] == vm.ssh_args(s)
    monkeypatch.setattr(vm, "is_running", lambda s: False)
    with pytest.raises(Unavailable, match="the local test host is not running"):
        targets.local(s).remote()


@pytest.mark.parametrize(
    "mode, message",
    [
        (
            "password",
            r"^llm-prod \(llmadmin@203.0.113.209\): sudo asks for a password; the admin user needs passwordless sudo$",
        ),
        ("hostkey", r"^llm-prod \(llmadmin@203.0.113.209\) answers SSH with another host key than the one pinned"),
        ("down", r"^cannot reach llm-prod \(llmadmin@203.0.113.209\) over SSH: ssh: connect to host .* timed out$"),
    ],
)
def test_failures_are_one_line(fake_ssh, mode, message):
    fake_ssh(mode)
    with pytest.raises(RemoteError, match=message) as info:
        stack_target().remote().run("true")
    assert "\n" not in str(info.value)


def test_a_login_check_stops_at_a_wrong_host_key(fake_ssh):
    fake_ssh("hostkey")
    r = stack_target().remote()
    with pytest.raises(RemoteError, match="another host key"):
        r.logs_in()
    fake_ssh("down")
    assert r.logs_in() is False


def test_read_write_round_trip(tmp_path):
    # a stand-in for "ssh host": run the remote command here, without the sudo prefix
    r = Remote(["sh", "-c", 'c="$1"; eval "${c#sudo -n }"', "ssh"], "local-sh")
    path = str(tmp_path / "sub" / "f.json")
    r.write(path, "héllo\n", mode="600")
    assert r.read(path) == "héllo\n" and oct(Path(path).stat().st_mode & 0o777) == "0o600"
    assert r.read(str(tmp_path / "missing")) is None
