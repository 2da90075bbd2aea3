"""``scripts/plan STACK --diff [REF]``: the offline plan of the stack file against the same file at a
git ref (default ``HEAD``): resources added, changed (with the keys that changed) and removed,
replacements flagged, the host-layer versions and the ``llm`` service's internal port. Secret values
never appear (the engine's secret paths are masked)."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import ROOT, offline, stackfile
from components.secrets import SECRET_KEYS
from operate.plan import short_type

MASK = "[secret]"
# Input keys whose change makes the provider replace the resource (a droplet's user data is only read
# at creation: a change means a new droplet; the volume and IP follow it, protected).
REPLACE_ON = {
    "digitalocean:index/droplet:Droplet": {"userData", "region", "image", "sshKeys"},
    "hcloud:index/server:Server": {"userData", "location", "image", "sshKeys"},
    "digitalocean:index/volume:Volume": {"region", "name", "initialFilesystemLabel"},
    "hcloud:index/volume:Volume": {"location", "name"},
    "digitalocean:index/reservedIp:ReservedIp": {"region"},
    "digitalocean:index/sshKey:SshKey": {"publicKey"},
    "hcloud:index/sshKey:SshKey": {"publicKey"},
}


def masked(r: offline.Resource) -> dict[str, Any]:
    """The resource's inputs, each secret value replaced by ``[secret]``: a secret scalar, and inside a
    secret object (an app spec holding secret envs) every value that is a stack secret."""
    plain = r.plain_inputs
    secret_values = {stackfile.placeholder(k) for k in SECRET_KEYS}

    def scrub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: scrub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        if isinstance(v, str) and (v in secret_values or "offline-placeholder-" in v):
            return MASK
        return v

    for path in offline.secret_paths(r.inputs):
        if not isinstance(_get(plain, path), (dict, list)):
            _set(plain, path, MASK)
    return scrub(plain)


def _get(doc: Any, path: str) -> Any:
    import re

    for p in [p for p in re.split(r"\.|\[(\d+)\]", path) if p]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc


def _set(doc: Any, path: str, value: Any) -> None:
    import re

    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    last = parts[-1]
    if isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{path}.{k}" if path else k))
        return out or {path: {}}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            key = v.get("name") or v.get("key") or str(i)
            out.update(_flat(v, f"{path}[{key}]"))
        return out
    return {path: value}


@dataclass
class Change:
    type: str
    name: str
    op: str  # "+", "~", "-", "+-" (replace)
    keys: list[str] = field(default_factory=list)


def host_versions(plan: offline.Plan | None) -> dict[str, str]:
    hosts = (plan.outputs.get("inventory") or {}).get("hosts", []) if plan else []
    if not hosts:
        return {}
    d = hosts[0]["data"]
    return {
        "Ollama": d["ollama"]["version"],
        "vLLM": f"{d['vllm']['image']}:{d['vllm']['tag']}",
        "LLaMA-Factory": f"{d['llamafactory']['image']}:{d['llamafactory']['tag']}"
        if "llamafactory" in d["roles"]
        else "(not on this host)",
    }


def diff(old: offline.Plan | None, new: offline.Plan) -> list[Change]:
    before = {(r.type, r.name): r for r in (old.resources if old else [])}
    after = {(r.type, r.name): r for r in new.resources}
    out = []
    for key, r in after.items():
        if key not in before:
            out.append(Change(r.type, r.name, "+"))
            continue
        # compared unmasked (a secret that changes, e.g. user-data holding the host key, is a change;
        # only the key names are kept, never a value)
        a, b = _flat(before[key].plain_inputs), _flat(r.plain_inputs)
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if keys:
            replace = {k.split(".")[0].split("[")[0] for k in keys} & REPLACE_ON.get(r.type, set())
            out.append(Change(r.type, r.name, "+-" if replace else "~", keys))
    out += [Change(r.type, r.name, "-") for key, r in before.items() if key not in after]
    return out


def plan_at(stack: str, ref: str) -> tuple[offline.Plan | None, str | None]:
    """The plan of ``stacks/Pulumi.STACK.yaml`` as it is at git ``ref`` (None and why, when it has none)."""
    rel = f"stacks/Pulumi.{stack}.yaml"
    res = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        return None, f"no {rel} at {ref}: every resource is new"
    saved = stackfile.STACKS_DIR
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / f"Pulumi.{stack}.yaml").write_text(res.stdout)
        stackfile.STACKS_DIR = Path(d)
        try:
            return offline.run(stack), None
        except Exception as exc:  # noqa: BLE001 (the old file may not plan: say so, diff against nothing)
            first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            return None, f"{rel} at {ref} does not plan ({first}): every resource shown as new"
        finally:
            stackfile.STACKS_DIR = saved


def format_diff(stack: str, ref: str, old: offline.Plan | None, new: offline.Plan, why: str | None) -> str:
    changes = diff(old, new)
    out = [f"Stack {stack}: the stack file against {ref} (offline plans, placeholder secrets, no cloud call)"]
    if why:
        out.append(f"  note: {why}")
    names = {"+": "add", "~": "change", "-": "remove", "+-": "REPLACE"}
    out.append(
        f"Resources: {sum(c.op == '+' for c in changes)} to add, {sum(c.op == '~' for c in changes)} to change, "
        f"{sum(c.op == '+-' for c in changes)} to replace, {sum(c.op == '-' for c in changes)} to remove"
    )
    for c in changes:
        flag = "  (replaced: a new server; the protected volume and IP follow it)" if c.op == "+-" else ""
        out.append(f"  {c.op:<2} {names[c.op]:<7} {short_type(c.type):<34} {c.name}{flag}")
        out += [f"        {k}" for k in c.keys]
    if not changes:
        out.append("  (no resource changes)")
    ov, nv = host_versions(old), host_versions(new)
    if ov or nv:
        out.append("Host layer (scripts/converge after pulumi up):")
        for k in sorted(set(ov) | set(nv)):
            a, b = ov.get(k, "(none)"), nv.get(k, "(none)")
            out.append(f"  {k}: {a} -> {b}" if a != b else f"  {k}: {b} (unchanged)")
    a, b = (old.outputs.get("llm_internal_url") if old else None), new.outputs.get("llm_internal_url")
    out.append(f"llm service, internal: {b}" + ("" if a in (None, b) else f" (was {a})"))
    keys = sorted(
        k
        for k in set(old.outputs if old else {}) | set(new.outputs)
        if k not in ("cost_breakdown", "inventory", "env_layout")
        and (old.outputs.get(k) if old else None) != new.outputs.get(k)
    )
    if keys and old:
        out.append("Outputs changed: " + ", ".join(keys))
    return "\n".join(out)


def to_json(old: offline.Plan | None, new: offline.Plan) -> list[dict[str, Any]]:
    return [{"op": c.op, "type": c.type, "name": c.name, "keys": c.keys} for c in diff(old, new)]


__all__ = ["diff", "format_diff", "masked", "plan_at", "host_versions", "to_json", "json"]
