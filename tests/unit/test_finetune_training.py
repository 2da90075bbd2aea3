"""scripts/finetune: method choice from GPU memory, training/merge YAML, dataset_info.json merge."""

from __future__ import annotations

import json

import pytest
import yaml  # PyYAML on purpose: LLaMA-Factory reads its training config with it

from operate.finetune import training
from operate.finetune.training import ConfigError, Gpu, choose_method


@pytest.mark.parametrize(
    "model, params",
    [
        ("Qwen/Qwen2.5-7B-Instruct", 7),
        ("meta-llama/Llama-3.1-8B-Instruct", 8),
        ("Qwen/Qwen2.5-0.5B-Instruct", 0.5),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 56),
        ("HuggingFaceTB/SmolLM2-360M-Instruct", 0.36),
        ("google/gemma-2-2b-it", 2),
        ("Qwen/Qwen2.5-72B", 72),
        ("some/model-without-size", None),
    ],
)
def test_params_from_name(model, params):
    assert (
        training.params_billions(model) == pytest.approx(params)
        if params is not None
        else training.params_billions(model) is None
    )


def test_memory_figures_follow_llamafactory_table_for_7b():
    assert training.lora_gb(7) == 16
    assert training.qlora_gb(7) == pytest.approx(6.2)
    assert training.full_gb(7) == 60


def gib(gb: float) -> str:
    return str(int(gb * 1024))


def test_parse_nvidia_smi():
    gpus = training.parse_nvidia_smi(f"{gib(80)}, {gib(79)}\n{gib(20)}, {gib(1)}\n\n")
    assert [(g.total_gb, g.free_gb) for g in gpus] == [(80, 79), (20, 1)]
    assert training.parse_nvidia_smi(f"{gib(24)}\n")[0].free_gb is None
    assert training.parse_nvidia_smi("No devices were found\n") == []


@pytest.mark.parametrize(
    "mem, model, method",
    [
        (80, "Qwen/Qwen2.5-7B-Instruct", "lora"),  # H100: 80 ≥ 16
        (20, "Qwen/Qwen2.5-7B-Instruct", "lora"),  # RTX 4000 Ada 20 GB ≥ 16
        (16, "Qwen/Qwen2.5-7B-Instruct", "lora"),  # exactly the estimate
        (15.5, "Qwen/Qwen2.5-7B-Instruct", "qlora"),
        (12, "meta-llama/Llama-3.1-8B-Instruct", "qlora"),  # 12 < 18
        (20, "Qwen/Qwen2.5-14B-Instruct", "qlora"),  # 20 < 30
        (80, "Qwen/Qwen2.5-72B-Instruct", "qlora"),  # 80 < 146
    ],
)
def test_auto_picks_lora_or_qlora_by_memory(mem, model, method):
    c = choose_method("auto", model, [Gpu(mem, mem)])
    assert (c.method, c.device) == (method, "cuda")


def test_auto_uses_the_largest_gpu_not_the_sum():
    c = choose_method("auto", "Qwen/Qwen2.5-7B-Instruct", [Gpu(12), Gpu(12)])
    assert c.method == "qlora"
    assert "largest of 2 GPUs" in c.reason


def test_auto_needs_a_size():
    with pytest.raises(ConfigError, match="cannot tell the size"):
        choose_method("auto", "org/custom-model", [Gpu(80)])
    assert choose_method("lora", "org/custom-model", [Gpu(80)]).method == "lora"


def test_full_refused_below_24_gb():
    with pytest.raises(ConfigError, match="refused below 24 GB"):
        choose_method("full", "Qwen/Qwen2.5-0.5B-Instruct", [Gpu(20)])
    assert choose_method("full", "Qwen/Qwen2.5-0.5B-Instruct", [Gpu(24)]).method == "full"
    with pytest.raises(ConfigError, match=r"needs ~60 GB"):
        choose_method("full", "Qwen/Qwen2.5-7B-Instruct", [Gpu(48)])
    assert choose_method("full", "Qwen/Qwen2.5-7B-Instruct", [Gpu(80)]).method == "full"


def test_no_gpu_is_refused_unless_cpu_is_explicit():
    with pytest.raises(ConfigError, match="no NVIDIA GPU.*--device cpu"):
        choose_method("auto", "Qwen/Qwen2.5-0.5B-Instruct", [])
    with pytest.raises(ConfigError, match="no NVIDIA GPU"):
        choose_method("lora", "Qwen/Qwen2.5-0.5B-Instruct", [], device="cuda")
    c = choose_method("auto", "Qwen/Qwen2.5-0.5B-Instruct", [], device="cpu")
    assert (c.method, c.device) == ("lora", "cpu")
    assert c.warnings
    with pytest.raises(ConfigError, match="QLoRA needs a CUDA GPU"):
        choose_method("qlora", "Qwen/Qwen2.5-0.5B-Instruct", [], device="cpu")
    with pytest.raises(ConfigError, match="refused on CPU"):
        choose_method("full", "Qwen/Qwen2.5-0.5B-Instruct", [], device="cpu")


