"""Run the real Pulumi program for a stack file with no cloud account and no Pulumi CLI.

Pulumi's mock engine (``pulumi.runtime.set_mocks``) stands in for the engine and providers: every
resource the program registers is recorded with its inputs and resource options (parent, protect,
retain-on-delete, ignore-changes), and answered with plausible outputs (documentation IP ranges, fake
ids). Secrets the stack needs get placeholder values; a stack file never holds secret values.

Used by ``scripts/plan`` (the cloud layer's offline preview) and by the unit tests, so both exercise
exactly the code ``pulumi up`` runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components import PROJECT, ROOT
from components import pulumi_sdk as sdk
from components.files import Unreadable, read_bounded
from components import NAMESPACE
from components.config import SettingsError, load, parse_settings
from components.secrets import SECRET_KEYS
from components.settings import StackSettings

# Where the stack files live; LLM_PLATFORM_STACKS_DIR plans stack files from elsewhere (e.g. a proposed change).
STACKS_DIR = Path(os.environ.get("LLM_PLATFORM_STACKS_DIR", ROOT / "stacks"))


def placeholder(key: str) -> str:
    """The value a secret gets offline: recognisable, so tests can prove it never leaks. The host
    key must parse (the program derives its public half): a fixed key, derived from the text."""
    text = f"offline-placeholder-{key}-3f9c1e"
    return _placeholder_host_key(text) if key == "hostSshKey" else text


@functools.lru_cache(maxsize=None)
def _placeholder_host_key(seed: str) -> str:
    from components import hostkeys

    return hostkeys.from_seed(seed.encode())


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def _to_config_string(value: Any) -> str:
    """What the Pulumi CLI hands a program for a stack-file value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise SettingsError(
                    [f"{key_node.start_mark.line + 1}: duplicate key {key!r} (first on line {seen[key]}); "
                     "YAML would silently keep the last"]
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# Bounds of a stack file (the real ones: a few KB, a few hundred values, six levels deep). A YAML
# alias is a reference: a file of a few hundred bytes can stand for 10**9 values once expanded (a
# "billion laughs"), which the plan would expand into JSON text until memory runs out.
MAX_STACK_FILE_BYTES = 1 << 20
MAX_STACK_FILE_VALUES = 20_000  # counted with every alias expanded
MAX_STACK_FILE_DEPTH = 32
MAX_NUMBER_CHARS = 1000  # int() of a 5000-digit number raises ValueError (over 4300 digits), not a YAML error
# What a stack file holds: JSON's types (Pulumi hands a program strings and JSON). YAML's others
# (a date, a set, bytes...) become objects JSON cannot write.
YAML_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


def _check_nodes(root: yaml.Node) -> None:
    """Refuse a composed document over the bounds, before anything is built from it (SettingsError
    with "LINE: what")."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        line = node.start_mark.line + 1
        if depth > MAX_STACK_FILE_DEPTH:
            raise SettingsError([f"{line}: nested more than {MAX_STACK_FILE_DEPTH} levels deep (or an alias inside itself)"])
        if node.tag not in YAML_TAGS:
            name = node.tag.removeprefix("tag:yaml.org,2002:")
            raise SettingsError([f"{line}: a YAML {name} value; a stack file holds strings, numbers, booleans, "
                                 "lists and mappings only (quote it to make it a string)"])
        if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
            raise SettingsError([f"{line}: a number of {len(node.value)} characters; no setting takes one that large"])
        if id(node) not in sizes:
            children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else (
                node.value if isinstance(node, yaml.SequenceNode) else [])
            sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in children)
        return sizes[id(node)]

    total = size(root, 0)
    if total > MAX_STACK_FILE_VALUES:
        raise SettingsError([f"{root.start_mark.line + 1}: {total} values once its aliases are expanded; "
                             f"a stack file holds at most {MAX_STACK_FILE_VALUES}"])


def _parse_yaml(text: str) -> Any:
    """PyYAML's steps (compose, check, construct), with the check between them."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file; every way it can be malformed is one line naming the
    file and, where YAML knows it, the line."""
    try:
        data = read_bounded(path, MAX_STACK_FILE_BYTES)
    except Unreadable as exc:
        raise SettingsError([f"{path}: {exc}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError([f"{path}:{line}: not UTF-8 (byte {exc.start}); save the file as UTF-8"]) from None
    try:
        doc = _parse_yaml(text)
    except SettingsError as exc:
        raise SettingsError([f"{path}:{exc.problems[0]}"]) from None
    except RecursionError:  # PyYAML composes recursively: deeper than Python's stack, before _check_nodes
        raise SettingsError([f"{path}: nested more than {MAX_STACK_FILE_DEPTH} levels deep"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        ctx, ctx_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if ctx and ctx_mark is not None and mark is not None and ctx_mark.line != mark.line:
            what += f" ({ctx} started on line {ctx_mark.line + 1})"
        raise SettingsError([f"{where}: not valid YAML: {what}"]) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SettingsError([f"{path}:1: must be a mapping with a 'config:' key, not a {type(doc).__name__}"])
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError([f"{path}: 'config:' must be a mapping of keys to values, not a {type(config).__name__}"])
    return config


def read_stack_file(stack: str, overrides: dict[str, Any] | None = None) -> tuple[dict[str, str], set[str]]:
    """Stack file → (``{"ns:key": str}`` as the CLI would pass it, with placeholders for secrets;
    the keys that are Pulumi secrets: ``secure:`` in the file, placeholders and overridden secrets)."""
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names()) or "none"
        raise FileNotFoundError(f"no stack file {path} (stacks: {known})")
    raw: dict[str, str] = {}
    secure: set[str] = set()
    for key, value in load_stack_file(path).items():
        full = key if ":" in str(key) else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            raw[full] = placeholder(full.split(":", 1)[1])
            secure.add(full)
        else:
            raw[full] = _to_config_string(value)
    removed = set()
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if value is None:  # an override of None removes the key (e.g. to leave a secret unset)
            raw.pop(full, None)
            removed.add(full)
        else:
            raw[full] = _to_config_string(value)
            if full.split(":", 1)[1] in SECRET_KEYS:
                secure.add(full)  # as `pulumi config set --secret` would
    for key in SECRET_KEYS:  # placeholders for every declared secret the file does not carry
        full = f"{NAMESPACE}:{key}"
        if full not in removed and full not in raw:
            raw[full] = placeholder(key)
            secure.add(full)
    return raw, secure


def read_stack_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """Stack file → ``{"ns:key": str}`` as the CLI would pass it, with placeholders for secrets."""
    return read_stack_file(stack, overrides)[0]


# ------------------------------------------------------------------------------------------------
# Mock engine
# ------------------------------------------------------------------------------------------------
@dataclass
class Resource:
    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    @property
    def plain_inputs(self) -> dict[str, Any]:
        return _unwrap(self.inputs)


def _unwrap(value: Any) -> Any:
    if sdk.is_rpc_secret(value):
        return _unwrap(sdk.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def secret_paths(value: Any, path: str = "") -> list[str]:
    """Paths of the values the engine received marked as secret."""
    if sdk.is_rpc_secret(value):
        return [path]
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += secret_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += secret_paths(v, f"{path}[{i}]")
    return out


class OfflineMocks(pulumi.runtime.Mocks):
    """Answers each resource with its inputs plus the computed outputs the program reads."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        # ids and addresses from the resource's type and name: a counter would depend on the order
        # the engine registers resources in, so two plans of one stack could differ
        rid = str(1001 + int(hashlib.sha256(f"{args.typ}::{args.name}".encode()).hexdigest()[:6], 16) % 900000)
        t = args.typ
        if t in ("digitalocean:index/reservedIp:ReservedIp", "hcloud:index/primaryIp:PrimaryIp"):
            state["ipAddress"] = f"203.0.113.{10 + int(rid) % 200}"  # TEST-NET-3 documentation range
        elif t == "digitalocean:index/droplet:Droplet":
            state.update(ipv4Address=f"198.51.100.{10 + int(rid) % 200}", status="active")
        elif t == "hcloud:index/server:Server":
            state.update(ipv4Address=f"198.51.100.{10 + int(rid) % 200}", status="running")
        elif t == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = f"sha256:{int(rid):064x}"
            state["repoDigest"] = f"{args.inputs.get('name')}@sha256:{int(rid):064x}"
        elif t == "digitalocean:index/sshKey:SshKey":
            # from the key itself, as DigitalOcean's (MD5 of the key)
            digest = hashlib.md5(str(args.inputs.get("publicKey", args.name)).encode(), usedforsecurity=False).hexdigest()
            state["fingerprint"] = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
        elif t == "digitalocean:index/app:App":
            name = _unwrap(args.inputs).get("spec", {}).get("name", args.name)
            state.update(
                liveUrl=f"https://{name}-offline.ondigitalocean.app",
                defaultIngress=f"https://{name}-offline.ondigitalocean.app",
                liveDomain=f"{name}-offline.ondigitalocean.app",
            )
        return [rid, state]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(sdk.MockMonitor):
    """Mock monitor that also records each registration's resource options."""

    def __init__(self, mocks: OfflineMocks):
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = sdk.deserialize_properties(request.object, keep_unknowns=True)
            registration = self.resources.get(response.urn)
            self.recorded.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    parent=request.parent.rsplit("::", 1)[-1] if request.parent else "",
                    inputs=inputs,
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=list(request.ignoreChanges),
                    outputs=_unwrap(dict(registration.state)) if registration and request.custom else {},
                    id=response.id,
                )
            )
        return response


