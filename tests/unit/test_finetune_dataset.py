"""scripts/finetune validate: dataset checks with the line numbers they report, normalisation, split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from operate.finetune import dataset, upload
from operate.finetune.dataset import validate
from operate.finetune.dataset_file import DatasetError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "finetune"


def problems(rep) -> dict[int, str]:
    """line → message (one problem per line in the fixtures)."""
    out: dict[int, str] = {}
    for p in rep.problems:
        assert p.line not in out, f"two problems on line {p.line}"
        out[p.line] = p.message
    return out


@pytest.mark.parametrize(
    "name, fmt, rows",
    [
        ("alpaca_good.jsonl", "alpaca", 10),
        ("alpaca_good.json", "alpaca", 3),
        ("sharegpt_good.json", "sharegpt", 3),
        ("messages_good.jsonl", "sharegpt", 3),
    ],
)
def test_good_datasets_pass(name, fmt, rows):
    rep = validate(FIX / name)
    assert rep.ok, [str(p) for p in rep.problems]
    assert rep.fmt == fmt
    assert len(rep.rows) == rows == rep.total
    assert len(rep.train) + len(rep.eval) == rows


def test_bad_alpaca_jsonl_reports_each_line():
    rep = validate(FIX / "alpaca_bad.jsonl", max_tokens=256)
    got = problems(rep)
    assert set(got) == {2, 4, 5, 6, 7, 8, 9, 10, 12}  # 1 and 11 are good, 3 is blank
    assert got[2] == "missing field 'output'"
    assert got[4] == "field 'instruction' must be a string, got number"
    assert got[5] == "empty instruction"
    assert got[6] == "duplicate of line 1"  # same content after collapsing case/whitespace
    assert got[7].startswith("too long: ~") and got[7].endswith("> 256")
    assert got[8].startswith("invalid JSON at col ")
    assert got[9] == "expected an object, got array"
    assert got[10].startswith("history[0] must be")
    assert got[12] == "empty output"
    assert not rep.ok and rep.bad_rows == 9 and rep.total == 11
    assert len(rep.rows) == 2  # the good rows are kept, nothing silently dropped
    kinds = {p.line: p.kind for p in rep.problems}
    assert kinds[6] == "duplicate" and kinds[7] == "too_long" and kinds[8] == "json" and kinds[5] == "empty"


def test_problem_location_wording():
    rep = validate(FIX / "alpaca_bad.jsonl", max_tokens=256)
    assert str(rep.problems[0]) == "line 2: missing field 'output'"
    arr = validate(FIX / "alpaca_bad_array.json")
    assert [str(p) for p in arr.problems] == [
        "index 1 (line 3): missing field 'output'",
        "index 2 (line 6): duplicate of index 0 (line 2)",
        "index 3 (line 7): field 'input' must be a string, got array",
    ]


def test_invalid_json_array_gives_line_and_column():
    with pytest.raises(DatasetError, match=r"invalid JSON at line 3, col 23: Expecting ',' delimiter"):
        validate(FIX / "invalid_array.json")


@pytest.mark.parametrize(
    "text, match",
    [
        ('[\n {"instruction": "a", "output": "b"},\n]\n', r"line 3, col 1: trailing comma"),
        ('[\n {"instruction": "a", "output": "b"}\n', r"missing '\]'"),
        ('[{"instruction": "a", "output": "b"}] x', r"line 1, col \d+: extra data"),
        ("", r"empty file"),
        ("[]", r"no rows"),
    ],
)
def test_unreadable_arrays(tmp_path, text, match):
    f = tmp_path / "d.json"
    f.write_text(text)
    with pytest.raises(DatasetError, match=match):
        validate(f)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        validate(tmp_path / "nope.json")
    f = tmp_path / "latin1.jsonl"
    f.write_bytes(b'{"instruction": "ok", "output": "ok"}\n{"instruction": "caf\xe9", "output": "x"}\n')
    with pytest.raises(DatasetError, match=r"not UTF-8 text \(invalid byte at line 2"):
        validate(f)


def test_unknown_format_cannot_be_detected(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"question": "a", "answer": "b"}\n')
    with pytest.raises(DatasetError, match="cannot tell the dataset format"):
        validate(f)
    rep = validate(f, fmt="alpaca")
    assert [str(p) for p in rep.problems] == ["line 1: missing field 'instruction'", "line 1: missing field 'output'"]


def test_sharegpt_alternation_and_roles():
    rep = validate(FIX / "sharegpt_bad.jsonl")
    got = problems(rep)
    assert got[2] == "turn 2: expected gpt after human, got human (human/gpt must alternate)"
    assert got[3].startswith("turn 1: unknown role 'bot'")
    assert got[4] == "turn 1: the conversation ends with a human turn (no answer to learn)"
    assert got[5] == "turn 1: a conversation must start with human, got gpt"
    assert got[6] == "turn 2: a system turn is only allowed as the first turn"
    assert got[7] == "turn 1: empty value"
    assert got[8] == "turn 2: 'content' must be a string, got number"
    assert got[9].startswith("field 'conversations' must be an array")
    assert 1 not in got and rep.bad_rows == 8


def test_messages_are_normalised_to_sharegpt():
    rep = validate(FIX / "messages_good.jsonl")
    assert rep.normalised_from_messages == 3
    first = rep.rows[0]
    assert first == {
        "conversations": [
            {"from": "system", "value": "You are the company's assistant."},
            {"from": "human", "value": "How do I reset my password?"},
            {"from": "gpt", "value": "Use the 'Forgot password' link on the login page."},
        ]
    }
    assert [t["from"] for t in rep.rows[1]["conversations"]] == ["human", "gpt", "human", "gpt"]


def test_top_level_system_becomes_the_first_turn():
    rep = validate(FIX / "sharegpt_good.json")
    assert rep.rows[2]["conversations"][0] == {"from": "system", "value": "Answer in one word."}


def test_alpaca_normalisation_keeps_columns_consistent():
    rep = validate(FIX / "alpaca_good.json")
    # history used by one row → every row has it; no row has a system → no system column
    assert all(set(r) == {"instruction", "input", "output", "history"} for r in rep.rows)
    assert rep.rows[1]["input"] == "" and rep.rows[1]["history"] == []
    entry = upload.dataset_info_entry("demo", rep.fmt, rep.rows)
    assert entry == {
        "file_name": "demo.json",
        "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"},
    }
    rep2 = validate(FIX / "alpaca_good.jsonl")
    assert upload.dataset_info_entry("d", "alpaca", rep2.rows)["columns"]["system"] == "system"


def test_sharegpt_dataset_info_entry():
    rep = validate(FIX / "messages_good.jsonl")
    entry = upload.dataset_info_entry("chat", rep.fmt, rep.rows)
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "conversations"}
    assert entry["tags"] == {
        "role_tag": "from",
        "content_tag": "value",
        "user_tag": "human",
        "assistant_tag": "gpt",
        "system_tag": "system",
    }


def test_uploaded_text_round_trips():
    rep = validate(FIX / "alpaca_good.jsonl")
    text = upload.dumps_rows(rep.rows)
    assert json.loads(text) == rep.rows
    assert "Bonjour" in text and "°C" in text  # UTF-8, not \u escapes


def test_token_estimate_is_documented_formula():
    assert dataset.estimate_tokens(0) == 0
    assert dataset.estimate_tokens(7) == 2
    assert dataset.estimate_tokens(8) == 3  # ceil(8 / 3.5)
    assert dataset.estimate_tokens(3500) == 1000


def test_over_long_boundary(tmp_path):
    f = tmp_path / "d.jsonl"
    # 7 chars instruction + 7 chars output = 14 chars → 4 tokens
    f.write_text('{"instruction": "abcdefg", "output": "hijklmn"}\n')
    assert validate(f, max_tokens=4).ok
    rep = validate(f, max_tokens=3)
    assert [str(p) for p in rep.problems] == ["line 1: too long: ~4 tokens (estimate) > 3"]


def test_split_is_deterministic_and_seeded():
    a = dataset.split_indices(100, 0.1, seed=42)
    assert a == dataset.split_indices(100, 0.1, seed=42)
    assert len(a[1]) == 10 and len(a[0]) == 90
    assert sorted(a[0] + a[1]) == list(range(100))
    assert a != dataset.split_indices(100, 0.1, seed=7)
    assert len(dataset.split_indices(5, 0.1)[1]) == 1  # ceil, like LLaMA-Factory's val_size
    assert dataset.split_indices(1, 0.5) == ([0], [])  # at least one row stays in train
    assert dataset.split_indices(10, 0.0) == (list(range(10)), [])
    with pytest.raises(ValueError):
        dataset.split_indices(10, 1.0)


def test_report_split_matches_rows():
    rep = validate(FIX / "alpaca_good.jsonl", eval_ratio=0.3)
    assert (len(rep.train), len(rep.eval)) == (7, 3)
    assert rep.train == dataset.split_indices(10, 0.3)[0]
    assert "split (seed 42, eval ratio 0.3): train 7, eval 3" in rep.summary()


def test_unknown_fields_are_warnings_not_errors(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text(
        '{"instruction": "a", "output": "b", "source": "crm"}\n{"instruction": "c", "output": "d", "source": "x"}\n'
    )
    rep = validate(f)
    assert rep.ok
    assert rep.warnings == ["unknown field 'source' in 2 row(s): ignored by LLaMA-Factory"]
    assert "source" not in rep.rows[0]
