"""The stand-ins on loopback, run from the files the images and the Ollama archive carry: the API
and commands the deploy, scripts/finetune, scripts/smoke and the host checks call."""

from __future__ import annotations

import json

import pytest

from testhost.util import free_port
from tests.standins.runner import http, ollama_cli, ollama_process, run_cli, server_process

KEY = "standin-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _chat(url: str, model: str, headers=AUTH, **extra):
    body = {
        "model": model,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Quel âge   a le lot ?"}],
    }
    return http("POST", url + "/v1/chat/completions", {**body, **extra}, headers)


# ---- vLLM ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vllm():
    port = free_port()
    argv = [
        "vllm",
        "serve",
        "org/Model-7B",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        "small",
        "alias",
        "--max-model-len",
        "4096",
        "--enforce-eager",
    ]
    with server_process(argv, port, env={"VLLM_API_KEY": KEY}) as s:
        yield s


def test_vllm_health_is_open_and_v1_needs_the_key(vllm):
    assert http("GET", vllm.url + "/health").status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        assert http("GET", vllm.url + "/v1/models", headers=headers).status == 401
        assert _chat(vllm.url, "small", headers).status == 401
    assert http("GET", vllm.url + "/v1/nope", headers=AUTH).status == 404


def test_vllm_models_list_served_names_with_their_root(vllm):
    doc = http("GET", vllm.url + "/v1/models", headers=AUTH).json()
    assert [(m["id"], m["root"]) for m in doc["data"]] == [("small", "org/Model-7B"), ("alias", "org/Model-7B")]
    assert doc["standin"] is True


def test_vllm_chat_completion_is_marked_and_deterministic(vllm):
    r = _chat(vllm.url, "alias")
    doc = r.json()
    text = doc["choices"][0]["message"]["content"]
    assert r.status == 200 and doc["object"] == "chat.completion" and doc["model"] == "alias"
    assert text.startswith("Stand-in answer from alias (vLLM stand-in, no model ran). You said: Quel âge a le lot ?.")
    assert doc["usage"]["total_tokens"] == doc["usage"]["prompt_tokens"] + doc["usage"]["completion_tokens"] > 0
    assert _chat(vllm.url, "alias").json()["choices"][0]["message"]["content"] == text
    assert _chat(vllm.url, "org/Model-7B").status == 404  # served names only, as vLLM
    assert _chat(vllm.url, "small", stream=True).status == 400  # no streaming: said, not faked
    assert http("POST", vllm.url + "/v1/chat/completions", {"model": "small"}, AUTH).status == 400


@pytest.mark.parametrize(
    ("entrypoint", "served"),
    [
        (["python3", "-m", "vllm.entrypoints.openai.api_server"], "Qwen/Qwen3-0.6B"),  # ignores the positional
        (["vllm", "serve"], "org/positional"),
    ],
)
def test_vllm_positional_model_by_entrypoint_and_api_key_flag(entrypoint, served):
    port = free_port()
    with server_process(
        [*entrypoint, "org/positional", "--host", "127.0.0.1", "--port", str(port), "--api-key", "k"], port
    ) as s:
        data = http("GET", s.url + "/v1/models", headers={"Authorization": "Bearer k"}).json()["data"]
    assert [(m["id"], m["root"]) for m in data] == [(served, served)]


# ---- LLaMA-Factory ---------------------------------------------------------------------------------
@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ds.json").write_text(
        json.dumps([{"instruction": f"q{i}", "input": "", "output": "a"} for i in range(40)])
    )
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"ds": {"file_name": "ds.json"}}))
    return tmp_path


def _yaml(path, **cfg) -> str:
    path.write_text(
        "# written by the test\n" + "".join(f"{k}: {v}\n" for k, v in cfg.items()) + "nested:\n  - ignored\n"
    )
    return str(path)