@dataclass
class Plan:
    stack: str
    settings: StackSettings
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: list[str]

    def by_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Resource:
        found = self.by_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, found {len(found)}")
        return found[0]


def run(stack: str, overrides: dict[str, Any] | None = None) -> Plan:
    """Run the stack's program under the mock engine and return what it registered and exported."""
    from components.program import build

    raw, secure = read_stack_file(stack, overrides)
    parse_settings(raw, stack, secure_keys=secure)  # bad config: SettingsError before the engine starts

    mocks = OfflineMocks()
    monitor = RecordingMonitor(mocks)
    sdk.forget_root_stack()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(raw, sorted(secure))
    settings: list[StackSettings] = []

    resolved: dict[str, Any] = {}
    secret_outputs: list[str] = []

    async def _collect(outputs: dict[str, Any]) -> None:
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            resolved[key] = await out.future()
            if await out.is_secret():
                secret_outputs.append(key)

    def program() -> Any:
        settings.append(load())  # as `pulumi up` does: the runtime's config, not the file read above
        outputs = build(settings[0])
        return sdk.sync_await(_collect(outputs))

    sdk.run_program(program)
    return Plan(stack, settings[0], list(monitor.recorded), resolved, secret_outputs)


# ------------------------------------------------------------------------------------------------
# Rendering (scripts/plan)
# ------------------------------------------------------------------------------------------------
def _short_type(t: str) -> str:
    return t.replace(":index/", ":").split(":")[0] + ":" + t.rsplit(":", 1)[-1]


