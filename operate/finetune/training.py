"""Training choices and the files LLaMA-Factory reads: method from GPU memory, the training YAML,
the merge (export) YAML and the ``dataset_info.json`` merge. All pure functions (unit-tested).

GPU memory needed, in GB, for a base model of P billion parameters (LLaMA-Factory's README table,
"Hardware Requirement", rounded into a formula; 7B: LoRA 16, QLoRA 6, full 60):

    LoRA  (16-bit base weights)       2 × P + 2     (bf16 weights 2 bytes/param + adapters, optimizer
                                                     state of the adapters, activations at cutoff 2048)
    QLoRA (4-bit base weights)        0.6 × P + 2
    full  (pure bf16)                 8 × P + 4

The parameter count comes from the model name (``Qwen/Qwen2.5-7B-Instruct`` → 7,
``Mixtral-8x7B`` → 56, ``SmolLM2-360M`` → 0.36). ``auto`` picks LoRA when the largest GPU has at least
the LoRA figure, else QLoRA. ``full`` is refused below 24 GB (and below its figure). Multi-GPU runs
are data parallel: each GPU holds a full copy, so the largest single GPU counts, not the sum.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from components import upstream, yamlio

from .dataset import DEFAULT_EVAL_RATIO, DEFAULT_MAX_TOKENS, DEFAULT_SEED

METHODS = ("auto", "lora", "qlora", "full")
DEVICES = ("auto", "cuda", "cpu")
FULL_MIN_GB = 24.0
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")  # \Z: `$` also matches before a trailing newline
CONTAINER = "llm-llamafactory"
CONTAINER_DATA = "/app/data"
CONTAINER_OUTPUT = "/app/output"
QUANTIZE = ("q4_K_M", "q4_K_S", "q8_0")


class ConfigError(Exception):
    """A choice that cannot work (one line, shown to the user)."""


def check_name(name: str, what: str = "--name") -> str:
    if not NAME_RE.match(name or ""):
        raise ConfigError(
            f"{what} {(name or '')[:80]!r}: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or "
            "digit"
        )
    return name


# --- sizes and memory -----------------------------------------------------------------------------

_SIZE_RE = re.compile(r"(?:^|[-_/.\s])(?:(\d+)x)?(\d+(?:\.\d+)?)([bBmM])(?![a-zA-Z0-9])")


def params_billions(model: str) -> float | None:
    """Parameter count in billions parsed from a model name, or None when the name has none."""
    found = None
    for m in _SIZE_RE.finditer(model):
        experts = int(m.group(1)) if m.group(1) else 1
        value = float(m.group(2)) * experts
        found = value if m.group(3) in "bB" else value / 1000
    return found


def lora_gb(p: float) -> float:
    return 2 * p + 2


def qlora_gb(p: float) -> float:
    return 0.6 * p + 2


def full_gb(p: float) -> float:
    return 8 * p + 4


NEEDS = {"lora": lora_gb, "qlora": qlora_gb, "full": full_gb}


@dataclass
class Gpu:
    total_gb: float
    free_gb: float | None = None


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """GPUs from ``nvidia-smi --query-gpu=memory.total,memory.free --format=csv,noheader,nounits``
    (MiB; one line per GPU; the free column is optional)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",") if p.strip()]
        if not parts:
            continue
        try:
            total = float(parts[0]) / 1024
            free = float(parts[1]) / 1024 if len(parts) > 1 else None
        except ValueError:
            continue
        gpus.append(Gpu(total, free))
    return gpus


@dataclass
class Choice:
    method: str  # lora | qlora | full
    device: str  # cuda | cpu
    reason: str
    warnings: list[str] = field(default_factory=list)


