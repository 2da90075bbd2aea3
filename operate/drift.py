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
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from hosts import dryplan, secret_values
from components import ROOT
from operate.targets import Target

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


NOT_CHECKED = "not_checked"
# Every unit (a host, a layer, the report) has one outcome and its exit code. One rule at every level:
# anything not checked makes it "not checked" (2), whatever else was found (the findings are still
# listed and ``drift_found`` says so); otherwise any finding makes it drift (1); otherwise clean (0).
EXIT_CODES = {"clean": 0, "skipped": 0, "drift": 1, NOT_CHECKED: 2}
LABELS = {NOT_CHECKED: "not checked"}


@dataclass
class HostOutcome:
    host: str
    status: str  # clean | drift | not_checked
    # why not checked: one line naming the host ("llm-prod: SSH to 203.0.113.10:22 timed out after 10 s")
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("clean", "drift", NOT_CHECKED):
            raise ValueError(f"host outcome {self.status!r}: one of clean, drift, {NOT_CHECKED}")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


@dataclass
class LayerResult:
    layer: str
    status: str  # clean | drift | not_checked | skipped
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    hosts: list[HostOutcome] = field(default_factory=list)  # the hosts layer: one outcome per host

    def __post_init__(self) -> None:
        if self.status not in EXIT_CODES:  # an unknown status must never read as clean
            raise ValueError(f"layer status {self.status!r}: one of {', '.join(EXIT_CODES)}")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def drift_found(self) -> bool:
        return self.status == "drift" or bool(self.findings) or any(h.status == "drift" for h in self.hosts)

    def not_checked(self) -> list[dict[str, Any]]:
        """What this layer could not check: one entry per host where hosts were the cause, else the layer."""
        if self.status != NOT_CHECKED:
            return []
        hosts = [h for h in self.hosts if h.status == NOT_CHECKED]
        if hosts:
            return [{"layer": self.layer, "host": h.host, "reason": h.reason} for h in hosts]
        return [{"layer": self.layer, "host": None, "reason": self.reason}]


