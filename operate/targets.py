"""One way to reach a host: ``resolve(STACK)`` gives a stack's hosts (or, for ``local``, the local test host).

A ``Target`` holds in memory, per host, its typed ``HostData`` (the ``inventory`` output's ``data``),
the SSH user, address and port and the pinned host key, and the secrets its roles read. SSH host keys
are pinned for every command: a stack's hosts by the key its ``inventory`` output names (``host_key``,
the public half of the stack's ``hostSshKey``); nothing is trusted on first use. Files are written only
when a subprocess needs them (``Target.files()``: pyinfra and testinfra; ``Target.remote()``: ssh),
in a private 0700 directory removed when the process ends. The local test host's files are its own
state (``testhost/access.py`` generates them), used where they are.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import ROOT
from components.hostdata import HostData

LOCAL = "local"  # the stack name of the local test host (operate.cli.LOCAL)


@dataclass(frozen=True)
class Host:
    """One host of a target, as the cloud layer recorded it."""

    name: str
    data: HostData
    ssh_user: str
    ssh_hostname: str
    ssh_port: int = 22
    host_key: str | None = None  # the public host key pinned for it (``ssh-ed25519 AAAA...``)

    @property
    def address(self) -> str:
        """``ip:port`` SSH goes to, for messages ("SSH to 203.0.113.10:22 timed out")."""
        return f"{self.ssh_hostname}:{self.ssh_port}"

    def entry(self) -> dict[str, Any]:
        """The host as the ``inventory`` output names it (what hosts/inventory.py and tests/hosts read)."""
        entry = {"name": self.name, "ssh_hostname": self.ssh_hostname, "ssh_user": self.ssh_user}
        if self.ssh_port != 22:
            entry["ssh_port"] = self.ssh_port
        if self.host_key:
            entry["host_key"] = self.host_key
        return {**entry, "data": self.data.model_dump(mode="json")}


@dataclass
class HostFiles:
    name: str
    testinfra_args: list[str]
    host_data_file: Path
    address: str = ""  # "ip:port" SSH goes to, for messages


@dataclass
class Files:
    """What pyinfra and testinfra read: the inventory file, its environment (inventory JSON, secrets
    file of mode 0600, known_hosts), and per host the testinfra arguments and the host data file."""

    name: str
    inventory: Path
    env: dict[str, str]
    hosts: list[HostFiles] = field(default_factory=list)


@dataclass
class Target:
    """A resolved stack (or the local test host): its hosts and secrets in memory; ``files()`` for
    pyinfra and testinfra, ``remote(host)`` for commands over SSH."""

    name: str  # the stack, or ``local``
    hosts: list[Host]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    stack: Any = None  # the Automation API stack (a cloud stack)
    local: Any = None  # the local test host's TestHostConfig (stack ``local``)
    _files: Files | None = field(default=None, init=False, repr=False)
    _dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def is_local(self) -> bool:
        """The local test host: no cloud layer, its state in its state dir."""
        return self.local is not None

    def host(self, name: str | None = None) -> Host:
        """The host named ``name``; without a name, the only one. ``LookupError`` (one line) otherwise."""
        names = [h.name for h in self.hosts]
        if not self.hosts:
            raise LookupError(f"stack {self.name} has no model host (phase 1?)")
        if name is None:
            if len(self.hosts) > 1:
                raise LookupError(f"stack {self.name} has several hosts ({', '.join(names)}): name one")
            return self.hosts[0]
        for h in self.hosts:
            if h.name == name:
                return h
        if self.is_local:
            raise LookupError(f"the local test host is {names[0]!r}, not {name!r}")
        raise LookupError(f"stack {self.name} has no host {name!r} (hosts: {', '.join(names)})")

    def _private(self) -> Path:
        if self._dir is None:
            self._dir = _private_dir()
        return self._dir

    def _known_hosts(self) -> Path | None:
        """The pinned keys' known_hosts file (written on first use); None when no host pins one."""
        pinned = [h for h in self.hosts if h.host_key]
        if not pinned:
            return None
        path = self._private() / "known_hosts"
        if not path.exists():
            _write_private(path, "".join(_known_line(h) for h in pinned))
        return path

    def remote(self, name: str | None = None):
        """An ``operate.remote.Remote`` to one host: its pinned key only, strictly checked."""
        from operate import remote

        h = self.host(name)
        if self.is_local:
            from operate.automation import Unavailable
            from testhost import vm

            s = self.local
            if not vm.is_running(s):
                raise Unavailable(
                    f"the local test host is not running (state dir {s.state_dir}): scripts/local-host up"
                )
            if not s.ssh_config.is_file():
                raise Unavailable(f"no {s.ssh_config}: run scripts/local-host up first")
            return remote.Remote(vm.ssh_args(s), f"{h.name} (local test host)")
        known = self._known_hosts() if h.host_key else None
        prefix = remote.ssh_argv(
            f"{h.ssh_user}@{h.ssh_hostname}", known_hosts=known, port=h.ssh_port, options=remote.CLOUD_OPTIONS
        )
        return remote.Remote(prefix, f"{h.name} ({h.ssh_user}@{h.ssh_hostname})")

    def files(self) -> Files:
        """The files pyinfra and testinfra read, written on the first call (a cloud stack: into the
        private directory; the local test host: the ones its tooling generated)."""
        if self._files is None:
            self._files = _local_files(self.local) if self.is_local else self._write_files()
        return self._files

    def _write_files(self) -> Files:
        d = self._private()
        entries = [h.entry() for h in self.hosts]
        inv_json = _write_private(d / "inventory.json", json.dumps({"hosts": entries}))
        sec = _write_private(d / "secrets.json", json.dumps(self.secrets))
        env = {"LLM_PLATFORM_INVENTORY": str(inv_json), "LLM_PLATFORM_SECRETS_FILE": str(sec)}
        known = self._known_hosts()
        ssh_config = None
        if known is not None:
            ssh_config = _write_private(
                d / "ssh_config", render_ssh_config([e for e in entries if e.get("host_key")], known)
            )
            env["LLM_PLATFORM_KNOWN_HOSTS"] = str(known)
        hosts = []
        for h, e in zip(self.hosts, entries):
            data_file = _write_private(d / f"{h.name}.json", json.dumps(e))
            args = [f"--hosts=ssh://{h.ssh_user}@{h.ssh_hostname}?sudo=true"]
            args += [f"--ssh-config={ssh_config}"] if ssh_config else []
            hosts.append(HostFiles(h.name, args, data_file, h.address))
        return Files(self.name, ROOT / "hosts" / "inventory.py", env, hosts)


