"""Training progress from LLaMA-Factory's ``trainer_log.jsonl`` (one JSON object per logging step:
``current_steps``, ``total_steps``, ``loss``, ``lr``, ``epoch``, ``percentage``, ``elapsed_time``,
``remaining_time``; evaluation lines carry ``eval_loss`` instead of ``loss``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass
class Progress:
    step: int
    total: int
    loss: float | None = None
    eval_loss: float | None = None
    lr: float | None = None
    epoch: float | None = None
    percentage: float | None = None
    elapsed: str | None = None
    remaining: str | None = None

    @property
    def eta(self) -> str | None:
        """Time left: LLaMA-Factory's own ``remaining_time``, else extrapolated from the elapsed time."""
        if self.remaining:
            return self.remaining
        secs = parse_hms(self.elapsed)
        if secs is None or self.step <= 0 or self.total <= 0:
            return None
        return format_hms(secs * (self.total - self.step) / self.step)


def parse_hms(text: str | None) -> float | None:
    """Seconds from ``H:MM:SS`` (also ``D days, H:MM:SS`` and fractional seconds), else None."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(?:(\d+) days?, )?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", text)
    if not m:
        return None
    days, h, mi, s = m.groups()
    return int(days or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + float(s)


def format_hms(secs: float) -> str:
    secs = int(round(secs))
    return f"{secs // 3600}:{(secs // 60) % 60:02d}:{secs % 60:02d}"


def _num(v) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def parse_line(line: str) -> Progress | None:
    """One trainer_log.jsonl line → Progress, or None when it is not a progress line (blank,
    truncated while being written, or missing the step counters)."""
    line = line.strip()
    if not line:
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    step, total = _num(obj.get("current_steps")), _num(obj.get("total_steps"))
    if step is None or total is None:
        return None
    return Progress(
        step=int(step),
        total=int(total),
        loss=_num(obj.get("loss")),
        eval_loss=_num(obj.get("eval_loss")),
        lr=_num(obj.get("lr", obj.get("learning_rate"))),
        epoch=_num(obj.get("epoch")),
        percentage=_num(obj.get("percentage")),
        elapsed=obj.get("elapsed_time") if isinstance(obj.get("elapsed_time"), str) else None,
        remaining=obj.get("remaining_time") if isinstance(obj.get("remaining_time"), str) else None,
    )


def last_progress(text: str) -> Progress | None:
    """The latest progress in a trainer_log.jsonl text (the last parseable line), keeping the last
    training loss when the final line is an evaluation."""
    last: Progress | None = None
    last_loss: float | None = None
    for line in text.splitlines():
        p = parse_line(line)
        if p is None:
            continue
        if p.loss is not None:
            last_loss = p.loss
        last = p
    if last is not None and last.loss is None:
        last.loss = last_loss
    return last


def format_progress(p: Progress) -> str:
    pct = p.percentage if p.percentage is not None else (100.0 * p.step / p.total if p.total else 0.0)
    parts = [f"step {p.step}/{p.total} ({pct:.1f}%)"]
    if p.loss is not None:
        parts.append(f"loss {p.loss:.4f}")
    if p.eval_loss is not None:
        parts.append(f"eval_loss {p.eval_loss:.4f}")
    if p.lr is not None:
        parts.append(f"lr {p.lr:.2e}")
    if p.epoch is not None:
        parts.append(f"epoch {p.epoch:.2f}")
    if p.elapsed:
        parts.append(f"elapsed {p.elapsed}")
    eta = p.eta
    if eta:
        parts.append(f"ETA {eta}")
    return "  ".join(parts)
