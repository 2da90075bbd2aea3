"""``scripts/plan STACK [--json] [--diff [REF]]``: the offline plan (see components.offline); with
``--diff`` against the stack file at a git ref (default HEAD): components/plandiff.py."""

from __future__ import annotations

import argparse
import json
import sys

from components import offline
from components.cost import BudgetExceeded
from components.config import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/plan", description=__doc__, epilog=EXIT_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help=f"stack name ({', '.join(offline.stack_names())})")
    parser.add_argument("--json", action="store_true", help="print outputs and resources (with properties, secrets masked) as JSON")
    parser.add_argument("--diff", nargs="?", const="HEAD", metavar="REF",
                        help="compare with the stack file at this git ref (default HEAD): added/changed/removed "
                             "resources and keys, replacements, host-layer versions")
    args = parser.parse_args(argv)
    try:
        plan = offline.run(args.stack)
    except (SettingsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        note = _dns_note(args.stack) if isinstance(exc, SettingsError) else None
        if note:
            print(f"note: {note}", file=sys.stderr)
        return 1
    except BudgetExceeded as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from components import plandiff, readiness

    notes = readiness.notes(plan.settings) if hasattr(plan.settings, "host_enabled") else []
    old = why = None
    if args.diff:
        old, why = plandiff.plan_at(args.stack, args.diff)
    if args.json:
        doc = {
            "stack": plan.stack,
            "resources": [
                {"type": r.type, "name": r.name, "parent": r.parent, "protect": r.protect,
                 "retain_on_delete": r.retain_on_delete, "ignore_changes": r.ignore_changes,
                 "properties": plandiff.masked(r)}
                for r in plan.resources
            ],
            "outputs": plan.outputs,
            "notes": notes,
        }
        if args.diff:
            doc["diff"] = {"ref": args.diff, "note": why, "changes": plandiff.to_json(old, plan),
                           "host_versions": {"before": plandiff.host_versions(old), "after": plandiff.host_versions(plan)}}
        print(json.dumps(doc, indent=2))
    else:
        print(plandiff.format_diff(args.stack, args.diff, old, plan, why) if args.diff else offline.format_plan(plan))
        if notes:
            print("\nBefore the converge:")
            print("\n".join(f"  {n}" for n in notes))
    return 0


def _dns_note(stack: str) -> str | None:
    """The DNS note for a refused stack that would create a host (read from its file, tolerantly)."""
    from types import SimpleNamespace

    from components import readiness

    try:
        raw, _ = offline.read_stack_file(stack)
        host = json.loads(raw.get("llm-platform:host", "null"))
        phase = json.loads(raw.get("llm-platform:phase", "null"))
        enabled = json.loads(raw.get("llm-platform:hostEnabled", "true" if phase == 2 else "false"))
        if not enabled or not isinstance(host, dict) or not host.get("domain"):
            return None
        return readiness.dns_note(SimpleNamespace(dns_zone=host.get("dnsZone"), domain=host["domain"],
                                                  provider=host.get("provider")), stack)
    except Exception:  # noqa: BLE001 (a note only: the refusal above already says what is wrong)
        return None


EXIT_HELP = """exit codes:
  0  planned (the plan, or the diff, is printed)
  1  refused: bad config, a stack not ready to create its host (pin, example values), over budget;
     one line per problem on stderr
  2  usage error (argparse)"""


if __name__ == "__main__":
    sys.exit(main())
