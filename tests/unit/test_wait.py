"""operate/wait.py: the one polling loop."""

from __future__ import annotations

import pytest

from operate.wait import wait_until


def fake_time():
    now = [0.0]
    return (lambda: now[0]), (lambda s: now.__setitem__(0, now[0] + s))


def test_returns_what_the_predicate_gave_once_it_holds():
    answers = iter([None, 0, "", "ready"])
    clock, sleep = fake_time()
    dots = []
    assert (
        wait_until(lambda: next(answers), 10, 1, "never", on_wait=lambda: dots.append("."), clock=clock, sleep=sleep)
        == "ready"
    )
    assert dots == ["."] * 3 and clock() == 3


def test_times_out_with_the_message_of_that_moment():
    clock, sleep = fake_time()
    seen = []

    def probe():
        seen.append(clock())
        return False

    with pytest.raises(TimeoutError, match=r"^gone after 5 s \(7 tries\)$"):
        wait_until(probe, 5, 1, lambda: f"gone after 5 s ({len(seen)} tries)", clock=clock, sleep=sleep)
    assert seen == [0, 1, 2, 3, 4, 5, 6]  # given up only once more than the timeout has passed


def test_the_callers_error_class_and_an_early_stop():
    class Failed(Exception):
        pass

    clock, sleep = fake_time()
    with pytest.raises(Failed, match="not listening"):
        wait_until(lambda: False, 2, 1, "not listening", error=Failed, clock=clock, sleep=sleep)

    def died():
        raise Failed("the process died")

    with pytest.raises(Failed, match="died"):
        wait_until(died, 100, 1, "unused", clock=clock, sleep=sleep)


# --- the local test host's waits (no VM: the probes are faked or on loopback) ---------------------
def test_wait_port_returns_once_something_listens_and_stops_early_when_the_process_died(tmp_path):
    import socket
    import subprocess

    from testhost.util import LocalHostError, free_port, wait_port

    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        wait_port(lsock.getsockname()[1], timeout=5, what="stand-in")
    log = tmp_path / "svc.log"
    log.write_text("starting\naddress already in use\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(
        LocalHostError, match=r"(?s)svc did not start listening on 127.0.0.1:\d+; last lines of .*in use"
    ):
        wait_port(free_port(), timeout=600, pid=dead.pid, log_file=log, what="svc")  # not 600 s: the pid is gone


def test_vm_wait_for_ssh_says_why_it_gave_up(tmp_path, monkeypatch):
    from dataclasses import replace

    from testhost import vm
    from testhost.config import config
    from testhost.util import LocalHostError

    s = replace(config(), state_dir=tmp_path)
    s.console_log.parent.mkdir(parents=True, exist_ok=True)
    s.console_log.write_text("[  OK  ] Reached target Multi-User System.\n")
    monkeypatch.setattr(vm, "_ssh_ok", lambda s: False)
    monkeypatch.setattr(vm, "_host_key", lambda address, port: (_ for _ in ()).throw(ConnectionRefusedError()))
    monkeypatch.setattr(vm, "is_running", lambda s: True)
    with pytest.raises(LocalHostError, match=r"(?s)no SSH on 127.0.0.1:\d+ after -1s; console log tail .*Multi-User"):
        vm.wait_for_ssh(s, timeout=-1)
    monkeypatch.setattr(vm, "is_running", lambda s: False)
    with pytest.raises(LocalHostError, match="(?s)qemu exited while booting; console log tail:.*Multi-User"):
        vm.wait_for_ssh(s, timeout=600)
