"""Read and validate a fine-tuning dataset locally, before anything leaves the machine.

Formats (LLaMA-Factory's names):

* **alpaca**: objects with ``instruction`` (str), ``output`` (str), optional ``input`` (str), optional
  ``system`` (str), optional ``history`` (list of ``[prompt, response]`` string pairs).
* **sharegpt**: objects with ``conversations``: a list of turns ``{"from": "human"|"gpt"|"system",
  "value": str}``; an optional system turn first, then human/gpt alternating, ending with gpt.
  Also accepted and normalised to that shape: ``messages`` with ``{"role": "user"|"assistant"|"system",
  "content": str}`` turns (the export of the company's PostgreSQL chat history), and a top-level
  ``system`` string (moved into a leading system turn).

The file is a JSON array of objects or JSON Lines (one object per line). Every bad row is reported
with where it is: ``line N`` for JSON Lines, ``index I (line N)`` for a JSON array (``I`` is the
0-based array index, ``N`` the line where the object starts). Nothing is dropped silently.

Checks: schema (required fields, types, unknown roles, alternation), empty rows (blank instruction,
output or turn), duplicates (same content after collapsing whitespace and case), over-long rows
(token estimate above the context length), plus a deterministic seeded train/eval split.

Token estimate: ``ceil(characters / 3.5)`` over all the text of a row (system, prompts, answers,
history). 3.5 characters per token is typical of the BPE tokenizers of Qwen/Llama on English prose;
code and non-Latin scripts produce more tokens per character, so treat the estimate as a lower bound
there. No tokenizer is downloaded.
"""

from __future__ import annotations

import json
import math
import os
import random
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHARS_PER_TOKEN = 3.5
DEFAULT_SEED = 42
# What a row must fit (tokens, estimated) and the share held out for evaluation, unless told otherwise;
# a training run's cutoff_len and val_size default to the same (training.TrainParams).
DEFAULT_MAX_TOKENS = 2048
DEFAULT_EVAL_RATIO = 0.1
FORMATS = ("alpaca", "sharegpt")

ALPACA_FIELDS = {"instruction", "input", "output", "system", "history"}
SHAREGPT_FIELDS = {"conversations", "messages", "system"}
# Role names accepted in a turn → the ShareGPT tag they become.
ROLE_MAP = {
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "system": "system",
}


class DatasetError(Exception):
    """The file cannot be read as a dataset at all (unreadable, invalid JSON array, no rows...)."""


def estimate_tokens(chars: int) -> int:
    """The documented token estimate: ceil(chars / 3.5)."""
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


@dataclass
class Row:
    index: int  # 0-based position among the rows (array index, or n-th non-blank JSONL line)
    line: int  # 1-based line where the row starts
    data: Any


@dataclass
class Problem:
    index: int
    line: int
    kind: str  # json | schema | encoding | empty | duplicate | too_long
    message: str
    container: str = "jsonl"

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.container == "jsonl" else f"index {self.index} (line {self.line})"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    path: str
    fmt: str
    container: str  # "jsonl" | "array"
    total: int
    rows: list[dict] = field(default_factory=list)  # the good rows, normalised, in file order
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)  # estimate per good row
    max_tokens: int = DEFAULT_MAX_TOKENS
    eval_ratio: float = DEFAULT_EVAL_RATIO
    seed: int = DEFAULT_SEED
    train: list[int] = field(default_factory=list)  # indices into ``rows``
    eval: list[int] = field(default_factory=list)
    normalised_from_messages: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_rows(self) -> int:
        return len({p.index for p in self.problems})

    def summary(self) -> str:
        kinds = Counter(p.kind for p in self.problems)
        container = "JSON Lines" if self.container == "jsonl" else "JSON array"
        lines = [f"{self.path}: {self.fmt} ({container}), {self.total} rows"]
        detail = ", ".join(f"{k.replace('_', '-')} {n}" for k, n in sorted(kinds.items()))
        lines.append(f"  good {len(self.rows)}, bad {self.bad_rows}" + (f" ({detail})" if detail else ""))
        if self.normalised_from_messages:
            lines.append(f"  {self.normalised_from_messages} rows normalised from messages/role/content to sharegpt")
        if self.tokens:
            lines.append(
                f"  tokens (estimate, ceil(chars/{CHARS_PER_TOKEN})): max {max(self.tokens)}, "
                f"mean {sum(self.tokens) // len(self.tokens)}, total {sum(self.tokens)}; limit {self.max_tokens}"
            )
        lines.append(
            f"  split (seed {self.seed}, eval ratio {self.eval_ratio:g}): "
            f"train {len(self.train)}, eval {len(self.eval)}" + ("" if self.ok else " (of the good rows)")
        )
        return "\n".join(lines)