_PRIVATE_DIRS: list[Path] = []


def _remove_private_dirs() -> None:
    while _PRIVATE_DIRS:
        shutil.rmtree(_PRIVATE_DIRS.pop(), ignore_errors=True)


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # unwinds normally, so atexit removes the decrypted secrets


def _private_dir() -> Path:
    """A 0700 directory for decrypted secrets and host data, removed when the process ends: on a
    normal exit, an exception, Ctrl-C, SIGTERM or SIGHUP (CI cancelling a job, a closed terminal)."""
    if not _PRIVATE_DIRS:
        atexit.register(_remove_private_dirs)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _exit_on_signal)
    d = Path(tempfile.mkdtemp(prefix="llm-platform-"))
    os.chmod(d, 0o700)
    _PRIVATE_DIRS.append(d)
    return d


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def _known_line(h: Host) -> str:
    from components.hostkeys import known_hosts_line

    return known_hosts_line(h.ssh_hostname, h.host_key or "", h.ssh_port)


def render_ssh_config(hosts: list[dict[str, Any]], known: Path) -> str:
    """The ssh_config testinfra's ssh backend reads: the pinned key only, strictly checked."""
    blocks = "".join(
        f"Host {h['ssh_hostname']}\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n" for h in hosts
    )
    return blocks + "Host *\n  StrictHostKeyChecking yes\n  BatchMode yes\n"


# --- resolving -----------------------------------------------------------------------------------


def is_local(stack: str) -> bool:
    """``stack`` names the local test host (where a command must know before resolving it)."""
    return stack == LOCAL


def resolve(
    stack: str, *, host_key: str | None = None, local_settings: Any = None, refuse_unapplied: bool = True
) -> Target:
    """The hosts of ``stack`` (``local``: the local test host). ``Unavailable`` (one line) when they
    cannot be known: no credentials, no inventory output, the stack file differs from the last
    ``pulumi up``, the local test host's files missing."""
    if is_local(stack):
        return local(local_settings)
    from operate.automation import select_stack

    return from_stack(select_stack(stack), host_key=host_key, refuse_unapplied=refuse_unapplied)


