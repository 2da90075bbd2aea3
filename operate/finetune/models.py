"""Record a fine-tuned Ollama model where the next converge keeps it.

* A cloud stack: ``stacks/Pulumi.<stack>.yaml``, ``llm-platform:host`` → ``ollama.models``. The file
  is edited in place, line by line, so its comments and layout stay (a flow list ``[a, b]`` gets
  ``, new``; a block list gets a ``- new`` line; a missing ``models``/``ollama`` key is added with
  the default models first, so adding one model never drops the defaults). The result is re-read
  and must equal the old config plus the one model, else nothing is written.
* The local test host: ``<state dir>/extra-ollama-models.json`` (a JSON list), read by the local
  inventory generation (testhost/access.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from components import yamlio

HOST_KEY = "llm-platform:host"
EXTRA_MODELS_FILE = "extra-ollama-models.json"


class StackFileError(Exception):
    pass


def default_models() -> list[str]:
    from components.host_settings import OllamaSettings

    return list(OllamaSettings.model_fields["models"].default)


def _scalar(name: str) -> str:
    """``name`` as a YAML flow-sequence item: plain when it reads back as itself, else quoted."""
    try:
        if yamlio.load(f"[{name}]") == [name]:
            return name
    except yamlio.YAMLError:
        pass
    return json.dumps(name)


def _models_of(doc: Any) -> list[str] | None:
    try:
        models = doc["config"][HOST_KEY]["ollama"]["models"]
    except (KeyError, TypeError):
        return None
    return list(models) if isinstance(models, list) else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the last content line of the block that follows ``lines[start]`` (deeper than ``indent``)."""
    end = start + 1
    i = start + 1
    while i < len(lines):
        if _is_content(lines[i]):
            if _indent(lines[i]) <= indent:
                break
            end = i + 1
        i += 1
    return end


def _child_indent(lines: list[str], start: int, end: int, parent: int) -> int:
    for i in range(start + 1, end):
        if _is_content(lines[i]):
            return _indent(lines[i])
    return parent + 2


def _find_key(lines: list[str], start: int, end: int, indent: int, key: str) -> int | None:
    pat = re.compile(rf"^ {{{indent}}}{re.escape(key)}:(\s|$)")
    for i in range(start, end):
        if pat.match(lines[i]):
            return i
    return None


def _split_comment(value: str) -> tuple[str, str]:
    m = re.search(r"\s+#.*$", value)
    return (value[: m.start()], value[m.start() :]) if m else (value, "")


def add_model_text(text: str, model: str) -> tuple[str, bool]:
    """(new text, changed): ``model`` appended to ``llm-platform:host`` → ``ollama.models``."""
    try:
        doc = yamlio.load(text)
    except yamlio.YAMLError as e:
        raise StackFileError(f"not valid YAML: {yamlio.describe(e)}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("config"), dict)
        or not isinstance(doc["config"].get(HOST_KEY), dict)
    ):
        raise StackFileError(f"no '{HOST_KEY}' block")
    current = _models_of(doc)
    if current is not None and model in current:
        return text, False
    expected = current + [model] if current is not None else default_models() + [model]
    if model in expected[:-1]:
        expected = expected[:-1]

    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.replace("\r\n", "\n").split("\n")
    host_i = next((i for i, ln in enumerate(lines) if re.match(rf"^ *{re.escape(HOST_KEY)}:\s*(#.*)?$", ln)), None)
    if host_i is None:
        raise StackFileError(f"'{HOST_KEY}' is not a block mapping on its own line")
    host_ind = _indent(lines[host_i])
    host_end = _block_end(lines, host_i, host_ind)
    child = _child_indent(lines, host_i, host_end, host_ind)
    item = _scalar(model)

    ol_i = _find_key(lines, host_i + 1, host_end, child, "ollama")
    if ol_i is None:
        defaults = ", ".join(_scalar(m) for m in default_models())
        items = f"{defaults}, {item}" if defaults else item
        lines[host_end:host_end] = [f"{' ' * child}ollama:", f"{' ' * (child + 2)}models: [{items}]"]
    else:
        rest = lines[ol_i].split(":", 1)[1]
        if _split_comment(rest)[0].strip():
            raise StackFileError("'ollama' is not a block mapping")
        ol_end = _block_end(lines, ol_i, child)
        gchild = _child_indent(lines, ol_i, ol_end, child)
        m_i = _find_key(lines, ol_i + 1, ol_end, gchild, "models")
        if m_i is None:
            defaults = ", ".join(_scalar(m) for m in default_models())
            items = f"{defaults}, {item}" if defaults else item
            lines.insert(ol_i + 1, f"{' ' * gchild}models: [{items}]")
        else:
            head, value = lines[m_i].split(":", 1)
            val, comment = _split_comment(value)
            v = val.strip()
            if v.startswith("[") and v.endswith("]"):
                inner = v[1:-1].strip()
                new = f"[{inner}, {item}]" if inner else f"[{item}]"
                lines[m_i] = f"{head}: {new}{comment}"
            elif not v:
                items = []
                for i in range(m_i + 1, len(lines)):
                    if not _is_content(lines[i]):
                        continue
                    if _indent(lines[i]) >= gchild and lines[i].lstrip().startswith("- "):
                        items.append(i)
                        continue
                    break
                if items:
                    last = items[-1]
                    ind = _indent(lines[last])
                    lines.insert(last + 1, f"{' ' * ind}- {item}")
                else:
                    lines[m_i] = f"{head}: [{item}]{comment}"
            else:
                raise StackFileError("'ollama.models' is neither a [flow] nor a block list")
    new_text = newline.join(lines)
    check = yamlio.load(new_text)
    if _models_of(check) != expected:
        raise StackFileError("the edit did not read back as expected")
    before, after = json.loads(json.dumps(doc)), json.loads(json.dumps(check))
    after["config"][HOST_KEY]["ollama"]["models"] = None
    if isinstance(before["config"][HOST_KEY].get("ollama"), dict):
        before["config"][HOST_KEY]["ollama"]["models"] = None
    else:
        before["config"][HOST_KEY]["ollama"] = {"models": None}
    if before != after:
        raise StackFileError("the edit changed more than the model list")
    return new_text, True


def add_model_to_stack_file(path: Path, model: str) -> bool:
    """Edit the stack file in place; True if it changed. Raises StackFileError (nothing written)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise StackFileError(f"{path}: {e.strerror or e}") from None
    try:
        new, changed = add_model_text(text, model)
    except StackFileError as e:
        raise StackFileError(f"{path}: {e}; add {model!r} to {HOST_KEY} → ollama.models by hand") from None
    if changed:
        _atomic_write(path, new)
    return changed


def add_local_model(state_dir: Path, model: str) -> tuple[Path, bool]:
    """Append ``model`` to ``<state dir>/extra-ollama-models.json``; (path, changed)."""
    path = Path(state_dir) / EXTRA_MODELS_FILE
    models = read_local_models(state_dir)
    if model in models:
        return path, False
    models.append(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(models, indent=2) + "\n")
    return path, True


def read_local_models(state_dir: Path) -> list[str]:
    """The extra models recorded for the local test host (empty when none or unreadable)."""
    try:
        models = json.loads((Path(state_dir) / EXTRA_MODELS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [m for m in models if isinstance(m, str)] if isinstance(models, list) else []


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` in one step, keeping its mode (0644 for a new file)."""
    from testhost.util import atomic_write  # (testhost.access reads this module's model list)

    atomic_write(path, text, path.stat().st_mode & 0o777 if path.exists() else 0o644)
