"""The host layer's drift: a pyinfra dry run of the deploy against every host (the operations that
would change, with their commands and file diffs from ``hosts.dryplan``; a secret file only "content
differs") and each host's testinfra suite, side by side. A host that cannot be reached is "not
checked", never drift; no secret value reaches a finding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from components import ROOT
from hosts import dryplan, secret_values
from operate.drift.parse import parse_dry_run, parse_junit, role_of
from operate.drift.reasons import connect_failures, lost_ssh
from operate.drift.report import NOT_CHECKED, Finding, HostOutcome, LayerResult
from operate.oneline import one_line
from operate.targets import Files

Runner = Callable[..., subprocess.CompletedProcess]


def check_hosts(target: Files, run: Runner = subprocess.run, checks: bool = True) -> LayerResult:
    with tempfile.TemporaryDirectory(prefix="llm-platform-dryplan-") as plan_dir:
        return _check_hosts(target, run, checks, plan_dir)


def _check_hosts(target: Files, run: Runner, checks: bool, plan_dir: str) -> LayerResult:
    """The dry run and each host's testinfra suite, side by side (both only read the host): a drift
    check takes as long as the longer of the two, not their sum."""
    t0 = time.monotonic()
    env = {**os.environ, **target.env, dryplan.ENV: plan_dir}
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))

    def dry_run() -> subprocess.CompletedProcess:
        return run(
            [pyinfra, str(target.inventory), "hosts/deploy.py", "--dry", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )

    def testinfra(h) -> tuple[subprocess.CompletedProcess, Path]:
        junit = Path(str(h.host_data_file) + ".junit.xml")
        junit.unlink(missing_ok=True)
        res = run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/hosts",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                *h.testinfra_args,
            ],
            cwd=ROOT,
            env={**env, "LLM_PLATFORM_HOST_DATA": str(h.host_data_file)},
            capture_output=True,
            text=True,
            timeout=3600,
        )
        return res, junit

    with ThreadPoolExecutor(max_workers=1 + len(target.hosts)) as pool:
        dry = pool.submit(dry_run)
        suites = {h.name: pool.submit(testinfra, h) for h in target.hosts} if checks else {}
        proc = dry.result()
        ran = {name: f.result() for name, f in suites.items()}

    # hosts pyinfra could not reach are not checked; pyinfra carries on with the others (and exits 1)
    not_checked = connect_failures(proc.stderr or "", target)
    try:
        changed = parse_dry_run(proc.stdout)
    except ValueError:
        changed = None
    if changed is None or (proc.returncode != 0 and not not_checked):
        why = f"dry run failed: {one_line(proc.stderr or proc.stdout) or f'pyinfra exited {proc.returncode}'}"
        for h in target.hosts:
            not_checked.setdefault(h.name, why if len(target.hosts) == 1 and not not_checked else f"{h.name}: {why}")
        changed = {}
    findings = []
    for h, ops in changed.items():
        detail = _read_plan(Path(plan_dir) / f"{h}.json")
        for op in ops:
            what = detail.get(op, {})
            findings.append(
                Finding(
                    "hosts",
                    h,
                    op,
                    "would change",
                    role=role_of(op),
                    kind="operation",
                    commands=what.get("commands", []),
                    diffs=what.get("diffs", []),
                )
            )

    for h in target.hosts:
        if h.name not in ran:
            continue
        res, junit = ran[h.name]
        if h.name in not_checked:  # the dry run could not reach it: its checks say nothing more
            junit.unlink(missing_ok=True)
            continue
        if not junit.exists():
            said = one_line(res.stdout + res.stderr) or f"exit {res.returncode}"
            not_checked[h.name] = f"{h.name}: testinfra did not run: {said}"
            continue
        for name, msg in parse_junit(junit.read_text()):
            lost = lost_ssh(h.name, msg)
            if lost:
                not_checked.setdefault(h.name, lost)
            else:
                findings.append(
                    Finding("hosts", h.name, name, "check failed", role=role_of(name), kind="check", message=msg)
                )
        junit.unlink()
    values = secret_values.known_values(env)
    _scrub(findings, values)
    not_checked = {h: secret_values.scrub(why, values) for h, why in not_checked.items()}
    outcomes = [
        HostOutcome(h.name, NOT_CHECKED, not_checked[h.name])
        if h.name in not_checked
        else HostOutcome(h.name, "drift" if any(f.host == h.name for f in findings) else "clean")
        for h in target.hosts
    ]
    reasons = [o.reason for o in outcomes if o.status == NOT_CHECKED]
    status = NOT_CHECKED if reasons else "drift" if findings else "clean"
    return LayerResult(
        "hosts", status, findings, reason="; ".join(reasons), seconds=time.monotonic() - t0, hosts=outcomes
    )


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