@dataclass
class Report:
    stack: str
    layers: list[LayerResult]
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def not_checked(self) -> list[dict[str, Any]]:
        return [x for l in self.layers for x in l.not_checked()]

    @property
    def drift_found(self) -> bool:
        return any(l.drift_found for l in self.layers)

    @property
    def status(self) -> str:
        """clean | drift | incomplete (something was not checked; drift findings, if any, still listed)."""
        if self.not_checked:
            return "incomplete"
        return "drift" if self.drift_found else "clean"

    @property
    def exit_code(self) -> int:
        return {"clean": 0, "drift": 1, "incomplete": 2}[self.status]

    def headline(self) -> str:
        if self.status != "incomplete":
            return self.status
        layers = ", ".join(dict.fromkeys(x["layer"] for x in self.not_checked))
        return f"incomplete: {'drift found' if self.drift_found else 'no drift found'}; not checked: {layers}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "started_at": self.started_at,
            "status": self.status,
            "exit_code": self.exit_code,
            "drift_found": self.drift_found,
            "not_checked": self.not_checked,
            "layers": [
                {"layer": l.layer, "status": l.status, "exit_code": l.exit_code, "drift_found": l.drift_found,
                 "reason": l.reason, "seconds": round(l.seconds, 1),
                 "hosts": [{"host": h.host, "status": h.status, "exit_code": h.exit_code, "reason": h.reason}
                           for h in l.hosts]}
                for l in self.layers
            ],
            "findings": [asdict(f) for l in self.layers for f in l.findings],
        }

    def summary(self) -> str:
        status, _, rest = self.headline().partition(": ")
        lines = [f"drift report for {self.stack}: {status.upper()} (exit {self.exit_code})" + (f": {rest}" if rest else "")]
        for l in self.layers:
            extra = f" ({printable(l.reason)})" if l.reason and l.status != NOT_CHECKED else ""
            lines.append(f"  {l.layer:<6} {LABELS.get(l.status, l.status):<11} {l.seconds:6.1f}s{extra}")
            lines += [f"    not checked: {printable(x['reason'])}" for x in l.not_checked()]
            for (host, role), group in grouped(l.findings):
                where = " ".join(x for x in (host and f"[{host}]", role) if x)
                if where:
                    lines.append(f"    {where}")
                for f in group:
                    lines.append(f"      - {printable(f.target)}: {printable(f.detail)}")
                    lines += [f"          $ {printable(c)}" for c in f.commands]
                    for d in f.diffs:
                        lines += [f"          {printable(line)}" for line in d.splitlines()]
                    lines += [f"          {printable(line)}" for line in f.message.splitlines()]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The report as GitHub Markdown. Everything that came from a host, a provider or a command's
        output is code: multi-line text in a fenced block whose fence is longer than any backtick
        run inside it, one-line text in a code span (no heading, link, HTML or table cell can come
        out of it); control characters are shown escaped."""
        icon = {"clean": "✅", "drift": "⚠️", "incomplete": "❌"}[self.status]
        out = [f"## {icon} Drift: `{self.stack}` — {self.headline()}", "",
               "| layer | status | seconds | note |", "|---|---|---|---|"]
        out += [f"| {l.layer} | {LABELS.get(l.status, l.status)} | {l.seconds:.1f} | {md_code(l.reason, table=True)} |"
                for l in self.layers]
        if self.not_checked:
            out += ["", "### not checked (exit 2, whatever else was found)"]
            out += [f"- {x['layer']}: {md_code(x['reason'])}" for x in self.not_checked]
        for l in self.layers:
            for (host, role), group in grouped(l.findings):
                out += ["", f"### {l.layer}" + "".join(f" · {md_name(x)}" for x in (host, role) if x)]
                for f in group:
                    out.append(f"- {md_code(f.target)}: {md_words(f.detail)}")
                    body = [f"$ {c}" for c in f.commands] + [d for d in f.diffs] + ([f.message] if f.message else [])
                    if body:
                        out += ["", *md_fenced([line for b in body for line in b.splitlines()], indent="  ")]
        out.append("")
        return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Markdown and terminal escaping of what came from elsewhere
# --------------------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_BACKTICKS = re.compile(r"`+")


def printable(text: str) -> str:
    """Control characters (an ESC that would hide the rest in a terminal, a NUL...) as visible escapes."""
    def shown(m: re.Match) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _CONTROL.sub(shown, text)


def _longest_backticks(text: str) -> int:
    return max((len(m.group()) for m in _BACKTICKS.finditer(text)), default=0)


def md_fenced(lines: list[str], indent: str = "") -> list[str]:
    """A fenced code block holding ``lines`` verbatim: the fence is longer than any backtick run in them."""
    lines = [printable(line) for line in lines]
    fence = "`" * max(3, _longest_backticks("\n".join(lines)) + 1)
    return [f"{indent}{fence}", *[f"{indent}{line}" for line in lines], f"{indent}{fence}"]


def md_code(text: str, table: bool = False) -> str:
    """One line of text as an inline code span (literal: no link, emphasis or HTML); in a table cell
    ``|`` is escaped too (GitHub splits cells before reading code spans)."""
    text = printable(" ".join(text.split()))
    if not text:
        return ""
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{ticks}{pad}{text}{pad}{ticks}"
    return span.replace("|", "\\|") if table else span


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_WORDS = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,_-]*")


def md_name(text: str) -> str:
    """A host or role name as is when it is a plain name, else as code."""
    return text if _NAME.fullmatch(text) else md_code(text)


def md_words(text: str) -> str:
    """A finding's detail ("would change", "create") as is when it is plain words, else as code."""
    return text if _WORDS.fullmatch(text) else md_code(text)


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
        Finding("cloud", None, f"{c.type} {c.name}", f"{c.op}" + (f": {', '.join(c.properties)}" if c.properties else ""),
                kind="resource")
        for c in outcome.changes
    ]
    dt = time.monotonic() - t0
    if findings:
        return LayerResult("cloud", "drift", findings, seconds=dt)
    if not outcome.ran or outcome.errors:
        return LayerResult("cloud", NOT_CHECKED, reason=flatten("; ".join(outcome.errors)) or "preview failed", seconds=dt)
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


# --------------------------------------------------------------------------------------------------
# "not checked": one line naming the host and why, never a traceback fragment
# --------------------------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# pyinfra's per-host connect errors (pyinfra/connectors/ssh.py: raise_connect_error), e.g.
# "    [llm-prod] Could not connect (timed out)"
_CONNECT = re.compile(
    r"^\s*\[(?P<host>[^\]\s]+)\]\s+(?P<what>Could not connect|SSH error|SSH host key error|Authentication error"
    r"|Could not resolve hostname|EOF error)\b\s*(?:\((?P<detail>.*)\))?\s*$"
)
_ERRNO = re.compile(r"^\[Errno [^\]]*\]\s*")
_TRACEBACK_NOISE = re.compile(r"^(Traceback \(most recent call last\):|During handling of the above exception|"
                              r"The above exception was the direct cause|Exception \(client\):|\s*[\^~]+\s*$)")
MAX_REASON = 300


