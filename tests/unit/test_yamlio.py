"""components/yamlio.py: ruamel.yaml (0.19.1) as the project's one YAML library."""

from __future__ import annotations

import io

import pytest
import yaml as pyyaml  # only to check that what we write reads back the same in a YAML 1.1 reader

from components import yamlio
from components.stackfile import STACKS_DIR


def test_a_key_given_twice_is_refused_by_ruamel_itself():
    """ruamel.yaml's YAML() API refuses duplicate keys by default (PyYAML kept the last silently);
    duplicate_key names both lines and never the values (ruamel's own message quotes them)."""
    text = "a:\n  k: 1\n  other: 2\n  k: hunter2\n"
    with pytest.raises(yamlio.DuplicateKeyError) as info:
        yamlio.load(text)
    node, _ = yamlio.compose(text)
    assert yamlio.duplicate_key(info.value, node) == ("k", 4, 2)
    assert yamlio.describe(info.value) == "line 4: a key given twice in one mapping"
    assert pyyaml.safe_load(text) == {"a": {"k": "hunter2", "other": 2}}  # what the old reader did


def test_reads_yaml_1_2_as_pulumi_compose_and_actions_do():
    assert yamlio.load("on: push\nx: yes\ny: 0o17\n") == {"on": "push", "x": "yes", "y": 15}


def test_a_malformed_document_is_one_line():
    with pytest.raises(yamlio.YAMLError) as info:
        yamlio.load("a: [1\n")
    assert "\n" not in yamlio.describe(info.value) and yamlio.describe(info.value).startswith("line 2: ")


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "on",
        "No",
        "y",
        "0777",
        "1:20",
        "0o17",
        "1e5",
        "2001-12-14",
        "null",
        "~",
        "true",
        "1_000",
        ".inf",
        "=",
        "",
        "plain words",
        "é",
    ],
)
def test_dump_writes_strings_that_read_back_as_strings_in_yaml_1_1_and_1_2(value):
    doc = {"k": value, "l": [value, {value: value}]}
    text = yamlio.dump(doc)
    assert yamlio.load(text) == doc and pyyaml.safe_load(text) == doc, text


def test_dump_keeps_key_order_block_style_and_pyyaml_s_form():
    doc = {"z": 1, "a": {"list": ["x", "w"], "flag": True, "none": None}, "m": "é"}
    assert (
        yamlio.dump(doc)
        == pyyaml.safe_dump(doc, sort_keys=False)
        == ('z: 1\na:\n  list:\n  - x\n  - w\n  flag: true\n  none: null\nm: "\\xE9"\n')
    )
    assert yamlio.dump(doc, allow_unicode=True, width=1000) == pyyaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, width=1000
    )


STACK_FILES = sorted(STACKS_DIR.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_round_trip_keeps_every_stack_file_byte_for_byte(path):
    yaml = yamlio.round_trip()
    out = io.StringIO()
    yaml.dump(yaml.load(path.read_text()), out)
    assert out.getvalue() == path.read_text()


@pytest.mark.parametrize("path", [p for p in STACK_FILES if "ollama:" in p.read_text()], ids=lambda p: p.name)
def test_pin_changes_only_the_pin_lines(path, tmp_path):
    """scripts/pin on a committed stack file: the diff is the two pin lines, nothing re-indented."""
    from operate.pin import write_pin

    f = tmp_path / path.name
    f.write_text(path.read_text())
    assert write_pin(f, "0.14.0", "ab" * 32)
    before, after = path.read_text().splitlines(), f.read_text().splitlines()
    removed = [line for line in before if line not in after]
    added = [line.strip() for line in after if line not in before]
    assert removed == [] and sorted(added) == sorted(["version: 0.14.0", f"sha256: 0.14.0@{'ab' * 32}"])
