"""Validators as plain Python: every bad value fails with one line naming key, value and what is allowed."""

from __future__ import annotations

import json

import pytest

from components import stackfile
from components.config import SettingsError, parse_settings
from components.secrets import Secret
from tests.unit.conftest import pin_overrides


def raw_for(stack: str, **overrides) -> dict[str, str]:
    """The stack file's config as the CLI passes it (with the test Ollama pin where it has none)."""
    return stackfile.read_stack_file(stack, {**pin_overrides(stack), **overrides})[0]


def error_for(stack: str, **overrides) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        parse_settings(raw_for(stack, **overrides), stack)
    return info.value


def host_with(stack: str, **changes) -> dict:
    host = json.loads(raw_for(stack)["llm-platform:host"])
    host.update(changes)
    return host


def test_every_stack_file_is_valid(stack):
    settings = parse_settings(raw_for(stack), stack)
    assert settings.stack == stack
    assert settings.phase in (1, 2)


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "value", "allowed"),
    [
        ("dev", {"phase": 3}, "llm-platform:phase", "3", "must be one of 1, 2"),
        ("dev", {"region": "mars"}, "llm-platform:region", "'mars'", "'tor'"),
        ("dev", {"budget": -5}, "llm-platform:budget", "-5", "greater than or equal to 0"),
        ("prod", {"host": "SIZE"}, "llm-platform:host.size", "'gpu-rtx4000x1-20gb'", "'gpu-h100x1-80gb'"),
        ("prod", {"host": "REGION"}, "llm-platform:host.region", "'xyz1'", "'tor1'"),
        ("prod", {"host": "CIDR"}, "llm-platform:host.adminCidrs", "10.0.0.1/8", "CIDR like"),
        ("prod", {"host": "OPEN"}, "llm-platform:host.adminCidrs", "0.0.0.0/0", "whole internet"),
        ("cpu", {"host": "HSIZE"}, "llm-platform:host.size", "'cx99'", "'cx53'"),
        # an unknown key's value is never shown (it may be a secret under a misspelled key)
        ("dev", {"colour": "blue"}, "llm-platform:colour", "unknown key", "; allowed:"),
    ],
)
def test_bad_value_is_one_line_naming_key_value_and_allowed(stack, overrides, key, value, allowed):
    special = {
        "SIZE": host_with(stack, size="gpu-rtx4000x1-20gb"),
        "REGION": host_with(stack, region="xyz1"),
        "CIDR": host_with(stack, adminCidrs=["10.0.0.1/8"]),
        "OPEN": host_with(stack, adminCidrs=["0.0.0.0/0"]),
        "HSIZE": host_with(stack, size="cx99"),
    }
    overrides = {k: special.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()}
    err = error_for(stack, **overrides)
    assert len(err.problems) == 1, err.problems
    line = err.problems[0]
    assert "\n" not in line
    assert line.startswith(key), line
    assert value in line and allowed in line, line


def test_gpu_size_outside_gpu_regions_is_refused():
    err = error_for("prod", host=host_with("prod", region="fra1"))
    assert "host.region = 'fra1'" in str(err) and "GPU size" in str(err)


def test_unknown_nested_key_names_the_path_and_the_allowed_keys():
    app = json.loads(raw_for("dev")["llm-platform:app"])
    app["llm"]["healthPath"] = "/healthz"
    err = error_for("dev", app=app, phase=1)
    assert err.problems == [
        "llm-platform:app.llm.healthPath: unknown key; allowed here: branch, enableMetrics, huggingfaceModel, "
        "instanceCount, instanceSize, logLevel, provider, repo, sourceDir"
    ]


@pytest.mark.parametrize("secret", ["huggingfaceApiKey", "langfuseSecretKey", "openaiApiKey"])
def test_missing_required_secret_names_the_key_and_the_command(secret):
    err = error_for("dev", **{secret: None})
    assert len(err.problems) == 1
    assert err.problems[0].startswith(f"llm-platform:{secret}: required secret is missing")
    assert f"pulumi config set --secret {secret}" in err.problems[0]


def test_vllm_key_is_required_only_with_a_model_host():
    parse_settings(raw_for("dev", phase=1, vllmApiKey=None), "dev")  # phase 1: not needed
    err = error_for("prod", vllmApiKey=None)
    assert err.problems[0].startswith("llm-platform:vllmApiKey: required secret is missing")


def test_self_hosted_provider_needs_a_host():
    app = json.loads(raw_for("dev")["llm-platform:app"])
    app["llm"]["provider"] = "vllm"
    err = error_for("dev", app=app, phase=1)
    assert err.problems == [
        "llm-platform:app.llm.provider = 'vllm': needs a model host: set phase: 2 (or hostEnabled: true)"
    ]


