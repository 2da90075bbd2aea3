"""Stack files, read as the Pulumi CLI would hand them to the program: ``stacks/Pulumi.STACK.yaml``
(or ``$LLM_PLATFORM_STACKS_DIR``) → ``{"namespace:key": string}`` and the keys that are secrets, with a
recognisable placeholder for every secret (a stack file holds no secret values). The file is read
with bounds, and every way it can be malformed is one line naming the file and line.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from components import NAMESPACE, PROJECT, ROOT, yamlio
from components.config import SettingsError
from components.files import Unreadable, read_bounded
from components.secrets import SECRET_KEYS

# Where the stack files live; LLM_PLATFORM_STACKS_DIR plans stack files from elsewhere (e.g. a proposed change).
STACKS_DIR = Path(os.environ.get("LLM_PLATFORM_STACKS_DIR", ROOT / "stacks"))


def placeholder(key: str) -> str:
    """The value a secret gets offline: recognisable, so tests can prove it never leaks. The host
    key must parse (the program derives its public half): a fixed key, derived from the text."""
    text = f"offline-placeholder-{key}-3f9c1e"
    return _placeholder_host_key(text) if key == "hostSshKey" else text


@functools.lru_cache(maxsize=None)
def _placeholder_host_key(seed: str) -> str:
    from components import hostkeys

    return hostkeys.from_seed(seed.encode())


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def _to_config_string(value: Any) -> str:
    """What the Pulumi CLI hands a program for a stack-file value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# Bounds of a stack file (the real ones: a few KB, a few hundred values, six levels deep). A YAML
# alias is a reference: a file of a few hundred bytes can stand for 10**9 values once expanded (a
# "billion laughs"), which the plan would expand into JSON text until memory runs out.
MAX_STACK_FILE_BYTES = 1 << 20
MAX_STACK_FILE_VALUES = 20_000  # counted with every alias expanded
MAX_STACK_FILE_DEPTH = 32
MAX_NUMBER_CHARS = 1000  # int() of a 5000-digit number raises ValueError (over 4300 digits), not a YAML error
# What a stack file holds: JSON's types (Pulumi hands a program strings and JSON). YAML's others
# (a date, a set, bytes...) become objects JSON cannot write.
YAML_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


def _check_nodes(root: yamlio.Node) -> None:
    """Refuse a composed document over the bounds, before anything is built from it (SettingsError
    with "LINE: what")."""
    sizes: dict[int, int] = {}

    def size(node: yamlio.Node, depth: int) -> int:
        line = node.start_mark.line + 1
        if depth > MAX_STACK_FILE_DEPTH:
            raise SettingsError(
                [f"{line}: nested more than {MAX_STACK_FILE_DEPTH} levels deep (or an alias inside itself)"]
            )
        tag = yamlio.tag_of(node)
        if tag not in YAML_TAGS:
            name = tag.removeprefix("tag:yaml.org,2002:")
            raise SettingsError(
                [
                    f"{line}: a YAML {name} value; a stack file holds strings, numbers, booleans, "
                    "lists and mappings only (quote it to make it a string)"
                ]
            )
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
            raise SettingsError([f"{line}: a number of {len(node.value)} characters; no setting takes one that large"])
        if isinstance(node, yamlio.MappingNode):
            for key, _ in node.value:
                if not isinstance(key, yamlio.ScalarNode):  # ruamel would make it a tuple; PyYAML refused it
                    raise SettingsError(
                        [f"{key.start_mark.line + 1}: a list or mapping as a key; a stack file's keys are strings"]
                    )
        if id(node) not in sizes:
            children = (
                [n for pair in node.value for n in pair]
                if isinstance(node, yamlio.MappingNode)
                else (node.value if isinstance(node, yamlio.SequenceNode) else [])
            )
            sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in children)
        return sizes[id(node)]

    total = size(root, 0)
    if total > MAX_STACK_FILE_VALUES:
        raise SettingsError(
            [
                f"{root.start_mark.line + 1}: {total} values once its aliases are expanded; "
                f"a stack file holds at most {MAX_STACK_FILE_VALUES}"
            ]
        )


def _parse_yaml(text: str) -> Any:
    """YAML's two steps (compose, construct), with the bounds checked between them; a key given twice
    (which ruamel.yaml refuses itself) named with both of its lines, never with its values."""
    node, reader = yamlio.compose(text)
    if node is None:
        return None
    _check_nodes(node)
    try:
        return yamlio.construct(node, reader)
    except yamlio.DuplicateKeyError as exc:
        key, line, first = yamlio.duplicate_key(exc, node)
        raise SettingsError([f"{line}: duplicate key {key!r} (first on line {first}); a key is given once"]) from None


def load_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file; every way it can be malformed is one line naming the
    file and, where YAML knows it, the line."""
    try:
        data = read_bounded(path, MAX_STACK_FILE_BYTES)
    except Unreadable as exc:
        raise SettingsError([f"{path}: {exc}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError([f"{path}:{line}: not UTF-8 (byte {exc.start}); save the file as UTF-8"]) from None
    try:
        doc = _parse_yaml(text)
    except SettingsError as exc:
        raise SettingsError([f"{path}:{exc.problems[0]}"]) from None
    except RecursionError:  # YAML is composed recursively: deeper than Python's stack, before _check_nodes
        raise SettingsError([f"{path}: nested more than {MAX_STACK_FILE_DEPTH} levels deep"]) from None
    except yamlio.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        ctx, ctx_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if ctx and ctx_mark is not None and mark is not None and ctx_mark.line != mark.line:
            what += f" ({ctx} started on line {ctx_mark.line + 1})"
        raise SettingsError([f"{where}: not valid YAML: {what}"]) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SettingsError([f"{path}:1: must be a mapping with a 'config:' key, not a {type(doc).__name__}"])
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError([f"{path}: 'config:' must be a mapping of keys to values, not a {type(config).__name__}"])
    return config


def read_stack_file(stack: str, overrides: dict[str, Any] | None = None) -> tuple[dict[str, str], set[str]]:
    """Stack file → (``{"ns:key": str}`` as the CLI would pass it, with placeholders for secrets;
    the keys that are Pulumi secrets: ``secure:`` in the file, placeholders and overridden secrets)."""
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names()) or "none"
        raise FileNotFoundError(f"no stack file {path} (stacks: {known})")
    raw: dict[str, str] = {}
    secure: set[str] = set()
    for key, value in load_stack_file(path).items():
        full = key if ":" in str(key) else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            raw[full] = placeholder(full.split(":", 1)[1])
            secure.add(full)
        else:
            raw[full] = _to_config_string(value)
    removed = set()
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if value is None:  # an override of None removes the key (e.g. to leave a secret unset)
            raw.pop(full, None)
            removed.add(full)
        else:
            raw[full] = _to_config_string(value)
            if full.split(":", 1)[1] in SECRET_KEYS:
                secure.add(full)  # as `pulumi config set --secret` would
    for key in SECRET_KEYS:  # placeholders for every declared secret the file does not carry
        full = f"{NAMESPACE}:{key}"
        if full not in removed and full not in raw:
            raw[full] = placeholder(key)
            secure.add(full)
    return raw, secure
