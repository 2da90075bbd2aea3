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


def test_the_resolver_reads_the_local_secrets_file_the_same_way(tmp_path):
    """finetune, smoke and rotate-key take the local host's secrets from operate.targets, which reads
    them as the deploy does."""
    from operate import targets
    from operate.automation import Unavailable
    from testhost.access import secrets_file
    from tests.unit.test_targets import local_state

    s = local_state(tmp_path)
    path = secrets_file(s)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"huggingfaceApiKey": SECRET}).encode())
    assert targets.local(s).secrets == {"huggingfaceApiKey": SECRET}
    path.write_text("[1, 2]")
    with pytest.raises(Unavailable) as info:
        targets.local(s)
    assert "JSON object" in str(info.value)


# ---- scripts/pin ---------------------------------------------------------------------------------
PIN_SHA = "ab" * 32


@pytest.fixture
def pin(capsys, monkeypatch, tmp_path, pinned_stacks):
    """pin(*argv, sums=...) → (rc, stdout, stderr) of `scripts/pin ollama prod ...` (in process), with
    a release mirror under tmp_path (``file://``) whose sha256sum.txt holds ``sums``."""
    import shutil

    from components import stackfile
    from operate import cli
    from operate import pin as pin_cli

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    shutil.copy(pinned_stacks / "Pulumi.prod.yaml", stacks / "Pulumi.prod.yaml")
    monkeypatch.setattr(stackfile, "STACKS_DIR", stacks)
    monkeypatch.delenv(pin_cli.SOURCE_ENV, raising=False)
    mirror = tmp_path / "mirror"

    def _pin(*argv: str, sums: str = f"{PIN_SHA}  ./ollama-linux-amd64.tgz\n") -> tuple[int, str, str]:
        (mirror / "v0.13.5").mkdir(parents=True, exist_ok=True)
        (mirror / "v0.13.5" / "sha256sum.txt").write_text(sums)
        rc = cli.main(["pin", "ollama", "prod", *argv])
        out = capsys.readouterr()
        return rc, out.out, out.err

    _pin.source = f"file://{mirror}"
    return _pin


def _one_error(rc: int, err: str, code: int = 2) -> str:
    """One line on stderr and exit ``code``: 2 the checksums could not be read, 3 a bad command line."""
    assert rc == code and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("scheme", ["http://mirror.example/ollama", "file:///srv/mirror"])
def test_pin_refuses_a_source_without_tls_unless_told(pin, scheme):
    err = _one_error(*pin("0.13.5", "--source", scheme)[::2], code=3)
    assert "--insecure" in err and scheme.split(":")[0] in err, err


def test_pin_reads_a_file_source_with_insecure_and_says_so(pin):
    rc, out, err = pin("0.13.5", "--source", pin.source, "--insecure")
    assert rc == 0 and PIN_SHA in out, err
    assert "not checked" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("source", ["ftp://mirror.example/x", "mirror.example/x", "https://mirror.example/a b"])
def test_pin_refuses_a_source_that_is_no_url(pin, source):
    err = _one_error(*pin("0.13.5", "--source", source, "--insecure")[::2], code=3)
    assert "--source" in err, err


def test_pin_refuses_a_checksum_file_listing_a_name_twice(pin):
    sums = f"{PIN_SHA}  ./ollama-linux-amd64.tgz\n{'cd' * 32}  ./dist/ollama-linux-amd64.tgz\n"
    err = _one_error(*pin("0.13.5", "--source", pin.source, "--insecure", sums=sums)[::2])
    assert "ollama-linux-amd64.tgz" in err and "twice" in err, err


@pytest.mark.parametrize("version", ["0.13.5\n", "0.13.5\nx", "٠.١٣.٥", "0.13.5 ", "99999.1.1"])
def test_pin_refuses_a_version_that_is_not_plain(pin, version):
    err = _one_error(*pin(version, "--source", pin.source, "--insecure")[::2], code=3)
    assert "release version like 0.13.5" in err, err


