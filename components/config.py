"""A stack's config → its typed settings, or one line per problem.

``parse_settings(raw, stack)`` is plain Python (testable without Pulumi): ``raw`` maps
``"llm-platform:<key>"`` to the string Pulumi hands the program (objects arrive as JSON text).
``load()`` reads the current stack's config from the Pulumi runtime and calls it.

Every problem becomes a ``SettingsError`` whose message is one line per problem, each naming the key,
the value and what is allowed, e.g.::

    llm-platform:host.provider = 'aws': must be one of 'digitalocean', 'hetzner'

Secret values (``components.secrets``) never appear in an error: they are wrapped in ``Secret``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from components import NAMESPACE
from components.patterns import fmt_value
from components.phases import PHASES, apply_preset
from components.secrets import HOST_SECRET, HOST_SECRET_RULE, PROVIDER_SECRETS, SECRET_KEYS, SECRET_SPECS, Secret
from components.settings import HomelabStackSettings, StackSettings
from components.settings_model import KeyedError


class SettingsError(ValueError):
    """Bad stack config. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------
TOP_LEVEL_KEYS = (
    {to_camel(name) for name in StackSettings.model_fields if name not in ("stack", "secrets")}
    | set(SECRET_KEYS)
    | {"homelab"}
)
HOMELAB_KEYS = {"homelab", "budget"}