def _clip(text: str, limit: int = MAX_REASON) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines_without_tracebacks(text: str) -> list[str]:
    """The lines of a command's output that are not part of a Python traceback (paramiko logs its
    own from its transport thread), colour codes removed."""
    out, in_traceback = [], False
    for raw in _ANSI.sub("", text).splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback:
            if line[:1].isspace():
                continue  # '  File "...", line N' and its source lines
            in_traceback = False
            continue  # the exception line closing the traceback ("paramiko...SSHException: ...")
        if _TRACEBACK_NOISE.match(line):
            continue
        out.append(line.strip())
    return out


def one_line(text: str) -> str:
    """A failed command's reason in one line: pyinfra's own verdict if it gave one, else the last line
    that is not part of a traceback."""
    lines = _lines_without_tracebacks(text)
    for line in reversed(lines):
        if line.startswith("--> pyinfra error:"):
            return _clip(line.removeprefix("--> "))
    return _clip(lines[-1].removeprefix("--> ")) if lines else ""


def flatten(text: str) -> str:
    """A multi-line message (a Pulumi diagnostic) as one line, tracebacks left out."""
    return _clip(" ".join(_lines_without_tracebacks(text)))


def _connect_timeout() -> int:
    try:
        from pyinfra.api.config import ConfigDefaults

        return int(ConfigDefaults.CONNECT_TIMEOUT)
    except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - pyinfra moved it
        return 10


def ssh_reason(host: str, address: str, what: str, detail: str) -> str:
    """pyinfra's connect error for a host → one line saying what to look at."""
    where = f"SSH to {address}" if address else "SSH"
    d = _ERRNO.sub("", (detail or "").strip()).strip()
    if what == "SSH host key error":
        return (f"{host}: host key mismatch for {address or host}: known_hosts holds another key "
                "(the host was rebuilt, or someone is in between)")
    if what == "Authentication error":
        m = re.search(r"username=([^,\s)]+)", d)
        return f"{host}: {where}: authentication failed" + (f" as {m.group(1)}" if m else "") + " (key not accepted)"
    if what == "Could not resolve hostname":
        return f"{host}: {where}: cannot resolve the host name"
    if what == "EOF error":
        return f"{host}: {where}: the connection closed during the SSH handshake"
    if "banner" in d.lower():
        inner = _ERRNO.sub("", d[d.lower().index("banner") + len("banner"):].strip()).strip()
        said = f"the connection closed before the SSH banner ({inner})" if inner else "no SSH banner in time"
        return f"{host}: {where}: {said}: a firewall in the way, or sshd not up yet"
    if "known_hosts" in d:
        m = re.search(r"'([^']*known_hosts[^']*)'", d)
        return f"{host}: no known_hosts file ({m.group(1) if m else 'known_hosts'}): the host key cannot be checked"
    if "timed out" in d.lower() or d.lower() == "timeout":
        return f"{host}: {where} timed out after {_connect_timeout()} s"
    if d.startswith("Unable to connect to port") or "refused" in d.lower():
        return f"{host}: {where} refused (nothing listening, or a firewall rejecting)"
    return _clip(f"{host}: {where}: {d[:1].lower() + d[1:]}" if d else f"{host}: {where}: {what.lower()}")


def connect_failures(stderr: str, target: Target) -> dict[str, str]:
    """{host: one-line reason} for every host pyinfra could not connect to."""
    addresses = {h.name: h.address for h in target.hosts}
    found: dict[str, str] = {}
    for line in _ANSI.sub("", stderr).splitlines():
        m = _CONNECT.match(line)
        if m and m["host"] not in found:
            found[m["host"]] = ssh_reason(m["host"], addresses.get(m["host"], ""), m["what"], m["detail"] or "")
    return found


_SSH_LOST = re.compile(r"exit_status=255\b")
_SSH_STDERR = re.compile(r"_stderr=b(['\"])(?P<err>.*?)\1")


def lost_ssh(host: str, message: str) -> str | None:
    """testinfra's ssh backend raises RuntimeError(CommandResult(exit_status=255, ...)) when ssh
    itself failed: the check did not run, so the host was not checked (not a failed check)."""
    if not _SSH_LOST.search(message):
        return None
    m = _SSH_STDERR.search(message)
    err = m["err"].replace("\\r", " ").replace("\\n", " ") if m else ""
    err = err.strip()
    return _clip(f"{host}: checks lost SSH: {err}" if err else f"{host}: checks lost SSH (ssh exited 255)")


def check_hosts(target: Target, run: Runner = subprocess.run, checks: bool = True) -> LayerResult:
    with tempfile.TemporaryDirectory(prefix="llm-platform-dryplan-") as plan_dir:
        return _check_hosts(target, run, checks, plan_dir)


