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
    return subprocess.run([str(ROOT / "scripts" / "finetune"), *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd="/")


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
    proc = finetune("validate")
    assert proc.returncode == 2 and "usage: scripts/finetune validate" in proc.stderr


def test_validate_write_split(tmp_path):
    prefix = tmp_path / "support"
    proc = finetune("validate", str(FIX / "alpaca_good.jsonl"), "--eval-ratio", "0.2", "--write-split", str(prefix))
    assert proc.returncode == 0, proc.stderr
    import json

    train = json.loads((tmp_path / "support.train.json").read_text())
    ev = json.loads((tmp_path / "support.eval.json").read_text())
    assert (len(train), len(ev)) == (8, 2)
