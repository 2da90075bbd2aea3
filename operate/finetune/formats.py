"""The two dataset formats (LLaMA-Factory's names): tell which one a file is in, check one row
against it and normalise that row: nothing else (reading the file is ``dataset_file``, the report
``dataset``).

* **alpaca**: objects with ``instruction`` (str), ``output`` (str), optional ``input`` (str), optional
  ``system`` (str), optional ``history`` (list of ``[prompt, response]`` string pairs).
* **sharegpt**: objects with ``conversations``: a list of turns ``{"from": "human"|"gpt"|"system",
  "value": str}``; an optional system turn first, then human/gpt alternating, ending with gpt.
  Also accepted and normalised to that shape: ``messages`` with ``{"role": "user"|"assistant"|"system",
  "content": str}`` turns (the export of the company's PostgreSQL chat history), and a top-level
  ``system`` string (moved into a leading system turn).
"""

from __future__ import annotations

from typing import Any

from .dataset_file import DatasetError, Row

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