# --- reading --------------------------------------------------------------------------------------


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _col_of(text: str, pos: int) -> int:
    return pos - (text.rfind("\n", 0, pos) + 1) + 1


# A dataset bigger than this is refused before it is read into memory (LLaMA-Factory fine-tunes on
# thousands of rows, not gigabytes; /dev/zero would otherwise be read until memory runs out).
MAX_DATASET_BYTES = 512 * 1024 * 1024


def _read_text(path: Path) -> str:
    too_big = f"{path}: larger than {MAX_DATASET_BYTES // (1024 * 1024)} MiB; split it or trim it"
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                raise DatasetError(f"{path}: a device, not a dataset file")
            if stat.S_ISREG(st.st_mode) and st.st_size > MAX_DATASET_BYTES:
                raise DatasetError(too_big)
            raw = f.read(MAX_DATASET_BYTES + 1)  # a pipe has no size: read up to the cap
        if len(raw) > MAX_DATASET_BYTES:
            raise DatasetError(too_big)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, not a dataset file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        text = raw[: e.start].decode("utf-8", errors="replace")
        raise DatasetError(
            f"{path}: not UTF-8 text (invalid byte at line {_line_of(text, len(text))}, col {_col_of(text, len(text))})"
        ) from None


TOO_MANY_DIGITS = f"invalid JSON: a number of more than {sys.get_int_max_str_digits()} digits"


def read_rows(path: str | Path, text: str | None = None) -> tuple[str, list[Row], list[Problem]]:
    """(container, rows, problems). A JSON array must parse as a whole (else DatasetError with
    line/col); JSON Lines are parsed line by line and an invalid line is a problem of that line."""
    path = Path(path)
    if text is None:
        text = _read_text(path)
    stripped = text.lstrip()
    if not stripped:
        raise DatasetError(f"{path}: empty file")
    decoder = json.JSONDecoder()
    if stripped[0] == "[":
        return "array", _read_array(path, text, decoder), []
    rows: list[Row] = []
    problems: list[Problem] = []
    index = 0
    # JSON Lines are separated by \n only (jsonlines.org); str.splitlines would also split inside
    # strings at U+2028, U+0085, \x1c... which JSON allows unescaped.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(Problem(index, lineno, "json", f"invalid JSON at col {e.colno}: {e.msg}"))
            index += 1
            continue
        except RecursionError:
            problems.append(Problem(index, lineno, "json", "nested too deeply"))
            index += 1
            continue
        except ValueError:  # after JSONDecodeError, its subclass: int() refuses a number this long
            problems.append(Problem(index, lineno, "json", TOO_MANY_DIGITS))
            index += 1
            continue
        rows.append(Row(index, lineno, obj))
        index += 1
    return "jsonl", rows, problems


def _read_array(path: Path, text: str, decoder: json.JSONDecoder) -> list[Row]:
    def fail(msg: str, pos: int) -> DatasetError:
        return DatasetError(f"{path}: invalid JSON at line {_line_of(text, pos)}, col {_col_of(text, pos)}: {msg}")

    def ws(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    pos = ws(ws(0) + 1)  # past '['
    rows: list[Row] = []
    if pos < len(text) and text[pos] == "]":
        end = ws(pos + 1)
        if end != len(text):
            raise fail("extra data after the array", end)
        return rows
    while True:
        if pos >= len(text):
            raise fail("unexpected end of file inside the array (missing ']')", len(text))
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise fail(e.msg, e.pos) from None
        except RecursionError:
            raise fail("nested too deeply", pos) from None
        except ValueError:  # after JSONDecodeError, its subclass: int() refuses a number this long
            raise fail(TOO_MANY_DIGITS.removeprefix("invalid JSON: "), pos) from None
        rows.append(Row(len(rows), _line_of(text, pos), obj))
        pos = ws(end)
        if pos >= len(text):
            raise fail("unexpected end of file inside the array (missing ']')", len(text))
        if text[pos] == ",":
            pos = ws(pos + 1)
            if pos < len(text) and text[pos] == "]":
                raise fail("trailing comma before ']'", pos)
            continue
        if text[pos] == "]":
            end = ws(pos + 1)
            if end != len(text):
                raise fail("extra data after the array", end)
            return rows
        raise fail("expected ',' or ']' after an array element", pos)


# --- checks ---------------------------------------------------------------------------------------


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(v), type(v).__name__
    )


