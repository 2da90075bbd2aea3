"""``scripts/plan STACK [--json] [--diff [REF]]``: the offline plan (``components.offline``) shown to an
operator, as text (resources, key properties, outputs, cost) or JSON; with ``--diff`` against the
stack file at a git ref (default HEAD): operate/plandiff.py."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components import PROJECT, offline, stackfile
from components.config import SettingsError
from components.cost import BudgetExceeded
from operate import cli

EXITS = {
    0: "planned (the plan, or the diff, is printed)",
    1: "refused: bad config, a stack not ready to create its host (pin, example values), over budget; "
    "one line per problem on stderr",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=False)
    parser.add_argument(
        "--json", action="store_true", help="print outputs and resources (with properties, secrets masked) as JSON"
    )
    parser.add_argument(
        "--diff",
        nargs="?",
        const="HEAD",
        metavar="REF",
        help="compare with the stack file at this git ref (default HEAD): added/changed/removed "
        "resources and keys, replacements, host-layer versions",
    )


def run_command(args: argparse.Namespace) -> int:
    try:
        plan = offline.run(args.stack)
    except (SettingsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        note = _dns_note(args.stack) if isinstance(exc, SettingsError) else None
        if note:
            print(f"note: {note}", file=sys.stderr)
        return cli.Exit.FAILED
    except BudgetExceeded as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.Exit.FAILED
    from components import readiness
    from operate import plandiff

    notes = readiness.notes(plan.settings) if hasattr(plan.settings, "host_enabled") else []
    old = why = None
    if args.diff:
        old, why = plandiff.plan_at(args.stack, args.diff)
    if args.json:
        doc = {
            "stack": plan.stack,
            "resources": [
                {
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent,
                    "protect": r.protect,
                    "retain_on_delete": r.retain_on_delete,
                    "ignore_changes": r.ignore_changes,
                    "properties": plandiff.masked(r),
                }
                for r in plan.resources
            ],
            "outputs": plan.outputs,
            "notes": notes,
        }
        if args.diff:
            doc["diff"] = {
                "ref": args.diff,
                "note": why,
                "changes": plandiff.to_json(old, plan),
                "host_versions": {"before": plandiff.host_versions(old), "after": plandiff.host_versions(plan)},
            }
        print(json.dumps(doc, indent=2))
    else:
        print(plandiff.format_diff(args.stack, args.diff, old, plan, why) if args.diff else format_plan(plan))
        if notes:
            print("\nBefore the converge:")
            print("\n".join(f"  {n}" for n in notes))
    return cli.Exit.OK


def _dns_note(stack: str) -> str | None:
    """The DNS note for a refused stack that would create a host (read from its file, tolerantly)."""
    from types import SimpleNamespace

    from components import readiness

    try:
        raw, _ = stackfile.read_stack_file(stack)
        host = json.loads(raw.get("llm-platform:host", "null"))
        phase = json.loads(raw.get("llm-platform:phase", "null"))
        enabled = json.loads(raw.get("llm-platform:hostEnabled", "true" if phase == 2 else "false"))
        if not enabled or not isinstance(host, dict) or not host.get("domain"):
            return None
        return readiness.dns_note(
            SimpleNamespace(dns_zone=host.get("dnsZone"), domain=host["domain"], provider=host.get("provider")), stack
        )
    except Exception:  # noqa: BLE001 (a note only: the refusal above already says what is wrong)
        return None


# --------------------------------------------------------------------------------------------------
# The plan as text
# --------------------------------------------------------------------------------------------------
def short_type(t: str) -> str:
    return t.replace(":index/", ":").split(":")[0] + ":" + t.rsplit(":", 1)[-1]


def _num(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _env_line(env: dict[str, Any]) -> str:
    value = "[secret]" if env.get("type") == "SECRET" else json.dumps(env.get("value"))
    return f"{env['key']}={value} ({env.get('type', 'GENERAL')}, {env.get('scope', '')})"


def _describe(r: offline.Resource) -> list[str]:
    i = r.plain_inputs
    t = r.type.rsplit(":", 1)[-1]
    if t == "App":
        spec = i.get("spec", {})
        lines = [f"name={spec.get('name')} region={spec.get('region')}"]
        for svc in spec.get("services", []):
            gh = svc.get("github", {})
            lines.append(
                f"service {svc['name']}: github {gh.get('repo')}@{gh.get('branch')} dir {svc.get('sourceDir')} "
                f"http_port {_num(svc.get('httpPort'))} size {svc.get('instanceSizeSlug')} "
                f"x{_num(svc.get('instanceCount'))}"
            )
            hc = svc.get("healthCheck")
            if hc:
                lines.append(
                    f"  health GET {hc.get('httpPath')} delay {_num(hc.get('initialDelaySeconds'))}s "
                    f"period {_num(hc.get('periodSeconds'))}s timeout {_num(hc.get('timeoutSeconds'))}s"
                )
            for env in svc.get("envs", []):
                lines.append("  env " + _env_line(env))
            for a in svc.get("alerts", []):
                lines.append(f"  alert {a['rule']} {a['operator']} {_num(a['value'])} ({a['window']})")
        return lines
    if t in ("Firewall",):
        rules = i.get("inboundRules") or i.get("rules") or []
        out = []
        for rule in rules:
            port = rule.get("portRange") or rule.get("port")
            src = rule.get("sourceAddresses") or rule.get("sourceIps")
            out.append(f"allow {rule.get('protocol')}/{port} from {', '.join(src)}")
        return out
    if t == "Container":
        lines = [f"name={i.get('name')} image={i.get('image')}"]
        for p in i.get("ports") or []:
            lines.append(f"publish {p.get('ip')}:{_num(p.get('external'))} -> {_num(p.get('internal'))}")
        if i.get("command"):
            lines.append(f"command {' '.join(i.get('entrypoints') or [])} {' '.join(i['command'])}")
        for net in i.get("networksAdvanced") or []:
            if net.get("aliases"):
                lines.append(f"network alias {', '.join(net['aliases'])}")
        return lines
    keys = {
        "Droplet": ("name", "size", "image", "region"),
        "RemoteImage": ("name",),
        "Provider": ("host",),
        "Server": ("name", "serverType", "image", "location"),
        "Volume": ("name", "size", "region", "location", "initialFilesystemLabel"),
        "ReservedIp": ("region",),
        "PrimaryIp": ("name", "type", "location", "autoDelete"),
        "DnsRecord": ("domain", "type", "name", "value"),
        "SshKey": ("name",),
    }.get(t, ())
    parts = [f"{k}={_num(i[k])}" for k in keys if k in i]
    return [" ".join(parts)] if parts else []


def format_plan(plan: offline.Plan) -> str:
    what = f"phase {plan.settings.phase}" if hasattr(plan.settings, "phase") else "homelab"
    out = [
        f"Stack {plan.stack}: {what} (offline plan: Pulumi mock engine, placeholder secrets, no cloud call)",
        "",
        f"Resources ({len(plan.resources)}):",
    ]
    for r in plan.resources:
        flags = []
        if r.protect:
            flags.append("protect")
        if r.retain_on_delete:
            flags.append("retain-on-delete")
        if r.ignore_changes:
            flags.append(f"ignore-changes: {len(r.ignore_changes)} secret env value(s)")
        parent = f"  (parent {r.parent})" if r.parent and not r.parent.startswith(PROJECT + "-") else ""
        out.append(f"  + {short_type(r.type):<34} {r.name}{parent}{'  [' + ', '.join(flags) + ']' if flags else ''}")
        out += [f"      {line}" for line in _describe(r)]
    out += ["", "Outputs:"]
    for k, v in plan.outputs.items():
        if k in ("inventory", "cost_breakdown", "env_layout"):
            continue
        out.append(f"  {k}: {v}")
    hosts = plan.outputs.get("inventory", {}).get("hosts", [])
    for h in hosts:
        out.append(f"  inventory: {h['name']} {h['ssh_user']}@{h['ssh_hostname']} roles={','.join(h['data']['roles'])}")
    if not hosts:
        out.append("  inventory: (no model host in this phase)")
    from components.cost import estimate

    out += ["", "Cost (USD/month):", estimate(plan.settings).table()]
    return "\n".join(out)
