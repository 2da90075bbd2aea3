"""Can this machine reach a stack's model hosts over SSH? ``scripts/reach STACK --runner-ip IP``.

SSH to a model host is open only to ``host.adminCidrs`` (the cloud firewall and ufw both say so), so
a CI runner, or an operator's laptop, whose egress address is outside those ranges waits for a
timeout instead of checking anything. This says so first, in one line, from the stack file alone (no
cloud call, no secret): "runner 198.51.100.7 is outside adminCidrs of prod (203.0.113.0/24)".

The workflows pass the runner's egress address as seen from the internet (what the model host's
firewall sees); ``scripts/drift STACK --runner-ip IP`` does the same check before its host layer and
reports the hosts as not checked, with this line, when the address is outside.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass
from typing import Any

from operate import cli

INSIDE, OUTSIDE, UNDECIDED = cli.Exit.OK, cli.Exit.FAILED, cli.Exit.NOT_CHECKED

EXITS = {
    0: "the address is inside host.adminCidrs (or the stack has no model host: nothing to reach)",
    1: "the address is outside host.adminCidrs: SSH to the stack's hosts is closed to it",
    2: "could not decide: no or an invalid address, a malformed stack file",
}

NEXT = (
    "run this job on the runner the HOSTS_RUNNER variable names, or add the runner's range to "
    "host.adminCidrs (docs/oncall.md, 'CI: where the workflows run')"
)


@dataclass
class Verdict:
    code: int  # INSIDE | OUTSIDE | UNDECIDED
    line: str


def _host_block(stack: str) -> tuple[list[Any] | None, str]:
    """(adminCidrs as the stack file gives them, or None when the stack creates no model host; why none)."""
    from components import NAMESPACE, stackfile
    from components.phases import PHASES

    doc = stackfile.load_stack_file(stackfile.STACKS_DIR / f"Pulumi.{stack}.yaml")
    values = {(k.split(":", 1)[1] if k.startswith(f"{NAMESPACE}:") else k): v for k, v in doc.items()}
    if "homelab" in values:
        return None, "a homelab stack (no cloud host)"
    phase = values.get("phase")
    preset = PHASES.get(phase, {}) if isinstance(phase, int) and not isinstance(phase, bool) else {}
    enabled = values.get("hostEnabled", preset.get("hostEnabled", False))
    host = values.get("host")
    if enabled is not True or not isinstance(host, dict):
        return None, f"no model host in phase {phase}" if preset else "no model host"
    return host.get("adminCidrs"), ""


def check(stack: str, runner_ip: str) -> Verdict:
    """Is ``runner_ip`` inside the stack file's ``host.adminCidrs``? One line either way."""
    from components import stackfile
    from components.config import SettingsError
    from components.patterns import check_admin_cidrs

    if stack not in stackfile.stack_names():
        known = ", ".join(stackfile.stack_names()) or "none"
        return Verdict(UNDECIDED, f"no stack file stacks/Pulumi.{stack}.yaml (stacks: {known})")
    try:
        cidrs, why = _host_block(stack)
    except SettingsError as exc:
        return Verdict(UNDECIDED, f"{stack}: {exc.problems[0]}")
    if cidrs is None:
        return Verdict(INSIDE, f"{stack}: {why}; nothing to reach")
    try:
        nets = [ipaddress.ip_network(c) for c in check_admin_cidrs(cidrs)]
    except (ValueError, TypeError) as exc:
        return Verdict(UNDECIDED, f"{stack}: host.adminCidrs: {exc}")
    shown = ", ".join(map(str, nets))
    raw = (runner_ip or "").strip()
    if not raw:
        return Verdict(
            UNDECIDED,
            f"could not tell the runner's egress address (none given), so not whether it is in "
            f"adminCidrs of {stack} ({shown})",
        )
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return Verdict(UNDECIDED, f"runner address {raw[:60]!r} is not an IP address")
    if any(ip.version == n.version and ip in n for n in nets):
        return Verdict(INSIDE, f"runner {ip} is inside adminCidrs of {stack} ({shown})")
    return Verdict(
        OUTSIDE, f"runner {ip} is outside adminCidrs of {stack} ({shown}): SSH to its hosts is closed to it; {NEXT}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=False)
    parser.add_argument(
        "--runner-ip",
        required=True,
        help="this machine's egress address as the internet sees it (e.g. from "
        "https://checkip.amazonaws.com); empty: exit 2",
    )


def run_command(args: argparse.Namespace) -> int:
    verdict = check(args.stack, args.runner_ip)
    print(verdict.line)
    return verdict.code