def choose_method(method: str, base_model: str, gpus: list[Gpu], device: str = "auto") -> Choice:
    """Pick (or check) the training method for ``base_model`` on these GPUs."""
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if device not in DEVICES:
        raise ConfigError(f"--device {device!r}: expected one of {', '.join(DEVICES)}")
    p = params_billions(base_model)
    size = f"{p:g}B" if p is not None else "unknown size"
    if device == "cpu" or (not gpus and device == "auto"):
        if device != "cpu":
            raise ConfigError(
                "the host has no NVIDIA GPU (nvidia-smi found none); training on CPU is very slow: "
                "pass --device cpu to do it anyway"
            )
        if method == "qlora":
            raise ConfigError("QLoRA needs a CUDA GPU (bitsandbytes 4-bit); use --method lora with --device cpu")
        if method == "full":
            raise ConfigError("full fine-tuning is refused on CPU; use --method lora with --device cpu")
        return Choice(
            "lora",
            "cpu",
            f"--device cpu: LoRA on CPU ({base_model}, {size})",
            ["training on CPU: expect hours per epoch for anything but a tiny model"],
        )
    if not gpus:
        raise ConfigError("--device cuda: the host has no NVIDIA GPU (nvidia-smi found none)")
    best = max(gpus, key=lambda g: g.total_gb)
    mem = best.total_gb
    have = f"{mem:.0f} GB" + (f" (largest of {len(gpus)} GPUs)" if len(gpus) > 1 else "")
    warnings: list[str] = []
    if method == "full":
        if mem < FULL_MIN_GB:
            raise ConfigError(
                f"full fine-tuning is refused below {FULL_MIN_GB:.0f} GB of GPU memory (have {have}); use --method "
                "lora or qlora"
            )
        if p is not None and mem < full_gb(p):
            raise ConfigError(
                f"full fine-tuning of {base_model} ({size}) needs ~{full_gb(p):.0f} GB of GPU memory (have {have}); "
                "use --method lora or qlora"
            )
        chosen, reason = "full", f"--method full: {have} GPU memory"
    elif method == "auto":
        if p is None:
            raise ConfigError(
                f"cannot tell the size of {base_model!r} from its name (no '7B'-style part): pass --method "
                "lora|qlora|full"
            )
        if mem >= lora_gb(p):
            chosen = "lora"
            reason = f"auto: LoRA, {have} ≥ ~{lora_gb(p):.0f} GB needed for {size} in 16 bit"
        else:
            chosen = "qlora"
            reason = f"auto: QLoRA, {have} < ~{lora_gb(p):.0f} GB needed for LoRA on {size}"
            if mem < qlora_gb(p):
                warnings.append(f"even QLoRA of {size} needs ~{qlora_gb(p):.0f} GB; expect out-of-memory")
    else:
        chosen, reason = method, f"--method {method}: {have} GPU memory"
        if p is not None and mem < NEEDS[method](p):
            warnings.append(
                f"{method} of {size} needs ~{NEEDS[method](p):.0f} GB of GPU memory (have {have}); expect out-of-memory"
            )
    if p is not None and best.free_gb is not None and best.free_gb < NEEDS[chosen](p) <= mem:
        warnings.append(
            f"only {best.free_gb:.0f} GB of GPU memory is free now (vLLM/Ollama hold the rest?): "
            "stop them for the run (systemctl stop llm-vllm) or training may run out of memory"
        )
    return Choice(chosen, "cuda", reason, warnings)


# --- training YAML --------------------------------------------------------------------------------


@dataclass
class TrainParams:
    name: str
    base_model: str = "Qwen/Qwen2.5-7B-Instruct"
    method: str = "lora"  # resolved: lora | qlora | full
    device: str = "cuda"
    lora_rank: int = 16
    epochs: float = 3.0
    learning_rate: float = 2e-4
    cutoff_len: int = DEFAULT_MAX_TOKENS
    template: str = "qwen"
    val_size: float = DEFAULT_EVAL_RATIO
    batch_size: int = 1
    gradient_accumulation_steps: int = 8
    logging_steps: int = 10
    save_steps: int = 500
    seed: int = DEFAULT_SEED
    max_samples: int | None = None

    def validate(self) -> None:
        check_name(self.name)
        if self.method not in ("lora", "qlora", "full"):
            raise ConfigError(f"method {self.method!r} is not resolved (lora, qlora or full)")
        for what, v in (
            ("--lora-rank", self.lora_rank),
            ("--cutoff-len", self.cutoff_len),
            ("--batch-size", self.batch_size),
            ("--grad-accum", self.gradient_accumulation_steps),
            ("--logging-steps", self.logging_steps),
            ("--save-steps", self.save_steps),
        ):
            if v < 1:
                raise ConfigError(f"{what} must be ≥ 1 (got {v})")
        if not self.epochs > 0:
            raise ConfigError(f"--epochs must be > 0 (got {self.epochs})")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"--learning-rate must be in (0, 1) (got {self.learning_rate})")
        if not 0 <= self.val_size < 1:
            raise ConfigError(f"--eval-ratio must be in [0, 1) (got {self.val_size})")


def run_dir(name: str) -> str:
    """The run's directory inside the container (host: /data/finetune/output/<name>)."""
    return f"{CONTAINER_OUTPUT}/{name}"


def train_output_dir(name: str, method: str) -> str:
    return f"{run_dir(name)}/{'full' if method == 'full' else 'adapter'}"


