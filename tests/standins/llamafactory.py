"""LLaMA-Factory stand-in: ``llamafactory-cli train|export|webui|api|version`` as the llamafactory
role and scripts/finetune use them. Nothing is loaded or trained.

* ``train CONFIG.yaml [key=value ...]``: checks the model, output directory and datasets (in
  ``dataset_dir``/dataset_info.json), "loads" the model as v0.9.4 would (on-the-fly quantization by
  ``quantization_method``/``quantization_bit``; with STANDIN_GPU_MEMORY_GB set, a simulated GPU of
  that size: weights that do not fit end in CUDA out-of-memory), then writes ``trainer_log.jsonl``
  step by step (steps from the records, batch size, accumulation and epochs; STANDIN_STEP_DELAY_MS
  between steps) and a placeholder LoRA adapter (or full model) into ``output_dir``.
* ``export CONFIG.yaml``: placeholder merged weights and the Ollama ``Modelfile`` in ``export_dir``.
* ``webui``: Gradio's page and assets on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (7860), their public URLs
  built from GRADIO_ROOT_PATH and the X-Forwarded-Host/-Proto headers as Gradio builds them; ``api [CONFIG.yaml]``: the
  OpenAI-compatible API on API_HOST:API_PORT (8000) with API_KEY; ``version``: the banner.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import sys
import time
from pathlib import Path

from .openai_api import Handler, serve

VERSION = os.environ.get("STANDIN_VERSION", "0.0.0")
TEMPLATES = {  # Ollama TEMPLATE and stop token per LLaMA-Factory template family
    "qwen": (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ range .Messages }}<|im_start|>"
        "{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        "<|im_end|>",
    ),
    "llama3": (
        "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|eot_id|>",
    ),
    "default": ("{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}assistant:", "</s>"),
}


class Fail(Exception):
    pass


# On-the-fly quantization at v0.9.4 (src/llamafactory/model/model_utils/quantization.py): the method
# is compared with the QuantizationMethod values (extras/constants.py: BNB = "bnb", HQQ, EETQ, ...).
# HfArgumentParser.parse_dict checks no value, so any other string falls through every branch and the
# model loads unquantized, with no error and no "Quantizing" line. Bits accepted per method, its log
# name and its error, as the branches say.
QUANTIZERS = {
    "bnb": ((8, 4), "bitsandbytes", "Bitsandbytes only accepts 4-bit or 8-bit quantization."),
    "hqq": ((8, 6, 5, 4, 3, 2, 1), "HQQ", "HQQ only accepts 1/2/3/4/5/6/8-bit quantization."),
    "eetq": ((8,), "EETQ", "EETQ only accepts 8-bit quantization."),
}
UNQUANTIZED_BITS = 16  # bf16/fp16 weights
_SIZE_RE = re.compile(r"(?:^|[-_/.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bBmM])(?![a-zA-Z0-9])")


def load_model(cfg: dict) -> int:
    """Bits per weight the model loads in, after v0.9.4's checks (hparams/parser.py, quantization.py)."""
    if not cfg.get("quantization_bit"):
        return UNQUANTIZED_BITS
    bits = int(cfg["quantization_bit"])
    if cfg.get("finetuning_type", "lora") not in ("lora", "oft"):
        raise Fail("ValueError: Quantization is only compatible with the LoRA or OFT method.")
    method = cfg.get("quantization_method") or "bnb"  # the field's default
    if method not in QUANTIZERS:
        return UNQUANTIZED_BITS
    accepted, name, error = QUANTIZERS[method]
    if bits not in accepted:
        raise Fail(f"ValueError: {error}")
    print(f"[INFO|quantization.py] Quantizing model to {bits} bit with {name}.", flush=True)
    return bits


def check_memory(model: str, bits: int) -> None:
    """With STANDIN_GPU_MEMORY_GB, the weights must fit that simulated GPU. The stand-in has no
    weights, so the parameter count comes from the model name (``...-14B-...`` → 14e9)."""
    gpu = os.environ.get("STANDIN_GPU_MEMORY_GB")
    found = list(_SIZE_RE.finditer(model))
    if not gpu or not found:
        return
    experts, value, unit = found[-1].groups()
    params_b = float(value) * int(experts or 1) / (1 if unit in "bB" else 1000)
    need = params_b * bits / 8
    if need > float(gpu):
        raise Fail(
            f"torch.OutOfMemoryError: CUDA out of memory. Loading {model} in {bits} bit needs ~{need:.1f} GiB; "
            f"GPU 0 has a total capacity of {float(gpu):.2f} GiB (stand-in)"
        )


def load_config(args: list[str]) -> dict[str, str]:
    """The flat ``key: value`` lines of a YAML config (what the platform writes), then ``key=value`` overrides."""
    if not args or not args[0].endswith((".yaml", ".yml")):
        raise Fail("usage: llamafactory-cli train|export CONFIG.yaml [key=value ...]")
    try:
        text = Path(args[0]).read_text()
    except OSError as e:
        raise Fail(f"cannot read {args[0]}: {e.strerror}") from None
    cfg = {}
    for line in text.splitlines():
        if line[:1].isspace() or line.startswith(("#", "-")) or ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.split(" #", 1)[0].strip()
        cfg[key.strip()] = value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] and len(value) > 1 else value
    cfg.update(a.split("=", 1) for a in args[1:] if "=" in a)
    return cfg