def detect_format(rows: list[Row]) -> str:
    for r in rows:
        if isinstance(r.data, dict):
            keys = set(r.data)
            if keys & {"conversations", "messages"}:
                return "sharegpt"
            if keys & {"instruction", "output"}:
                return "alpaca"
    raise DatasetError(
        "cannot tell the dataset format: no row has instruction/output (alpaca) or conversations/messages "
        "(sharegpt); pass --format alpaca|sharegpt"
    )


def _shown(name: str) -> str:
    """A name from the file as it may be printed: quoted, control and invisible characters escaped
    (repr: an ESC would drive the terminal, a CR or U+202E disguise the line), at most 80 characters."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _lone_surrogate(row: dict) -> bool:
    """JSON's \\ud800 escapes decode to a lone UTF-16 surrogate, which no UTF-8 file can hold."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def check_alpaca(obj: Any) -> tuple[list[tuple[str, str]], dict | None, int]:
    """(problems as (kind, message), normalised row or None, text characters)."""
    if not isinstance(obj, dict):
        return [("schema", f"expected an object, got {_type_name(obj)}")], None, 0
    if "conversations" in obj or "messages" in obj:
        return [("schema", "looks like a sharegpt row (conversations/messages) in an alpaca dataset")], None, 0
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    for key in ("instruction", "output"):
        if key not in obj:
            problems.append(("schema", f"missing field '{key}'"))
        elif not isinstance(obj[key], str):
            problems.append(("schema", f"field '{key}' must be a string, got {_type_name(obj[key])}"))
        elif not obj[key].strip():
            problems.append(("empty", f"empty {key}"))
        else:
            out[key] = obj[key]
    for key in ("input", "system"):
        v = obj.get(key)
        if v is None:
            out[key] = ""
        elif not isinstance(v, str):
            problems.append(("schema", f"field '{key}' must be a string, got {_type_name(v)}"))
        else:
            out[key] = v
    hist = obj.get("history")
    out["history"] = []
    if hist is not None:
        if not isinstance(hist, list):
            problems.append(
                ("schema", f"field 'history' must be an array of [prompt, response] pairs, got {_type_name(hist)}")
            )
        else:
            for i, pair in enumerate(hist):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    problems.append(("schema", f"history[{i}] must be a [prompt, response] pair of strings"))
                    break
            else:
                out["history"] = [list(p) for p in hist]
    if problems:
        return problems, None, 0
    chars = sum(len(out[k]) for k in ("instruction", "input", "output", "system")) + sum(
        len(a) + len(b) for a, b in out["history"]
    )
    return [], out, chars


