"""Read a dataset file into rows, each with where it stands: nothing else (the formats' checks are
``formats``, the report ``dataset``).

The file is a JSON array of objects or JSON Lines (one object per line), UTF-8, at most
``MAX_DATASET_BYTES``; a device, a directory or a file that is not UTF-8 is refused whole
(``DatasetError``). Every bad row is reported with where it is: ``line N`` for JSON Lines,
``index I (line N)`` for a JSON array (``I`` is the 0-based array index, ``N`` the line where the
object starts). Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DatasetError(Exception):
    """The file cannot be read as a dataset at all (unreadable, invalid JSON array, no rows...)."""


@dataclass
class Row:
    index: int  # 0-based position among the rows (array index, or n-th non-blank JSONL line)
    line: int  # 1-based line where the row starts
    data: Any


def where(container: str, index: int, line: int) -> str:
    """Where a row stands, as every message about it says: its line, and in a JSON array its index."""
    return f"line {line}" if container == "jsonl" else f"index {index} (line {line})"


@dataclass
class Problem:
    index: int
    line: int
    kind: str  # json | schema | encoding | empty | duplicate | too_long
    message: str
    container: str = "jsonl"

    @property
    def where(self) -> str:
        return where(self.container, self.index, self.line)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


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
