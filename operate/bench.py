"""``scripts/bench``: measure the host layer on the local test host and the test suite's time.

Figures (wall clock, seconds): boot to SSH (cached image), fresh converge, no-op converge (and its
change count, which must be 0), verify (testinfra), drift check (both layers' host part), rebuild
(new VM from the base image + converge + verify), and the unit suite. ``--full-suite`` also times
the README's whole test command. Runs in its own state dir, ports and namespace; ends with ``down``.
Prints a Markdown table (for the README) and writes ``.state/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed(figures: dict, name: str, fn):
    print(f"==> {name} ...", flush=True)
    t0 = time.monotonic()
    result = fn()
    figures[name] = round(time.monotonic() - t0, 1)
    print(f"==> {name}: {figures[name]}s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-suite", action="store_true", help="also time scripts/test (unit + integration)")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark VM running")
    args = parser.parse_args(argv)

    from operate import drift, rebuild
    from testhost import lifecycle, runner, vm
    from testhost.config import config as local_host_config
    from testhost.util import free_port

    s = local_host_config(state_dir=ROOT / ".state" / "local-host-bench", ssh_port=free_port(), http_port=free_port(),
                 https_port=free_port(), netns="llmtest-bench", tap="llmtapbench",
                 apt_proxy_port=free_port(), acme_port=free_port(), acme_mgmt_port=free_port(),
                 mirror_port=free_port())
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    lifecycle.down(s, purge=True)
    try:
        _timed(figures, "boot to SSH (cached image)", lambda: lifecycle.ensure_running(s, fresh=True))
        _timed(figures, "fresh converge", lambda: runner.converge(json=True, s=s))
        changed, names = _timed(figures, "no-op converge", lambda: runner.converge(json=True, s=s))
        notes["no-op converge"] = f"{changed} changes" + (f": {names}" if names else "")
        rc = _timed(figures, "verify (testinfra)", lambda: runner.verify(s))
        notes["verify (testinfra)"] = "passed" if rc == 0 else f"exit {rc}"
        report = _timed(figures, "drift check (local)", lambda: drift.run_drift("local", local_settings=s))
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
    doc = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores",
        "accelerator": accel,
        "figures_seconds": figures,
        "notes": notes,
    }
    out = ROOT / ".state" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\n| measure ({doc['date']}, {doc['machine']}, qemu {accel}) | seconds | note |\n|---|---|---|")
    for k, v in figures.items():
        print(f"| {k} | {v} | {notes.get(k, '')} |")
    print(f"\n(written to {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