def test_explicit_method_below_estimate_warns():
    c = choose_method("lora", "Qwen/Qwen2.5-14B-Instruct", [Gpu(20)])
    assert c.method == "lora" and any("out-of-memory" in w for w in c.warnings)


def test_busy_gpu_warns():
    c = choose_method("auto", "Qwen/Qwen2.5-7B-Instruct", [Gpu(80, free_gb=8)])
    assert c.method == "lora" and any("only 8 GB of GPU memory is free" in w for w in c.warnings)


def test_bad_names_and_methods():
    with pytest.raises(ConfigError, match="--name"):
        training.check_name("Bad Name")
    with pytest.raises(ConfigError, match="--name"):
        training.check_name("-x")
    assert training.check_name("support-bot_v2") == "support-bot_v2"
    with pytest.raises(ConfigError, match="--method"):
        choose_method("dora", "Qwen/Qwen2.5-7B", [Gpu(80)])


def params(method: str, **kw) -> training.TrainParams:
    return training.TrainParams(name="support-bot", method=method, **kw)


def test_train_yaml_lora():
    cfg = training.train_config(params("lora"))
    assert cfg["stage"] == "sft" and cfg["do_train"] is True
    assert cfg["model_name_or_path"] == "Qwen/Qwen2.5-7B-Instruct"
    assert cfg["finetuning_type"] == "lora"
    assert cfg["lora_rank"] == 16 and cfg["lora_target"] == "all"
    assert "quantization_bit" not in cfg
    assert cfg["dataset"] == "support-bot" and cfg["dataset_dir"] == "/app/data"
    assert cfg["template"] == "qwen" and cfg["cutoff_len"] == 2048
    assert cfg["val_size"] == 0.1
    assert cfg["output_dir"] == "/app/output/support-bot/adapter"
    assert cfg["num_train_epochs"] == 3.0 and cfg["learning_rate"] == 2e-4
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps", "logging_steps", "save_steps"):
        assert isinstance(cfg[key], int) and cfg[key] >= 1
    assert cfg["bf16"] is True and cfg["report_to"] == "none" and cfg["overwrite_output_dir"] is True


def test_train_yaml_qlora_full_cpu():
    q = training.train_config(params("qlora"))
    assert q["quantization_bit"] == 4 and q["finetuning_type"] == "lora"
    f = training.train_config(params("full"))
    assert f["finetuning_type"] == "full" and "lora_rank" not in f and "quantization_bit" not in f
    assert f["output_dir"] == "/app/output/support-bot/full"
    c = training.train_config(params("lora", device="cpu"))
    assert c["bf16"] is False
    no_eval = training.train_config(params("lora", val_size=0))
    assert "val_size" not in no_eval and "eval_strategy" not in no_eval


