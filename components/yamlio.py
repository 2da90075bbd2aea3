"""The project's one YAML library, ruamel.yaml, set up once for reading and writing plain data.

Reading (``load``, or ``compose`` then ``construct`` for a caller that checks the document between
the two): ruamel's safe loader, pure Python, YAML 1.2 as the readers of our files read it (the
Pulumi CLI, docker compose and GitHub Actions all use Go's yaml.v3: ``on``/``yes`` are strings, not
booleans as PyYAML read them). A key given twice in one mapping is refused by ruamel itself
(``DuplicateKeyError``, ruamel.yaml 0.19.1's default for its ``YAML()`` API); its message quotes
both values, so callers report it with ``duplicate_key`` instead.

Writing (``dump``): block style, keys in the order given, and a string that a YAML 1.1 reader
(cloud-init, netplan, LLaMA-Factory: PyYAML) or a 1.2 one would take for something else (``yes``,
``on``, ``0777``, ``1:20``, ``0o17``) quoted, as PyYAML's ``safe_dump`` quoted the 1.1 ones. No
``%YAML`` line. Not for cloud-init user data: see components/cloud_init.py.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

__all__ = [
    "DuplicateKeyError",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "YAMLError",
    "compose",
    "construct",
    "describe",
    "dump",
    "duplicate_key",
    "load",
    "round_trip",
    "tag_of",
]


def _reader() -> YAML:
    return YAML(typ="safe", pure=True)  # one per call: a YAML object keeps per-document state


def load(text: str) -> Any:
    """The document in ``text`` as plain Python values (dict, list, str, int, float, bool, None and
    YAML's dates, sets...); raises ``YAMLError`` (``DuplicateKeyError`` for a key given twice)."""
    return _reader().load(text)


def compose(text: str) -> tuple[Node | None, YAML]:
    """The single document's node tree (aliases are the same node object) and the reader that
    composed it, for ``construct``; ``None`` for an empty document."""
    yaml = _reader()
    return yaml.compose(text), yaml


def construct(node: Node, yaml: YAML) -> Any:
    """Build the values of a composed node tree (``load``'s second step)."""
    return yaml.constructor.construct_document(node)


def tag_of(node: Node) -> str:
    """The node's resolved tag, e.g. ``tag:yaml.org,2002:int``."""
    return node.tag.value if hasattr(node.tag, "value") else str(node.tag)


def duplicate_key(exc: DuplicateKeyError, root: Node) -> tuple[str, int, int]:
    """(the key, its line, the line that gave it first), 1-based, for ``exc`` raised while
    constructing ``root``; no value is quoted (ruamel's own message quotes both)."""
    line = exc.problem_mark.line + 1
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            keys = [k for k, _ in node.value]
            dup = next((k for k in keys if k.start_mark.index == exc.problem_mark.index), None)
            if dup is not None:
                first = next(
                    (k for k in keys if isinstance(k, ScalarNode) and k.value == getattr(dup, "value", None)), dup
                )
                return str(getattr(dup, "value", "?")), line, first.start_mark.line + 1
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return "?", line, line


def describe(exc: YAMLError) -> str:
    """``exc`` on one line, with its line number where YAML knows it; a duplicate key's values unquoted."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    if isinstance(exc, DuplicateKeyError):
        return f"{where}a key given twice in one mapping"
    return where + " ".join(str(getattr(exc, "problem", None) or exc).split())


class _PlainOnlyIfStringForAll(VersionedResolver):
    """Decides which strings ``dump`` may write plain: only those that both YAML 1.1 readers (cloud-init,
    netplan, LLaMA-Factory: PyYAML) and YAML 1.2 readers (ours, yaml.v3) read back as strings."""

    @property
    def processing_version(self) -> Any:
        return (1, 1)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        tag = super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0] and tag == self.DEFAULT_SCALAR_TAG:
            return _YAML_1_2.resolve(kind, value, implicit)
        return tag


_YAML_1_2 = VersionedResolver(version=(1, 2))


def dump(doc: Any, *, allow_unicode: bool = False, width: int | None = None) -> str:
    """``doc`` (plain values) as a block-style YAML document, in PyYAML ``safe_dump``'s form."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = _PlainOnlyIfStringForAll
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # ruamel's safe dumper sorts keys by default
    yaml.allow_unicode = allow_unicode
    if width is not None:
        yaml.width = width
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def round_trip() -> YAML:
    """A round-trip reader/writer for editing a file the project commits (a stack file): comments,
    key order and quotes stay, and so does the layout the stack files use (mappings indented by 2, a
    block sequence's dash 2 in from its key, long lines unfolded). Every committed stack file reads and
    writes back byte for byte (tests/unit/test_yamlio.py), so an edit changes only its own lines.
    (ruamel's defaults put the dash at its key's column: ``scripts/pin`` re-indented sshPublicKeys.)"""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml
