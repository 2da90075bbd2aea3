"""Rebuild a model host without losing data: ``scripts/rebuild-host STACK HOST`` (or ``local``).

Stages, each timed and printed:
1. replace — a new server (``pulumi up --replace <server> --target <server> --target-dependents``):
   the protected data volume and the fixed IP are not replaced; their attachments follow the new
   server. ``local``: a new VM from the base image with the same data disk.
2. ssh      — wait until the new server answers SSH (its host key is new: the old one is dropped
   from known_hosts for that address).
3. converge — the pyinfra deploy.
4. verify   — the testinfra suite.

Rerunning after an interruption completes the rebuild: a marker in ``.state/rebuild/`` records the
server id that was being replaced, and the replace stage is skipped once the stack's server id has
changed; the other stages are idempotent.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from operate.targets import ROOT

STATE = ROOT / ".state" / "rebuild"


@dataclass
class Stages:
    timings: list[tuple[str, float, str]] = field(default_factory=list)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        print(f"==> {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            result = fn()
        except BaseException:
            self.timings.append((name, time.monotonic() - t0, "FAILED"))
            print(self.summary(), flush=True)
            raise
        note = result if isinstance(result, str) else "ok"
        self.timings.append((name, time.monotonic() - t0, note))
        print(f"==> {name}: {note} ({time.monotonic() - t0:.1f}s)", flush=True)
        return result

    def summary(self) -> str:
        lines = ["rebuild summary:"]
        for name, secs, note in self.timings:
            lines.append(f"  {name:<9} {secs:7.1f}s  {note}")
        lines.append(f"  {'total':<9} {sum(t for _, t, _ in self.timings):7.1f}s")
        return "\n".join(lines)


def _server_id(stack: Any, urn: str) -> str | None:
    for res in (stack.export_stack().deployment or {}).get("resources", []):
        if res.get("urn") == urn:
            return res.get("id")
    return None


def replace_stage(stack: Any, host: str, marker_dir: Path = STATE) -> str:
    """Replace the server once, even across reruns."""
    from components import automation

    urn = automation.server_urn(stack, host)
    marker_dir.mkdir(parents=True, exist_ok=True)
    marker = marker_dir / f"{stack.name}-{host}.json"
    current = _server_id(stack, urn)
    if marker.exists():
        old = json.loads(marker.read_text())["old_server_id"]
        if current and current != old:
            return f"already replaced (server {old} → {current})"
    else:
        marker.write_text(json.dumps({"old_server_id": current, "urn": urn}))
    automation.replace_server(stack, urn)
    return f"replaced server {current} → {_server_id(stack, urn)}"


def wait_for_ssh(address: str, port: int = 22, timeout: float = 900, known_hosts: Path | None = None) -> str:
    known_hosts = known_hosts or Path.home() / ".ssh" / "known_hosts"
    if known_hosts.exists():
        subprocess.run(["ssh-keygen", "-R", address, "-f", str(known_hosts)], capture_output=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=5) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return f"{address}:{port} answers SSH"
        except OSError:
            pass
        time.sleep(5)
    raise TimeoutError(f"{address}:{port} did not answer SSH within {timeout:.0f}s")


def _pyinfra(target, extra: list[str]) -> str:
    env = {**os.environ, **target.env}
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))
    res = subprocess.run([pyinfra, str(target.inventory), "hosts/deploy.py", "-y", *extra], cwd=ROOT, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"converge failed (pyinfra exit {res.returncode})")
    return "converged"


def _verify(target, host_name: str) -> str:
    env = {**os.environ, **target.env}
    for h in target.hosts:
        if h.name != host_name:
            continue
        res = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/hosts", "-q", "-p", "no:cacheprovider", *h.testinfra_args],
            cwd=ROOT, env={**env, "LLM_PLATFORM_HOST_DATA": str(h.host_data_file)},
        )
        if res.returncode != 0:
            raise RuntimeError(f"testinfra checks failed on {host_name}")
        return "checks passed"
    raise RuntimeError(f"no host {host_name!r} in the stack's inventory")


def rebuild_cloud(stack_name: str, host: str) -> Stages:
    from components import automation
    from operate import targets

    stages = Stages()
    stack = automation.select_stack(stack_name)
    stages.run("replace", lambda: replace_stage(stack, host))
    target = targets.from_stack(stack)
    entry = next((h for h in stack.outputs()["inventory"].value["hosts"] if h["name"] == host), None)
    if entry is None:
        raise automation.Unavailable(f"host {host!r} is not in stack {stack_name}'s inventory")
    stages.run("ssh", lambda: wait_for_ssh(entry["ssh_hostname"]))
    stages.run("converge", lambda: _pyinfra(target, ["--limit", host]))
    stages.run("verify", lambda: _verify(target, host))
    (STATE / f"{stack_name}-{host}.json").unlink(missing_ok=True)
    return stages


def rebuild_local(s: Any = None) -> Stages:
    from operate import targets
    from testhost import runner, vm
    from testhost.config import config as local_host_config

    s = s or local_host_config()
    stages = Stages()
    stages.run("replace", lambda: f"new VM from the base image, same data disk ({vm.recreate(s, timeout=900):.0f}s to SSH)")
    stages.run("ssh", lambda: f"SSH answers ({vm.wait_for_ssh(s, timeout=900):.1f}s)")

    def converge() -> str:
        changed, _ops = runner.converge(json=True, s=s)
        return f"{changed} operations changed"

    stages.run("converge", converge)
    target = targets.local(s)
    stages.run("verify", lambda: _verify(target, "llm-local"))
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/rebuild-host", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name, or 'local' for the local test host")
    parser.add_argument("host", nargs="?", help="host name from the stack's inventory output (e.g. llm-prod)")
    args = parser.parse_args(argv)
    from components.automation import Unavailable

    try:
        if args.stack == "local":
            stages = rebuild_local()
        else:
            if not args.host:
                parser.error("HOST is required for a cloud stack (see `pulumi stack output inventory`)")
            stages = rebuild_cloud(args.stack, args.host)
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}; rerun the same command to complete the rebuild", file=sys.stderr)
        return 1
    print(stages.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