def test_rendered_yaml_reads_back_and_has_no_secret():
    cfg = training.train_config(
        params("qlora", lora_rank=8, epochs=1, learning_rate=1e-4, cutoff_len=1024, template="llama3")
    )
    text = training.render_yaml(cfg, "header line 1\nheader line 2")
    assert text.startswith("# header line 1\n# header line 2\n")
    assert yaml.safe_load(text) == cfg
    assert "token" not in text.lower() and "hf_" not in text
    # the stand-in (and a human) read flat top-level `key: value` lines
    flat = dict(line.split(": ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert flat["quantization_bit"] == "4" and flat["lora_rank"] == "8" and flat["template"] == "llama3"
    assert flat["learning_rate"] == "0.0001"


def test_train_params_are_checked():
    with pytest.raises(ConfigError, match="--lora-rank"):
        training.train_config(params("lora", lora_rank=0))
    with pytest.raises(ConfigError, match="--epochs"):
        training.train_config(params("lora", epochs=0))
    with pytest.raises(ConfigError, match="not resolved"):
        training.train_config(params("auto"))


def test_merge_yaml():
    m = training.merge_config("support-bot", "Qwen/Qwen2.5-7B-Instruct", "qwen", "qlora")
    assert m == {
        "model_name_or_path": "Qwen/Qwen2.5-7B-Instruct",
        "adapter_name_or_path": "/app/output/support-bot/adapter",
        "template": "qwen",
        "finetuning_type": "lora",
        "trust_remote_code": True,
        "export_dir": "/app/output/support-bot/merged",
        "export_size": 2,
        "export_device": "cpu",
        "export_legacy_format": False,
    }
    assert "quantization_bit" not in m  # never merge into a quantized base
    full = training.merge_config("support-bot", "Qwen/Qwen2.5-7B-Instruct", "qwen", "full")
    assert full["model_name_or_path"] == "/app/output/support-bot/full" and "adapter_name_or_path" not in full


ENTRY = {
    "file_name": "support-bot.json",
    "formatting": "alpaca",
    "columns": {"prompt": "instruction", "query": "input", "response": "output"},
}


def test_dataset_info_merge_is_idempotent_and_keeps_others():
    existing = json.dumps({"identity": {"file_name": "identity.json"}}, indent=2)
    text, changed = training.merge_dataset_info(existing, "support-bot", ENTRY)
    assert changed
    info = json.loads(text)
    assert info["identity"] == {"file_name": "identity.json"} and info["support-bot"] == ENTRY
    again, changed2 = training.merge_dataset_info(text, "support-bot", ENTRY)
    assert (again, changed2) == (text, False)
    updated, changed3 = training.merge_dataset_info(text, "support-bot", {**ENTRY, "formatting": "sharegpt"})
    assert changed3 and json.loads(updated)["support-bot"]["formatting"] == "sharegpt"
    assert json.loads(updated)["identity"] == {"file_name": "identity.json"}


def test_dataset_info_merge_from_nothing_and_refuses_garbage():
    text, changed = training.merge_dataset_info(None, "a", ENTRY)
    assert changed and json.loads(text) == {"a": ENTRY}
    assert training.merge_dataset_info("", "a", ENTRY)[1]
    with pytest.raises(ConfigError, match=r"not valid JSON \(line 1"):
        training.merge_dataset_info("{oops", "a", ENTRY)
    with pytest.raises(ConfigError, match="not a JSON object"):
        training.merge_dataset_info("[]", "a", ENTRY)


def test_estimate_steps():
    assert training.estimate_steps(100, 0.1, 3, 1, 8) == 36  # 90 rows / 8 → 12 per epoch × 3
    assert training.estimate_steps(3, 0.1, 1, 1, 8) == 1


# ---- the training YAML through the LLaMA-Factory stand-in (v0.9.4's quantization rules) ----------
def _standin_train(tmp_path, cfg: dict, gpu_gb: float):
    """Run the rendered config through ``llamafactory-cli train`` of the stand-in on a simulated GPU
    of ``gpu_gb``, with the container paths pointed at ``tmp_path``."""
    from tests.standins.runner import run_cli

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "support-bot.json").write_text(json.dumps([{"instruction": "q", "input": "", "output": "a"}] * 8))
    (data / "dataset_info.json").write_text(json.dumps({"support-bot": ENTRY}))
    path = tmp_path / "train.yaml"
    path.write_text(training.render_yaml(cfg, "test"))
    return run_cli(
        ["llamafactory-cli", "train", str(path), f"dataset_dir={data}", f"output_dir={tmp_path / 'out'}"],
        env={"STANDIN_GPU_MEMORY_GB": str(gpu_gb)},
    )


def test_qlora_config_is_quantized_by_llamafactory(tmp_path):
    """`auto` picks QLoRA exactly when LoRA does not fit (a 14B model on staging's 20 GB GPU); the
    config must make v0.9.4 load the base in 4 bits, or the 16-bit load runs out of memory."""
    model, gpu = "Qwen/Qwen2.5-14B-Instruct", 20
    assert choose_method("auto", model, [Gpu(gpu, gpu)]).method == "qlora"
    res = _standin_train(tmp_path, training.train_config(params("qlora", base_model=model)), gpu)
    assert res.returncode == 0, res.stderr
    assert "Quantizing model to 4 bit with bitsandbytes." in res.stdout


def test_standin_loads_an_unknown_quantization_method_in_16_bits_as_v094_does(tmp_path):
    """v0.9.4 checks no value in parse_dict; a method outside QuantizationMethod quantizes nothing."""
    cfg = {
        **training.train_config(params("qlora", base_model="Qwen/Qwen2.5-14B-Instruct")),
        "quantization_method": "bitsandbytes",
    }
    res = _standin_train(tmp_path, cfg, 20)
    assert res.returncode == 1 and "Quantizing" not in res.stdout
    assert "CUDA out of memory" in res.stderr
