"""The operator commands' thin layer to the Pulumi CLI (Automation API): select a stack, preview,
refresh, targeted updates, stack tags and config. Everything else is testable without it: callers
get a ``pulumi.automation.Stack`` (or a fake with the same methods).

Why events instead of exit codes: ``pulumi preview --expect-no-changes`` exits non-zero both for
"changes proposed" and for "could not run" (pulumi/pulumi#5144, #8992). ``preview_changes`` instead
collects the engine's step events and the error diagnostics, so drift and failure stay apart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from components import PROJECT, ROOT
from components.secrets import PROVIDER_SECRETS
from operate.oneline import last_line

DRIFT_OPS = {"create", "update", "delete", "replace", "create-replacement", "delete-replaced", "import"}


class Unavailable(RuntimeError):
    """The check cannot run here (no CLI, no credentials, no stack): exit 2, never a traceback."""


def credentials_problem(stack: str, env: dict[str, str] | None = None) -> str | None:
    """What is missing to talk to the Pulumi backend and the clouds, or ``None``."""
    env = dict(os.environ if env is None else env)
    if shutil.which("pulumi", path=env.get("PATH")) is None:
        return "no Pulumi CLI on PATH (install it: https://www.pulumi.com/docs/install/)"
    logged_in = (
        env.get("PULUMI_ACCESS_TOKEN")
        or env.get("PULUMI_BACKEND_URL")
        or (Path(env.get("PULUMI_HOME", Path.home() / ".pulumi")) / "credentials.json").exists()
    )
    if not logged_in:
        return "no Pulumi backend credentials (set PULUMI_ACCESS_TOKEN or PULUMI_BACKEND_URL, or pulumi login)"
    config, needs = _stack_providers(stack)
    for provider in needs:
        key, name = PROVIDER_TOKENS[provider]
        var = PROVIDER_SECRETS[key]
        if not env.get(var) and key not in config:
            return (
                f"no {name} credentials for stack {stack} (set {var}, or pulumi config set --secret {key} <token> "
                f"-s {stack})"
            )
    return None


# provider -> (stack config key, name); the key's env variable: components.secrets.PROVIDER_SECRETS
PROVIDER_TOKENS = {"digitalocean": ("digitalocean:token", "DigitalOcean"), "hetzner": ("hcloud:token", "Hetzner")}


def _stack_providers(stack: str) -> tuple[dict[str, Any], list[str]]:
    """The stack file's config and the clouds it uses: DigitalOcean for App Platform, and the model
    host's provider when the stack creates one (by its settings, not its name)."""
    import json

    from components import stackfile
    from components.phases import PHASES

    try:
        config = {
            k if ":" in str(k) else f"llm-platform:{k}": v
            for k, v in stackfile.load_stack_file(stackfile.STACKS_DIR / f"Pulumi.{stack}.yaml").items()
        }
    except Exception:  # noqa: BLE001 (a missing or bad file: the CLI says so later, in its own words)
        return {}, ["digitalocean"]
    if "llm-platform:homelab" in config:
        return config, []
    host = config.get("llm-platform:host")
    host = json.loads(host) if isinstance(host, str) else host
    phase = config.get("llm-platform:phase")
    enabled = config.get("llm-platform:hostEnabled", PHASES.get(phase, {}).get("hostEnabled", False))
    needs = ["digitalocean"]
    if enabled and isinstance(host, dict) and host.get("provider") == "hetzner":
        needs.append("hetzner")
    return config, needs


