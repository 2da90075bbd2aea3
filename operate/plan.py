"""``scripts/plan STACK [--json]``: the offline plan (see components.offline)."""

from __future__ import annotations

import argparse
import json
import sys

from components import offline
from components.cost import BudgetExceeded
from components.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/plan", description=__doc__)
    parser.add_argument("stack", help=f"stack name ({', '.join(offline.stack_names())})")
    parser.add_argument("--json", action="store_true", help="print outputs and resources as JSON")
    args = parser.parse_args(argv)
    try:
        plan = offline.run(args.stack)
    except (SettingsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BudgetExceeded as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        doc = {
            "stack": plan.stack,
            "resources": [
                {"type": r.type, "name": r.name, "parent": r.parent, "protect": r.protect,
                 "retain_on_delete": r.retain_on_delete, "ignore_changes": r.ignore_changes}
                for r in plan.resources
            ],
            "outputs": plan.outputs,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(offline.format_plan(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