def test_llamafactory_train_writes_progress_and_adapter(workdir):
    cfg = _yaml(
        workdir / "train.yaml",
        model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct",
        finetuning_type="lora",
        dataset="ds",
        dataset_dir=workdir / "data",
        output_dir=workdir / "out",
        per_device_train_batch_size=1,
        gradient_accumulation_steps=2,
        num_train_epochs=2.0,
        logging_steps=5,
        learning_rate="'2.0e-4'",
    )
    res = run_cli(["llamafactory-cli", "train", cfg, "logging_steps=1"])
    assert res.returncode == 0, res.stderr
    assert "STAND-IN" in res.stdout and "Loading dataset ds... (40 examples" in res.stdout
    rows = [json.loads(ln) for ln in (workdir / "out" / "trainer_log.jsonl").read_text().splitlines()]
    assert [r["current_steps"] for r in rows] == list(range(1, 41)) and rows[-1][
        "total_steps"
    ] == 40  # 40 rows / 2 × 2 epochs
    assert rows[-1]["percentage"] == 100.0 and rows[0]["remaining_time"] and rows[-1]["loss"] < rows[0]["loss"]
    assert rows[0]["lr"] == pytest.approx(2e-4, rel=0.01)
    assert (
        json.loads((workdir / "out" / "adapter_config.json").read_text())["base_model_name_or_path"]
        == "Qwen/Qwen2.5-0.5B-Instruct"
    )
    st = (workdir / "out" / "adapter_model.safetensors").read_bytes()
    header = int.from_bytes(st[:8], "little")
    assert json.loads(st[8 : 8 + header])["weight"]["data_offsets"] == [0, 16] and len(st) == 8 + header + 16
    again = run_cli(["llamafactory-cli", "train", cfg, "overwrite_output_dir=false"])
    assert again.returncode == 1 and "Output directory already exists" in again.stderr


@pytest.mark.parametrize(
    ("dataset", "info", "error"),
    [
        ("nope", {"ds": {"file_name": "ds.json"}}, "Undefined dataset nope"),
        ("ds", {"ds": {"file_name": "missing.json"}}, "missing.json not found"),
    ],
)
def test_llamafactory_train_checks_datasets(workdir, dataset, info, error):
    (workdir / "data" / "dataset_info.json").write_text(json.dumps(info))
    cfg = _yaml(
        workdir / "t.yaml",
        model_name_or_path="m",
        dataset=dataset,
        dataset_dir=workdir / "data",
        output_dir=workdir / "o",
    )
    res = run_cli(["llamafactory-cli", "train", cfg])
    assert res.returncode == 1 and error in res.stderr
    assert run_cli(["llamafactory-cli", "train", str(workdir / "missing.yaml")]).returncode == 1


@pytest.mark.parametrize(("template", "stop"), [("qwen", "<|im_end|>"), ("llama3", "<|eot_id|>"), ("mistral", "</s>")])
def test_llamafactory_export_writes_weights_and_modelfile(tmp_path, template, stop):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    cfg = _yaml(
        tmp_path / "merge.yaml",
        model_name_or_path="base/M",
        adapter_name_or_path=adapter,
        template=template,
        export_dir=tmp_path / "merged",
    )
    assert run_cli(["llamafactory-cli", "export", cfg]).returncode == 1  # no adapter_config.json yet
    (adapter / "adapter_config.json").write_text("{}")
    res = run_cli(["llamafactory-cli", "export", cfg])
    assert res.returncode == 0, res.stderr
    modelfile = (tmp_path / "merged" / "Modelfile").read_text()
    assert "FROM .\n" in modelfile and f'PARAMETER stop "{stop}"' in modelfile and "stand-in" in modelfile
    assert (tmp_path / "merged" / "model.safetensors").stat().st_size > 16


def test_llamafactory_webui_api_and_version(tmp_path):
    ui, api = free_port(), free_port()
    with server_process(
        ["llamafactory-cli", "webui"], ui, {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(ui)}, "/"
    ) as s:
        page = http("GET", s.url + "/")
        assert page.status == 200 and "stand-in" in page.text
    cfg = _yaml(tmp_path / "api.yaml", model_name_or_path="/app/output/x/merged")
    env = {"API_HOST": "127.0.0.1", "API_PORT": str(api), "API_KEY": KEY, "API_MODEL_NAME": "ft"}
    with server_process(["llamafactory-cli", "api", cfg], api, env, "/v1/models") as s:
        assert http("GET", s.url + "/v1/models").status == 401
        assert [(m["id"], m["root"]) for m in http("GET", s.url + "/v1/models", headers=AUTH).json()["data"]] == [
            ("ft", "/app/output/x/merged")
        ]
        assert "LLaMA-Factory stand-in" in _chat(s.url, "ft").json()["choices"][0]["message"]["content"]
    res = run_cli(["llamafactory-cli", "version"], env={"STANDIN_VERSION": "0.9.4"})
    assert res.returncode == 0 and "version 0.9.4 (stand-in)" in res.stdout
    assert run_cli(["llamafactory-cli", "chat"]).returncode == 1


