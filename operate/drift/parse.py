"""What the host checks print, read back: pyinfra's ``--dry --json`` plan (the operations that would
change, per host) and testinfra's JUnit XML (each failed check with its assertion message), and the
role an operation or a check belongs to."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET


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
