"""The static stand-in binary (tests/standins/server.c) run directly on loopback, not in a container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.standins.compile import CompileError, compile_server
from tests.standins.runner import free_port, http, run_server_cli, server_process

KEY = "test-key-123"


@pytest.fixture(scope="session")
def binary():
    try:
        return compile_server()
    except CompileError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"no static C toolchain: {e}")


@pytest.fixture(scope="module")
def vllm(binary):
    port = free_port()
    args = ["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct", "--host", "127.0.0.1", "--port", str(port), "--api-key", KEY,
            "--max-model-len", "2048", "--dtype", "float16", "--device", "cpu", "--enforce-eager", "--gpu-memory-utilization", "0.5"]
    with server_process(args, port, env={"STANDIN_VERSION": "0.11.0"}, ready_path="/health") as s:
        yield s


AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = {"model": "Qwen/Qwen2.5-0.5B-Instruct", "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "Hello \"there\"\nfriend é"}]}


def test_binary_is_static(binary):
    with open(binary, "rb") as f:
        elf = f.read()
    assert elf[:4] == b"\x7fELF"
    assert b"/lib64/ld-linux" not in elf  # no dynamic loader: runs in a from-scratch image


def test_vllm_health_and_version_are_open(vllm):
    assert http("GET", vllm.url + "/health").status == 200
    v = http("GET", vllm.url + "/version")
    assert v.status == 200 and v.json()["version"] == "0.11.0"


def test_vllm_requires_the_api_key(vllm):
    assert http("GET", vllm.url + "/v1/models").status == 401
    assert http("GET", vllm.url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status == 401
    assert http("POST", vllm.url + "/v1/chat/completions", CHAT).status == 401
    r = http("GET", vllm.url + "/v1/models", headers=AUTH)
    assert r.status == 200
    data = r.json()["data"]
    assert [m["id"] for m in data] == ["Qwen/Qwen2.5-0.5B-Instruct"] and data[0]["max_model_len"] == 2048


def test_vllm_chat_completion_shape(vllm):
    r = http("POST", vllm.url + "/v1/chat/completions", CHAT, headers=AUTH)
    assert r.status == 200, r.text
    out = r.json()
    assert out["object"] == "chat.completion" and out["model"] == CHAT["model"] and out["id"].startswith("chatcmpl-")
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and "stand-in" in msg["content"] and 'Hello "there" friend é' in msg["content"]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]
    assert http("POST", vllm.url + "/v1/chat/completions", CHAT, headers=AUTH).json()["choices"] == out["choices"]


def test_vllm_streaming_and_unknown_model(vllm):
    sse = http("POST", vllm.url + "/v1/chat/completions", dict(CHAT, stream=True), headers=AUTH).text
    events = [line[6:] for line in sse.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "stand-in" in text and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    r = http("POST", vllm.url + "/v1/chat/completions", dict(CHAT, model="other"), headers=AUTH)
    assert r.status == 404 and r.json()["type"] == "NotFoundError"
    bad = http("POST", vllm.url + "/v1/chat/completions", "{not json", headers=AUTH)
    assert bad.status == 400


def test_vllm_served_model_name_and_env_key(binary):
    port = free_port()
    args = ["vllm", "serve", "--model", "/models/x", "--served-model-name", "alias-a", "alias-b", "--port", str(port), "--host", "127.0.0.1"]
    with server_process(args, port, env={"VLLM_API_KEY": "envkey"}, ready_path="/health") as s:
        assert http("GET", s.url + "/v1/models").status == 401
        ids = [m["id"] for m in http("GET", s.url + "/v1/models", headers={"Authorization": "Bearer envkey"}).json()["data"]]
        assert ids == ["alias-a", "alias-b"]
        log = s.log()
    assert "envkey" not in log and "Application startup complete." in log


def test_llamafactory_serves_webui_and_api(binary):
    ui, api = free_port(), free_port()
    env = {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(ui), "API_HOST": "127.0.0.1", "API_PORT": str(api), "API_KEY": KEY}
    with server_process(["llamafactory-cli", "standin-serve"], ui, env=env) as s:
        page = http("GET", s.url + "/")
        assert page.status == 200 and "LLaMA-Factory stand-in" in page.text
        base = f"http://127.0.0.1:{api}"
        r = http("GET", base + "/v1/models")
        assert r.status == 401 and r.json() == {"detail": "Invalid API key."}
        assert http("GET", base + "/v1/models", headers=AUTH).json()["data"][0]["id"] == "gpt-3.5-turbo"
        chat = http("POST", base + "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, headers=AUTH)
        assert chat.status == 200 and "LLaMA-Factory stand-in" in chat.json()["choices"][0]["message"]["content"]


def _lf_workdir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.jsonl"}, "hub": {"hf_hub_url": "org/ds"}}))
    (data / "mine.jsonl").write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(40)))
    (tmp_path / "train.yaml").write_text(
        "### model\nmodel_name_or_path: Qwen/Qwen2.5-0.5B-Instruct   # base\n\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
        "dataset: mine\ntemplate: qwen\noutput_dir: saves/run1\nlogging_steps: 2\nper_device_train_batch_size: 2\n"
        "gradient_accumulation_steps: 2\nlearning_rate: 1.0e-4\nnum_train_epochs: 2.0\nlora_target:\n  - q_proj\n"
    )
    (tmp_path / "merge.yaml").write_text(
        "model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct\nadapter_name_or_path: saves/run1\ntemplate: qwen\n"
        "export_dir: 'output/merged'\nexport_size: 5\nexport_device: cpu\n"
    )
    return tmp_path


def test_llamafactory_train_writes_log_and_adapter(binary, tmp_path):
    wd = _lf_workdir(tmp_path)
    res = run_server_cli(["llamafactory-cli", "train", "train.yaml"], cwd=wd, env={"STANDIN_VERSION": "0.9.4"})
    assert res.returncode == 0, res.stderr
    out = wd / "saves" / "run1"
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    total = 20  # 40 records / (2 x 2) = 10 steps per epoch, 2 epochs
    assert [line["current_steps"] for line in lines] == list(range(2, total + 1, 2))
    last = lines[-1]
    assert set(last) == {"current_steps", "total_steps", "loss", "lr", "epoch", "percentage", "elapsed_time", "remaining_time"}
    assert last["total_steps"] == total and last["percentage"] == 100.0 and last["epoch"] == 2.0
    assert lines[0]["loss"] > last["loss"]
    assert "'loss':" in res.stdout
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["base_model_name_or_path"] == "Qwen/Qwen2.5-0.5B-Instruct"
    st = (out / "adapter_model.safetensors").read_bytes()
    header_len = int.from_bytes(st[:8], "little")
    header = json.loads(st[8 : 8 + header_len])
    tensor = next(v for k, v in header.items() if k != "__metadata__")
    assert len(st) == 8 + header_len + tensor["data_offsets"][1]
    # a second run refuses a non-empty output_dir unless told to overwrite, like LLaMA-Factory
    again = run_server_cli(["llamafactory-cli", "train", "train.yaml"], cwd=wd)
    assert again.returncode != 0 and "overwrite_output_dir" in again.stderr
    assert run_server_cli(["llamafactory-cli", "train", "train.yaml", "overwrite_output_dir=true"], cwd=wd).returncode == 0


def test_llamafactory_train_checks_dataset(binary, tmp_path):
    wd = _lf_workdir(tmp_path)
    res = run_server_cli(["llamafactory-cli", "train", "train.yaml", "dataset=unknown"], cwd=wd)
    assert res.returncode != 0 and "Undefined dataset unknown" in res.stderr
    res = run_server_cli(["llamafactory-cli", "train", "train.yaml", "dataset_dir=elsewhere"], cwd=wd)
    assert res.returncode != 0 and "dataset_info.json" in res.stderr


def test_llamafactory_export_writes_model_and_modelfile(binary, tmp_path):
    wd = _lf_workdir(tmp_path)
    assert run_server_cli(["llamafactory-cli", "train", "train.yaml"], cwd=wd).returncode == 0
    res = run_server_cli(["llamafactory-cli", "export", "merge.yaml"], cwd=wd)
    assert res.returncode == 0, res.stderr
    out = wd / "output" / "merged"
    assert {"config.json", "model.safetensors", "Modelfile", "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen2"
    mf = (out / "Modelfile").read_text()
    assert mf.startswith("# ollama modelfile auto-generated by llamafactory\n\nFROM .\n\nTEMPLATE \"\"\"")
    assert 'PARAMETER stop "<|im_end|>"' in mf and "PARAMETER num_ctx 4096" in mf and "SYSTEM" in mf
    assert "Ollama modelfile saved in" in res.stdout
    missing = run_server_cli(["llamafactory-cli", "export", "merge.yaml", "adapter_name_or_path=./no-such-adapter"], cwd=wd)
    assert missing.returncode != 0 and "adapter_config.json" in missing.stderr


def test_llamafactory_export_llama3_template(binary, tmp_path):
    (tmp_path / "m.yaml").write_text("model_name_or_path: meta-llama/Llama-3.2-1B\ntemplate: llama3\nexport_dir: out\n")
    assert run_server_cli(["llamafactory-cli", "export", "m.yaml"], cwd=tmp_path).returncode == 0
    mf = (tmp_path / "out" / "Modelfile").read_text()
    assert 'PARAMETER stop "<|eom_id|>"\nPARAMETER stop "<|eot_id|>"\n' in mf and "SYSTEM" not in mf


def test_llamafactory_version(binary):
    res = run_server_cli(["llamafactory-cli", "version"], env={"STANDIN_VERSION": "0.9.4"})
    assert res.returncode == 0 and "version 0.9.4 (stand-in)" in res.stdout


def test_tiny_shell(binary, tmp_path):
    res = run_server_cli(["sh", "-c", 'X=1; echo "a $STANDIN_VERSION" && false || echo b; cd / && echo $PWD'], env={"STANDIN_VERSION": "v9"}, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.splitlines() == ["a v9", "b", "/"]
    assert run_server_cli(["sh", "-c", "ls | wc"]).returncode == 2
    assert run_server_cli(["bash", "-lc", "exit 3"]).returncode == 3


def test_idle_shell_and_servers_stop_on_sigterm(binary):
    for args in (["sh"], ["sleep", "infinity"]):
        p = subprocess.Popen([str(binary), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=5) in (0, 143)
    port = free_port()
    with server_process(["vllm", "serve", "m", "--port", str(port), "--host", "127.0.0.1"], port, ready_path="/health") as s:
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=5) == 0


def test_unknown_personality(binary):
    assert run_server_cli(["nonsense"]).returncode == 2
    assert os.access(binary, os.X_OK)