def _decode(raw: str) -> Any:
    """Pulumi hands every config value over as a string; objects and numbers as JSON text."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Walk the model along ``loc`` (aliases) and return the allowed keys at the parent level."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        ann = field.annotation
        args = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = args[0] if args else ann
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return None


def _format_errors(exc: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, KeyedError):
            shown = "" if ctx_err.value is None else f" = {fmt_value(ctx_err.value)}"
            lines.append(f"{NAMESPACE}:{ctx_err.key}{shown}: {ctx_err.allowed}")
            continue
        key = ".".join(loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model or StackSettings, err["loc"])
            msg = "unknown key" + (f"; allowed here: {', '.join(sorted(allowed))}" if allowed else "")
            lines.append(f"{NAMESPACE}:{key}: {msg}")
        elif err["type"] == "missing":
            lines.append(f"{NAMESPACE}:{key}: required key is missing")
        else:
            msg = msg.replace("Input should be", "must be")
            shown = err["input"]
            if "envs" in loc:  # env values may be secrets: names only
                shown = sorted(shown) if isinstance(shown, dict) else "****"
            lines.append(f"{NAMESPACE}:{key} = {fmt_value(shown)}: {msg}")
    return lines


def _unknown_key(full_key: str, key: str) -> str:
    """The refusal of an unknown top-level key. Never its value: a secret set under a misspelled key
    (huggingfaceApikey) would be printed, and drift copies the line into its report."""
    import difflib

    near = difflib.get_close_matches(
        key, [k for k in TOP_LEVEL_KEYS if k.lower() == key.lower()] or TOP_LEVEL_KEYS, n=1
    )
    hint = f" (did you mean {NAMESPACE}:{near[0]}? keys are case-sensitive)" if near else ""
    shown = full_key if re.match(r"^[A-Za-z0-9_.:-]{1,100}\Z", full_key) else fmt_value(full_key)
    return f"{shown}: unknown key{hint}; allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}"


def parse_settings(
    raw: Mapping[str, str], stack: str, secure_keys: Collection[str] | None = None
) -> StackSettings | HomelabStackSettings:
    """Validate the stack's config (``namespace:key`` → string) into ``StackSettings``.

    ``secure_keys``: the full keys that are Pulumi secrets (the engine's list); when given, a secret
    key given in plain text is refused."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    secrets: dict[str, Secret] = {}
    prefix = NAMESPACE + ":"
    plain = (lambda k: False) if secure_keys is None else (lambda k: k not in secure_keys)
    for full_key, text in raw.items():
        if full_key in PROVIDER_SECRETS and text and plain(full_key):
            problems.append(
                f"{full_key}: is stored in plain text in the stack file; remove it and run: pulumi config set "
                f"--secret {full_key} <value> -s {stack} (or export {PROVIDER_SECRETS[full_key]} instead)"
            )
        if not full_key.startswith(prefix):
            continue  # other namespaces (digitalocean:region, ...) belong to providers
        key = full_key[len(prefix) :]
        if key in SECRET_KEYS:
            if text and plain(full_key):
                problems.append(
                    f"{full_key}: is stored in plain text in the stack file; a secret must be a Pulumi secret: "
                    f"remove it and run: pulumi config set --secret {key} <value> -s {stack}"
                )
            elif text:
                secrets[key] = Secret(text)
            continue
        if key not in TOP_LEVEL_KEYS:
            problems.append(_unknown_key(full_key, key))
            continue
        values[key] = _decode(text)
    if problems:
        raise SettingsError(problems)

    if "homelab" in values:
        extra = sorted(set(values) - HOMELAB_KEYS)
        if extra:
            raise SettingsError(
                [
                    f"{NAMESPACE}:{k}: not a homelab key; a homelab stack takes only {', '.join(sorted(HOMELAB_KEYS))}"
                    for k in extra
                ]
            )
        try:
            return HomelabStackSettings.model_validate({**values, "stack": stack})
        except ValidationError as exc:
            raise SettingsError(_format_errors(exc, HomelabStackSettings)) from None

    phase = values.get("phase")
    if phase not in PHASES:
        allowed = ", ".join(map(str, PHASES))
        raise SettingsError(
            [
                f"{NAMESPACE}:phase = {fmt_value(phase)}: must be one of {allowed}"
                if phase is not None
                else f"{NAMESPACE}:phase: required key is missing (one of {allowed})"
            ]
        )
    merged = apply_preset(int(phase), values)
    try:
        settings = StackSettings.model_validate({**merged, "stack": stack, "secrets": secrets})
    except ValidationError as exc:
        raise SettingsError(
            [line.replace("scripts/pin ollama STACK ", f"scripts/pin ollama {stack} ") for line in _format_errors(exc)]
        ) from None
    from components import readiness

    not_ready = readiness.problems(settings)
    if not_ready:
        raise SettingsError(not_ready)

    unsafe = [
        s.key
        for s in SECRET_SPECS
        if s.roles and s.key in secrets and settings.host_enabled and not HOST_SECRET.fullmatch(secrets[s.key].reveal())
    ]
    if unsafe:
        raise SettingsError(
            [f"{NAMESPACE}:{k}: the secret ({len(secrets[k].reveal())} characters) {HOST_SECRET_RULE}" for k in unsafe]
        )
    missing = [s for s in settings.required_secrets() if s.key not in secrets]
    if missing:
        raise SettingsError(
            [
                f"{NAMESPACE}:{s.key}: required secret is missing ({s.description}); "
                "set it with: "
                f"{s.set_with.format(stack=stack) or f'pulumi config set --secret {s.key} <value> -s {stack}'}"
                for s in missing
            ]
        )
    if settings.host_enabled and "hostSshKey" in secrets:
        from components import hostkeys

        try:
            hostkeys.check(secrets["hostSshKey"].reveal())
        except hostkeys.BadHostKey as exc:
            raise SettingsError(
                [f"{NAMESPACE}:hostSshKey: the secret is {exc}; make one with: scripts/host-keys {stack} --rotate"]
            ) from None
    return settings


def load() -> StackSettings | HomelabStackSettings:
    """Read and validate the current stack's config from the Pulumi runtime (once per program run).
    Where the runtime marks no key as secret at all, the plain-text-secret check is left out rather
    than refusing every secret."""
    import pulumi

    from components import pulumi_sdk

    raw, secure = pulumi_sdk.stack_config()
    return parse_settings(raw, pulumi.get_stack(), secure_keys=secure)