def need(cfg: dict, key: str) -> str:
    if not cfg.get(key):
        raise Fail(f"ValueError: Please provide `{key}`.")
    return cfg[key]


def records(cfg: dict) -> int:
    """Examples in the datasets named by ``dataset`` (JSON arrays or JSON Lines), capped by max_samples."""
    folder = Path(cfg.get("dataset_dir") or "data")
    try:
        info = json.loads((folder / "dataset_info.json").read_text())
    except (OSError, ValueError) as e:
        raise Fail(f"ValueError: Cannot open {folder}/dataset_info.json: {e}") from None
    total = 0
    for name in need(cfg, "dataset").split(","):
        entry = info.get(name.strip())
        if not isinstance(entry, dict) or "file_name" not in entry:
            raise Fail(f"ValueError: Undefined dataset {name.strip()} in dataset_info.json.")
        path = folder / entry["file_name"]
        if not path.is_file():
            raise Fail(f"ValueError: File {path} not found.")
        text = path.read_text()
        n = len(json.loads(text)) if text.lstrip().startswith("[") else sum(1 for ln in text.splitlines() if ln.strip())
        n = min(n, int(cfg["max_samples"])) if cfg.get("max_samples") else n
        print(f"[INFO|loader] Loading dataset {name.strip()}... ({n} examples, stand-in)", flush=True)
        total += n
    return total


def safetensors(path: Path, what: str) -> None:
    """A tiny valid safetensors file: header length, JSON header, 2x2 F32 zeros."""
    header = json.dumps(
        {
            "__metadata__": {"format": "pt", "standin": what},
            "weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        }
    ).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))


def hms(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(cfg: dict) -> None:
    model, out = need(cfg, "model_name_or_path"), Path(need(cfg, "output_dir"))
    if out.is_dir() and any(out.iterdir()) and cfg.get("overwrite_output_dir", "").lower() != "true":
        raise Fail("ValueError: Output directory already exists and is not empty. Please set `overwrite_output_dir`.")
    n = records(cfg)
    check_memory(model, load_model(cfg))
    batch = max(1, int(cfg.get("per_device_train_batch_size") or 1)) * max(
        1, int(cfg.get("gradient_accumulation_steps") or 1)
    )
    epochs, lr = float(cfg.get("num_train_epochs") or 3), float(cfg.get("learning_rate") or 5e-5)
    total = max(1, math.ceil(max(1, math.ceil(n / batch)) * epochs))
    every, delay = max(1, int(cfg.get("logging_steps") or 10)), int(os.environ.get("STANDIN_STEP_DELAY_MS") or 0) / 1000
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"[WARNING|standin] LLaMA-Factory {VERSION} STAND-IN: no model is loaded and no training runs.\n"
        f"[INFO|trainer.py] ***** Running training *****  Num examples = {n}, Total optimization steps = {total}",
        flush=True,
    )
    with open(out / "trainer_log.jsonl", "w") as log:
        for step in range(1, total + 1):
            time.sleep(delay)
            if step % every and step != total:
                continue
            frac = step / total
            row = {
                "current_steps": step,
                "total_steps": total,
                "loss": round(0.3 + 1.9 * math.exp(-3 * frac), 4),
                "lr": lr * 0.5 * (1 + math.cos(math.pi * frac)),
                "epoch": round(epochs * frac, 2),
                "percentage": round(100 * frac, 2),
                "elapsed_time": hms(2 * step),
                "remaining_time": hms(2 * (total - step)),
            }
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"[INFO|standin] {json.dumps(row)}", flush=True)
    if cfg.get("finetuning_type", "lora") == "lora":
        adapter = {
            "base_model_name_or_path": model,
            "peft_type": "LORA",
            "r": int(cfg.get("lora_rank") or 8),
            "standin": True,
        }
        (out / "adapter_config.json").write_text(json.dumps(adapter, indent=2) + "\n")
        safetensors(out / "adapter_model.safetensors", "llamafactory adapter")
    else:
        (out / "config.json").write_text(json.dumps({"_name_or_path": model, "standin": True}) + "\n")
        safetensors(out / "model.safetensors", "llamafactory full")
    print(f"[INFO|trainer.py] Saving model checkpoint to {out}", flush=True)


