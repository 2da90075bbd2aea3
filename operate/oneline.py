"""A command's output, or a multi-line error, as the one line a report or an error message shows:
the last line, pyinfra's own verdict, or the whole flattened, without Python tracebacks or colour
codes, clipped."""

from __future__ import annotations

import re

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TRACEBACK_NOISE = re.compile(
    r"^(Traceback \(most recent call last\):|During handling of the above exception|"
    r"The above exception was the direct cause|Exception \(client\):|\s*[\^~]+\s*$)"
)
MAX_REASON = 300


def clip(text: str, limit: int = MAX_REASON) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lines_without_tracebacks(text: str) -> list[str]:
    """The lines of a command's output that are not part of a Python traceback (paramiko logs its
    own from its transport thread), colour codes removed."""
    out, in_traceback = [], False
    for raw in ANSI.sub("", text).splitlines():
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
    lines = lines_without_tracebacks(text)
    for line in reversed(lines):
        if line.startswith("--> pyinfra error:"):
            return clip(line.removeprefix("--> "))
    return clip(lines[-1].removeprefix("--> ")) if lines else ""


def flatten(text: str) -> str:
    """A multi-line message (a Pulumi diagnostic) as one line, tracebacks left out."""
    return clip(" ".join(lines_without_tracebacks(text)))


def last_line(text: str | None) -> str:
    """The last non-blank line of a command's output, stripped ("" when there is none)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
