"""Phases as presets.

A stack sets ``phase: 1`` or ``phase: 2``; the preset fills in the values below, and anything the
stack file sets itself wins (deep merge, the stack file on top). Upgrading an environment is editing
that one line.

- Phase 1: the ``llm`` gateway calls Hugging Face serverless; a basic instance; no model host.
- Phase 2: the gateway calls self-hosted vLLM on the model host (over HTTPS with an API key); a
  bigger instance; the model host is created.
"""

from __future__ import annotations

import copy
from typing import Any

PHASES: dict[int, dict[str, Any]] = {
    1: {
        "hostEnabled": False,
        "app": {
            "llm": {
                "provider": "huggingface",  # the model: app.llm.huggingfaceModel (host_settings.DEFAULT_MODEL)
                "instanceSize": "apps-s-1vcpu-1gb",
            }
        },
    },
    2: {
        "hostEnabled": True,
        "app": {
            "llm": {
                "provider": "vllm",
                "instanceSize": "apps-s-2vcpu-4gb",
            }
        },
    },
}


def _merge(base: Any, top: Any) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return top


def apply_preset(phase: int, values: dict[str, Any]) -> dict[str, Any]:
    """Return ``values`` laid over the preset of ``phase`` (``values`` wins)."""
    return _merge(copy.deepcopy(PHASES[phase]), values)