@pytest.fixture
def http_mirror(pin):
    """``http://127.0.0.1:PORT`` serving the pin fixture's mirror folder."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    folder = Path(pin.source.removeprefix("file://"))
    folder.mkdir(parents=True, exist_ok=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_pin_reads_an_http_source_with_insecure(pin, http_mirror):
    rc, out, err = pin("0.13.5", "--source", http_mirror, "--insecure")
    assert rc == 0 and PIN_SHA in out and f"{http_mirror}/v0.13.5/sha256sum.txt" in out, err


def test_pin_names_the_http_status_of_a_missing_release(pin, http_mirror):
    err = _one_error(*pin("0.13.6", "--source", http_mirror, "--insecure")[::2])
    assert f"{http_mirror}/v0.13.6/sha256sum.txt: HTTP 404 (is 0.13.6 an Ollama release?)" in err, err


def test_pin_says_why_a_source_cannot_be_reached_in_one_line(pin):
    err = _one_error(*pin("0.13.5", "--source", "http://127.0.0.1:9/mirror", "--insecure")[::2])
    assert "http://127.0.0.1:9/mirror/v0.13.5/sha256sum.txt: " in err and "Connection refused" in err, err


# ---- scripts/finetune validate -------------------------------------------------------------------
GOOD_ROWS = [{"instruction": f"question {i}", "input": "", "output": f"answer {i}"} for i in range(9)]


@pytest.fixture
def validate(capsys):
    """validate(jsonl text, *args) → (rc, stdout, stderr) of `scripts/finetune validate` in process."""
    from operate.cli import main

    def _run(path: Path, *args: str) -> tuple[int, str, str]:
        rc = main(["finetune", "validate", str(path), *args])
        out = capsys.readouterr()
        assert "Traceback" not in out.err
        return rc, out.out, out.err

    return _run


def _jsonl(tmp_path: Path, *extra: str) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in GOOD_ROWS) + "".join(e + "\n" for e in extra), encoding="utf-8"
    )
    return path


def test_a_lone_surrogate_is_a_bad_row_and_nothing_is_written(validate, tmp_path):
    path = _jsonl(tmp_path, '{"instruction": "broken \\ud800 text", "input": "", "output": "ok"}')
    rc, out, err = validate(path, "--write-split", str(tmp_path / "split"))
    assert rc == 1 and "line 10: " in err and "surrogate" in err, err
    assert "good 9, bad 1" in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_write_split_leaves_no_partial_file_when_it_fails(validate, tmp_path, monkeypatch, capsys):
    from operate.cli import main
    from operate.finetune import upload

    real, calls = upload.dumps_rows, []

    def dumps_then_fail(rows):
        calls.append(1)
        if len(calls) == 2:  # the eval part, after the train part was written
            raise MemoryError("simulated crash while writing")
        return real(rows)

    monkeypatch.setattr(upload, "dumps_rows", dumps_then_fail)
    # a crash nobody expected: exit 4 (internal error) with its traceback, never 1 or 2
    assert main(["finetune", "validate", str(_jsonl(tmp_path)), "--write-split", str(tmp_path / "split")]) == 4
    assert "MemoryError: simulated crash while writing" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]
    monkeypatch.setattr(upload, "dumps_rows", real)
    rc, out, _ = validate(_jsonl(tmp_path), "--write-split", str(tmp_path / "split"))
    assert rc == 0 and sorted(p.name for p in tmp_path.iterdir()) == [
        "data.jsonl",
        "split.eval.json",
        "split.train.json",
    ]


def test_a_number_of_100k_digits_is_a_bad_row(validate, tmp_path):
    rc, out, err = validate(_jsonl(tmp_path, '{"instruction": "a", "output": "b", "n": ' + "7" * 100_000 + "}"))
    assert rc == 1 and "line 10: " in err and "number" in err and len(err) < 2000, err[:2000]


def test_a_number_of_100k_digits_in_a_json_array_is_one_line(validate, tmp_path):
    path = tmp_path / "data.json"
    path.write_text('[{"instruction": "a", "output": "b"},\n {"instruction": "c", "output": ' + "7" * 100_000 + "}]")
    rc, out, err = validate(path)
    assert rc == 2 and len(err.splitlines()) == 1 and "line 2" in err and "number" in err and len(err) < 1000, err[
        :1000
    ]


def test_unknown_field_names_are_printed_escaped(validate, tmp_path):
    name = "\x1b[8mhidden\r\nfake: dataset OK\u202e"
    row = dict(GOOD_ROWS[0], instruction="another", **{name: 1, "x" * 5000: 2})
    rc, out, err = validate(_jsonl(tmp_path, json.dumps(row)))
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: unknown field")]
    assert len(warnings) == 2 and len(err.splitlines()) == 2, err[:2000]
    assert "\x1b" not in err and "\r" not in err and "\u202e" not in err and "\\x1b[8mhidden" in err, err[:2000]
    assert max(len(w) for w in warnings) < 300


@pytest.mark.parametrize("name", ["support-bot\n", "support-bot\nExecStart=/bin/sh", "٣b-run", "x" * 64])
def test_finetune_names_end_at_the_end(name):
    """--name becomes a systemd unit, a directory and an Ollama model: `$` let a trailing newline in."""
    from operate.finetune import training

    with pytest.raises(training.ConfigError) as info:
        training.check_name(name)
    assert len(str(info.value).splitlines()) == 1 and str(info.value).startswith("--name "), info.value
    assert training.check_name("support-bot_2") == "support-bot_2"
