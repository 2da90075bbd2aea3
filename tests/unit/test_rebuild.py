"""rebuild-host's cloud path with the Automation API faked at its boundary."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from components import automation
from operate import rebuild

SERVER = "urn:pulumi:prod::llm-platform::llm-platform:host:ModelHost$digitalocean:index/droplet:Droplet::llm-prod-server"
VOLUME = "urn:pulumi:prod::llm-platform::llm-platform:host:ModelHost$digitalocean:index/volume:Volume::llm-prod-data"


class FakeStack:
    name = "prod"

    def __init__(self, fail_up: bool = False):
        self.server_id, self.fail_up, self.ups = "1001", fail_up, []

    def export_stack(self):
        return SimpleNamespace(deployment={"resources": [
            {"urn": VOLUME, "type": "digitalocean:index/volume:Volume", "id": "vol-1"},
            {"urn": SERVER, "type": "digitalocean:index/droplet:Droplet", "id": self.server_id},
        ]})

    def up(self, **kw):
        self.ups.append(kw)
        if self.fail_up:
            raise RuntimeError("interrupted")
        self.server_id = str(int(self.server_id) + 1)


def test_replace_targets_only_the_server_and_its_dependents(tmp_path):
    stack = FakeStack()
    note = rebuild.replace_stage(stack, "llm-prod", marker_dir=tmp_path)
    [call] = stack.ups
    assert call["replace"] == [SERVER] and call["target"] == [SERVER] and call["target_dependents"] is True
    assert VOLUME not in call["replace"] + call["target"]
    assert note == "replaced server 1001 → 1002"


def test_rerun_after_the_replacement_does_not_replace_again(tmp_path):
    stack = FakeStack()
    rebuild.replace_stage(stack, "llm-prod", marker_dir=tmp_path)  # replaced, then (say) SSH timed out
    again = rebuild.replace_stage(stack, "llm-prod", marker_dir=tmp_path)
    assert len(stack.ups) == 1 and again.startswith("already replaced")


def test_rerun_after_an_interrupted_replacement_replaces(tmp_path):
    stack = FakeStack(fail_up=True)
    with pytest.raises(RuntimeError):
        rebuild.replace_stage(stack, "llm-prod", marker_dir=tmp_path)
    stack.fail_up = False
    assert rebuild.replace_stage(stack, "llm-prod", marker_dir=tmp_path).startswith("replaced server 1001")


def test_unknown_host_is_a_clear_error(tmp_path):
    with pytest.raises(automation.Unavailable, match="no server resource for host 'llm-x'"):
        rebuild.replace_stage(FakeStack(), "llm-x", marker_dir=tmp_path)


def test_stage_summary_times_each_stage():
    stages = rebuild.Stages()
    stages.run("replace", lambda: "done")
    stages.run("ssh", lambda: None)
    text = stages.summary()
    assert "replace" in text and "ssh" in text and "total" in text