def check_sharegpt(obj: Any) -> tuple[list[tuple[str, str]], dict | None, int, bool]:
    """(problems, normalised row {"conversations": [...]} or None, text characters, came from messages)."""
    if not isinstance(obj, dict):
        return [("schema", f"expected an object, got {_type_name(obj)}")], None, 0, False
    if "conversations" in obj and "messages" in obj:
        return [("schema", "has both 'conversations' and 'messages'; keep one")], None, 0, False
    key = "conversations" if "conversations" in obj else "messages" if "messages" in obj else None
    if key is None:
        if "instruction" in obj or "output" in obj:
            return [("schema", "looks like an alpaca row (instruction/output) in a sharegpt dataset")], None, 0, False
        return [("schema", "missing field 'conversations' (or 'messages')")], None, 0, False
    turns = obj[key]
    if not isinstance(turns, list):
        return [("schema", f"field '{key}' must be an array of turns, got {_type_name(turns)}")], None, 0, False
    if not turns:
        return [("empty", f"empty {key}")], None, 0, False
    problems: list[tuple[str, str]] = []
    conv: list[dict[str, str]] = []
    top_system = obj.get("system")
    if top_system is not None and not isinstance(top_system, str):
        problems.append(("schema", f"field 'system' must be a string, got {_type_name(top_system)}"))
    for n, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            problems.append(("schema", f"turn {n}: expected an object, got {_type_name(turn)}"))
            continue
        if "from" in turn or "value" in turn:
            rk, ck = "from", "value"
        else:
            rk, ck = "role", "content"
        if rk not in turn:
            problems.append(("schema", f"turn {n}: missing '{rk}'"))
            continue
        role = turn[rk]
        if not isinstance(role, str) or role.lower() not in ROLE_MAP:
            problems.append(
                ("schema", f"turn {n}: unknown role {role!r} (expected human/user, gpt/assistant or system)")
            )
            continue
        if ck not in turn:
            problems.append(("schema", f"turn {n}: missing '{ck}'"))
            continue
        value = turn[ck]
        if not isinstance(value, str):
            problems.append(("schema", f"turn {n}: '{ck}' must be a string, got {_type_name(value)}"))
            continue
        tag = ROLE_MAP[role.lower()]
        if not value.strip() and tag != "system":
            problems.append(("empty", f"turn {n}: empty {ck}"))
            continue
        conv.append({"from": tag, "value": value, "_n": n})
    if problems:
        return problems, None, 0, False
    # system: only first; a top-level system string becomes that first turn
    if any(t["from"] == "system" for t in conv[1:]):
        n = next(t["_n"] for t in conv[1:] if t["from"] == "system")
        return [("schema", f"turn {n}: a system turn is only allowed as the first turn")], None, 0, False
    if top_system:
        if conv and conv[0]["from"] == "system":
            return [("schema", "has both a top-level 'system' and a system turn; keep one")], None, 0, False
        conv.insert(0, {"from": "system", "value": top_system, "_n": 0})
    body = conv[1:] if conv and conv[0]["from"] == "system" else conv
    if not body:
        return [("empty", "no human/gpt turns")], None, 0, False
    expect = "human"
    for t in body:
        if t["from"] != expect:
            if t is body[0]:
                msg = f"turn {t['_n']}: a conversation must start with human, got {t['from']}"
            else:
                before = "gpt" if expect == "human" else "human"
                msg = f"turn {t['_n']}: expected {expect} after {before}, got {t['from']} (human/gpt must alternate)"
            return [("schema", msg)], None, 0, False
        expect = "gpt" if expect == "human" else "human"
    if body[-1]["from"] != "gpt":
        return (
            [("schema", f"turn {body[-1]['_n']}: the conversation ends with a human turn (no answer to learn)")],
            None,
            0,
            False,
        )
    out = {"conversations": [{"from": t["from"], "value": t["value"]} for t in conv]}
    chars = sum(len(t["value"]) for t in conv)
    return [], out, chars, key == "messages"


def _dedup_key(fmt: str, row: dict) -> str:
    if fmt == "alpaca":
        parts = [row["system"], row["instruction"], row["input"], row["output"]] + [
            x for p in row["history"] for x in p
        ]
    else:
        parts = [f"{t['from']}:{t['value']}" for t in row["conversations"]]
    return "\x1f".join(_norm(p) for p in parts)


def split_indices(n: int, eval_ratio: float, seed: int = DEFAULT_SEED) -> tuple[list[int], list[int]]:
    """Deterministic train/eval split of ``n`` rows: a seeded shuffle, the first ceil(n × ratio) go
    to eval (the same count LLaMA-Factory's ``val_size`` gives); both lists in file order. At least
    one row stays in train."""
    if not 0 <= eval_ratio < 1:
        raise ValueError("eval ratio must be in [0, 1)")
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    n_eval = math.ceil(n * eval_ratio) if eval_ratio > 0 else 0
    n_eval = min(n_eval, max(n - 1, 0))
    return sorted(idx[n_eval:]), sorted(idx[:n_eval])