def _num(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _env_line(env: dict[str, Any]) -> str:
    value = "[secret]" if env.get("type") == "SECRET" else json.dumps(env.get("value"))
    return f"{env['key']}={value} ({env.get('type', 'GENERAL')}, {env.get('scope', '')})"


def _describe(r: Resource) -> list[str]:
    i = r.plain_inputs
    t = r.type.rsplit(":", 1)[-1]
    if t == "App":
        spec = i.get("spec", {})
        lines = [f"name={spec.get('name')} region={spec.get('region')}"]
        for svc in spec.get("services", []):
            gh = svc.get("github", {})
            lines.append(
                f"service {svc['name']}: github {gh.get('repo')}@{gh.get('branch')} dir {svc.get('sourceDir')} "
                f"http_port {_num(svc.get('httpPort'))} size {svc.get('instanceSizeSlug')} x{_num(svc.get('instanceCount'))}"
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


def format_plan(plan: Plan) -> str:
    what = f"phase {plan.settings.phase}" if hasattr(plan.settings, "phase") else "homelab"
    out = [
        f"Stack {plan.stack}: {what} "
        "(offline plan: Pulumi mock engine, placeholder secrets, no cloud call)",
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
        out.append(f"  + {_short_type(r.type):<34} {r.name}{parent}{'  [' + ', '.join(flags) + ']' if flags else ''}")
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
