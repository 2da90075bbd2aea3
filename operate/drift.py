"""Drift detection, both layers, one report: ``scripts/drift STACK`` (or ``local``).

- cloud: ``pulumi preview --refresh`` through the Automation API; drift = any proposed step
  (``components.automation.preview_changes``). Stays clean on an unchanged stack: App Platform's
  encrypted SECRET env values are ignored by ``LlmApp`` (see components/app.py).
- hosts: a pyinfra dry run of the deploy against every host (changes counted from its JSON plan;
  pyinfra's exit code says nothing about changes), plus the testinfra suite.

Each finding carries the difference itself: a host operation its commands and file diffs (from
``hosts.dryplan``; a secret file only "content differs"), a failed check its assertion message, a
cloud resource the property paths the engine would change (never values). Findings are grouped by
host and role, the operations (the probable cause) before the checks that failed with them.

Exit codes: 0 clean, 1 drift, 2 could not check (the reason is printed and in the report).
The JSON report lists every finding as ``{layer, host, role, kind, target, detail, commands, diffs,
message}``; ``--markdown`` (and ``$GITHUB_STEP_SUMMARY`` in GitHub Actions) gets the same as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from hosts import dryplan, secret_values
from operate.targets import ROOT, Target

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class Finding:
    layer: str
    host: str | None
    target: str
    detail: str
    role: str = ""
    kind: str = ""  # operation | check | resource
    commands: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    message: str = ""


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
            for (host, role), group in grouped(l.findings):
                where = " ".join(x for x in (host and f"[{host}]", role) if x)
                if where:
                    lines.append(f"    {where}")
                for f in group:
                    lines.append(f"      - {f.target}: {f.detail}")
                    lines += [f"          $ {c}" for c in f.commands]
                    for d in f.diffs:
                        lines += [f"          {line}" for line in d.splitlines()]
                    lines += [f"          {line}" for line in f.message.splitlines()]
        return "\n".join(lines)

    def markdown(self) -> str:
        icon = {"clean": "✅", "drift": "⚠️", "error": "❌"}[self.status]
        out = [f"## {icon} Drift: `{self.stack}` — {self.status}", "",
               "| layer | status | seconds | note |", "|---|---|---|---|"]
        out += [f"| {l.layer} | {l.status} | {l.seconds:.1f} | {l.reason.replace('|', '/')} |" for l in self.layers]
        for l in self.layers:
            for (host, role), group in grouped(l.findings):
                out += ["", f"### {l.layer}" + "".join(f" · {x}" for x in (host, role) if x)]
                for f in group:
                    out.append(f"- **{f.target}**: {f.detail}")
                    body = [f"$ {c}" for c in f.commands] + [d for d in f.diffs] + ([f.message] if f.message else [])
                    if body:
                        out += ["", "  ```", *[f"  {line}" for b in body for line in b.splitlines()], "  ```"]
        out.append("")
        return "\n".join(out)


KIND_ORDER = {"resource": 0, "operation": 1, "check": 2}


def grouped(findings: list[Finding]) -> list[tuple[tuple[str | None, str], list[Finding]]]:
    """Findings by (host, role) in first-seen order; in each group operations (the probable cause)
    before the checks that failed with them."""
    groups: dict[tuple[str | None, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.host, f.role), []).append(f)
    return [(k, sorted(v, key=lambda f: KIND_ORDER.get(f.kind, 3))) for k, v in groups.items()]


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
    # property paths only (the engine's detailed diff keys), never their values
    findings = [
        Finding("cloud", None, f"{c.type} {c.name}", f"{c.op}" + (f": {', '.join(c.properties)}" if c.properties else ""),
                kind="resource")
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


def parse_junit(xml_text: str) -> list[tuple[str, str]]:
    """(name, assertion message) of each failed or errored testinfra check in a JUnit XML report."""
    root = ET.fromstring(xml_text)
    failed = []
    for case in root.iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            failed.append((name, _message(bad.get("message") or bad.text or "")))
    return failed


def _message(text: str, max_lines: int = 8) -> str:
    """pytest's assertion message, trimmed: the expected-vs-found lines, not the whole traceback."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(line[:300] for line in lines)


def role_of(name: str) -> str:
    """The role of an operation ("proxy | nginx running") or a check ("test_proxy::...")."""
    if " | " in name:
        return name.split(" | ", 1)[0].strip()
    if name.startswith("test_") and "::" in name:
        return name.split("::", 1)[0].removeprefix("test_")
    return ""


def _tail(text: str, n: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def check_hosts(target: Target, run: Runner = subprocess.run, checks: bool = True) -> LayerResult:
    with tempfile.TemporaryDirectory(prefix="llm-platform-dryplan-") as plan_dir:
        return _check_hosts(target, run, checks, plan_dir)


def _check_hosts(target: Target, run: Runner, checks: bool, plan_dir: str) -> LayerResult:
    t0 = time.monotonic()
    env = {**os.environ, **target.env, dryplan.ENV: plan_dir}
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
    findings = []
    for h, ops in changed.items():
        detail = _read_plan(Path(plan_dir) / f"{h}.json")
        for op in ops:
            what = detail.get(op, {})
            findings.append(Finding("hosts", h, op, "would change", role=role_of(op), kind="operation",
                                    commands=what.get("commands", []), diffs=what.get("diffs", [])))

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
            findings += [Finding("hosts", h.name, name, "check failed", role=role_of(name), kind="check", message=msg)
                         for name, msg in parse_junit(junit.read_text())]
            junit.unlink()
    _scrub(findings, secret_values.known_values(env))
    status = "drift" if findings else "clean"
    return LayerResult("hosts", status, findings, seconds=time.monotonic() - t0)


def _read_plan(path: Path) -> dict[str, dict]:
    """hosts.dryplan's file for one host, by operation name ({} when the deploy wrote none). The
    directory is check_hosts' temporary one, removed with it."""
    try:
        return {op["name"]: op for op in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _scrub(findings: list[Finding], values: list[str]) -> None:
    """No secret value in any report, whatever a command or an assertion message printed."""
    for f in findings:
        f.commands = [secret_values.scrub(c, values) for c in f.commands]
        f.diffs = [secret_values.scrub(d, values) for d in f.diffs]
        f.message = secret_values.scrub(f.message, values)
        f.detail = secret_values.scrub(f.detail, values)


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------
def run_drift(stack: str, *, checks: bool = True, local_settings: Any = None) -> Report:
    from components import automation
    from operate import targets

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
    parser.add_argument("--markdown", help="also write the report as Markdown to this path")
    parser.add_argument("--no-checks", action="store_true", help="hosts: dry run only, skip the testinfra suite")
    args = parser.parse_args(argv)
    report = run_drift(args.stack, checks=not args.no_checks)
    path = Path(args.report or ROOT / ".state" / "drift" / f"{args.stack}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(report.markdown())
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # GitHub Actions: the job's summary page
        with open(summary, "a") as fh:
            fh.write(report.markdown())
    print(report.summary())
    print(f"report: {path}")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
