"""DigitalOcean's published app-spec schema (../shared/do-openapi), made strict, and the mapping from
the spec Pulumi sends to the API's field names.

The published files allow unknown fields everywhere; validating against them as they are would
catch little. So the loader inlines the $refs, merges ``allOf`` and then forbids unknown fields, adding
back only the fields the API is known to accept beyond the file (README of do-openapi: app-level
``alerts``, ``envs``, ``features``; component-level ``alerts``; ``ingress.secure_header``).
"""

from __future__ import annotations

import copy
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from components import yamlio

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = (
    Path(os.environ.get("LLM_PLATFORM_DO_OPENAPI", ROOT.parent / "shared" / "do-openapi"))
    / "specification"
    / "resources"
    / "apps"
    / "models"
)

KNOWN_GAPS = {
    "AppSpec": {"alerts": {"type": "array"}, "envs": {"type": "array"}, "features": {"type": "array"}},
    "service": {"alerts": {"type": "array"}},
}


def _load(name: str) -> Any:
    return yamlio.load((SCHEMA_DIR / name).read_text())


def _resolve(node: Any) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and not node["$ref"].startswith("#"):
            target = _resolve(_load(node["$ref"]))
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return {**target, **_resolve(extra)} if extra else target
        node = {k: _resolve(v) for k, v in node.items()}
        if "allOf" in node:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in node.pop("allOf"):
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
                for k, v in part.items():
                    if k not in ("properties", "required"):
                        merged.setdefault(k, v)
            merged["properties"].update(node.pop("properties", {}))
            merged["required"] += node.pop("required", [])
            node = {**merged, **node}
        return node
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@lru_cache(maxsize=1)
def app_spec_schema() -> dict[str, Any]:
    schema = _resolve(_load("app_spec.yml"))
    schema["properties"].update(KNOWN_GAPS["AppSpec"])
    schema["properties"]["services"]["items"]["properties"].update(KNOWN_GAPS["service"])
    return _strict(copy.deepcopy(schema))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_api_spec(pulumi_spec: Any, path: tuple = ()) -> Any:
    """The spec as Pulumi sends it (camelCase, provider shapes) → the API's app spec."""
    if isinstance(pulumi_spec, float) and pulumi_spec.is_integer():
        return int(pulumi_spec)
    if isinstance(pulumi_spec, list):
        return [to_api_spec(v, path) for v in pulumi_spec]
    if not isinstance(pulumi_spec, dict):
        return pulumi_spec
    out: dict[str, Any] = {}
    for key, value in pulumi_spec.items():
        if key == "destinations" and path and path[-1] == "alerts":
            continue  # sent by the provider in a separate call, not in the spec
        if key == "domainNames":
            out["domains"] = [{("domain" if k == "name" else _snake(k)): v for k, v in d.items()} for d in value]
            continue
        new_key = key if key.isupper() or path[-1:] == ("envs_value",) else _snake(key)
        out[new_key] = to_api_spec(value, path + (new_key,))
    return out
