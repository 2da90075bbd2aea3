"""Issue 20: a stack that creates a host is refused until it holds the environment's own values (one
line each, all at once); the Ollama version and its checksum are one pin; the gateway moves to the
model host only once the host is verified. Fixtures only: no committed stack file's content."""

from __future__ import annotations

import json

import pytest

from components import readiness
from components.config import SettingsError, parse_settings
from components.secrets import SECRET_KEYS
from components.stackfile import placeholder
from tests.unit.conftest import TEST_ADMIN_CIDR, TEST_OLLAMA_SHA256, test_ssh_key

NS = "llm-platform"
PIN = f"0.13.5@{TEST_OLLAMA_SHA256}"


def fixture_stack(phase: int = 2, host_verified: str | None = "llm-demo.example.com", **host_changes) -> dict:
    host = {
        "provider": "digitalocean",
        "region": "nyc3",
        "size": "s-4vcpu-8gb",
        "volumeSizeGb": 50,
        "adminCidrs": [TEST_ADMIN_CIDR],
        "sshPublicKeys": [test_ssh_key()],
        "domain": "llm-demo.example.com",
        "acmeEmail": "ops@example.com",
        "vllm": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "servedModelName": "qwen", "maxModelLen": 4096},
        "ollama": {"version": "0.13.5", "sha256": PIN, "models": ["qwen2.5:0.5b"]},
    }
    for key, value in host_changes.items():
        if value is None:
            host.pop(key, None)
        elif isinstance(value, dict):
            host[key] = {**host.get(key, {}), **value}
        else:
            host[key] = value
    cfg = {
        "phase": phase,
        "region": "nyc",
        "budget": 150,
        "app": {"aiService": {"repo": "o/r"}, "llm": {"repo": "o/r"}},
        "host": host,
    }
    if host_verified:
        cfg["hostVerified"] = host_verified
    raw = {f"{NS}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in cfg.items()}
    raw.update({f"{NS}:{k}": placeholder(k) for k in SECRET_KEYS})
    return raw


def parse(raw: dict):
    return parse_settings(raw, "demo", secure_keys=set(raw))


def problems(raw: dict) -> list[str]:
    with pytest.raises(SettingsError) as info:
        parse(raw)
    return info.value.problems


def test_ready_fixture_parses():
    assert parse(fixture_stack()).host_enabled


@pytest.mark.parametrize(
    "cidr", ["203.0.113.0/24", "192.0.2.0/24", "198.51.100.0/25", "2001:db8::/32", "2001:db8:1::/48"]
)
def test_documentation_range_refused_with_one_line(cidr):
    lines = problems(fixture_stack(adminCidrs=["10.0.0.0/16", cidr]))
    assert lines == [
        f"{NS}:host.adminCidrs: {cidr} is a documentation range (example value), not a network of yours; "
        "list the office/VPN ranges that may SSH to the host"
    ]


def test_a_range_around_a_documentation_range_is_no_example_value():
    parse(fixture_stack(adminCidrs=["0.0.0.0/1", "128.0.0.0/1"], allowWideAdminCidrs=True))


@pytest.mark.parametrize(
    "key",
    [
        test_ssh_key("oncall-placeholder"),
        test_ssh_key("PLACEHOLDER key"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKNXZkuqr3ycQOXhmecRO3BvW+SSOXMKrjO92cFtYYpq alice",
    ],
)
def test_placeholder_key_refused_with_one_line(key):
    lines = problems(fixture_stack(sshPublicKeys=[test_ssh_key(), key]))
    assert len(lines) == 1 and lines[0].startswith(f"{NS}:host.sshPublicKeys: ssh-ed25519 ...")
    assert lines[0].endswith("is a placeholder; list the on-call engineers' public keys")


def test_every_missing_item_listed_at_once_before_secrets():
    raw = fixture_stack(
        adminCidrs=["203.0.113.0/24"], sshPublicKeys=[test_ssh_key("oncall-placeholder")], ollama={"sha256": None}
    )
    del raw[f"{NS}:vllmApiKey"]
    lines = problems(raw)
    assert [line.split(":", 2)[1] for line in lines] == ["host.ollama.sha256", "host.adminCidrs", "host.sshPublicKeys"]
    assert "scripts/pin ollama demo 0.13.5" in lines[0]


def test_phase_1_keeps_its_dormant_example_host_block():
    raw = fixture_stack(
        phase=1,
        host_verified=None,
        adminCidrs=["203.0.113.0/24"],
        sshPublicKeys=[test_ssh_key("oncall-placeholder")],
        ollama={"sha256": None},
    )
    assert not parse(raw).host_enabled


# ---- one pin: VERSION@SHA256 ---------------------------------------------------------------------
def test_version_edited_without_its_checksum_is_refused():
    lines = problems(fixture_stack(ollama={"version": "0.14.0", "sha256": PIN}))
    assert lines == [
        f"{NS}:host.ollama.sha256 = '0.13.5@...': pins Ollama 0.13.5 but host.ollama.version is 0.14.0: "
        "change both together with: scripts/pin ollama demo 0.14.0"
    ]


def test_bare_checksum_carries_no_version_and_is_refused():
    lines = problems(fixture_stack(ollama={"sha256": TEST_OLLAMA_SHA256}))
    assert lines == [
        f"{NS}:host.ollama.sha256: carries no version: the pin is VERSION@SHA256 so that the version and "
        "its checksum change together; rewrite it with: scripts/pin ollama demo 0.13.5"
    ]


def test_the_pin_reaches_the_host_as_its_archive_checksum():
    o = parse(fixture_stack()).host.ollama
    assert (o.pinned_version, o.archive_sha256) == ("0.13.5", TEST_OLLAMA_SHA256)


def test_pin_writer_writes_version_at_checksum(tmp_path):
    from operate.pin import write_pin

    f = tmp_path / "Pulumi.demo.yaml"
    f.write_text(f"config:\n  {NS}:host:\n    ollama:\n      version: 0.13.5\n      sha256: {PIN}   # kept\n")
    assert write_pin(f, "0.14.0", "ab" * 32)
    text = f.read_text()
    assert "version: 0.14.0" in text and f"sha256: 0.14.0@{'ab' * 32}" in text and "# kept" in text


# ---- the gateway moves only once the host is verified ----------------------------------------------
def _llm_env(settings) -> dict:
    from components.app import service_envs

    return {e.key: e.value for e in service_envs(settings, {k: "x" for k in SECRET_KEYS}, "https://h/v1")["llm"]}


def test_phase_2_gateway_stays_on_huggingface_until_the_host_is_verified():
    s = parse(fixture_stack(host_verified=None))
    assert s.host_enabled and s.app.llm.provider == "vllm" and s.gateway_provider == "huggingface"
    env = _llm_env(s)
    assert env["LLM_PROVIDER"] == "huggingface" and "VLLM_BASE_URL" not in env
    assert "VLLM_API_KEY" in env  # the key is on App Platform before the gateway moves
    assert any(
        "gateway: stays on huggingface until the host is verified" in n and "scripts/converge demo --verify" in n
        for n in readiness.notes(s)
    )


def test_verified_host_moves_the_gateway():
    s = parse(fixture_stack())
    env = _llm_env(s)
    assert s.gateway_provider == "vllm" and env["LLM_PROVIDER"] == "vllm" and env["VLLM_BASE_URL"] == "https://h/v1"
    assert not any(n.startswith("gateway:") for n in readiness.notes(s))


def test_verification_of_another_domain_does_not_count():
    s = parse(fixture_stack(host_verified="llm-old.example.com"))
    assert s.gateway_provider == "huggingface"
    assert any("it names 'llm-old.example.com'" in n for n in readiness.notes(s))


def test_dns_note_when_no_record_is_managed():
    s = parse(fixture_stack())
    (dns,) = [n for n in readiness.notes(s) if n.startswith("DNS:")]
    assert "llm-demo.example.com" in dns and "A record" in dns and "HTTP-01" in dns and "host.dnsZone" in dns
    managed = parse(fixture_stack(dnsZone="example.com"))
    assert not [n for n in readiness.notes(managed) if n.startswith("DNS:")]
