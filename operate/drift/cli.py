"""Drift detection, both layers, one report: ``scripts/drift STACK`` (or ``local``).

- cloud: ``pulumi preview --refresh`` through the Automation API; drift = any proposed step
  (``operate.automation.preview_changes``). Stays clean on an unchanged stack: App Platform's
  encrypted SECRET env values are ignored by ``LlmApp`` (see components/app.py).
- hosts: a pyinfra dry run of the deploy against every host (changes counted from its JSON plan;
  pyinfra's exit code says nothing about changes), plus the testinfra suite.

Each finding carries the difference itself: a host operation its commands and file diffs (from
``hosts.dryplan``; a secret file only "content differs"), a failed check its assertion message, a
cloud resource the property paths the engine would change (never values). Findings are grouped by
host and role, the operations (the probable cause) before the checks that failed with them.

Outcomes, per host, per layer and for the whole report, by one rule: anything that could not be
checked makes it "not checked" (exit 2) whatever else was found; otherwise any finding makes it
drift (1); otherwise clean (0). So a host that cannot be reached is never reported as drift, and a
drift finding beside it is still listed (``drift_found``). Each "not checked" has one line naming the
host and why ("llm-prod: SSH to 203.0.113.10:22 timed out after 10 s"), never a traceback.
The JSON report has ``status`` (clean | drift | incomplete), ``exit_code``, ``drift_found``,
``not_checked`` ([{layer, host, reason}]), per layer its status, exit code and per-host outcomes, and
every finding as ``{layer, host, role, kind, target, detail, commands, diffs, message}``;
``--markdown`` (and ``$GITHUB_STEP_SUMMARY`` in GitHub Actions) gets the same as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from components import ROOT
from operate import cli
from operate.drift import cloud, hosts, render
from operate.drift.report import NOT_CHECKED, LayerResult, Report
from operate.oneline import flatten


def run_drift(stack: str, *, checks: bool = True, local_settings: Any = None, runner_ip: str | None = None) -> Report:
    """Both layers of ``stack`` (or the local test host). ``runner_ip``: this machine's egress address;
    when given, it is compared with the stack's host.adminCidrs first (operate/reach.py), the verdict
    printed in one line, and the hosts reported as not checked, without trying SSH, when it is outside."""
    from operate import automation, targets

    layers: list[LayerResult] = []
    unreachable = None
    if targets.is_local(stack):
        layers.append(LayerResult("cloud", "skipped", reason="the local test host has no cloud layer"))
    else:
        if runner_ip is not None:
            from operate import reach

            verdict = reach.check(stack, runner_ip)
            print(f"reach: {verdict.line}", file=sys.stderr, flush=True)
            if verdict.code == reach.OUTSIDE:
                unreachable = verdict.line
        layers.append(cloud.check_cloud(stack))
    if unreachable:
        layers.append(LayerResult("hosts", NOT_CHECKED, reason=unreachable))
        return Report(stack, layers)
    try:
        target = targets.resolve(stack, local_settings=local_settings)
    except automation.Unavailable as exc:
        layers.append(LayerResult("hosts", NOT_CHECKED, reason=flatten(str(exc))))
        return Report(stack, layers)
    if not target.hosts:
        layers.append(LayerResult("hosts", "skipped", reason="no model host in this stack"))
    else:
        layers.append(hosts.check_hosts(target.files(), checks=checks))
    return Report(stack, layers)


EXITS = {
    0: "clean: every layer and every host checked, nothing differs",
    1: "drift: everything was checked and something differs (the findings say what)",
    2: "incomplete: something could not be checked (no credentials, a host unreachable, ...); any "
    "drift found elsewhere is still listed, and the report's drift_found says so",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cli.add_stack(parser, local=True)
    parser.add_argument("--report", help="JSON report path (default .state/drift/STACK.json)")
    parser.add_argument("--markdown", help="also write the report as Markdown to this path")
    parser.add_argument("--no-checks", action="store_true", help="hosts: dry run only, skip the testinfra suite")
    parser.add_argument(
        "--runner-ip",
        metavar="IP",
        help="this machine's egress address: outside the stack's host.adminCidrs, the hosts are "
        "reported as not checked (one line why) without trying SSH (see scripts/reach)",
    )


def run_command(args: argparse.Namespace) -> int:
    extra = {"runner_ip": args.runner_ip} if args.runner_ip is not None else {}
    report = run_drift(args.stack, checks=not args.no_checks, **extra)
    path = Path(args.report or ROOT / ".state" / "drift" / f"{args.stack}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(render.markdown(report))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # GitHub Actions: the job's summary page
        with open(summary, "a") as fh:
            fh.write(render.markdown(report))
    print(render.text(report))
    print(f"report: {path}")
    return report.exit_code