def _check_hosts(target: Target, run: Runner, checks: bool, plan_dir: str) -> LayerResult:
    """The dry run and each host's testinfra suite, side by side (both only read the host): a drift
    check takes as long as the longer of the two, not their sum."""
    t0 = time.monotonic()
    env = {**os.environ, **target.env, dryplan.ENV: plan_dir}
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))

    def dry_run() -> subprocess.CompletedProcess:
        return run([pyinfra, str(target.inventory), "hosts/deploy.py", "--dry", "--json"],
                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)

    def testinfra(h) -> tuple[subprocess.CompletedProcess, Path]:
        junit = Path(str(h.host_data_file) + ".junit.xml")
        junit.unlink(missing_ok=True)
        res = run([sys.executable, "-m", "pytest", "tests/hosts", "-q", "-p", "no:cacheprovider",
                   f"--junitxml={junit}", *h.testinfra_args],
                  cwd=ROOT, env={**env, "LLM_PLATFORM_HOST_DATA": str(h.host_data_file)},
                  capture_output=True, text=True, timeout=3600)
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
            findings.append(Finding("hosts", h, op, "would change", role=role_of(op), kind="operation",
                                    commands=what.get("commands", []), diffs=what.get("diffs", [])))

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
                findings.append(Finding("hosts", h.name, name, "check failed", role=role_of(name), kind="check",
                                        message=msg))
        junit.unlink()
    values = secret_values.known_values(env)
    _scrub(findings, values)
    not_checked = {h: secret_values.scrub(why, values) for h, why in not_checked.items()}
    outcomes = [
        HostOutcome(h.name, NOT_CHECKED, not_checked[h.name]) if h.name in not_checked
        else HostOutcome(h.name, "drift" if any(f.host == h.name for f in findings) else "clean")
        for h in target.hosts
    ]
    reasons = [o.reason for o in outcomes if o.status == NOT_CHECKED]
    status = NOT_CHECKED if reasons else "drift" if findings else "clean"
    return LayerResult("hosts", status, findings, reason="; ".join(reasons), seconds=time.monotonic() - t0,
                       hosts=outcomes)


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
def run_drift(stack: str, *, checks: bool = True, local_settings: Any = None, runner_ip: str | None = None) -> Report:
    """Both layers of ``stack`` (or the local test host). ``runner_ip``: this machine's egress address;
    when given, it is compared with the stack's host.adminCidrs first (operate/reach.py), the verdict
    printed in one line, and the hosts reported as not checked, without trying SSH, when it is outside."""
    from operate import automation
    from operate import targets

    layers: list[LayerResult] = []
    if stack == "local":
        layers.append(LayerResult("cloud", "skipped", reason="the local test host has no cloud layer"))
        layers.append(check_hosts(targets.local(local_settings), checks=checks))
        return Report(stack, layers)
    unreachable = None
    if runner_ip is not None:
        from operate import reach

        verdict = reach.check(stack, runner_ip)
        print(f"reach: {verdict.line}", file=sys.stderr, flush=True)
        if verdict.code == reach.OUTSIDE:
            unreachable = verdict.line
    cloud = check_cloud(stack)
    layers.append(cloud)
    if unreachable:
        layers.append(LayerResult("hosts", NOT_CHECKED, reason=unreachable))
        return Report(stack, layers)
    try:
        target = targets.from_stack(automation.select_stack(stack))
    except automation.Unavailable as exc:
        layers.append(LayerResult("hosts", NOT_CHECKED, reason=flatten(str(exc))))
        return Report(stack, layers)
    if not target.hosts:
        layers.append(LayerResult("hosts", "skipped", reason="no model host in this stack"))
    else:
        layers.append(check_hosts(target, checks=checks))
    return Report(stack, layers)


EXIT_HELP = """exit codes:
  0  clean: every layer and every host checked, nothing differs
  1  drift: everything was checked and something differs (the findings say what)
  2  incomplete: something could not be checked (no credentials, a host unreachable, ...); any
     drift found elsewhere is still listed, and the report's drift_found says so"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/drift", description=__doc__.split("\n\n")[0], epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", help="a stack name (dev, staging, prod, cpu) or 'local'")
    parser.add_argument("--report", help="JSON report path (default .state/drift/STACK.json)")
    parser.add_argument("--markdown", help="also write the report as Markdown to this path")
    parser.add_argument("--no-checks", action="store_true", help="hosts: dry run only, skip the testinfra suite")
    parser.add_argument("--runner-ip", metavar="IP",
                        help="this machine's egress address: outside the stack's host.adminCidrs, the hosts are "
                             "reported as not checked (one line why) without trying SSH (see scripts/reach)")
    args = parser.parse_args(argv)
    extra = {"runner_ip": args.runner_ip} if args.runner_ip is not None else {}
    report = run_drift(args.stack, checks=not args.no_checks, **extra)
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
