"""Where the host layer's commands point: a cloud stack's hosts, or the local test host.

A ``Target`` bundles what pyinfra and testinfra need for one stack: the inventory file and its
environment (inventory JSON, secrets file of mode 0600), and per host the testinfra arguments and the
host data file the checks read. SSH host keys are pinned for every command: a stack's hosts by the
key its ``inventory`` output names (``host_key``, the public half of the stack's ``hostSshKey``),
written to a known_hosts file that pyinfra (``LLM_PLATFORM_KNOWN_HOSTS``) and testinfra (an ssh_config
with ``StrictHostKeyChecking yes``) read; nothing is trusted on first use. For a cloud stack
everything comes from the stack's outputs and secrets through the Automation API; nothing is written
outside a private temporary directory.
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


@dataclass
class HostTarget:
    name: str
    testinfra_args: list[str]
    host_data_file: Path
    address: str = ""  # "ip:port" SSH goes to, for messages ("SSH to 203.0.113.10:22 timed out")


@dataclass
class Target:
    name: str
    inventory: Path
    env: dict[str, str]
    hosts: list[HostTarget] = field(default_factory=list)


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


def from_stack_outputs(stack_name: str, inventory: dict[str, Any], secrets: dict[str, str]) -> Target:
    """A cloud stack's hosts, from its ``inventory`` output and its secrets (already decrypted)."""
    d = _private_dir()
    inv_json = _write_private(d / "inventory.json", json.dumps(inventory))
    sec = _write_private(d / "secrets.json", json.dumps(secrets))
    env = {"LLM_PLATFORM_INVENTORY": str(inv_json), "LLM_PLATFORM_SECRETS_FILE": str(sec)}
    pinned = [h for h in inventory.get("hosts", []) if h.get("host_key")]
    ssh_config = None
    if pinned:
        known = _write_private(d / "known_hosts", known_hosts(pinned))
        ssh_config = _write_private(d / "ssh_config", render_ssh_config(pinned, known))
        env["LLM_PLATFORM_KNOWN_HOSTS"] = str(known)
    hosts = []
    for h in inventory.get("hosts", []):
        data_file = _write_private(d / f"{h['name']}.json", json.dumps(h))
        spec = f"ssh://{h['ssh_user']}@{h['ssh_hostname']}?sudo=true"
        address = f"{h['ssh_hostname']}:{h.get('ssh_port', 22)}"
        args = [f"--hosts={spec}"] + ([f"--ssh-config={ssh_config}"] if ssh_config else [])
        hosts.append(HostTarget(h["name"], args, data_file, address))
    return Target(stack_name, ROOT / "hosts" / "inventory.py", env, hosts)


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


def known_hosts(hosts: list[dict[str, Any]]) -> str:
    """known_hosts lines of the hosts whose inventory entry pins a host key."""
    from components.hostkeys import known_hosts_line

    return "".join(
        known_hosts_line(h["ssh_hostname"], h["host_key"], int(h.get("ssh_port", 22)))
        for h in hosts
        if h.get("host_key")
    )


def render_ssh_config(hosts: list[dict[str, Any]], known: Path) -> str:
    """The ssh_config testinfra's ssh backend reads: the pinned key only, strictly checked."""
    blocks = "".join(
        f"Host {h['ssh_hostname']}\n  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n" for h in hosts
    )
    return blocks + "Host *\n  StrictHostKeyChecking yes\n  BatchMode yes\n"


def from_stack(stack: Any, host_key: str | None = None) -> Target:
    """Read a stack's inventory output and host secrets through the Automation API. Refused (one line
    naming the keys and the command) when the stack file differs from the last ``pulumi up``.
    ``host_key`` (a rebuild: the public half of the stack's ``hostSshKey``, which the new server got)
    is pinned instead of the output's."""
    from operate.automation import Unavailable

    outputs = stack.outputs()
    if "inventory" not in outputs:
        raise Unavailable(f"stack {stack.name!r} has no 'inventory' output yet (run pulumi up first)")
    config = stack.get_all_config()
    inventory = outputs["inventory"].value
    differ = unapplied_keys(stack.name, config, inventory)
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
    return from_stack_outputs(stack.name, inventory, secrets)


def local(s: Any = None) -> Target:
    """The local test host (scripts/local-host), as its tooling generated it (``s``: its TestHostConfig)."""
    from testhost import access as li
    from testhost.config import config as local_host_config

    s = s or local_host_config()
    env = {"LLM_PLATFORM_SECRETS_FILE": str(li.secrets_file(s))}
    host = HostTarget("llm-local", li.testinfra_args(s), s.host_json, f"127.0.0.1:{s.ssh_port}")
    return Target("local", s.inventory, env, [host])