def export(cfg: dict) -> None:
    model, out = need(cfg, "model_name_or_path"), Path(need(cfg, "export_dir"))
    for adapter in filter(None, cfg.get("adapter_name_or_path", "").split(",")):
        if not (Path(adapter.strip()) / "adapter_config.json").is_file():
            raise Fail(f"ValueError: Can't find 'adapter_config.json' at '{adapter.strip()}'")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {"_name_or_path": model, "standin_adapters": cfg.get("adapter_name_or_path", ""), "standin": True}, indent=2
        )
        + "\n"
    )
    safetensors(out / "model.safetensors", "llamafactory export")
    family = next((k for k in TEMPLATES if cfg.get("template", "").startswith(k)), "default")
    template, stop = TEMPLATES[family]
    (out / "Modelfile").write_text(
        f"# ollama modelfile auto-generated by llamafactory (stand-in)\n\nFROM .\n\n"
        f'TEMPLATE """{template}"""\n\nPARAMETER stop "{stop}"\nPARAMETER num_ctx 4096\n'
    )
    print(
        f"[INFO|tuner.py] Model weights saved in {out} (stand-in placeholders); Ollama modelfile saved in "
        f"{out}/Modelfile",
        flush=True,
    )


def first_header(value: str | None) -> str:
    """The first of a comma-separated header's values (Gradio: route_utils.get_first_header_value)."""
    return (value or "").split(",")[0].strip()


def root_url(headers, route_path: str, root_path: str) -> str:
    """The page's public URL as Gradio (4.38 - 5.50, gradio/route_utils.py get_root_url) builds it: a
    full URL in root_path as it is; else X-Forwarded-Host when sent (else the Host of the request
    itself), https only when X-Forwarded-Proto says so, and the root path as the URL's path."""
    if root_path.startswith(("http://", "https://")):
        return root_path.rstrip("/")
    forwarded = first_header(headers.get("X-Forwarded-Host"))
    url = f"http://{forwarded}" if forwarded else f"http://{headers.get('Host', '')}{route_path}"
    url = url.split("?", 1)[0].rstrip("/")
    if first_header(headers.get("X-Forwarded-Proto")) == "https":
        url = url.replace("http://", "https://", 1)
    route = route_path.rstrip("/")
    if route and not forwarded:
        url = url[: -len(route)]
    url = url.rstrip("/")
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    if root_path and "/" + path != root_path:
        url = f"{scheme}://{netloc}{root_path}"
    return url.rstrip("/")


class WebUi(Handler):
    """Gradio's routes, at its server's own ``/`` whatever the root path (the proxy strips its prefix):
    the page, which references the theme at the ``root`` of its config (as Gradio's Index.svelte loads
    ``config.root + "/theme.css"``) and its script relative to the page; ``/theme.css``, ``/assets/*``,
    ``/config``. Behind a proxy at a sub-path the references are right only with GRADIO_ROOT_PATH and
    the X-Forwarded-Host/-Proto headers: without them they point outside the sub-path (or to http)."""

    label = "LLaMA-Factory web UI"
    ASSETS = {
        "/theme.css": ("text/css", b":root { --standin: 1; }\n"),
        "/assets/index-standin.js": ("text/javascript", b"/* LLaMA-Factory web UI stand-in */\n"),
    }

    def route(self, method: str, path: str) -> bool:
        if method not in ("GET", "HEAD"):
            return False
        root = root_url(self.headers, path, os.environ.get("GRADIO_ROOT_PATH", ""))
        if path == "/":
            config = json.dumps({"root": root, "version": VERSION, "standin": True})
            body = (
                f"<!doctype html><title>LLaMA Board (stand-in)</title>"
                f'<link rel="stylesheet" href="{root}/theme.css?v=standin">'
                '<script type="module" crossorigin src="./assets/index-standin.js"></script>'
                f"<script>window.gradio_config = {config};</script><h1>LLaMA-Factory {VERSION} stand-in</h1>"
                "<p>The web UI stand-in of the platform's tests: nothing can be trained or served here.</p>\n"
            ).encode()
            kind = "text/html; charset=utf-8"
        elif path == "/config":
            body, kind = json.dumps({"root": root, "version": VERSION, "standin": True}).encode(), "application/json"
        elif path in self.ASSETS:
            kind, body = self.ASSETS[path]
        else:
            return False
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if method == "GET" else b"")
        return True


class Api(Handler):
    label = "LLaMA-Factory"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd, args = (argv[0], argv[1:]) if argv else ("help", [])
    env = os.environ.get
    try:
        if cmd == "train":
            train(load_config(args))
        elif cmd == "export":
            export(load_config(args))
        elif cmd == "webui":
            return serve(
                WebUi,
                env("GRADIO_SERVER_NAME") or "0.0.0.0",
                int(env("GRADIO_SERVER_PORT") or 7860),
                f"LLaMA-Factory {VERSION} web UI",
            )
        elif cmd == "api":
            cfg = load_config(args) if args else {}
            name = env("API_MODEL_NAME") or "gpt-3.5-turbo"
            return serve(
                Api,
                env("API_HOST") or "0.0.0.0",
                int(env("API_PORT") or 8000),
                f"LLaMA-Factory {VERSION} API",
                models=[(name, cfg.get("model_name_or_path") or name)],
                api_key=env("API_KEY"),
            )
        elif cmd in ("version", "-v", "--version"):
            print(f"Welcome to LLaMA Factory, version {VERSION} (stand-in)")
        else:
            print(
                "usage: llamafactory-cli train|export CONFIG.yaml | webui | api [CONFIG.yaml] | version (stand-in)",
                file=sys.stderr,
            )
            return 1
    except Fail as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