def validate(
    path: str | Path,
    fmt: str | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    eval_ratio: float = DEFAULT_EVAL_RATIO,
    seed: int = DEFAULT_SEED,
    text: str | None = None,
) -> Report:
    """Validate a dataset file; raises DatasetError when it cannot be read as one at all."""
    if fmt is not None and fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if not 0 <= eval_ratio < 1:
        raise DatasetError(f"eval ratio {eval_ratio} must be in [0, 1)")
    container, rows, problems = read_rows(path, text)
    for p in problems:
        p.container = container
    if not rows and not problems:
        raise DatasetError(f"{path}: no rows")
    fmt = fmt or (detect_format(rows) if rows else "alpaca")
    rep = Report(
        str(path),
        fmt,
        container,
        total=len(rows) + len(problems),
        max_tokens=max_tokens,
        eval_ratio=eval_ratio,
        seed=seed,
    )
    rep.problems = problems
    seen: dict[str, Row] = {}
    unknown: Counter[str] = Counter()
    good: list[tuple[Row, dict, int]] = []
    known = ALPACA_FIELDS if fmt == "alpaca" else SHAREGPT_FIELDS
    for r in rows:
        if fmt == "alpaca":
            probs, norm, chars = check_alpaca(r.data)
            from_messages = False
        else:
            probs, norm, chars, from_messages = check_sharegpt(r.data)
        if isinstance(r.data, dict) and norm is not None:
            unknown.update(k for k in r.data if k not in known)
        for kind, msg in probs:
            rep.problems.append(Problem(r.index, r.line, kind, msg, container))
        if norm is None:
            continue
        if _lone_surrogate(norm):
            rep.problems.append(
                Problem(
                    r.index,
                    r.line,
                    "encoding",
                    "text holds a lone surrogate (a \\ud800-\\udfff escape without its pair): not valid Unicode",
                    container,
                )
            )
            continue
        tokens = estimate_tokens(chars)
        if tokens > max_tokens:
            rep.problems.append(
                Problem(r.index, r.line, "too_long", f"too long: ~{tokens} tokens (estimate) > {max_tokens}", container)
            )
            continue
        key = _dedup_key(fmt, norm)
        if key in seen:
            first = seen[key]
            where = f"line {first.line}" if container == "jsonl" else f"index {first.index} (line {first.line})"
            rep.problems.append(Problem(r.index, r.line, "duplicate", f"duplicate of {where}", container))
            continue
        seen[key] = r
        rep.normalised_from_messages += from_messages
        good.append((r, norm, tokens))
    rep.problems.sort(key=lambda p: (p.index, p.line))
    for k, n in sorted(unknown.items()):
        rep.warnings.append(f"unknown field {_shown(k)} in {n} row(s): ignored by LLaMA-Factory")
    if fmt == "alpaca" and good:
        # LLaMA-Factory maps columns for the whole file: keep system/history only if some row uses them.
        has_system = any(n["system"] for _, n, _ in good)
        has_history = any(n["history"] for _, n, _ in good)
        for _, n, _ in good:
            if not has_system:
                n.pop("system")
            if not has_history:
                n.pop("history")
    rep.rows = [n for _, n, _ in good]
    rep.tokens = [t for _, _, t in good]
    rep.train, rep.eval = split_indices(len(rep.rows), eval_ratio, seed)
    return rep


def dataset_info_entry(name: str, fmt: str, rows: list[dict]) -> dict:
    """The ``dataset_info.json`` entry LLaMA-Factory needs for ``<name>.json`` in its dataset dir."""
    entry: dict[str, Any] = {"file_name": f"{name}.json", "formatting": fmt}
    if fmt == "alpaca":
        cols = {"prompt": "instruction", "query": "input", "response": "output"}
        if rows and "system" in rows[0]:
            cols["system"] = "system"
        if rows and "history" in rows[0]:
            cols["history"] = "history"
        entry["columns"] = cols
    else:
        entry["columns"] = {"messages": "conversations"}
        entry["tags"] = {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
            "system_tag": "system",
        }
    return entry


def dumps_rows(rows: list[dict]) -> str:
    """The normalised dataset as uploaded: a JSON array, UTF-8, one row per line."""
    if not rows:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
