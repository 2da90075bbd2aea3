"""Validate a fine-tuning dataset locally, before anything leaves the machine: the report of one
file (its good rows normalised, its bad rows each with where and why, the train/eval split). Reading
the file is ``dataset_file``; what one row of each format must be is ``formats``; what is uploaded
of the good rows is ``upload``.

Checks: schema (required fields, types, unknown roles, alternation: ``formats``), empty rows (blank
instruction, output or turn), text that is not valid Unicode, duplicates (same content after
collapsing whitespace and case), over-long rows (token estimate above the context length), plus a
deterministic seeded train/eval split.

Token estimate: ``ceil(characters / 3.5)`` over all the text of a row (system, prompts, answers,
history). 3.5 characters per token is typical of the BPE tokenizers of Qwen/Llama on English prose;
code and non-Latin scripts produce more tokens per character, so treat the estimate as a lower bound
there. No tokenizer is downloaded.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .dataset_file import DatasetError, Problem, Row, read_rows, where
from .formats import ALPACA_FIELDS, FORMATS, SHAREGPT_FIELDS, check_alpaca, check_sharegpt, detect_format

CHARS_PER_TOKEN = 3.5
DEFAULT_SEED = 42
# What a row must fit (tokens, estimated) and the share held out for evaluation, unless told otherwise;
# a training run's cutoff_len and val_size default to the same (training.TrainParams).
DEFAULT_MAX_TOKENS = 2048
DEFAULT_EVAL_RATIO = 0.1


def estimate_tokens(chars: int) -> int:
    """The documented token estimate: ceil(chars / 3.5)."""
    return math.ceil(chars / CHARS_PER_TOKEN) if chars > 0 else 0


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
            first = where(container, seen[key].index, seen[key].line)
            rep.problems.append(Problem(r.index, r.line, "duplicate", f"duplicate of {first}", container))
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