def from_stack_outputs(
    stack_name: str, inventory: dict[str, Any], secrets: dict[str, str], stack: Any = None
) -> Target:
    """A cloud stack's hosts, from its ``inventory`` output and its secrets (already decrypted)."""
    from pydantic import ValidationError

    from operate.automation import Unavailable

    hosts = []
    for h in inventory.get("hosts", []):
        try:
            data = HostData.model_validate(h.get("data") or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "data"
            raise Unavailable(
                f"stack {stack_name}'s inventory output has host data the deploy refuses for {h.get('name')} "
                f"({where}: {err['msg']}): run pulumi up -s {stack_name}"
            ) from None
        port = int(h.get("ssh_port", 22))
        hosts.append(Host(h["name"], data, h["ssh_user"], h["ssh_hostname"], port, h.get("host_key") or None))
    return Target(stack_name, hosts, dict(secrets), stack=stack)


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{path}.{k}" if path else k))
        return out
    return {path: value}


def _stack_key(path: str) -> str:
    from pydantic.alias_generators import to_camel

    return "host." + ".".join(to_camel(p) for p in path.split("."))


def unapplied_keys(stack_name: str, config: dict[str, Any], inventory: dict[str, Any]) -> list[str]:
    """The host keys in which the stack file (``config``: the Automation API's view of it) differs
    from what the last ``pulumi up`` recorded in the ``inventory`` output; [] when they agree.
    Converge and drift use the recorded one, so a stack-file edit is never silently not deployed."""
    from components import hostdata
    from components.config import SettingsError, parse_settings
    from operate.automation import Unavailable

    raw = {k: getattr(v, "value", v) for k, v in config.items()}
    secure = {k for k, v in config.items() if getattr(v, "secret", False)}
    try:
        settings = parse_settings(raw, stack_name, secure_keys=secure)
    except SettingsError as exc:
        raise Unavailable(f"stacks/Pulumi.{stack_name}.yaml is refused: {exc.problems[0]}") from None
    recorded = inventory.get("hosts", [])
    if not getattr(settings, "host_enabled", False) or settings.host is None:
        return ["phase/hostEnabled (the file creates no host)"] if recorded else []
    if not recorded:
        return ["phase/hostEnabled (the file creates a host)"]
    want = _flat(hostdata.from_settings(settings.host).model_dump(mode="json"))
    have = _flat(recorded[0].get("data", {}))
    return [
        _stack_key(k)
        for k in sorted(set(want) | set(have))
        if k not in hostdata.FROM_CLOUD and want.get(k) != have.get(k)
    ]


def from_stack(stack: Any, host_key: str | None = None, *, refuse_unapplied: bool = True) -> Target:
    """Read a stack's inventory output and host secrets through the Automation API. Refused (one line
    naming the keys and the command) when the stack file differs from the last ``pulumi up``
    (``refuse_unapplied=False``: a command that only reads what is deployed, e.g. smoke).
    ``host_key`` (a rebuild: the public half of the stack's ``hostSshKey``, which the new server got)
    is pinned instead of the output's."""
    from operate.automation import Unavailable

    outputs = stack.outputs()
    if "inventory" not in outputs:
        raise Unavailable(f"stack {stack.name!r} has no 'inventory' output yet (run pulumi up first)")
    config = stack.get_all_config()
    inventory = outputs["inventory"].value
    differ = unapplied_keys(stack.name, config, inventory) if refuse_unapplied else []
    if differ:
        raise Unavailable(
            f"stacks/Pulumi.{stack.name}.yaml differs from the last pulumi up in {', '.join(differ[:8])}"
            f"{' and more' if len(differ) > 8 else ''}: run pulumi up -s {stack.name} first (scripts/plan "
            f"{stack.name} --diff shows what it changes); converge and drift deploy what it recorded"
        )
    if host_key:
        inventory = {**inventory, "hosts": [{**h, "host_key": host_key} for h in inventory.get("hosts", [])]}
    # the secrets the hosts need, as the cloud layer's inventory names them (components/hostdata.py)
    wanted = sorted({key for h in inventory.get("hosts", []) for key in h["data"].get("secrets", [])})
    secrets = {}
    for key in wanted:
        item = config.get(f"llm-platform:{key}")
        if item is not None and item.value:
            secrets[key] = item.value
    return from_stack_outputs(stack.name, inventory, secrets, stack=stack)


def local(s: Any = None) -> Target:
    """The local test host (scripts/local-host), as its tooling generated it (``s``: its TestHostConfig):
    its host data (host.json) and its secrets, read as the deploy reads them (mode 0600 or refused)."""
    from components import hostkeys
    from hosts.secret_values import MissingSecret, read_file
    from operate.automation import Unavailable
    from testhost import access as li
    from testhost.config import ADMIN_USER, HOSTNAME
    from testhost.config import config as local_host_config

    s = s or local_host_config()
    try:
        data = HostData.model_validate_json(s.host_json.read_text())
    except FileNotFoundError:
        raise Unavailable(f"no {s.host_json}: run scripts/local-host up first") from None
    except ValueError as exc:
        raise Unavailable(f"{s.host_json} is not the local host's data ({str(exc).splitlines()[0]})") from None
    try:
        secrets = read_file(li.secrets_file(s))
    except MissingSecret as exc:
        raise Unavailable(str(exc)) from None
    try:
        key = hostkeys.public_of(li.host_key_file(s).read_text())
    except (OSError, hostkeys.BadHostKey):
        key = None  # no VM made yet: nothing to pin (its ssh_config checks its known_hosts strictly)
    host = Host(HOSTNAME, data, ADMIN_USER, "127.0.0.1", s.ssh_port, key)
    return Target(LOCAL, [host], secrets, local=s)


def _local_files(s: Any) -> Files:
    from testhost import access as li
    from testhost.config import HOSTNAME

    env = {"LLM_PLATFORM_SECRETS_FILE": str(li.secrets_file(s))}
    return Files(
        LOCAL, s.inventory, env, [HostFiles(HOSTNAME, li.testinfra_args(s), s.host_json, f"127.0.0.1:{s.ssh_port}")]
    )
