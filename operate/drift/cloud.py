"""The cloud layer's drift: ``pulumi preview --refresh`` through the Automation API; drift = any
proposed step (``operate.automation.preview_changes``), reported with the property paths the engine
would change, never their values. A preview that cannot run makes the layer "not checked"."""

from __future__ import annotations

import time
from typing import Any, Callable

from operate.drift.report import NOT_CHECKED, Finding, LayerResult
from operate.oneline import flatten


def check_cloud(stack_name: str, select: Callable[[str], Any] | None = None) -> LayerResult:
    from operate import automation

    t0 = time.monotonic()
    select = select or automation.select_stack
    try:
        stack = select(stack_name)
        outcome = automation.preview_changes(stack)
    except automation.Unavailable as exc:
        return LayerResult("cloud", NOT_CHECKED, reason=flatten(str(exc)), seconds=time.monotonic() - t0)
    # property paths only (the engine's detailed diff keys), never their values
    findings = [
        Finding(
            "cloud",
            None,
            f"{c.type} {c.name}",
            f"{c.op}" + (f": {', '.join(c.properties)}" if c.properties else ""),
            kind="resource",
        )
        for c in outcome.changes
    ]
    dt = time.monotonic() - t0
    if findings:
        return LayerResult("cloud", "drift", findings, seconds=dt)
    if not outcome.ran or outcome.errors:
        return LayerResult(
            "cloud", NOT_CHECKED, reason=flatten("; ".join(outcome.errors)) or "preview failed", seconds=dt
        )
    return LayerResult("cloud", "clean", seconds=dt)
