"""``scripts/converge STACK|local [--dry] [--limit HOST]``: run the host layer's deploy against a
stack's hosts (inventory from the stack's output, secrets from its config, through the Automation
API) or against the local test host."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from operate.targets import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/converge", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--dry", action="store_true", help="show what would change, change nothing")
    parser.add_argument("--limit", help="only this host")
    args = parser.parse_args(argv)
    from components.automation import Unavailable, select_stack
    from operate import targets

    try:
        target = targets.local() if args.stack == "local" else targets.from_stack(select_stack(args.stack))
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not target.hosts:
        print(f"stack {args.stack} has no model host (phase 1?): nothing to converge")
        return 0
    cmd = [str(Path(sys.executable).with_name("pyinfra")), str(target.inventory), "hosts/deploy.py"]
    cmd += ["--dry"] if args.dry else ["-y"]
    if args.limit:
        cmd += ["--limit", args.limit]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **target.env}).returncode


if __name__ == "__main__":
    sys.exit(main())
