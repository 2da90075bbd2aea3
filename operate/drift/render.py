"""The drift report written out for people: ``text`` for the terminal and ``markdown`` for GitHub (a
file, the job summary). Everything that came from a host, a provider or a command is escaped:
control characters shown as escapes, and in Markdown only ever inside code.
"""

from __future__ import annotations

import re

from operate.drift.report import LABELS, NOT_CHECKED, Report, grouped


def text(report: Report) -> str:
    """The report for a terminal: the headline, each layer's status and time, the findings by host and role."""
    status, _, rest = report.headline().partition(": ")
    lines = [
        f"drift report for {report.stack}: {status.upper()} (exit {report.exit_code})" + (f": {rest}" if rest else "")
    ]
    for layer in report.layers:
        extra = f" ({printable(layer.reason)})" if layer.reason and layer.status != NOT_CHECKED else ""
        lines.append(f"  {layer.layer:<6} {LABELS.get(layer.status, layer.status):<11} {layer.seconds:6.1f}s{extra}")
        lines += [f"    not checked: {printable(x['reason'])}" for x in layer.not_checked()]
        for (host, role), group in grouped(layer.findings):
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


def markdown(report: Report) -> str:
    """The report as GitHub Markdown. Everything that came from a host, a provider or a command's
    output is code: multi-line text in a fenced block whose fence is longer than any backtick
    run inside it, one-line text in a code span (no heading, link, HTML or table cell can come
    out of it); control characters are shown escaped."""
    icon = {"clean": "✅", "drift": "⚠️", "incomplete": "❌"}[report.status]
    out = [
        f"## {icon} Drift: `{report.stack}` — {report.headline()}",
        "",
        "| layer | status | seconds | note |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {layer.layer} | {LABELS.get(layer.status, layer.status)} | {layer.seconds:.1f} "
        f"| {md_code(layer.reason, table=True)} |"
        for layer in report.layers
    ]
    if report.not_checked:
        out += ["", "### not checked (exit 2, whatever else was found)"]
        out += [f"- {x['layer']}: {md_code(x['reason'])}" for x in report.not_checked]
    for layer in report.layers:
        for (host, role), group in grouped(layer.findings):
            out += ["", f"### {layer.layer}" + "".join(f" · {md_name(x)}" for x in (host, role) if x)]
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
