"""Drift detection, both layers, one report: ``scripts/drift STACK`` (or ``local``).

- cloud: ``pulumi preview --refresh`` through the Automation API; drift = any proposed step
  (``components.automation.preview_changes``). Stays clean on an unchanged stack: App Platform's
  encrypted SECRET env values are ignored by ``LlmApp`` (see components/app.py).
- hosts: a pyinfra dry run of the deploy against every host (changes counted from its JSON plan;
  pyinfra's exit code says nothing about changes), plus the testinfra suite.

Exit codes: 0 clean, 1 drift, 2 could not check (the reason is printed and in the report).
The JSON report lists every finding as ``{layer, host, target, detail}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from hosts.targets import ROOT, Target

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class Finding:
    layer: str
    host: str | None
    target: str
    detail: str


@dataclass
class LayerResult:
    layer: str
    status: str  # clean | drift | error | skipped
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    stack: str
    layers: list[LayerResult]
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def status(self) -> str:
        statuses = {layer.status for layer in self.layers}
        if "drift" in statuses:
            return "drift"
        if "error" in statuses:
            return "error"
        return "clean"

    @property
    def exit_code(self) -> int:
        return {"clean": 0, "drift": 1, "error": 2}[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "started_at": self.started_at,
            "status": self.status,
            "exit_code": self.exit_code,
            "layers": [
                {"layer": l.layer, "status": l.status, "reason": l.reason, "seconds": round(l.seconds, 1)}
                for l in self.layers
            ],
            "findings": [asdict(f) for l in self.layers for f in l.findings],
        }

    def summary(self) -> str:
        lines = [f"drift report for {self.stack}: {self.status.upper()}"]
        for l in self.layers:
            extra = f" ({l.reason})" if l.reason else ""
            lines.append(f"  {l.layer:<6} {l.status:<8} {l.seconds:6.1f}s{extra}")
            for f in l.findings:
                where = f"[{f.host}] " if f.host else ""
                lines.append(f"    - {where}{f.target}: {f.detail}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# cloud
# --------------------------------------------------------------------------------------------------
def check_cloud(stack_name: str, select: Callable[[str], Any] | None = None) -> LayerResult:
    from components import automation

    t0 = time.monotonic()
    select = select or automation.select_stack
    try:
        stack = select(stack_name)
        outcome = automation.preview_changes(stack)
    except automation.Unavailable as exc:
        return LayerResult("cloud", "error", reason=str(exc), seconds=time.monotonic() - t0)
    findings = [
        Finding("cloud", None, f"{c.type} {c.name}", f"{c.op}" + (f": {', '.join(c.properties)}" if c.properties else ""))
        for c in outcome.changes
    ]
    dt = time.monotonic() - t0
    if findings:
        return LayerResult("cloud", "drift", findings, seconds=dt)
    if not outcome.ran or outcome.errors:
        return LayerResult("cloud", "error", reason="; ".join(outcome.errors) or "preview failed", seconds=dt)
    return LayerResult("cloud", "clean", seconds=dt)


# --------------------------------------------------------------------------------------------------
# hosts
# --------------------------------------------------------------------------------------------------
def parse_dry_run(stdout: str) -> dict[str, list[str]]:
    """pyinfra ``--dry --json`` → ``{host: [operation names that would change]}``."""
    start = stdout.find("{")
    if start < 0:
        raise ValueError("no JSON in pyinfra's output")
    doc = json.loads(stdout[start:])
    changed: dict[str, list[str]] = {}
    for op in doc.get("plan") or []:
        # Only definite changes. "hosts_with_conditional_change" lists operations guarded by `_if`
        # (a restart when a file changed, a reload...): a dry run cannot evaluate them, and they only
        # run when their trigger, itself listed as a definite change, does.
        for h in op.get("hosts_with_change") or []:
            changed.setdefault(h, [])
            if op["name"] not in changed[h]:
                changed[h].append(op["name"])
    return changed


def parse_junit(xml_text: str) -> list[str]:
    """Names of failed or errored testinfra checks in a JUnit XML report."""
    root = ET.fromstring(xml_text)
    failed = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}")
    return failed


def _tail(text: str, n: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def check_hosts(target: Target, run: Runner = subprocess.run, checks: bool = True) -> LayerResult:
    t0 = time.monotonic()
    env = {**os.environ, **target.env}
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))
    proc = run(
        [pyinfra, str(target.inventory), "hosts/deploy.py", "--dry", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
    )
    try:
        changed = parse_dry_run(proc.stdout)
    except ValueError:
        reason = _tail(proc.stderr or proc.stdout) or f"pyinfra exited {proc.returncode}"
        return LayerResult("hosts", "error", reason=f"dry run failed: {reason}", seconds=time.monotonic() - t0)
    if proc.returncode != 0:
        return LayerResult("hosts", "error", reason=f"dry run failed on a host: {_tail(proc.stderr)}",
                           seconds=time.monotonic() - t0)
    findings = [Finding("hosts", h, op, "would change") for h, ops in changed.items() for op in ops]

    if checks:
        for h in target.hosts:
            junit = Path(str(h.host_data_file) + ".junit.xml")
            res = run(
                [sys.executable, "-m", "pytest", "tests/hosts", "-q", "-p", "no:cacheprovider",
                 f"--junitxml={junit}", *h.testinfra_args],
                cwd=ROOT, env={**env, "LLM_PLATFORM_HOST_DATA": str(h.host_data_file)},
                capture_output=True, text=True, timeout=3600,
            )
            if not junit.exists():
                return LayerResult("hosts", "error", findings, reason=f"testinfra did not run on {h.name}: {_tail(res.stdout + res.stderr)}",
                                   seconds=time.monotonic() - t0)
            findings += [Finding("hosts", h.name, name, "check failed") for name in parse_junit(junit.read_text())]
            junit.unlink()
    status = "drift" if findings else "clean"
    return LayerResult("hosts", status, findings, seconds=time.monotonic() - t0)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def run_drift(stack: str, *, checks: bool = True, local_settings: Any = None) -> Report:
    from components import automation
    from hosts import targets

    layers: list[LayerResult] = []
    if stack == "local":
        layers.append(LayerResult("cloud", "skipped", reason="the local test host has no cloud layer"))
        layers.append(check_hosts(targets.local(local_settings), checks=checks))
        return Report(stack, layers)
    cloud = check_cloud(stack)
    layers.append(cloud)
    try:
        target = targets.from_stack(automation.select_stack(stack))
    except automation.Unavailable as exc:
        layers.append(LayerResult("hosts", "error", reason=str(exc)))
        return Report(stack, layers)
    if not target.hosts:
        layers.append(LayerResult("hosts", "skipped", reason="no model host in this stack"))
    else:
        layers.append(check_hosts(target, checks=checks))
    return Report(stack, layers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="a stack name (dev, staging, prod, cpu) or 'local'")
    parser.add_argument("--report", help="JSON report path (default .state/drift/STACK.json)")
    parser.add_argument("--no-checks", action="store_true", help="hosts: dry run only, skip the testinfra suite")
    args = parser.parse_args(argv)
    report = run_drift(args.stack, checks=not args.no_checks)
    path = Path(args.report or ROOT / ".state" / "drift" / f"{args.stack}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print(report.summary())
    print(f"report: {path}")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
