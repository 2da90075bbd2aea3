"""Where ``scripts/finetune`` runs its commands: one host of a cloud stack (SSH as the admin user,
``sudo -n``), or the local test host (its generated ssh_config, as ``testhost.vm.ssh_run``).

Every command runs as root through ``sudo -n sh -c '...'``; file contents (the dataset, the YAML
files, the Hugging Face token) travel on SSH's stdin, never on a command line.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operate.oneline import last_line


class RemoteError(Exception):
    """A one-line failure to show the user (never a secret)."""


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class Remote:
    """Runs shell commands as root on one host over SSH (``prefix`` = ssh argv up to the host)."""

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
    ) -> Result:
        data = input.encode() if isinstance(input, str) else input
        try:
            proc = subprocess.run(
                self.argv(command),
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
            raise RemoteError(f"cannot reach {self.label} over SSH: {last_line(res.stderr) or 'ssh exited 255'}")
        if "sudo: a password is required" in res.stderr or "sudo: a terminal is required" in res.stderr:
            raise RemoteError(f"{self.label}: sudo asks for a password; the admin user needs passwordless sudo")
        if check and res.rc != 0:
            raise RemoteError(
                f"{self.label}: {what or 'command'} failed (exit {res.rc}): "
                f"{last_line(res.stderr) or last_line(res.stdout)}"
            )
        return res

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


@dataclass
class Host:
    stack: str
    name: str
    remote: Remote
    roles: list[str]
    secrets: dict[str, str] = field(repr=False, default_factory=dict)
    local_state_dir: Path | None = None  # the local test host's state dir (stack "local")

    @property
    def is_local(self) -> bool:
        return self.stack == "local"

    def secret(self, key: str) -> str | None:
        from hosts.secret_values import env_name

        return os.environ.get(env_name(key)) or self.secrets.get(key) or None

    def cli_args(self) -> str:
        """How to name this host again on the command line."""
        return "local" if self.is_local else f"{self.stack} {self.name}"


def _read_secrets_file(path: str | None) -> dict[str, str]:
    """The host secrets the stack's tooling wrote (none where it wrote no file), read as the deploy
    reads them (hosts.secret_values)."""
    from hosts.secret_values import MissingSecret, read_file

    if not path or not Path(path).exists():
        return {}
    try:
        return read_file(path)
    except MissingSecret as exc:
        raise RemoteError(str(exc)) from None


def resolve(stack: str, host: str | None, *, local_settings: Any = None) -> Host:
    """The host named by ``STACK [HOST]`` (``local`` = the local test host)."""
    if stack == "local":
        return _resolve_local(host, local_settings)
    from operate import cli

    try:
        cli.resolve_stack(stack, local=True)
    except cli.UsageError as exc:
        raise RemoteError(str(exc)) from None
    from operate import targets
    from operate.automation import Unavailable, select_stack

    try:
        target = targets.from_stack(select_stack(stack))
    except Unavailable as e:
        raise RemoteError(f"stack {stack}: {e}") from None
    try:
        entries = [json.loads(h.host_data_file.read_text()) for h in target.hosts]
        secrets = _read_secrets_file(target.env.get("LLM_PLATFORM_SECRETS_FILE"))
    finally:
        secrets_file = target.env.get("LLM_PLATFORM_SECRETS_FILE")
        if secrets_file:
            shutil.rmtree(Path(secrets_file).parent, ignore_errors=True)
    return host_from_inventory(stack, host, entries, secrets)


def host_from_inventory(stack: str, host: str | None, entries: list[dict], secrets: dict[str, str]) -> Host:
    names = [e["name"] for e in entries]
    if not entries:
        raise RemoteError(f"stack {stack} has no model host (phase 1?): nothing to fine-tune on")
    if host is None:
        if len(entries) > 1:
            raise RemoteError(f"stack {stack} has several hosts ({', '.join(names)}): name one")
        entry = entries[0]
    else:
        entry = next((e for e in entries if e["name"] == host), None)
        if entry is None:
            raise RemoteError(f"stack {stack} has no host {host!r} (hosts: {', '.join(names)})")
    user, address = entry["ssh_user"], entry["ssh_hostname"]
    control = os.path.join(tempfile.gettempdir(), "llm-finetune-%C")
    prefix = [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15",
        "-o", "ControlMaster=auto", "-o", f"ControlPath={control}", "-o", "ControlPersist=60",
        "-o", "LogLevel=ERROR", f"{user}@{address}",
    ]  # fmt: skip
    roles = list((entry.get("data") or {}).get("roles") or [])
    return Host(stack, entry["name"], Remote(prefix, f"{entry['name']} ({user}@{address})"), roles, secrets)


def _resolve_local(host: str | None, s: Any) -> Host:
    from testhost import vm
    from testhost.access import secrets_file
    from testhost.config import HOSTNAME
    from testhost.config import config as local_host_config

    s = s or local_host_config()
    if host not in (None, HOSTNAME):
        raise RemoteError(f"the local test host is {HOSTNAME!r}, not {host!r}")
    if not vm.is_running(s):
        raise RemoteError(f"the local test host is not running (state dir {s.state_dir}): scripts/local-host up")
    if not s.ssh_config.is_file():
        raise RemoteError(f"no {s.ssh_config}: run scripts/local-host up first")
    try:
        data = json.loads(s.host_json.read_text())
    except (OSError, ValueError):
        data = {}
    remote = Remote(vm.ssh_args(s), f"{HOSTNAME} (local test host)")
    return Host(
        "local", HOSTNAME, remote, list(data.get("roles") or []), _read_secrets_file(str(secrets_file(s))), s.state_dir
    )
