"""``scripts/converge STACK|local [--dry] [--limit HOST] [--verify]``: run the host layer's deploy against a
stack's hosts (inventory from the stack's output, secrets from its config, through the Automation
API) or against the local test host.

The stack file is the source: when it differs from the last ``pulumi up`` (the inventory output),
the converge is refused with one line naming the keys and ``pulumi up -s STACK``.

``--verify``: after the converge, the host checks (tests/hosts, testinfra); when they pass, the
stack's ``llm-platform:hostVerified`` is set to the host's domain (written into the stack file:
commit it), and the next ``pulumi up`` moves the gateway to the host (the phase 1 → 2 two-step)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from components import ROOT
from operate import cli

EXITS = {
    0: "converged (and with --verify: the checks passed and hostVerified is set)",
    1: "the deploy failed (pyinfra's output says where), or with --verify a host check failed",
    2: "could not start: no credentials, no stack output, or the stack file differs from the last "
    "pulumi up (one line naming the keys and the command)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=True)
    parser.add_argument("--dry", action="store_true", help="show what would change, change nothing")
    parser.add_argument("--limit", help="only this host")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="then run the host checks; when they pass, set llm-platform:hostVerified (phase 2 step 2)",
    )


def run_command(args: argparse.Namespace) -> int:
    from operate import targets
    from operate.automation import Unavailable

    try:
        target = targets.resolve(args.stack)
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.Exit.NOT_CHECKED
    if not target.hosts:
        print(f"stack {args.stack} has no model host (phase 1?): nothing to converge")
        return cli.Exit.OK
    files = target.files()
    cmd = [str(Path(sys.executable).with_name("pyinfra")), str(files.inventory), "hosts/deploy.py"]
    cmd += ["--dry"] if args.dry else ["-y"]
    if args.limit:
        cmd += ["--limit", args.limit]
    rc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **files.env}).returncode
    if rc != 0:
        print(f"error: the deploy failed (pyinfra exit {rc}; its output above says where)", file=sys.stderr)
        return cli.Exit.FAILED
    if not args.verify or args.dry:
        return cli.Exit.OK
    return verify(target)


def verify(target, run=subprocess.run) -> int:
    """The host checks on each host; all passed: hostVerified = the host's domain (cloud stacks)."""
    files = target.files()
    for h in files.hosts:
        res = run(
            [sys.executable, "-m", "pytest", "tests/hosts", "-q", "-p", "no:cacheprovider", *h.testinfra_args],
            cwd=ROOT,
            env={**os.environ, **files.env, "LLM_PLATFORM_HOST_DATA": str(h.host_data_file)},
        )
        if res.returncode != 0:
            print(
                f"error: host checks failed on {h.name} (exit {res.returncode}): hostVerified not set", file=sys.stderr
            )
            return cli.Exit.FAILED
    if target.is_local:
        print("verified (the local test host has no gateway to move)")
        return cli.Exit.OK
    (domain,) = {h.data.domain for h in target.hosts}
    from pulumi import automation as auto

    target.stack.set_config("llm-platform:hostVerified", auto.ConfigValue(value=domain))
    print(
        f"verified: llm-platform:hostVerified = {domain} (in stacks/Pulumi.{target.name}.yaml: commit it); "
        f"now pulumi up -s {target.name} moves the gateway to the host"
    )
    return cli.Exit.OK
