"""One way to run commands on a host over SSH: the ssh argv, the runner, the wait for the host's own key.

The runner runs commands as root through ``sudo -n``; the wait holds until a host answers SSH with
the host key pinned for it.

A ``Remote`` comes from the resolver (``operate.targets.Target.remote``): for a cloud stack's host the
host key the stack pins is the only one accepted (``StrictHostKeyChecking yes`` against a known_hosts
file holding it); for the local test host its generated ssh_config says the same. File contents (a
dataset, YAML files, a token) travel on SSH's stdin, never on a command line.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from operate.oneline import last_line
from operate.wait import wait_until


class RemoteError(Exception):
    """A one-line failure to show the user (never a secret)."""


class HostKeyMismatch(RuntimeError):
    """The host answers SSH with another key than the one pinned for it."""


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


# the options every cloud host connection gets (the local test host's ssh_config has the same)
CLOUD_OPTIONS = (
    "BatchMode=yes",
    "ConnectTimeout=15",
    "ServerAliveInterval=15",
    "ControlMaster=auto",
    f"ControlPath={os.path.join(tempfile.gettempdir(), 'llm-ssh-%C')}",
    "ControlPersist=60",
    "LogLevel=ERROR",
)


def ssh_argv(
    destination: str,
    *,
    config: Path | str | None = None,
    known_hosts: Path | str | None = None,
    port: int | None = None,
    options: tuple[str, ...] = (),
    tty: bool = False,
) -> list[str]:
    """The ssh argv up to the remote command: ``[*ssh_argv(...), "cmd"]``. ``config``: an ssh_config
    (the local test host's, with its key, port and known_hosts); ``known_hosts``: the file holding the
    pinned host key, strictly checked (no other file trusted). Without either, still strict, against
    the operator's own known_hosts: nothing is trusted on first use."""
    argv = ["ssh"]
    if config is not None:
        argv += ["-F", str(config)]
    for opt in options:
        argv += ["-o", opt]
    if config is None:
        argv += ["-o", "StrictHostKeyChecking=yes"]
    if known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if port is not None and port != 22:
        argv += ["-p", str(port)]
    if tty:
        argv.append("-t")
    return [*argv, destination]


def _host_key_refused(stderr: str) -> bool:
    return "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key verification failed" in stderr


class Remote:
    """Runs shell commands as root on one host over SSH (``prefix`` = ssh argv up to the command)."""

    def __init__(self, prefix: list[str], label: str):
        self.prefix = prefix
        self.label = label

    def argv(self, command: str, sudo: bool = True) -> list[str]:
        remote = f"sudo -n sh -c {shlex.quote(command)}" if sudo else command
        return [*self.prefix, remote]

    def run(
        self,
        command: str,
        *,
        input: bytes | str | None = None,
        check: bool = True,
        timeout: float | None = 600,
        what: str | None = None,
        sudo: bool = True,
    ) -> Result:
        data = input.encode() if isinstance(input, str) else input
        try:
            proc = subprocess.run(
                self.argv(command, sudo),
                input=data,
                stdin=None if data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.label}: {what or 'a command'} did not finish within {timeout:.0f}s") from None
        except FileNotFoundError:
            raise RemoteError("ssh is not installed here (apt-get install openssh-client)") from None
        res = Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
        if res.rc == 255:
            if _host_key_refused(res.stderr):
                raise RemoteError(
                    f"{self.label} answers SSH with another host key than the one pinned for it: not trusted "
                    "(compare it with the server's own on the provider's console)"
                )
            raise RemoteError(f"cannot reach {self.label} over SSH: {last_line(res.stderr) or 'ssh exited 255'}")
        if "sudo: a password is required" in res.stderr or "sudo: a terminal is required" in res.stderr:
            raise RemoteError(f"{self.label}: sudo asks for a password; the admin user needs passwordless sudo")
        if check and res.rc != 0:
            raise RemoteError(
                f"{self.label}: {what or 'command'} failed (exit {res.rc}): "
                f"{last_line(res.stderr) or last_line(res.stdout)}"
            )
        return res

    def logs_in(self, timeout: float = 30) -> bool:
        """The admin user can log in (no sudo); a host key that is not the pinned one raises."""
        try:
            res = self.run("true", check=False, timeout=timeout, sudo=False, what="a login")
        except RemoteError as exc:
            if "another host key" in str(exc):
                raise
            return False
        return res.rc == 0

    def read(self, path: str) -> str | None:
        """A file's text, or None when it does not exist."""
        q = shlex.quote(path)
        res = self.run(f"if [ -f {q} ]; then cat {q}; else exit 3; fi", check=False, what=f"read {path}")
        if res.rc == 3:
            return None
        if res.rc != 0:
            raise RemoteError(f"{self.label}: cannot read {path}: {last_line(res.stderr)}")
        return res.stdout

    def write(self, path: str, content: bytes | str, mode: str = "644") -> None:
        """Write a file atomically (temp file + rename) with ``mode``; content goes over stdin."""
        q = shlex.quote(path)
        tmp = shlex.quote(f"{path}.tmp-{os.getpid()}")
        d = shlex.quote(os.path.dirname(path) or "/")
        self.run(
            f"mkdir -p {d} && (umask 077 && cat > {tmp}) && chmod {mode} {tmp} && mv -f {tmp} {q}",
            input=content,
            what=f"write {path}",
        )


# --- waiting for a host ------------------------------------------------------------------------


def server_host_key(address: str, port: int = 22, timeout: float = 15) -> str:
    """The ed25519 host key the server at ``address`` offers (``ssh-ed25519 AAAA...``): the SSH
    handshake only, no login, nothing sent."""
    import paramiko

    with socket.create_connection((address, port), timeout=timeout) as sock:
        t = paramiko.Transport(sock)
        try:
            t.get_security_options().key_types = ["ssh-ed25519"]
            t.start_client(timeout=timeout)
            key = t.get_remote_server_key()
            return f"{key.get_name()} {key.get_base64()}"
        finally:
            t.close()


def wait_for_ssh(
    address: str,
    expected: str,
    port: int = 22,
    timeout: float = 900,
    interval: float = 5,
    probe: Callable[[str, int], str] = server_host_key,
    *,
    check: Callable[[], None] | None = None,
    ready: Callable[[], bool] | None = None,
    error: Callable[[str], Exception] | None = None,
    on_wait: Callable[[], None] | None = None,
) -> str:
    """Wait until ``address`` answers SSH with the host key ``expected`` (and ``ready()``, when given:
    e.g. the admin user logs in). Another key is never accepted (a server whose cloud-init has not
    run yet may offer one for a moment: keep waiting; still another at the end: ``HostKeyMismatch``).
    ``check`` runs before each try and raises to stop waiting (the machine is gone); ``error`` makes
    the timeout's exception."""
    from components.hostkeys import fingerprint

    want = " ".join(expected.split()[:2])
    seen = None

    def answers() -> bool:
        nonlocal seen
        if check is not None:
            check()
        try:
            got = probe(address, port)
        except Exception:  # noqa: BLE001 (not up yet: refused, timed out, no ed25519 key offered)
            got = None
        if got is not None:
            seen = None if got == want else got
        return got == want and (ready is None or ready())

    def failed(message: str) -> Exception:
        if seen:
            return HostKeyMismatch(
                f"{address}:{port} answers with host key {fingerprint(seen)}, not the host's own {fingerprint(want)}"
            )
        return error(message) if error else TimeoutError(message)

    wait_until(
        answers,
        timeout,
        interval,
        f"{address}:{port} did not answer SSH within {timeout:.0f}s",
        error=failed,
        on_wait=on_wait,
    )
    return f"{address}:{port} answers with its host key {fingerprint(want)}"
