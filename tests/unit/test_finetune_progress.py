"""scripts/finetune: progress from LLaMA-Factory's trainer_log.jsonl."""

from __future__ import annotations

from operate.finetune import progress
from operate.finetune.progress import Progress, parse_line

# Lines as LLaMA-Factory's LogCallback writes them (and the stand-in copies).
TRAIN = (
    '{"current_steps": 30, "total_steps": 120, "loss": 1.2345, "lr": 0.00018, "epoch": 0.75, '
    '"percentage": 25.0, "elapsed_time": "0:01:00", "remaining_time": "0:03:00"}'
)
EVAL = (
    '{"current_steps": 40, "total_steps": 120, "eval_loss": 1.5, "epoch": 1.0, "percentage": 33.33, '
    '"elapsed_time": "0:01:20", "remaining_time": "0:02:40"}'
)


def test_parse_training_line():
    p = parse_line(TRAIN)
    assert p == Progress(30, 120, 1.2345, None, 0.00018, 0.75, 25.0, "0:01:00", "0:03:00")
    assert p.eta == "0:03:00"


def test_format_line():
    assert progress.format_progress(parse_line(TRAIN)) == (
        "step 30/120 (25.0%)  loss 1.2345  lr 1.80e-04  epoch 0.75  elapsed 0:01:00  ETA 0:03:00"
    )


def test_non_progress_lines_are_ignored():
    for line in (
        "",
        "   ",
        '{"current_steps": 3',
        "not json",
        "[1, 2]",
        '{"loss": 1.0}',
        '{"current_steps": "x", "total_steps": 3}',
    ):
        assert parse_line(line) is None


def test_eta_extrapolated_without_remaining_time():
    p = parse_line('{"current_steps": 10, "total_steps": 40, "loss": 2.0, "elapsed_time": "0:00:50"}')
    assert p.eta == "0:02:30"
    assert parse_line('{"current_steps": 0, "total_steps": 40}').eta is None


def test_hms():
    assert progress.parse_hms("1:02:03") == 3723
    assert progress.parse_hms("1 day, 0:00:01") == 86401
    assert progress.parse_hms("0:00:01.5") == 1.5
    assert progress.parse_hms("soon") is None
    assert progress.format_hms(3723.4) == "1:02:03"


def test_last_progress_keeps_the_training_loss_after_an_eval_line():
    text = "\n".join([TRAIN, EVAL, '{"current_steps": 41, "total_st'])  # last line half-written
    p = progress.last_progress(text)
    assert (p.step, p.loss, p.eval_loss) == (40, 1.2345, 1.5)
    line = progress.format_progress(p)
    assert "loss 1.2345" in line and "eval_loss 1.5000" in line
    assert progress.last_progress("") is None


def test_percentage_computed_when_missing():
    p = parse_line('{"current_steps": 1, "total_steps": 4, "loss": 2}')
    assert progress.format_progress(p).startswith("step 1/4 (25.0%)  loss 2.0000")