# ---- Ollama ----------------------------------------------------------------------------------------
@pytest.fixture
def ollama(tmp_path):
    with ollama_process(tmp_path / "models") as o:
        yield o


def test_ollama_pull_tags_persist_and_rm(tmp_path):
    models = tmp_path / "models"
    with ollama_process(models) as o:
        assert http("GET", o.url + "/api/version").json()["version"] == "0.0.0-test"
        for name in ("llama3.1:8b", "hf.co/org/Repo-GGUF"):
            r = http("POST", o.url + "/api/pull", {"model": name, "stream": False})
            assert r.status == 200 and r.json()["status"] == "success"
        assert http("POST", o.url + "/api/pull", {"model": "../../etc:x"}).status == 400
    assert (models / "manifests/registry.ollama.ai/library/llama3.1/8b").is_file()
    with ollama_process(models) as o:  # kept across restarts
        names = [m["name"] for m in http("GET", o.url + "/api/tags").json()["models"]]
        assert names == ["hf.co/org/Repo-GGUF:latest", "llama3.1:8b"]
        listed = ollama_cli(["list"], o.port).stdout.splitlines()
        assert listed[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"] and [ln.split()[0] for ln in listed[1:]] == names
        rm = ollama_cli(["rm", "llama3.1:8b"], o.port)
        assert rm.returncode == 0 and "deleted 'llama3.1:8b'" in rm.stdout
        again = ollama_cli(["rm", "llama3.1:8b"], o.port)
        assert again.returncode == 1 and "not found" in again.stderr
        assert [m["name"] for m in http("GET", o.url + "/api/tags").json()["models"]] == ["hf.co/org/Repo-GGUF:latest"]


def test_ollama_generate_and_openai_api(ollama):
    assert http("POST", ollama.url + "/api/generate", {"model": "qwen", "prompt": "hi", "stream": False}).status == 404
    http("POST", ollama.url + "/api/pull", {"model": "qwen"})
    doc = http(
        "POST", ollama.url + "/api/generate", {"model": "qwen", "prompt": "In one sentence?", "stream": False}
    ).json()
    assert doc["done"] is True and doc["response"].startswith("Stand-in answer from qwen (Ollama stand-in")
    assert [m["id"] for m in http("GET", ollama.url + "/v1/models").json()["data"]] == ["qwen:latest"]
    assert "Ollama stand-in" in _chat(ollama.url, "qwen", headers={}).json()["choices"][0]["message"]["content"]


def test_ollama_create_from_an_exported_directory(ollama, tmp_path):
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "Modelfile").write_text(
        'FROM .\nTEMPLATE """{{ .Prompt }}\nline two"""\nPARAMETER stop "<|im_end|>"\n# comment\n'
    )
    res = ollama_cli(["create", "ft-demo", "-f", "Modelfile", "--quantize", "q4_K_M"], ollama.port, cwd=merged)
    assert res.returncode == 1 and "no safetensors files" in res.stderr
    (merged / "model.safetensors").write_bytes(b"x")
    assert (
        ollama_cli(["create", "ft-demo", "-f", "Modelfile", "--quantize", "q9"], ollama.port, cwd=merged).returncode
        == 1
    )
    res = ollama_cli(["create", "ft-demo", "-f", "Modelfile", "--quantize", "q4_K_M"], ollama.port, cwd=merged)
    assert res.returncode == 0 and res.stdout.strip().endswith("success"), res.stderr
    manifest = json.loads((tmp_path / "models/manifests/registry.ollama.ai/library/ft-demo/latest").read_text())
    assert manifest["template"] == "{{ .Prompt }}\nline two" and manifest["parameters"] == {"stop": ["<|im_end|>"]}
    assert manifest["from"] == str(merged) and manifest["quantize"] == "q4_K_M" and manifest["standin"] is True
    assert (
        http("POST", ollama.url + "/api/generate", {"model": "ft-demo", "prompt": "?", "stream": False}).status == 200
    )


def test_ollama_cli_version_and_without_a_server(tmp_path):
    res = ollama_cli(["-v"], free_port())
    assert res.returncode == 0 and res.stdout.strip() == "ollama version is 0.0.0-test (stand-in)"
    res = ollama_cli(["list"], free_port())
    assert res.returncode == 1 and "could not connect" in res.stderr
    assert ollama_cli(["pull", "x"], free_port()).returncode == 1
