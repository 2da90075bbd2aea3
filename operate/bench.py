"""``scripts/bench``: measure the host layer on the local test host and the test suite's time.

Figures: wall clock seconds and, for each stage that talks to the host, the remote commands it ran
(sudo's journal lines in the guest: a count that does not depend on the machine, and what a slow
link or an emulated guest pays for). Stages: boot to SSH (cached image), fresh converge, no-op
converge (its change count must be 0; commands per operation), verify (testinfra), drift check (the
host part), rebuild (new VM from the base image + converge + verify), and the unit suite.
``--full-suite`` also times the README's whole test command. Runs in its own state dir, ports and
namespace; ends with ``down``. Prints a Markdown table (for the README) and writes
``.state/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

from components import ROOT
from operate import cli


def _timed(figures: dict, name: str, fn, guest=None, commands: dict | None = None):
    """Run ``fn`` and keep its seconds (and, with ``guest``, the remote commands it ran there)."""
    from testhost import vm

    print(f"==> {name} ...", flush=True)
    since = vm.guest_clock(guest) if guest is not None else None
    t0 = time.monotonic()
    result = fn()
    figures[name] = round(time.monotonic() - t0, 1)
    if since is not None and commands is not None:
        commands[name] = vm.remote_commands_since(since, guest)
    extra = f", {commands[name]} remote commands" if commands and name in commands else ""
    print(f"==> {name}: {figures[name]}s{extra}", flush=True)
    return result


EXITS = {
    0: "measured (the table is printed and written to .state/bench.json)",
    1: "a stage failed (the error line says which); nothing is written",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full-suite", action="store_true", help="also time scripts/test (unit + integration)")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark VM running")


def run_command(args: argparse.Namespace) -> int:
    from operate.rebuild import Stop
    from testhost.util import LocalHostError

    try:
        return _bench(args)
    except (LocalHostError, Stop) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.Exit.FAILED


def _bench(args: argparse.Namespace) -> int:
    from operate import rebuild
    from operate.drift.cli import run_drift
    from testhost import lifecycle, runner, vm
    from testhost.config import config as local_host_config
    from testhost.util import free_port

    s = local_host_config(
        state_dir=ROOT / ".state" / "local-host-bench",
        ssh_port=free_port(),
        http_port=free_port(),
        https_port=free_port(),
        netns="llmtest-bench",
        tap="llmtapbench",
        apt_proxy_port=free_port(),
        acme_port=free_port(),
        acme_mgmt_port=free_port(),
        mirror_port=free_port(),
    )
    figures: dict[str, float] = {}
    commands: dict[str, int] = {}
    notes: dict[str, str] = {}
    lifecycle.down(s, purge=True)
    try:
        _timed(figures, "boot to SSH (cached image)", lambda: lifecycle.ensure_running(s, fresh=True))
        stats: dict = {}
        _timed(figures, "fresh converge", lambda: runner.converge(json=True, s=s, stats=stats), s, commands)
        notes["fresh converge"] = f"{stats.get('operations')} operations"
        changed, names = _timed(
            figures, "no-op converge", lambda: runner.converge(json=True, s=s, stats=stats), s, commands
        )
        ops = stats.get("operations") or 0
        notes["no-op converge"] = (
            f"{changed} changes, {ops} operations, {commands['no-op converge'] / ops:.2f} commands per operation"
            if ops
            else f"{changed} changes"
        ) + (f": {names}" if names else "")
        rc = _timed(figures, "verify (testinfra)", lambda: runner.verify(s), s, commands)
        notes["verify (testinfra)"] = "passed" if rc == 0 else f"exit {rc}"
        report = _timed(figures, "drift check (local)", lambda: run_drift("local", local_settings=s), s, commands)
        notes["drift check (local)"] = report.status
        _timed(figures, "rebuild-host local", lambda: rebuild.rebuild_local(s))
    finally:
        if not args.keep:
            lifecycle.down(s, purge=True)

    unit = [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"]
    _timed(figures, "unit suite", lambda: subprocess.run(unit, cwd=ROOT, capture_output=True))
    if args.full_suite:
        _timed(figures, "full test command", lambda: subprocess.run([str(ROOT / "scripts" / "test"), "-q"], cwd=ROOT))

    accel, why = vm.detect_accel(s, probe=False)
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    doc = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {nproc} cores",
        "accelerator": accel,
        "figures_seconds": figures,
        "remote_commands": commands,
        "notes": notes,
    }
    out = ROOT / ".state" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"\n| measure ({doc['date']}, {doc['machine']}, qemu {accel}) | seconds | remote commands | note |\n"
        "|---|---|---|---|"
    )
    for k, v in figures.items():
        print(f"| {k} | {v} | {commands.get(k, '')} | {notes.get(k, '')} |")
    print(f"\n(written to {out})")
    return cli.Exit.OK