def _cli_problem() -> str | None:
    """Whether the Pulumi CLI runs at all (the SDK would let a broken one print to the terminal)."""
    try:
        res = subprocess.run(["pulumi", "version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the Pulumi CLI does not run: {exc}"
    if res.returncode != 0:
        return (
            f"the Pulumi CLI does not run: `pulumi version` exited {res.returncode}: "
            f"{last_line(res.stderr or res.stdout)}"
        )
    return None


def _cli_errors() -> tuple[type[BaseException], ...]:
    """What the Automation API raises when the Pulumi CLI is missing, too old, broken or failing."""
    from pulumi import automation as auto
    from pulumi.automation.errors import InvalidVersionError

    return (auto.CommandError, InvalidVersionError, subprocess.SubprocessError, OSError, ValueError)


class _Stack:
    """The Automation API stack, with every read (outputs, config, state) turning a CLI failure into
    ``Unavailable`` (exit 2, one line). ``preview`` and ``up`` pass through: their callers report
    a failed operation themselves."""

    _PASS_THROUGH = ("preview", "up")

    def __init__(self, stack: Any):
        self._stack = stack
        self.name = stack.name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._stack, attr)
        if not callable(value) or attr in self._PASS_THROUGH:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except _cli_errors() as exc:
                raise Unavailable(f"pulumi ({attr} of stack {self.name!r}): {last_line(str(exc))}") from None

        return call


def select_stack(stack: str) -> Any:
    """The stack as the Automation API sees it (the CLI program in this repository)."""
    problem = credentials_problem(stack) or _cli_problem()
    if problem:
        raise Unavailable(problem)
    from pulumi import automation as auto

    try:
        return _Stack(auto.select_stack(stack_name=stack, work_dir=str(ROOT)))
    except _cli_errors() as exc:
        raise Unavailable(f"cannot select stack {stack!r}: {last_line(str(exc))}") from None


@dataclass
class Change:
    urn: str
    type: str
    op: str
    properties: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class PreviewOutcome:
    changes: list[Change]
    errors: list[str]
    ran: bool  # False when the preview itself failed


def _collector() -> tuple[list[Change], list[str], Callable[[Any], None]]:
    changes: list[Change] = []
    errors: list[str] = []

    def on_event(event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None:
            meta = pre.metadata
            op = getattr(meta.op, "value", meta.op)
            if op in DRIFT_OPS:
                props = sorted(set((meta.detailed_diff or {}).keys()) | set(meta.diffs or []))
                changes.append(Change(meta.urn, meta.type, op, props))
        diag = getattr(event, "diagnostic_event", None)
        if diag is not None and diag.severity == "error":
            errors.append(diag.message.strip())

    return changes, errors, on_event


def preview_changes(stack: Any) -> PreviewOutcome:
    """``pulumi preview --refresh`` on ``stack``: what would change to make the cloud match the program."""
    from pulumi import automation as auto

    changes, errors, on_event = _collector()
    try:
        stack.preview(refresh=True, diff=True, color="never", on_event=on_event)
    except auto.CommandError as exc:
        if not errors:
            errors.append(last_line(str(exc)))
        return PreviewOutcome(changes, errors, ran=False)
    return PreviewOutcome(changes, errors, ran=True)


SERVER_TYPES = {
    "digitalocean": "digitalocean:index/droplet:Droplet",
    "hcloud": "hcloud:index/server:Server",
    "hetzner": "hcloud:index/server:Server",
}
REBUILD_TAG = "llm-platform:rebuild:{host}"
"""Stack tag (kept by the Pulumi backend, not on the machine that runs the rebuild) naming the server
an unfinished rebuild of that host replaces (``none`` when there was none): a rerun, from any
machine, resumes instead of replacing again. Removed when the rebuild verifies."""


def _state(stack: Any) -> dict[str, Any]:
    return stack.export_stack().deployment or {}


def find_server(stack: Any, host_name: str) -> tuple[str, str] | None:
    """(URN, id) of a model host's server in the stack's state, or None when the state has none."""
    for res in _state(stack).get("resources", []):
        urn = res.get("urn", "")
        if urn.endswith(f"::{host_name}-server") and res.get("type") in SERVER_TYPES.values():
            return urn, str(res.get("id") or "")
    return None


def server_urn(stack: Any, host_name: str) -> str:
    """The URN of a model host's server resource, from the stack's state."""
    found = find_server(stack, host_name)
    if found is None:
        raise Unavailable(f"no server resource for host {host_name!r} in stack {stack.name!r}")
    return found[0]


def expected_server_urn(stack: Any, host_name: str, provider: str) -> str:
    """The URN the program gives a host's server (``ModelHost``'s child), also when the state has none."""
    return (
        f"urn:pulumi:{stack.name}::{PROJECT}::llm-platform:host:ModelHost${SERVER_TYPES[provider]}::{host_name}-server"
    )


def pending_operations(stack: Any) -> int:
    """Operations an interrupted ``pulumi up`` left in the state (e.g. a server being created)."""
    return len(_state(stack).get("pending_operations") or [])


def refresh_server(stack: Any, urn: str, on_output: Callable[[str], None] = print) -> None:
    """``pulumi refresh --target URN``: a server deleted in the cloud leaves the state."""
    from pulumi import automation as auto

    try:
        stack.refresh(target=[urn], color="never", on_output=on_output)
    except auto.CommandError as exc:
        raise RuntimeError(f"pulumi refresh --target {urn} failed: {last_line(str(exc))}") from None


def create_server(stack: Any, urn: str, on_output: Callable[[str], None] = print) -> Any:
    """``pulumi up --target URN --target-dependents``: a server the state lacks (deleted in the cloud,
    or dropped from the state), attached to the same volume and IP."""
    from pulumi import automation as auto

    try:
        return stack.up(target=[urn], target_dependents=True, color="never", on_output=on_output)
    except auto.CommandError as exc:
        raise RuntimeError(f"pulumi up --target {urn} failed: {last_line(str(exc))}") from None


def rebuild_tag(stack: Any, host_name: str) -> str | None:
    """The unfinished rebuild's record for ``host_name`` (see ``REBUILD_TAG``), or None."""
    return (stack.list_tags() or {}).get(REBUILD_TAG.format(host=host_name))


def set_rebuild_tag(stack: Any, host_name: str, old_server: str | None) -> None:
    stack.set_tag(REBUILD_TAG.format(host=host_name), old_server or "none")


def clear_rebuild_tag(stack: Any, host_name: str) -> None:
    stack.remove_tag(REBUILD_TAG.format(host=host_name))


def replace_server(stack: Any, urn: str, on_output: Callable[[str], None] = print) -> Any:
    """``pulumi up --replace URN --target URN --target-dependents``: a new server, the same volume and
    IP (their attachments are dependents of the server and follow it)."""
    from pulumi import automation as auto

    try:
        return stack.up(replace=[urn], target=[urn], target_dependents=True, color="never", on_output=on_output)
    except auto.CommandError as exc:
        raise RuntimeError(f"pulumi up --replace {urn} failed: {last_line(str(exc))}") from None


# --------------------------------------------------------------------------------------------------
# Key rotation (operate/rotate_key.py): stack secrets, the secret-applying update, the app's deployment
# --------------------------------------------------------------------------------------------------
def config_secret(stack: Any, key: str) -> str | None:
    """The decrypted value of ``llm-platform:KEY`` in the stack's config, or None."""
    item = stack.get_all_config().get(f"llm-platform:{key}")
    return item.value if item is not None and item.value else None


def set_config_secret(stack: Any, key: str, value: str) -> None:
    """``pulumi config set --secret llm-platform:KEY`` (written, encrypted, into the stack file)."""
    from pulumi import automation as auto

    stack.set_config(f"llm-platform:{key}", auto.ConfigValue(value=value, secret=True))


def remove_config(stack: Any, key: str) -> None:
    stack.remove_config(f"llm-platform:{key}")


def up_applying_secrets(stack: Any, on_output: Callable[[str], None] = print) -> Any:
    """``LLM_PLATFORM_APPLY_SECRETS=1 pulumi up``: the one update that pushes every secret value to
    App Platform (components/app.py ignores their changes otherwise)."""
    from pulumi import automation as auto

    from components.app import APPLY_SECRETS_ENV

    ws = stack.workspace
    ws.env_vars = {**(ws.env_vars or {}), APPLY_SECRETS_ENV: "1"}
    try:
        return stack.up(color="never", on_output=on_output)
    except auto.CommandError as exc:
        raise RuntimeError(f"pulumi up (applying secrets) failed: {last_line(str(exc))}") from None
    finally:
        ws.env_vars = {k: v for k, v in ws.env_vars.items() if k != APPLY_SECRETS_ENV}


def provider_token(stack: Any, config_key: str, env_name: str, env: dict[str, str] | None = None) -> str | None:
    """A provider's token: its env variable, else the stack's ``config_key`` Pulumi secret."""
    env = dict(os.environ if env is None else env)
    if env.get(env_name):
        return env[env_name]
    item = stack.get_all_config().get(config_key)
    return item.value if item is not None and item.value else None


def app_id(stack: Any) -> str:
    """The App Platform app's id, from the stack's state."""
    for res in (stack.export_stack().deployment or {}).get("resources", []):
        if res.get("type") == "digitalocean:index/app:App" and res.get("id"):
            return res["id"]
    raise Unavailable(f"no App Platform app in stack {stack.name!r}")


def app_deployment(app: str, token: str, timeout: float = 30) -> dict[str, Any]:
    """DigitalOcean's view of the app (``GET /v2/apps/ID``): its active, in-progress and pending
    deployments."""
    import requests

    from operate.httpclient import Bearer

    res = requests.get(
        f"https://api.digitalocean.com/v2/apps/{app}",
        timeout=timeout,
        auth=Bearer(token),
        headers={"Accept": "application/json"},
    )
    res.raise_for_status()  # an HTTPError, an OSError as urllib's was (the caller reports OSErrors)
    return res.json()["app"]


def deployment_live(app: dict[str, Any], since: str) -> tuple[bool, str]:
    """Whether the app runs a deployment made at or after ``since`` (RFC 3339) with nothing still in
    progress, and what it is doing (for the progress line)."""
    busy = app.get("in_progress_deployment") or app.get("pending_deployment")
    if busy:
        return False, f"deployment {busy.get('id', '?')} {busy.get('phase', 'PENDING')}"
    active = app.get("active_deployment") or {}
    created = active.get("created_at") or ""
    if active.get("phase") == "ACTIVE" and created >= since:
        return True, f"deployment {active.get('id', '?')} ACTIVE"
    return False, f"active deployment {active.get('id', '?')} is from before the update ({created or 'unknown'})"