def test_single_instance_sizes_refuse_more_instances():
    app = json.loads(raw_for("prod")["llm-platform:app"])
    app["llm"]["instanceSize"] = "apps-s-1vcpu-0.5gb"
    err = error_for("prod", app=app)
    assert "app.llm.instanceCount = 2" in str(err) and "single instance" in str(err)


def test_secrets_never_show_in_repr_or_errors():
    settings = parse_settings(raw_for("prod", openaiApiKey="sk-very-secret"), "prod")
    assert "sk-very-secret" not in repr(settings)
    assert repr(settings.secret("openaiApiKey")) == "Secret(****)"
    assert settings.secret("openaiApiKey").reveal() == "sk-very-secret"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_stack_files_hold_no_secret_values():
    for stack in stackfile.stack_names():
        text = (stackfile.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text()
        for key in ("ApiKey", "SecretKey", "PublicKey", "Password"):
            assert "llm-platform:" + key not in text
        raw = stackfile.read_stack_file(stack)[0]
        for key in ("huggingfaceApiKey", "openaiApiKey", "vllmApiKey", "langfuseSecretKey"):
            assert raw[f"llm-platform:{key}"] == stackfile.placeholder(key)


@pytest.mark.parametrize("value", ["has a space in it 0123456789", 'quote"0123456789abcdef', "short-key", "x" * 513])
def test_host_secret_format_is_checked_at_plan_time(value):
    """App Platform must never get a key the host refuses (gateway and host would disagree)."""
    err = error_for("prod", vllmApiKey=value)
    assert err.problems == [err.problems[0]] and err.problems[0].startswith("llm-platform:vllmApiKey: ")
    assert value not in str(err) and "16-512 characters" in str(err)
    parse_settings(raw_for("dev", phase=1, vllmApiKey=value), "dev")  # no host: not a host secret there


# ---- SSH public keys: read by cryptography's OpenSSH reader ------------------------------------
def _openssh(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _wire(*fields: bytes) -> str:
    import base64
    import struct

    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


@pytest.fixture(scope="module")
def rsa_keys() -> dict[int, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return {bits: _openssh(rsa.generate_private_key(65537, bits).public_key()) for bits in (1024, 2048)}


def test_usable_ssh_keys_pass(rsa_keys):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from components.patterns import check_ssh_public_keys

    keys = [
        _openssh(ed25519.Ed25519PrivateKey.generate().public_key()) + " alice@laptop",
        _openssh(ec.generate_private_key(ec.SECP384R1()).public_key()),
        rsa_keys[2048],
        "ssh-ed25519 " + _wire(b"ssh-ed25519", bytes(32)) + " any comment",
    ]
    assert check_ssh_public_keys([f"  {k}\n" for k in keys]) == keys


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("ssh-ed25519 " + _wire(b"ssh-ed25519", bytes(32))[:-8], "not a valid ssh-ed25519 key"),  # truncated
        ("ssh-ed25519 " + _wire(b"ssh-ed25519", bytes(32))[:-1], "not a valid ssh-ed25519 key"),  # bad base64 (padding)
        ("ssh-rsa AAAA", "not a valid ssh-rsa key"),
        ("ssh-rsa " + _wire(b"ssh-ed25519", bytes(32)), "not a valid ssh-rsa key"),  # another type inside
        ("ssh-ed25519 " + _wire(b"ssh-ed25519", bytes(31)), "not a valid ssh-ed25519 key"),
        ("ssh-ed25519 " + _wire(b"ssh-ed25519", bytes(32), b"extra"), "not a valid ssh-ed25519 key"),
        ("ssh-ed25519 AAAA!x", "is not an OpenSSH public key"),  # not base64 at all
        ("ssh-dss " + _wire(b"ssh-dss", b"\1", b"\1", b"\1", b"\1"), "is not an OpenSSH public key"),
        ("ssh-ed25519 AAAA x\nssh-rsa", "is not an OpenSSH public key"),
    ],
    ids=[
        "truncated",
        "bad-padding",
        "empty-rsa",
        "type-mismatch",
        "short-ed25519",
        "trailing-data",
        "not-base64",
        "dsa",
        "two-lines",
    ],
)
def test_unusable_ssh_key_is_refused_in_one_line(key, why):
    from components.patterns import check_ssh_public_keys

    with pytest.raises(ValueError) as info:
        check_ssh_public_keys([key])
    assert why in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_short_rsa_key_is_refused_with_its_size(rsa_keys):
    from components.patterns import check_ssh_public_keys

    with pytest.raises(ValueError, match="RSA keys need at least 2048 bits \\(this one has 1024\\)"):
        check_ssh_public_keys([rsa_keys[1024]])
