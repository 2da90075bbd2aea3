"""The Ollama stand-in (tests/standins/ollama_standin.py) on loopback: API shapes, CLI, persistence."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.standins.runner import http, ollama_cli, ollama_process

MODEL = "qwen2.5:0.5b"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ollama-models")


@pytest.fixture(scope="module")
def ollama(models_dir):
    with ollama_process(models_dir) as o:
        yield o


def _ndjson(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _pull(url, name):
    r = http("POST", f"{url}/api/pull", {"model": name, "stream": False})
    assert r.status == 200, r.text
    assert r.body == b'{"status":"success"}'  # compact like Go's encoder: the deploy greps for it


def test_root_and_version(ollama):
    r = http("GET", ollama.url + "/")
    assert (r.status, r.text) == (200, "Ollama is running")
    v = http("GET", ollama.url + "/api/version").json()
    assert v == {"version": "0.0.0-test", "standin": True}


def test_pull_then_tags_and_persisted_manifest(ollama, models_dir):
    _pull(ollama.url, MODEL)
    tags = http("GET", ollama.url + "/api/tags").json()["models"]
    m = next(t for t in tags if t["name"] == MODEL)
    assert m["model"] == MODEL
    assert len(m["digest"]) == 64 and m["size"] > 0 and m["modified_at"]
    assert m["details"]["family"] == "qwen2"
    assert m["details"]["parameter_size"] == "0.5B"
    assert set(m["details"]) >= {"format", "family", "families", "parameter_size", "quantization_level"}
    # Ollama's on-disk layout: manifests/<registry>/<namespace>/<model>/<tag> + blobs/sha256-<hex>
    manifest = models_dir / "manifests" / "registry.ollama.ai" / "library" / "qwen2.5" / "0.5b"
    assert manifest.is_file()
    for layer in json.loads(manifest.read_text())["layers"]:
        assert (models_dir / "blobs" / ("sha256-" + layer["digest"].split(":")[1])).is_file()


def test_pull_streams_ndjson_progress(ollama):
    r = http("POST", ollama.url + "/api/pull", {"model": "llama3.2:1b"})  # stream defaults to true
    assert r.status == 200
    lines = _ndjson(r.body)
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-1] == {"status": "success"}
    assert any("completed" in line for line in lines)


def test_pull_of_missing_model_fails(ollama):
    r = http("POST", ollama.url + "/api/pull", {"model": "standin-missing-model", "stream": False})
    assert r.status >= 400 and "file does not exist" in r.json()["error"]


def test_chat_and_generate(ollama):
    _pull(ollama.url, MODEL)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Why is the sky blue?"}], "stream": False}
    r = http("POST", ollama.url + "/api/chat", body)
    assert r.status == 200
    out = r.json()
    assert out["done"] is True and out["done_reason"] == "stop" and out["model"] == MODEL
    assert out["message"]["role"] == "assistant"
    assert "stand-in" in out["message"]["content"].lower() and "Why is the sky blue?" in out["message"]["content"]
    again = http("POST", ollama.url + "/api/chat", body).json()
    assert again["message"]["content"] == out["message"]["content"]  # deterministic
    # streamed: NDJSON chunks whose contents add up to the same answer
    chunks = _ndjson(http("POST", ollama.url + "/api/chat", dict(body, stream=True)).body)
    assert chunks[-1]["done"] is True
    assert "".join(c["message"]["content"] for c in chunks) == out["message"]["content"]
    gen = http("POST", ollama.url + "/api/generate", {"model": MODEL, "prompt": "hello", "stream": False}).json()
    assert gen["done"] is True and "hello" in gen["response"]
    ps = http("GET", ollama.url + "/api/ps").json()["models"]
    assert any(p["name"] == MODEL for p in ps)


def test_openai_chat_completions(ollama):
    _pull(ollama.url, MODEL)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "ping"}]}
    r = http("POST", ollama.url + "/v1/chat/completions", body, headers={"Authorization": "Bearer ignored"})
    assert r.status == 200
    out = r.json()
    assert out["object"] == "chat.completion" and out["model"] == MODEL
    assert out["id"] and isinstance(out["created"], int)
    assert out["choices"][0]["message"]["role"] == "assistant" and "ping" in out["choices"][0]["message"]["content"]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]
    sse = http("POST", ollama.url + "/v1/chat/completions", dict(body, stream=True)).text
    events = [line[len("data: ") :] for line in sse.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == out["choices"][0]["message"]["content"]
    models = http("GET", ollama.url + "/v1/models").json()
    assert models["object"] == "list" and MODEL in [m["id"] for m in models["data"]]


def test_unknown_model_is_404_with_ollama_error_shape(ollama):
    r = http("POST", ollama.url + "/api/chat", {"model": "nope:1b", "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 404
    assert r.json() == {"error": 'model "nope:1b" not found, try pulling it first'}
    r = http("POST", ollama.url + "/v1/chat/completions", {"model": "nope:1b", "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 404 and "not found" in r.json()["error"]["message"]
    assert http("POST", ollama.url + "/api/show", {"model": "nope:1b"}).status == 404


def test_create_from_base_show_and_delete(ollama):
    _pull(ollama.url, MODEL)
    r = http("POST", ollama.url + "/api/create", {"model": "tuned:latest", "from": MODEL, "system": "Be brief.", "parameters": {"temperature": 0.1}, "stream": False})
    assert r.status == 200 and r.json() == {"status": "success"}
    show = http("POST", ollama.url + "/api/show", {"model": "tuned"}).json()
    assert show["details"]["parent_model"] == MODEL and show["system"] == "Be brief."
    assert "temperature" in show["parameters"]
    # quantizing an already-quantized model is refused, like Ollama
    bad = http("POST", ollama.url + "/api/create", {"model": "tuned-q", "from": MODEL, "quantize": "q4_K_M", "stream": False})
    assert bad.status == 400 and "quantization" in bad.json()["error"]
    assert http("DELETE", ollama.url + "/api/delete", {"model": "tuned"}).status == 200
    assert http("DELETE", ollama.url + "/api/delete", {"model": "tuned"}).status == 404
    assert "tuned:latest" not in [m["name"] for m in http("GET", ollama.url + "/api/tags").json()["models"]]


def test_cli_create_from_exported_safetensors_dir(ollama, tmp_path):
    """The fine-tuning flow: `ollama create NAME -f <export_dir>/Modelfile --quantize q4_K_M` with FROM ."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text(json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}))
    (export / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (export / "Modelfile").write_text(
        '# ollama modelfile auto-generated by llamafactory\n\nFROM .\n\nTEMPLATE """{{ .Prompt }}"""\n\n'
        'PARAMETER stop "<|im_end|>"\nPARAMETER num_ctx 4096\n'
    )
    res = ollama_cli(["create", "acme-ft", "-f", str(export / "Modelfile"), "--quantize", "q4_K_M"], ollama.port)
    assert res.returncode == 0, res.stderr
    assert "success" in res.stdout and "quantizing F16 model to Q4_K_M" in res.stdout
    show = http("POST", ollama.url + "/api/show", {"model": "acme-ft"}).json()
    assert show["details"]["family"] == "qwen2" and show["details"]["quantization_level"] == "Q4_K_M"
    assert "num_ctx" in show["parameters"]
    listed = ollama_cli(["list"], ollama.port)
    assert listed.returncode == 0 and "acme-ft:latest" in listed.stdout and listed.stdout.startswith("NAME")
    run = ollama_cli(["run", "acme-ft", "Say hi"], ollama.port)
    assert run.returncode == 0 and "Say hi" in run.stdout and "stand-in" in run.stdout.lower()


def test_cli_pull_run_version_and_errors(ollama):
    res = ollama_cli(["pull", "tinyllama"], ollama.port)
    assert res.returncode == 0 and res.stdout.strip().endswith("success")
    v = ollama_cli(["--version"], ollama.port)
    assert v.returncode == 0 and v.stdout.startswith("ollama version is 0.0.0-test") and "stand-in" in v.stdout
    assert ollama_cli(["-v"], ollama.port).stdout == v.stdout
    missing = ollama_cli(["rm", "never-pulled"], ollama.port)
    assert missing.returncode == 1 and missing.stderr.startswith("Error:")


def test_cli_without_server(tmp_path):
    from tests.standins.runner import free_port

    port = free_port()
    v = ollama_cli(["-v"], port)
    assert v.returncode == 0 and "could not connect" in v.stdout and "client version is 0.0.0-test" in v.stdout
    lst = ollama_cli(["list"], port)
    assert lst.returncode == 1 and "could not connect" in lst.stderr


def test_models_persist_across_restart_and_log_has_no_secrets(tmp_path):
    with ollama_process(tmp_path) as first:
        _pull(first.url, "persist:1b")
        http("GET", first.url + "/api/tags", headers={"Authorization": "Bearer sekret-token-123"})
        log = first.log()
    assert "sekret-token-123" not in log and "/api/tags" in log
    with ollama_process(tmp_path) as second:
        names = [m["name"] for m in http("GET", second.url + "/api/tags").json()["models"]]
        assert "persist:1b" in names
        chat = http("POST", second.url + "/api/chat", {"model": "persist:1b", "messages": [{"role": "user", "content": "hi"}], "stream": False})
        assert chat.status == 200


def test_sigterm_stops_cleanly(tmp_path):
    with ollama_process(tmp_path) as o:
        t0 = time.monotonic()
        o.proc.send_signal(signal.SIGTERM)
        rc = o.proc.wait(timeout=5)
        assert rc == 0 and time.monotonic() - t0 < 3
        assert "shutting down" in o.log()


def test_ollama_host_parsing():
    from tests.standins.ollama_standin import Name, parse_host

    assert parse_host("") == ("http", "127.0.0.1", 11434)
    assert parse_host("0.0.0.0") == ("http", "0.0.0.0", 11434)
    assert parse_host("0.0.0.0:8080", for_client=True) == ("http", "127.0.0.1", 8080)
    assert parse_host("http://[::1]:9000") == ("http", "::1", 9000)
    assert Name("qwen2.5").display == "qwen2.5:latest"
    assert Name("acme/tuned:v1").display == "acme/tuned:v1"
    assert Name("hf.co/org/repo:Q4").manifest_rel() == os.path.join("manifests", "hf.co", "org", "repo", "Q4")
    with pytest.raises(ValueError):
        Name("a/b/c/d")
