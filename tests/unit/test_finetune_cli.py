"""scripts/finetune validate as a user runs it (a subprocess through the bash wrapper)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "finetune"


def finetune(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # Reuse the virtualenv running these tests when it is one that scripts/lib/venv.sh prepared
    # (never point the wrapper at a base interpreter: it would turn it into a venv).
    if (Path(sys.prefix) / ".llm-platform-stamp").is_file():
        env.setdefault("LLM_PLATFORM_VENV", sys.prefix)
    return subprocess.run(
        [str(ROOT / "scripts" / "finetune"), *args], capture_output=True, text=True, env=env, timeout=120, cwd="/"
    )


def test_validate_good_file_exits_0():
    proc = finetune("validate", str(FIX / "alpaca_good.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "alpaca (JSON Lines), 10 rows" in proc.stdout
    assert "split (seed 42, eval ratio 0.1): train 9, eval 1" in proc.stdout
    assert "dataset OK" in proc.stdout


def test_validate_bad_file_reports_line_numbers_and_exits_1():
    proc = finetune("validate", str(FIX / "alpaca_bad.jsonl"), "--max-tokens", "256")
    assert proc.returncode == 1
    err = proc.stderr
    for line in (2, 4, 5, 6, 7, 8, 9, 10, 12):
        assert f"alpaca_bad.jsonl: line {line}: " in err, line
    assert "line 6: duplicate of line 1" in err
    assert "error: dataset invalid: 9 bad row(s) of 11" in err
    assert "good 2, bad 9" in proc.stdout
    assert "Traceback" not in err


def test_validate_sharegpt_and_messages():
    assert finetune("validate", str(FIX / "messages_good.jsonl"), "--format", "sharegpt").returncode == 0
    proc = finetune("validate", str(FIX / "sharegpt_bad.jsonl"))
    assert proc.returncode == 1
    assert "sharegpt_bad.jsonl: line 2: turn 2: expected gpt after human, got human" in proc.stderr


def test_validate_invalid_json_exits_2_with_position():
    proc = finetune("validate", str(FIX / "invalid_array.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {FIX / 'invalid_array.json'}: invalid JSON at line 3, col 23: Expecting ',' delimiter"
    )


def test_validate_missing_file_and_usage():
    proc = finetune("validate", "/nonexistent/data.jsonl")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: /nonexistent/data.jsonl: no such file"
    proc = finetune("validate")  # a usage error: exit 3 (never 2, "could not check"), one line
    assert proc.returncode == 3 and proc.stderr == (
        "error: the following arguments are required: file (see `scripts/finetune validate --help`)\n"
    ), proc.stderr


def test_validate_write_split(tmp_path):
    prefix = tmp_path / "support"
    proc = finetune("validate", str(FIX / "alpaca_good.jsonl"), "--eval-ratio", "0.2", "--write-split", str(prefix))
    assert proc.returncode == 0, proc.stderr
    import json

    train = json.loads((tmp_path / "support.train.json").read_text())
    ev = json.loads((tmp_path / "support.eval.json").read_text())
    assert (len(train), len(ev)) == (8, 2)


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def test_validate_accepts_line_separators_inside_strings(tmp_path):
    """U+2028, U+0085 and \\x1c are valid unescaped in JSON strings; JSON Lines split on \\n only."""
    import json

    rows = [
        {"instruction": f"say {sep!r}: a{sep}b", "input": "", "output": f"ok{sep}done"}
        for sep in ("\u2028", "\u0085", "\x1c")
    ]
    f = tmp_path / "seps.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    proc = finetune("validate", str(f))
    _no_traceback(proc)
    assert proc.returncode == 0 and "3 rows" in proc.stdout, proc.stdout + proc.stderr


def test_validate_deep_nesting_is_a_row_problem(tmp_path):
    f = tmp_path / "deep.jsonl"
    f.write_text('{"instruction": "hi", "input": "", "output": "yo"}\n' + "[" * 100000 + "]" * 100000 + "\n")
    proc = finetune("validate", str(f))
    _no_traceback(proc)
    assert proc.returncode == 1 and "line 2: " in proc.stderr and "nested too deeply" in proc.stderr, proc.stderr


def test_validate_refuses_a_device_and_an_oversized_file(tmp_path):
    proc = finetune("validate", "/dev/zero")
    _no_traceback(proc)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: /dev/zero: a device, not a dataset file", proc.stderr
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as f:
        f.truncate(600 * 1024 * 1024)  # sparse: no disk used
    proc = finetune("validate", str(big))
    _no_traceback(proc)
    assert proc.returncode == 2 and "larger than 512 MiB" in proc.stderr, proc.stderr


def test_validate_write_split_into_a_missing_directory(tmp_path):
    proc = finetune("validate", str(FIX / "alpaca_good.jsonl"), "--write-split", str(tmp_path / "nope" / "ds"))
    _no_traceback(proc)
    assert proc.returncode == 1 and proc.stderr.strip().endswith(f"no directory {tmp_path / 'nope'}"), proc.stderr
