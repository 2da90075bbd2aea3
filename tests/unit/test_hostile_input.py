"""Issue 18 §4, outside the stack file: the host secrets file, scripts/pin and scripts/finetune
validate on malformed or hostile input. Each is one line (no traceback), never a secret value."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SECRET = "s3cr3t-" + "Q" * 30


# ---- LLM_PLATFORM_SECRETS_FILE ------------------------------------------------------------------
@pytest.fixture
def secrets_file(monkeypatch, tmp_path):
    """secrets_file(content or None) → the path LLM_PLATFORM_SECRETS_FILE names (mode 0600)."""
    from hosts import secret_values

    for key in list(os.environ):
        if key.startswith("LLM_SECRET_"):
            monkeypatch.delenv(key)

    def _make(content: bytes | None, name: str = "secrets.json") -> Path:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
            path.chmod(0o600)
        monkeypatch.setenv("LLM_PLATFORM_SECRETS_FILE", str(path))
        secret_values._file_values.cache_clear()
        return path

    yield _make
    secret_values._file_values.cache_clear()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"vllmApiKey": "' + SECRET.encode() + b'",}', "not valid JSON"),
        (b'{"vllmApiKey": "' + SECRET.encode(), "not valid JSON"),
        ([SECRET], "JSON object"),
        (42, "JSON object"),
        ({"vllmApiKey": 12345678901234567890}, "must be a string"),
        ({"vllmApiKey": [SECRET]}, "must be a string"),
        (b'\xff\xfe{"vllmApiKey": "x"}', "UTF-8"),
        (None, "not found"),
    ],
    ids=["trailing-comma", "truncated", "list", "number", "int-value", "list-value", "utf-16", "missing"],
)
def test_a_malformed_secrets_file_is_one_line(secrets_file, content, words):
    from hosts import secret_values

    raw = content if isinstance(content, bytes) or content is None else json.dumps(content).encode()
    path = secrets_file(raw)
    with pytest.raises(secret_values.MissingSecret) as info:
        secret_values.get("vllmApiKey")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and words in msg and str(path) in msg, msg
    assert SECRET not in msg and "QQQQ" not in msg, msg
    assert secret_values.known_values() == []  # the scrub helper reads the same file, and stays quiet


def test_a_directory_or_a_device_as_secrets_file_is_one_line(secrets_file, monkeypatch, tmp_path):
    from hosts import secret_values

    for target in (tmp_path, Path("/dev/zero")):
        monkeypatch.setenv("LLM_PLATFORM_SECRETS_FILE", str(target))
        secret_values._file_values.cache_clear()
        with pytest.raises(secret_values.MissingSecret) as info:
            secret_values.get("vllmApiKey")
        assert len(str(info.value).splitlines()) == 1 and "not a regular file" in str(info.value), info.value


def test_a_secrets_file_with_a_bom_is_read_and_scrubbed(secrets_file):
    """Windows editors save UTF-8 with a byte-order mark: the deploy and the scrub both read it."""
    from hosts import secret_values

    secrets_file(b"\xef\xbb\xbf" + json.dumps({"vllmApiKey": SECRET}).encode())
    assert secret_values.get("vllmApiKey") == SECRET
    assert secret_values.known_values() == [SECRET]


def test_a_secrets_file_readable_by_others_is_still_refused(secrets_file):
    from hosts import secret_values

    secrets_file(json.dumps({"vllmApiKey": SECRET}).encode()).chmod(0o644)
    with pytest.raises(secret_values.MissingSecret, match="chmod 600"):
        secret_values.get("vllmApiKey")


def test_finetune_reads_the_secrets_file_the_same_way(tmp_path):
    from operate.finetune import remote

    path = tmp_path / "s.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"huggingfaceApiKey": SECRET}).encode())
    path.chmod(0o600)
    assert remote._read_secrets_file(str(path)) == {"huggingfaceApiKey": SECRET}
    path.write_text("[1, 2]")
    with pytest.raises(remote.RemoteError) as info:
        remote._read_secrets_file(str(path))
    assert "JSON object" in str(info.value)
