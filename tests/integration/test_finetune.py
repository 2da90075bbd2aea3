"""scripts/finetune end to end on the local Debian 12 test host (stand-in LLaMA-Factory and Ollama):

a converged host → a bad dataset and a GPU-less host are refused before anything is
uploaded → ``run --device cpu`` trains (progress streamed from trainer_log.jsonl) → the dataset is
registered in dataset_info.json, idempotently → ``run --detach`` + ``status`` re-attaches → a failed run
is reported with its log tail → ``export`` merges, ``ollama create``s, answers a smoke prompt and
records the model for the local inventory → ``ollama list`` on the guest shows it.

It runs on host B (``converged_b`` in tests/integration/conftest.py: ``.state/local-host-ib``, its
own ports and namespace), after its rebuild (so it also shows the rebuilt host works); run alone it
boots and converges that host itself (~5 minutes under TCG).

While iterating: boot and converge a VM once with LLM_LOCAL_* variables naming another state dir,
ports and namespace, then ``LLM_FT_KEEP_VM=1 pytest tests/integration/test_finetune.py`` reuses it
and leaves it running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testhost import vm
from testhost.config import config as local_host_config

pytestmark = pytest.mark.vm

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "finetune"
BASE = "Qwen/Qwen2.5-0.5B-Instruct"
KEEP = os.environ.get("LLM_FT_KEEP_VM") == "1"


def _reused_settings():
    """LLM_FT_KEEP_VM=1: the running VM the LLM_LOCAL_* variables name (never the default one)."""
    st = local_host_config()
    if st.state_dir.name in ("local-host", "local-host-it"):
        pytest.fail(f"LLM_FT_KEEP_VM=1 with state dir {st.state_dir}: point LLM_LOCAL_STATE_DIR elsewhere")
    if not vm.is_running(st):
        pytest.fail(f"LLM_FT_KEEP_VM=1 but no VM runs in {st.state_dir}")
    return st


@pytest.fixture(scope="module")
def s(request):
    """Host B, converged (tests/integration/conftest.py), or a reused one."""
    if KEEP:
        return _reused_settings()
    return request.getfixturevalue("converged_b")[0]


def _env(s) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LLM_LOCAL_STATE_DIR=str(s.state_dir),
        LLM_LOCAL_SSH_PORT=str(s.ssh_port),
        LLM_LOCAL_HTTP_PORT=str(s.http_port),
        LLM_LOCAL_HTTPS_PORT=str(s.https_port),
        LLM_LOCAL_APT_PROXY_PORT=str(s.apt_proxy_port),
        LLM_LOCAL_ACME_PORT=str(s.acme_port),
        LLM_LOCAL_ACME_MGMT_PORT=str(s.acme_mgmt_port),
        LLM_LOCAL_MIRROR_PORT=str(s.mirror_port),
        LLM_LOCAL_NETNS=s.netns,
        LLM_LOCAL_TAP=s.tap,
        LLM_SECRET_HUGGINGFACE_API_KEY="hf_integrationTestToken0123456789",
    )
    if (Path(sys.prefix) / ".llm-platform-stamp").is_file():
        env.setdefault("LLM_PLATFORM_VENV", sys.prefix)
    return env


def finetune(s, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "finetune"), *args], capture_output=True, text=True, env=_env(s), timeout=timeout
    )
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream, stream
        assert "hf_integrationTestToken" not in stream  # the token is never printed
    return proc


def sh(s, cmd: str) -> str:
    return vm.ssh_run(cmd, s).stdout


@pytest.fixture(scope="module")
def chat_dataset(tmp_path_factory) -> Path:
    """40 distinct alpaca rows as JSON Lines."""
    path = tmp_path_factory.mktemp("ft") / "support.jsonl"
    rows = [
        {"instruction": f"What is {i} plus {i}?", "input": "", "output": f"{i} plus {i} is {2 * i}."} for i in range(40)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_dataset_is_refused_before_upload(s, timed):
    with timed("run with a bad dataset"):
        proc = finetune(
            s, "run", "local", "--dataset", str(FIX / "alpaca_bad.jsonl"), "--name", "ft-bad", "--device", "cpu"
        )
    assert proc.returncode == 1
    assert "alpaca_bad.jsonl: line 2: missing field 'output'" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: dataset invalid:")
    assert sh(s, "ls /data/datasets/ft-bad.json 2>/dev/null || echo absent").strip() == "absent"


def test_no_gpu_is_refused_without_device_cpu(s, timed, chat_dataset):
    with timed("run without a GPU and without --device cpu"):
        proc = finetune(s, "run", "local", "--dataset", str(chat_dataset), "--name", "ft-nogpu", "--base-model", BASE)
    assert proc.returncode == 1
    assert "error: the host has no NVIDIA GPU" in proc.stderr and "--device cpu" in proc.stderr
    assert sh(s, "ls /data/datasets/ft-nogpu.json 2>/dev/null || echo absent").strip() == "absent"


def test_run_trains_on_cpu_and_streams_progress(s, timed, chat_dataset):
    with timed("run --device cpu (stand-in, 40 steps)"):
        proc = finetune(
            s, "run", "local", "--dataset", str(chat_dataset), "--name", "ft-demo", "--base-model", BASE,
            "--device", "cpu", "--epochs", "2", "--grad-accum", "2", "--logging-steps", "1",
            "--exec-env", "STANDIN_STEP_DELAY_MS=300", "--interval", "1",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = proc.stdout
    assert "method: lora on cpu" in out
    assert "uploaded 40 rows to /data/datasets/ft-demo.json" in out
    assert "dataset_info.json: 'ft-demo' registered (alpaca)" in out or (
        KEEP and "dataset_info.json: 'ft-demo' already registered (alpaca)" in out
    )
    steps = [ln for ln in out.splitlines() if ln.startswith("step ")]
    assert len(steps) >= 3, out  # streamed while it ran, not only the end
    assert steps[-1].startswith("step 40/40 (100.0%)  loss ")
    assert "ETA" in steps[0]
    assert "training ft-demo finished after 40 steps" in out
    assert "next: scripts/finetune export local --name ft-demo" in out


def test_run_left_its_files_on_the_host(s):
    info = json.loads(sh(s, "cat /data/datasets/dataset_info.json"))
    assert info["ft-demo"] == {
        "file_name": "ft-demo.json",
        "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output"},
    }
    assert len(json.loads(sh(s, "cat /data/datasets/ft-demo.json"))) == 40
    d = "/data/finetune/output/ft-demo"
    train_yaml = sh(s, f"cat {d}/train.yaml")
    for line in (
        "stage: sft",
        "finetuning_type: lora",
        "lora_target: all",
        "dataset: ft-demo",
        "dataset_dir: /app/data",
        "output_dir: /app/output/ft-demo/adapter",
        "report_to: none",
    ):
        assert line in train_yaml.splitlines(), line
    assert "hf_integrationTestToken" not in train_yaml + sh(s, f"cat {d}/train.sh {d}/run.json")
    assert sh(s, f"cat {d}/train.exit").strip() == "0"
    assert sh(s, "stat -c %a /etc/llm-platform/secrets/finetune.env").strip() == "600"
    adapter = sh(s, f"ls {d}/adapter").split()
    assert {"adapter_config.json", "adapter_model.safetensors", "trainer_log.jsonl"} <= set(adapter)
    # the exec gets the token by name, from the unit's 0600 environment file
    assert "docker exec -e HF_TOKEN -e HUGGING_FACE_HUB_TOKEN" in sh(s, f"cat {d}/train.sh")


def test_detached_run_and_status_reattach(s, timed):
    ds = FIX / "messages_good.jsonl"
    with timed("run --detach (sharegpt) + status"):
        proc = finetune(
            s,
            "run",
            "local",
            "--dataset",
            str(ds),
            "--name",
            "ft-chat",
            "--base-model",
            BASE,
            "--device",
            "cpu",
            "--logging-steps",
            "1",
            "--exec-env",
            "STANDIN_STEP_DELAY_MS=1500",
            "--detach",
        )
        assert proc.returncode == 0, proc.stderr
        assert "detached. Follow it: scripts/finetune status local --name ft-chat" in proc.stdout
        once = finetune(s, "status", "local", "--name", "ft-chat", "--once")
        assert once.returncode == 0, once.stderr
        assert "run ft-chat on llm-local" in once.stdout
        follow = finetune(s, "status", "local", "--name", "ft-chat", "--interval", "1")
    assert follow.returncode == 0, follow.stderr
    assert "training ft-chat finished" in follow.stdout
    info = json.loads(sh(s, "cat /data/datasets/dataset_info.json"))
    assert info["ft-chat"]["formatting"] == "sharegpt" and "ft-demo" in info  # merged, not replaced
    uploaded = json.loads(sh(s, "cat /data/datasets/ft-chat.json"))
    assert uploaded[0]["conversations"][0]["from"] == "system"


def test_registration_is_idempotent(s, timed):
    before = sh(s, "sha256sum /data/datasets/dataset_info.json")
    with timed("run again with the same dataset (detached)"):
        proc = finetune(
            s,
            "run",
            "local",
            "--dataset",
            str(FIX / "messages_good.jsonl"),
            "--name",
            "ft-chat",
            "--base-model",
            BASE,
            "--device",
            "cpu",
            "--detach",
        )
    assert proc.returncode == 0, proc.stderr
    assert "dataset_info.json: 'ft-chat' already registered" in proc.stdout
    assert sh(s, "sha256sum /data/datasets/dataset_info.json") == before
    assert finetune(s, "status", "local", "--name", "ft-chat", "--interval", "1").returncode == 0


def test_failed_run_is_reported_with_the_log_tail(s):
    d = "/data/finetune/output/ft-broken"
    run = {
        "name": "ft-broken",
        "base_model": BASE,
        "method": "lora",
        "device": "cpu",
        "template": "qwen",
        "dataset": "ft-broken",
        "rows": 1,
        "output_dir": "/app/output/ft-broken/adapter",
        "started_at": 0,
    }
    vm.ssh_run(
        f"mkdir -p {d} && cat > {d}/run.json && echo 'ValueError: boom from the trainer' > {d}/train.log "
        f"&& echo 1 > {d}/train.exit",
        s,
        input=json.dumps(run),
    )
    proc = finetune(s, "status", "local", "--name", "ft-broken")
    assert proc.returncode == 1
    assert "error: training ft-broken failed (exit 1)" in proc.stderr and "boom from the trainer" in proc.stderr
    proc = finetune(s, "export", "local", "--name", "ft-broken")
    assert proc.returncode == 1 and "did not finish successfully (exit 1)" in proc.stderr
    proc = finetune(s, "export", "local", "--name", "ft-nope")
    assert proc.returncode == 1 and "no fine-tuning run named 'ft-nope'" in proc.stderr


def test_export_to_ollama(s, timed):
    with timed("export (merge, ollama create --quantize, smoke prompt)"):
        proc = finetune(s, "export", "local", "--name", "ft-demo", "--quantize", "q4_K_M")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "smoke prompt answered: " in proc.stdout
    answer = proc.stdout.split("smoke prompt answered: ", 1)[1].splitlines()[0]
    assert answer.strip()
    assert f"recorded ft-demo in {s.state_dir / 'extra-ollama-models.json'}" in proc.stdout
    listed = sh(s, "/usr/local/bin/ollama list")
    assert any(line.split()[0] in ("ft-demo:latest", "ft-demo") for line in listed.splitlines()[1:]), listed
    merged = sh(s, "ls /data/finetune/output/ft-demo/merged")
    assert "Modelfile" in merged and "model.safetensors" in merged
    merge_yaml = sh(s, "cat /data/finetune/output/ft-demo/merge.yaml")
    assert "adapter_name_or_path: /app/output/ft-demo/adapter" in merge_yaml
    assert "export_dir: /app/output/ft-demo/merged" in merge_yaml
    assert json.loads((s.state_dir / "extra-ollama-models.json").read_text()) == ["ft-demo"]
    # a second export is idempotent for the record
    again = finetune(s, "export", "local", "--name", "ft-demo", "--model-name", "ft-demo")
    assert again.returncode == 0, again.stderr
    assert "already recorded ft-demo" in again.stdout
