"""Issue 20: scripts/plan STACK --diff: resources added/changed/removed with their keys, replacements
flagged, host-layer versions, the llm service's internal port; --json with properties, secrets
masked; --help lists the exit codes. Fixtures: the ready prod stack with edits."""

from __future__ import annotations

import json

from operate import cli, plandiff
from tests.unit.conftest import pin_overrides, plan_for


def edited(**host_changes) -> tuple:
    host = json.loads(pin_overrides("prod")["host"])
    for k, v in host_changes.items():
        host[k] = {**host.get(k, {}), **v} if isinstance(v, dict) else v
    return (("host", json.dumps(host)),)


def test_ollama_bump_shows_the_version_line_and_no_resource_change():
    old, new = plan_for("prod"), plan_for("prod", edited(ollama={"version": "0.14.0", "sha256": "0.14.0@" + "ab" * 32}))
    text = plandiff.format_diff("prod", "HEAD", old, new, None)
    assert "  Ollama: 0.13.5 -> 0.14.0" in text
    assert plandiff.diff(old, new) == []  # a host-layer version: no cloud resource changes
    assert "llm service, internal: http://llm:8081" in text


def test_a_droplet_whose_user_data_changes_is_flagged_replaced():
    old = plan_for("prod")
    new = plan_for("prod", edited(adminUser="opsadmin"))  # the cloud-init user-data names the admin user
    changes = {c.name: c for c in plandiff.diff(old, new)}
    assert changes["llm-prod-server"].op == "+-" and "userData" in changes["llm-prod-server"].keys
    assert "REPLACE" in plandiff.format_diff("prod", "HEAD", old, new, None)


def test_added_and_removed_resources():
    p1, p2 = plan_for("dev", (("phase", 1),)), plan_for("dev", (("phase", 2),))
    ops = {c.name: c.op for c in plandiff.diff(p1, p2)}
    assert ops["llm-dev-server"] == "+" and ops["llm-app"] == "~"
    assert {c.name: c.op for c in plandiff.diff(p2, p1)}["llm-dev-server"] == "-"


def test_json_properties_mask_secrets():
    p = plan_for("prod")
    props = [plandiff.masked(r) for r in p.resources]
    text = json.dumps(props)
    assert "offline-placeholder" not in text and plandiff.MASK in text
    app = next(plandiff.masked(r) for r in p.resources if r.name == "llm-app")
    assert app["spec"]["services"], "the app spec stays readable around its secret envs"


def test_help_lists_exit_codes(capsys):
    assert cli.main(["plan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes (one table for every scripts/ command):\n  0 " in out and "--diff" in out
