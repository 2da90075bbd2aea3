"""What a dry run would do, per operation: the commands and, for files, a unified diff.

pyinfra's ``--dry --json`` names the operations that would change but not what they would run.
When ``LLM_PLATFORM_DRY_PLAN_DIR`` is set (``scripts/drift`` sets it for its dry run), the end of
``hosts/deploy.py`` calls ``write()``, which asks each changing operation for its commands (pyinfra
generates them from the facts it already gathered; nothing runs on the host) and writes
``<dir>/<host>.json``: ``[{"name", "commands", "diffs"}]``.

Secrets never appear: files written by ``hosts.file_ops.secret_file`` (they upload through
``UPLOAD_DIR``) show "content differs (secret: not shown)", command arguments pyinfra masks stay
masked, and every secret value the operator's environment holds is replaced by ``***`` in the
whole plan as a last line of defence.
"""

from __future__ import annotations

import difflib
import io
import json
import os
from pathlib import Path
from typing import Any

from hosts import secret_values

# (pyinfra is imported inside the functions: operate.drift reads ENV without loading pyinfra)
ENV = "LLM_PLATFORM_DRY_PLAN_DIR"
MAX_DIFF_LINES = 40
SECRET_DIFF = "content differs (secret: not shown)"


def _desired(src: Any) -> list[str] | None:
    if isinstance(src, (io.StringIO, io.BytesIO)):
        value = src.getvalue()
        value = value.decode(errors="replace") if isinstance(value, bytes) else value
    elif isinstance(src, (str, os.PathLike)) and Path(src).is_file():
        value = Path(src).read_text(errors="replace")
    else:
        return None
    return value.splitlines(keepends=True)


def file_diff(dest: str, current: list[str] | None, desired: list[str] | None) -> str:
    """A unified diff of ``dest`` (at most MAX_DIFF_LINES lines), or a one-line summary."""
    if desired is None:
        return f"{dest}: content differs"
    if current is None:
        return f"{dest}: new file ({len(desired)} lines)"
    lines = list(
        difflib.unified_diff(
            [line + "\n" for line in current], desired, f"{dest} (on the host)", f"{dest} (deploy)", n=1
        )
    )
    if not lines:
        return f"{dest}: same content (owner or mode differs)"
    lines = [line.rstrip("\n") for line in lines]
    if len(lines) > MAX_DIFF_LINES:
        lines = lines[:MAX_DIFF_LINES] + [f"... {len(lines) - MAX_DIFF_LINES} more diff lines"]
    return "\n".join(lines)


def describe(command: Any, host: Any) -> tuple[str, str | None]:
    """(command line, diff or None) for one pyinfra command."""
    from pyinfra.api.command import FileUploadCommand, FunctionCommand, StringCommand
    from pyinfra.facts.files import FileContents

    from hosts.file_ops import UPLOAD_DIR, WriteFile

    if isinstance(command, WriteFile):
        current = host.get_fact(FileContents, path=command.dest)
        return f"write {command.dest}", file_diff(command.dest, current, _desired(io.BytesIO(command.content)))
    if isinstance(command, FileUploadCommand):
        if str(command.remote_temp_filename or "").startswith(UPLOAD_DIR + "/"):
            return f"upload {command.dest} (secret)", f"{command.dest}: {SECRET_DIFF}"
        current = host.get_fact(FileContents, path=command.dest)
        return f"upload {command.dest}", file_diff(command.dest, current, _desired(command.src))
    if isinstance(command, StringCommand):
        return command.get_masked_value(), None
    if isinstance(command, FunctionCommand):
        return f"(python) {getattr(command.function, '__name__', 'function')}", None
    return type(command).__name__, None


def op_name(meta: Any) -> str:
    """The name pyinfra's JSON plan gives an operation (``pyinfra_cli.prints.pretty_op_name``, which
    cannot be imported in-process), so operate.drift can match the two."""
    name = list(meta.names)[0]
    return f"{name} ({', '.join(str(a) for a in meta.args)})" if meta.args else name


def plan(state: Any, host: Any) -> list[dict[str, Any]]:
    """The host's operations that would definitely change (no ``_if``), with commands and diffs."""
    values = secret_values.known_values()
    out = []
    for op_hash in state.get_op_order():
        if op_hash not in state.ops[host]:
            continue
        op_data = state.get_op_data_for_host(host, op_hash)
        if not op_data.operation_meta.will_change or op_data.global_arguments.get("_if"):
            continue
        commands, diffs = [], []
        for command in op_data.command_generator():
            line, diff = describe(command, host)
            commands.append(secret_values.scrub(line, values))
            if diff:
                diffs.append(secret_values.scrub(diff, values))
        out.append({"name": op_name(state.op_meta[op_hash]), "commands": commands, "diffs": diffs})
    return out


def write(state: Any, host: Any) -> None:
    """Write the plan of ``host`` when ``LLM_PLATFORM_DRY_PLAN_DIR`` is set (else nothing)."""
    where = os.environ.get(ENV)
    if not where:
        return
    path = Path(where) / f"{host.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan(state, host), indent=2) + "\n")
