"""scripts/finetune export: the fine-tuned model is added to the stack's Ollama model list by a
targeted edit of the stack file (comments and layout kept), or to the local host's state."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import pytest

from components import yamlio
from operate.finetune import models
from operate.finetune.models import StackFileError, add_model_text

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def models_of(text: str) -> list[str]:
    return yamlio.load(text)["config"]["llm-platform:host"]["ollama"]["models"]


def changed_lines(old: str, new: str) -> list[str]:
    return [
        ln
        for ln in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if ln[:1] in "+-" and not ln.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("stack", ["staging", "cpu", "prod", "dev"])
def test_real_stack_files_get_one_changed_line(tmp_path, stack):
    src = STACKS / f"Pulumi.{stack}.yaml"
    if not src.exists():
        pytest.skip(f"no {src.name}")
    f = tmp_path / src.name
    shutil.copy(src, f)
    before = f.read_text()
    old_models = models_of(before)
    assert models.add_model_to_stack_file(f, "support-bot")
    after = f.read_text()
    assert models_of(after) == old_models + ["support-bot"]
    diff = changed_lines(before, after)
    assert len(diff) == 2 and diff[0].startswith("-") and diff[1].startswith("+"), diff  # one line replaced
    assert [ln for ln in before.splitlines() if "#" in ln] == [ln for ln in after.splitlines() if "#" in ln]
    # idempotent
    assert not models.add_model_to_stack_file(f, "support-bot")
    assert f.read_text() == after


BASE = """\
# a stack  # with comments
config:
  llm-platform:phase: 2
  llm-platform:host:
    provider: hetzner   # keep me
    size: cx53
{ollama}  llm-platform:region: fra
"""


def test_flow_list_with_comment():
    text = BASE.format(ollama="    ollama:\n      models: [llama3.2:3b]   # pulled at converge\n      numParallel: 4\n")
    new, changed = add_model_text(text, "support-bot")
    assert changed
    assert "      models: [llama3.2:3b, support-bot]   # pulled at converge\n" in new
    assert models_of(new) == ["llama3.2:3b", "support-bot"]


def test_empty_flow_list():
    new, _ = add_model_text(BASE.format(ollama="    ollama:\n      models: []\n"), "m1")
    assert "      models: [m1]\n" in new


def test_block_list():
    text = BASE.format(
        ollama=(
            "    ollama:\n      models:\n        - llama3.1:8b   # default\n        - qwen2.5:0.5b\n"
            "      keepAlive: 1h\n"
        )
    )
    new, _ = add_model_text(text, "support-bot")
    assert "        - qwen2.5:0.5b\n        - support-bot\n      keepAlive: 1h\n" in new
    assert "# default" in new


def test_block_list_at_the_key_indent():
    text = BASE.format(ollama="    ollama:\n      models:\n      - llama3.1:8b\n")
    new, _ = add_model_text(text, "x")
    assert models_of(new) == ["llama3.1:8b", "x"]


def test_missing_models_key_keeps_the_defaults():
    text = BASE.format(ollama="    ollama:\n      keepAlive: 1h\n")
    new, _ = add_model_text(text, "support-bot")
    assert models_of(new) == models.default_models() + ["support-bot"]
    assert yamlio.load(new)["config"]["llm-platform:host"]["ollama"]["keepAlive"] == "1h"


def test_missing_ollama_block_is_added_inside_host():
    new, _ = add_model_text(BASE.format(ollama=""), "support-bot")
    doc = yamlio.load(new)
    assert doc["config"]["llm-platform:host"]["ollama"] == {"models": models.default_models() + ["support-bot"]}
    assert doc["config"]["llm-platform:region"] == "fra"
    assert "provider: hetzner   # keep me" in new


def test_names_that_need_quotes():
    new, _ = add_model_text(BASE.format(ollama="    ollama:\n      models: [a]\n"), "team/model:v1")
    assert models_of(new) == ["a", "team/model:v1"]


def test_crlf_file():
    text = BASE.format(ollama="    ollama:\n      models: [a]\n").replace("\n", "\r\n")
    new, _ = add_model_text(text, "b")
    assert "\r\n" in new and "\n" not in new.replace("\r\n", "")
    assert models_of(new) == ["a", "b"]


def test_refusals():
    with pytest.raises(StackFileError, match="no 'llm-platform:host' block"):
        add_model_text("config:\n  llm-platform:phase: 1\n", "m")
    with pytest.raises(StackFileError, match="not valid YAML"):
        add_model_text("config: [\n", "m")
    with pytest.raises(StackFileError, match="not a block mapping"):
        add_model_text("config:\n  llm-platform:host: {provider: hetzner, ollama: {models: [a]}}\n", "m")


def test_stack_file_error_names_the_manual_fix(tmp_path):
    f = tmp_path / "Pulumi.x.yaml"
    f.write_text("config:\n  llm-platform:phase: 1\n")
    with pytest.raises(StackFileError, match=r"add 'm' to llm-platform:host → ollama.models by hand"):
        models.add_model_to_stack_file(f, "m")
    assert f.read_text() == "config:\n  llm-platform:phase: 1\n"


def test_local_extra_models_file(tmp_path):
    path, changed = models.add_local_model(tmp_path, "support-bot")
    assert changed and path == tmp_path / "extra-ollama-models.json"
    assert json.loads(path.read_text()) == ["support-bot"]
    assert models.add_local_model(tmp_path, "support-bot") == (path, False)
    models.add_local_model(tmp_path, "other")
    assert models.read_local_models(tmp_path) == ["support-bot", "other"]
    path.write_text("garbage")
    assert models.read_local_models(tmp_path) == []
