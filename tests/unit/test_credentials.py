"""Issue 20: adding an environment is adding one stack file. Credentials are checked by the providers
the stack file uses (not by its name), and a provider token kept in the stack's config as a Pulumi
secret counts; dnsZone on Hetzner says who makes the record."""

from __future__ import annotations

import pytest

from components import stackfile
from operate import automation

HETZNER = """config:
  llm-platform:phase: 2
  llm-platform:host:
    provider: hetzner
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    monkeypatch.setattr(stackfile, "STACKS_DIR", stacks)
    return stacks, {"PATH": str(fake.parent), "PULUMI_ACCESS_TOKEN": "x", "DIGITALOCEAN_TOKEN": "x"}


def test_a_new_hetzner_stack_needs_the_hetzner_token_whatever_its_name(env):
    stacks, e = env
    (stacks / "Pulumi.demo.yaml").write_text(HETZNER)
    assert automation.credentials_problem("demo", e) == (
        "no Hetzner credentials for stack demo (set HCLOUD_TOKEN, or pulumi config set --secret hcloud:token <token> "
        "-s demo)"
    )
    assert automation.credentials_problem("demo", {**e, "HCLOUD_TOKEN": "t"}) is None


def test_a_token_in_the_stack_config_counts(env):
    stacks, e = env
    (stacks / "Pulumi.demo.yaml").write_text(HETZNER + "  hcloud:token:\n    secure: v1:abc\n")
    assert automation.credentials_problem("demo", e) is None
    (stacks / "Pulumi.demo2.yaml").write_text(
        "config:\n  digitalocean:token:\n    secure: v1:abc\n  llm-platform:phase: 1\n"
    )
    assert automation.credentials_problem("demo2", {k: v for k, v in e.items() if k != "DIGITALOCEAN_TOKEN"}) is None


def test_a_stack_named_cpu_on_digitalocean_needs_no_hetzner_token(env):
    stacks, e = env
    (stacks / "Pulumi.cpu.yaml").write_text(HETZNER.replace("hetzner", "digitalocean"))
    assert automation.credentials_problem("cpu", e) is None


def test_a_phase_1_stack_with_a_dormant_hetzner_block_needs_no_hetzner_token(env):
    stacks, e = env
    (stacks / "Pulumi.demo.yaml").write_text(HETZNER.replace("phase: 2", "phase: 1"))
    assert automation.credentials_problem("demo", e) is None


def test_dns_zone_on_hetzner_says_who_makes_the_record():
    from components.config import SettingsError, parse_settings
    from tests.unit.test_readiness import fixture_stack

    raw = fixture_stack(provider="hetzner", region="fsn1", size="cx53", dnsZone="example.com")
    with pytest.raises(SettingsError) as info:
        parse_settings(raw, "demo", secure_keys=set(raw))
    (line,) = info.value.problems
    assert "dnsZone" in line and "create the A record" in line and "this project makes none" in line
