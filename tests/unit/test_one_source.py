"""Issue 20: what you edit is what converges. Converge and drift use the inventory the last
`pulumi up` recorded; a stack file that differs from it is refused with one line naming the keys and
the command (operate/targets.py), before any SSH. Fixtures: the ready prod stack."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from operate import cli, converge, targets
from operate.automation import Unavailable
from tests.unit.conftest import automation_config, pin_overrides, plan_for


def fake_stack(overrides: dict | None = None, inventory: dict | None = None):
    inv = plan_for("prod").outputs["inventory"] if inventory is None else inventory
    config = automation_config("prod", overrides)
    return SimpleNamespace(
        name="prod", outputs=lambda: {"inventory": SimpleNamespace(value=inv)}, get_all_config=lambda: config
    )


def edited_host(**ollama) -> dict:
    host = json.loads(pin_overrides("prod")["host"])
    host["ollama"].update(ollama)
    return {"host": json.dumps(host)}


def test_unchanged_stack_file_converges_what_was_recorded():
    t = targets.from_stack(fake_stack())
    assert [h.name for h in t.hosts] == ["llm-prod"]


def test_version_bump_without_pulumi_up_is_refused_naming_the_keys_and_the_command():
    stack = fake_stack(edited_host(version="0.14.0", sha256="0.14.0@" + "ab" * 32))
    with pytest.raises(Unavailable) as info:
        targets.from_stack(stack)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(
        "stacks/Pulumi.prod.yaml differs from the last pulumi up in host.ollama.sha256, host.ollama.version:"
    )
    assert "run pulumi up -s prod first" in line and "scripts/plan prod --diff" in line


def test_a_camel_case_key_is_named_as_in_the_stack_file():
    host = json.loads(pin_overrides("prod")["host"])
    host["vllm"]["servedModelName"] = "renamed"
    with pytest.raises(Unavailable, match=r"in host\.vllm\.servedModelName:"):
        targets.from_stack(fake_stack({"host": json.dumps(host)}))


def test_host_removed_from_the_file_is_refused():
    with pytest.raises(Unavailable, match=r"phase/hostEnabled \(the file creates no host\)"):
        targets.from_stack(fake_stack({"phase": 1, "hostEnabled": False, "hostVerified": None}))


def test_a_refused_stack_file_is_one_line():
    with pytest.raises(
        Unavailable, match=r"^stacks/Pulumi.prod.yaml is refused: llm-platform:host.adminCidrs: 203.0.113.0/24"
    ):
        host = json.loads(pin_overrides("prod")["host"])
        host["adminCidrs"] = ["203.0.113.0/24"]
        targets.from_stack(fake_stack({"host": json.dumps(host)}))


def test_converge_refuses_with_one_line_and_exit_2(monkeypatch, capsys):
    from operate import automation

    stack = fake_stack(edited_host(version="0.14.0", sha256="0.14.0@" + "ab" * 32))
    monkeypatch.setattr(automation, "select_stack", lambda name: stack)
    assert cli.main(["converge", "prod"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "host.ollama.version" in err


def test_verify_sets_host_verified_only_when_the_checks_pass(tmp_path, monkeypatch):
    data = tmp_path / "llm-prod.json"
    data.write_text(json.dumps({"data": {"domain": "llm.example.com"}}))
    files = targets.Files("prod", tmp_path / "inv.py", {}, [targets.HostFiles("llm-prod", [], data)])
    set_calls = []
    stack = SimpleNamespace(set_config=lambda k, v: set_calls.append((k, v.value)))
    target = SimpleNamespace(
        name="prod",
        is_local=False,
        stack=stack,
        files=lambda: files,
        hosts=[SimpleNamespace(data=SimpleNamespace(domain="llm.example.com"))],
    )
    assert converge.verify(target, run=lambda *a, **k: SimpleNamespace(returncode=1)) == 1
    assert set_calls == []
    assert converge.verify(target, run=lambda *a, **k: SimpleNamespace(returncode=0)) == 0
    assert set_calls == [("llm-platform:hostVerified", "llm.example.com")]


def test_converge_help_lists_exit_codes(capsys):
    assert cli.main(["converge", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes (one table for every scripts/ command):\n  0 " in out and "here: converged" in out
