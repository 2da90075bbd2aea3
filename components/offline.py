"""Run the real Pulumi program for a stack file with no cloud account and no Pulumi CLI.

Pulumi's mock engine (``pulumi.runtime.set_mocks``) stands in for the engine and providers: every
resource the program registers is recorded with its inputs and resource options (parent, protect,
retain-on-delete, ignore-changes), and answered with plausible outputs (documentation IP ranges, fake
ids). The stack file is read by ``components.stackfile`` (placeholder values for secrets).

Used by ``scripts/plan`` (the cloud layer's offline preview, rendered by ``operate/plan.py``) and by the
unit tests, so both exercise exactly the code ``pulumi up`` runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import PROJECT
from components import pulumi_sdk as sdk
from components.config import load, parse_settings
from components.settings import StackSettings
from components.stackfile import read_stack_file


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
            digest = hashlib.md5(
                str(args.inputs.get("publicKey", args.name)).encode(), usedforsecurity=False
            ).hexdigest()
            state["fingerprint"] = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
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
