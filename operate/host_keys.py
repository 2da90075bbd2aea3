"""``scripts/host-keys STACK [--rotate]``: the stack's SSH host key, made once.

Generates an ed25519 host key (OpenSSH format) and stores it as the stack's Pulumi secret
``llm-platform:hostSshKey`` (``pulumi config set --secret``, the key on stdin: never on a command line,
in the output or a log). Every server the stack builds for its host gets it from its user-data, so a
rebuilt server answers with the same key. Prints the public half and its fingerprint (what known_hosts
and the provider's console show). A stack that has one keeps it unless ``--rotate``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from components import hostkeys
from operate import cli

KEY = "llm-platform:hostSshKey"


def _pulumi(args: list[str], stack: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["pulumi", *args, "--stack", stack], input=stdin, capture_output=True, text=True)


EXITS = {
    0: "the key is set (made now, rotated, or kept); its public half and fingerprint are printed",
    1: "pulumi config set failed, or the stored key is not a valid host key (the next: line says what to do)",
    2: "no Pulumi CLI on PATH: nothing was changed",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=False)
    parser.add_argument(
        "--rotate",
        action="store_true",
        help="replace the stack's key (known_hosts changes; the next pulumi up replaces the server)",
    )


def run_command(args: argparse.Namespace) -> int:
    if shutil.which("pulumi") is None:
        print("error: no Pulumi CLI on PATH (install it: https://www.pulumi.com/docs/install/)", file=sys.stderr)
        print(f"next: install it, log in, then rerun `scripts/host-keys {args.stack}`", file=sys.stderr)
        return cli.Exit.NOT_CHECKED
    current = _pulumi(["config", "get", KEY], args.stack)
    if current.returncode == 0 and current.stdout.strip() and not args.rotate:
        try:
            public = hostkeys.public_of(current.stdout)
        except hostkeys.BadHostKey as exc:
            print(f"error: {KEY} of {args.stack} is {exc}", file=sys.stderr)
            print(f"next: `scripts/host-keys {args.stack} --rotate`", file=sys.stderr)
            return cli.Exit.FAILED
        print(f"{args.stack}: host key already set, kept: {hostkeys.fingerprint(public)}\n{public}")
        print(f"next: nothing; its known_hosts line: `pulumi stack output host_known_hosts -s {args.stack}`")
        return cli.Exit.OK
    private = hostkeys.generate()
    done = _pulumi(["config", "set", "--secret", KEY], args.stack, stdin=private)
    if done.returncode != 0:
        print(
            f"error: pulumi config set failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}",
            file=sys.stderr,
        )
        print(
            f"next: fix the above (pulumi login? the stack exists?), then rerun `scripts/host-keys {args.stack}`",
            file=sys.stderr,
        )
        return cli.Exit.FAILED
    check = _pulumi(["config", "get", KEY], args.stack)
    if check.returncode != 0 or hostkeys.public_of(check.stdout) != hostkeys.public_of(private):
        print("error: the stored key does not read back as the one generated", file=sys.stderr)
        print(f"next: `scripts/host-keys {args.stack} --rotate`", file=sys.stderr)
        return cli.Exit.FAILED
    public = hostkeys.public_of(private)
    print(f"{args.stack}: host key {'rotated' if args.rotate else 'set'}: {hostkeys.fingerprint(public)}\n{public}")
    print(
        f"next: commit stacks/Pulumi.{args.stack}.yaml, then `pulumi up -s {args.stack}` (the server is replaced "
        f"once to take the key; data and IP kept), then `pulumi stack output host_known_hosts -s {args.stack} "
        f"| gh secret set HOSTS_KNOWN_HOSTS --env {args.stack}`"
    )
    return cli.Exit.OK