def train_config(p: TrainParams) -> dict[str, Any]:
    """The LLaMA-Factory training config (``llamafactory-cli train``). No secret ever goes in here:
    the Hugging Face token reaches the container as an environment variable of the exec."""
    p.validate()
    cfg: dict[str, Any] = {
        # model
        "model_name_or_path": p.base_model,
        "trust_remote_code": True,
        # method
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full" if p.method == "full" else "lora",
    }
    if p.method in ("lora", "qlora"):
        cfg.update(
            {"lora_rank": p.lora_rank, "lora_alpha": 2 * p.lora_rank, "lora_dropout": 0.05, "lora_target": "all"}
        )
    if p.method == "qlora":
        cfg.update({"quantization_bit": 4, "quantization_method": upstream.LLAMAFACTORY_QUANTIZATION_METHOD})
    cfg.update(
        {
            # dataset
            "dataset": p.name,
            "dataset_dir": CONTAINER_DATA,
            "template": p.template,
            "cutoff_len": p.cutoff_len,
            "overwrite_cache": True,
            "preprocessing_num_workers": 4,
        }
    )
    if p.max_samples:
        cfg["max_samples"] = p.max_samples
    cfg.update(
        {
            # output
            "output_dir": train_output_dir(p.name, p.method),
            "logging_steps": p.logging_steps,
            "save_steps": p.save_steps,
            "plot_loss": True,
            "overwrite_output_dir": True,
            "save_only_model": False,
            "report_to": "none",
            # train
            "per_device_train_batch_size": p.batch_size,
            "gradient_accumulation_steps": p.gradient_accumulation_steps,
            "learning_rate": p.learning_rate,
            "num_train_epochs": float(p.epochs),
            "lr_scheduler_type": "cosine",
            "warmup_ratio": 0.1,
            "bf16": p.device == "cuda",
            "seed": p.seed,
        }
    )
    if p.method == "full":
        cfg["pure_bf16"] = p.device == "cuda"
    if p.val_size > 0:
        cfg.update(
            {
                # eval: LLaMA-Factory splits val_size off the dataset with `seed`
                "val_size": p.val_size,
                "per_device_eval_batch_size": 1,
                "eval_strategy": "steps",
                "eval_steps": p.save_steps,
            }
        )
    return cfg


def merge_config(name: str, base_model: str, template: str, method: str) -> dict[str, Any]:
    """The export config: LoRA adapters merged into the 16-bit base on CPU (never into a quantized
    base, so QLoRA runs merge the same way), or a full run re-exported; Modelfile included."""
    merged = f"{run_dir(name)}/merged"
    if method == "full":
        return {
            "model_name_or_path": train_output_dir(name, method),
            "template": template,
            "finetuning_type": "full",
            "trust_remote_code": True,
            "export_dir": merged,
            "export_size": 2,
            "export_device": "cpu",
            "export_legacy_format": False,
        }
    return {
        "model_name_or_path": base_model,
        "adapter_name_or_path": train_output_dir(name, method),
        "template": template,
        "finetuning_type": "lora",
        "trust_remote_code": True,
        "export_dir": merged,
        "export_size": 2,
        "export_device": "cpu",
        "export_legacy_format": False,
    }


def render_yaml(cfg: dict[str, Any], header: str) -> str:
    body = yamlio.dump(cfg, allow_unicode=True, width=1000)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


# --- dataset_info.json ----------------------------------------------------------------------------


def merge_dataset_info(existing: str | None, name: str, entry: dict[str, Any]) -> tuple[str, bool]:
    """(new text, changed). Adds or replaces ``name``; keeps every other entry as it was. Raises
    ConfigError when the existing file is not a JSON object (it is never overwritten then)."""
    info: dict[str, Any] = {}
    if existing is not None and existing.strip():
        try:
            info = json.loads(existing)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"dataset_info.json is not valid JSON (line {e.lineno}, col {e.colno}: {e.msg}); fix or move it first"
            ) from None
        if not isinstance(info, dict):
            raise ConfigError("dataset_info.json is not a JSON object; fix or move it first")
    if info.get(name) == entry:
        return existing if existing is not None else "", False
    info[name] = entry
    return json.dumps(info, indent=2, ensure_ascii=False) + "\n", True


def estimate_steps(rows: int, val_size: float, epochs: float, batch: int, accum: int) -> int:
    """Optimizer steps LLaMA-Factory will run (for the plan printed before the start)."""
    train_rows = rows - (math.ceil(rows * val_size) if val_size > 0 else 0)
    per_epoch = max(1, math.ceil(train_rows / (batch * accum)))
    return max(1, math.ceil(per_epoch * epochs))
