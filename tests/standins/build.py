"""Build the stand-in artifacts served by the local mirror.

    python -m tests.standins.build --out DIR [--ollama-version X] [--vllm-tag T] [--llamafactory-tag T] [--force]

Layout of DIR (mirrors the real download paths, so only the base URL differs from production):

    DIR/ollama/v<version>/ollama-linux-amd64.tgz       stand-in Ollama release (bin/ollama + lib/ollama/), < 0.14.0
    DIR/ollama/v<version>/ollama-linux-amd64.tar.zst   the same, >= 0.14.0 (the real release's name; needs `zstd`)
    DIR/ollama/v<version>/sha256sum.txt                its checksum, in the release's format (scripts/pin reads it)
    DIR/images/vllm-openai-<tag>.tar                   docker-archive of the vLLM stand-in image
    DIR/images/llamafactory-<tag>.tar                  docker-archive of the LLaMA-Factory stand-in image
    DIR/manifest.json                                  inventory of the above with sha256s (written last)

Default versions are the platform's pins (``components.settings``); the vLLM stand-in is also tagged
with vLLM's CPU image name (the deploy's default on CPU hosts), listed under ``refs``.

Output is deterministic (same inputs -> same sha256) and a build whose inputs did not change is
skipped (``manifest.json`` records a fingerprint of the inputs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from components import upstream
from tests.standins import compile as cc
from tests.standins.image import (
    Dir,
    File,
    ImageConfig,
    Symlink,
    atomic_write,
    deterministic_tar,
    deterministic_tgz,
    docker_archive,
    image_id,
)

HERE = Path(__file__).resolve().parent
OLLAMA_SOURCE = HERE / "ollama_standin.py"
FORMAT = 1

VLLM_REPO = "vllm/vllm-openai"
LLAMAFACTORY_REPO = "hiyouga/llamafactory"


def pinned_defaults() -> dict:
    """The versions the stand-ins are built for by default: the platform's own pins (components.upstream)."""
    return {
        "ollama_version": upstream.OLLAMA_VERSION,
        "vllm_tag": upstream.VLLM_TAG,
        "llamafactory_tag": upstream.LLAMAFACTORY_TAG,
        # vLLM's CPU image name: the deploy's default on CPU hosts; the vLLM stand-in carries this tag too
        "vllm_extra_repos": tuple(r for r in (upstream.VLLM_CPU_IMAGE,) if r != VLLM_REPO),
    }


_PINS = pinned_defaults()
DEFAULT_OLLAMA_VERSION: str = _PINS["ollama_version"]
DEFAULT_VLLM_TAG: str = _PINS["vllm_tag"]
DEFAULT_LLAMAFACTORY_TAG: str = _PINS["llamafactory_tag"]
DEFAULT_VLLM_EXTRA_REPOS: tuple[str, ...] = _PINS["vllm_extra_repos"]

VERSION_LINE = 'STANDIN_VERSION = "0.0.0-dev"'
BIN = "/usr/local/bin/standin-server"
SHELL_TOOLS = ("sh", "bash", "sleep", "cat", "ls", "mkdir")


# --------------------------------------------------------------------------- ollama


def ollama_script(version: str) -> bytes:
    text = OLLAMA_SOURCE.read_text(encoding="utf-8")
    if text.count(VERSION_LINE) != 1:
        raise RuntimeError(f"{OLLAMA_SOURCE}: expected exactly one line {VERSION_LINE!r}")
    return text.replace(VERSION_LINE, f"STANDIN_VERSION = {json.dumps(version)}").encode("utf-8")


def ollama_entries(version: str) -> list:
    readme = (
        f"STAND-IN for the Ollama {version} release, built by tests/standins/build.py for tests.\n"
        "bin/ollama is a Python 3 script that mimics `ollama serve` and the CLI; no model runs.\n"
        "The real release keeps its runner libraries in this directory.\n"
    ).encode()
    return [
        File("bin/ollama", ollama_script(version), 0o755),
        Dir("lib/ollama"),
        File("lib/ollama/STANDIN-README.txt", readme),
    ]


def zstd_compress(data: bytes) -> bytes | None:
    exe = shutil.which("zstd")
    if not exe:
        return None
    proc = subprocess.run([exe, "-q", "-c", "-19", "-T1", "--no-progress"], input=data, capture_output=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"zstd failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


# --------------------------------------------------------------------------- images


def _tag_version(tag: str) -> str:
    return tag[1:] if tag[:1] == "v" and tag[1:2].isdigit() else tag


def _base_entries(binary: bytes) -> list:
    return [
        File(BIN, binary, 0o755),
        File("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        File("/etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        Dir("/tmp", 0o1777),
        Dir("/root", 0o700),
        Dir("/root/.cache/huggingface"),
        # the tiny shell and file tools of the binary, for `docker exec NAME sh -c ...` / cat / ls checks
        *[Symlink(f"/bin/{tool}", "../usr/local/bin/standin-server") for tool in SHELL_TOOLS],
    ]


def _labels(ref: str, what: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": f"{what} stand-in",
        "org.opencontainers.image.description": f"STAND-IN for {ref} built by tests/standins for tests; runs no model.",
        "io.llm-platform.standin": "true",
        "io.llm-platform.standin.replaces": ref,
    }


def vllm_image(tag: str, binary: bytes) -> tuple[str, list, ImageConfig]:
    """Primary ref, layer entries and config of the vLLM stand-in."""
    ref = f"{VLLM_REPO}:{tag}"
    entries = _base_entries(binary) + [
        Symlink("/usr/local/bin/vllm", "standin-server"),
        Symlink("/usr/local/bin/python3", "standin-server"),  # `python3 -m vllm.entrypoints.openai.api_server`
        Dir("/vllm-workspace"),
        File("/etc/standin-release", json.dumps({"standin": True, "replaces": ref}, sort_keys=True).encode() + b"\n"),
    ]
    config = ImageConfig(
        entrypoint=list(upstream.vllm_entrypoint(tag)),  # the real image's entrypoint at that tag
        env={"STANDIN_VERSION": _tag_version(tag), "STANDIN_REPLACES": ref},
        exposed_ports=["8000/tcp"],
        working_dir="/vllm-workspace",
        labels=_labels(ref, "vLLM OpenAI server"),
    )
    return ref, entries, config


IDENTITY = [
    {"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant developed by {{author}}. How can I assist you today?"},
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "What is your name?", "input": "", "output": "You may refer to me as {{name}}."},
    {"instruction": "Who created you?", "input": "", "output": "I was created by {{author}}."},
]
ALPACA_DEMO = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, exercise, and sleep enough."},
    {"instruction": "What are the three primary colors?", "input": "", "output": "Red, blue and yellow."},
    {"instruction": "Describe the structure of an atom.", "input": "", "output": "A nucleus of protons and neutrons, surrounded by electrons."},
    {"instruction": "Translate to French: good morning", "input": "", "output": "Bonjour."},
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
]
TRAIN_EXAMPLE = """\
### model
model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all

### dataset
dataset: identity,alpaca_en_demo
template: qwen
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true

### output
output_dir: saves/qwen2.5-0.5b/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
"""
MERGE_EXAMPLE = """\
### Note: DO NOT use quantized model or quantization_bit when merging lora adapters

### model
model_name_or_path: Qwen/Qwen2.5-0.5B-Instruct
adapter_name_or_path: saves/qwen2.5-0.5b/lora/sft
template: qwen
trust_remote_code: true

### export
export_dir: output/qwen2.5-0.5b_lora_sft
export_size: 5
export_device: cpu
export_legacy_format: false
"""


def llamafactory_image(tag: str, binary: bytes) -> tuple[str, list, ImageConfig]:
    ref = f"{LLAMAFACTORY_REPO}:{tag}"
    dataset_info = {
        "identity": {"file_name": "identity.json"},
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
    }
    entries = _base_entries(binary) + [
        Symlink("/usr/local/bin/llamafactory-cli", "standin-server"),
        Symlink("/usr/local/bin/lmf", "standin-server"),
        File("/app/data/dataset_info.json", json.dumps(dataset_info, indent=2, sort_keys=True).encode() + b"\n"),
        File("/app/data/identity.json", json.dumps(IDENTITY, indent=2).encode() + b"\n"),
        File("/app/data/alpaca_en_demo.json", json.dumps(ALPACA_DEMO, indent=2).encode() + b"\n"),
        File("/app/examples/train_lora/qwen2.5_lora_sft.yaml", TRAIN_EXAMPLE.encode()),
        File("/app/examples/merge_lora/qwen2.5_lora_sft.yaml", MERGE_EXAMPLE.encode()),
        Dir("/app/output"),
        Dir("/app/saves"),
        Dir("/app/shared_data"),
        File("/etc/standin-release", json.dumps({"standin": True, "replaces": ref}, sort_keys=True).encode() + b"\n"),
    ]
    config = ImageConfig(
        cmd=["llamafactory-cli", "standin-serve"],
        env={
            "GRADIO_SERVER_PORT": "7860",
            "API_PORT": "8000",
            "STANDIN_VERSION": _tag_version(tag),
            "STANDIN_REPLACES": ref,
        },
        exposed_ports=["7860/tcp", "8000/tcp"],
        working_dir="/app",
        labels=_labels(ref, "LLaMA-Factory"),
    )
    return ref, entries, config


def image_filename(ref: str) -> str:
    repo, tag = ref.rsplit(":", 1)
    name = repo.rsplit("/", 1)[-1]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{name}-{tag}")
    return f"{safe}.tar"


# --------------------------------------------------------------------------- build


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for buf in iter(lambda: f.read(1 << 20), b""):
            h.update(buf)
    return h.hexdigest()


def fingerprint(binary_sha: str, params: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT, "params": params, "binary": binary_sha}, sort_keys=True).encode())
    for src in (OLLAMA_SOURCE, HERE / "image.py", HERE / "build.py"):
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    h.update(b"zstd:" + (b"yes" if shutil.which("zstd") else b"no"))
    return h.hexdigest()


def up_to_date(out: Path, fp: str) -> dict | None:
    """The existing manifest when it was built from the same inputs and every file is intact."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("inputs") != fp:
        return None
    items = [manifest["ollama"], *manifest["images"].values()]
    for item in items:
        p = out / item["path"]
        if not p.is_file() or p.stat().st_size != item.get("size", -1) or _sha256_file(p) != item["sha256"]:
            return None
    return manifest


def build(
    out: str | os.PathLike,
    ollama_version: str = DEFAULT_OLLAMA_VERSION,
    vllm_tag: str = DEFAULT_VLLM_TAG,
    llamafactory_tag: str = DEFAULT_LLAMAFACTORY_TAG,
    force: bool = False,
    vllm_extra_repos: tuple[str, ...] | list[str] = DEFAULT_VLLM_EXTRA_REPOS,
    log=lambda msg: print(msg, file=sys.stderr),
) -> dict:
    """Build everything into ``out`` (skipped when up to date); returns the manifest."""
    out = Path(out).resolve()
    ollama_version = ollama_version.lstrip("v")
    extra = sorted(set(vllm_extra_repos))
    params = {"ollama_version": ollama_version, "vllm_tag": vllm_tag, "llamafactory_tag": llamafactory_tag, "vllm_extra_repos": extra}
    binary_path = cc.compile_server()
    binary = binary_path.read_bytes()
    fp = fingerprint(hashlib.sha256(binary).hexdigest(), params)
    if not force:
        existing = up_to_date(out, fp)
        if existing is not None:
            log(f"stand-ins in {out} are up to date")
            return existing
    log(f"building stand-ins into {out}")
    out.mkdir(parents=True, exist_ok=True)

    # Ollama release: only the archive the real release of this version publishes (its name and
    # compression change at 0.14.0: components.upstream), and its sha256sum.txt beside it
    rel_dir = f"ollama/v{ollama_version}"
    name = upstream.ollama_archive(ollama_version)
    if name.endswith(".tar.zst"):
        data = zstd_compress(deterministic_tar(ollama_entries(ollama_version)))
        if data is None:
            raise RuntimeError(f"zstd not found: needed for the Ollama {ollama_version} stand-in ({name})")
    else:
        data = deterministic_tgz(ollama_entries(ollama_version))
    path = f"{rel_dir}/{name}"
    sha = atomic_write(out / path, data)
    sums_path = f"{rel_dir}/{upstream.OLLAMA_CHECKSUMS}"
    atomic_write(out / sums_path, upstream.format_sha256sums({name: sha}).encode())
    ollama = {"version": ollama_version, "archive": name, "path": path, "sha256": sha, "size": len(data),
              "checksums": sums_path}

    # Images
    images = {}
    for key, maker, tag, what, also in (
        ("vllm", vllm_image, vllm_tag, "vLLM", extra),
        ("llamafactory", llamafactory_image, llamafactory_tag, "LLaMA-Factory", []),
    ):
        ref, entries, config = maker(tag, binary)
        refs = [ref] + [f"{repo}:{tag}" for repo in also]
        data = docker_archive(refs, entries, config, comment=f"{what} stand-in for tests")
        path = f"images/{image_filename(ref)}"
        sha = atomic_write(out / path, data)
        images[key] = {"ref": ref, "refs": refs, "path": path, "sha256": sha, "size": len(data), "image_id": image_id(data)}

    manifest = {
        "format": FORMAT,
        "standin": True,
        "inputs": fp,
        "ollama": ollama,
        "images": images,
    }
    atomic_write(out / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    log(f"wrote {out / 'manifest.json'}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.standins.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (the mirror's root)")
    ap.add_argument("--ollama-version", default=DEFAULT_OLLAMA_VERSION)
    ap.add_argument("--vllm-tag", default=DEFAULT_VLLM_TAG)
    ap.add_argument("--llamafactory-tag", default=DEFAULT_LLAMAFACTORY_TAG)
    ap.add_argument("--vllm-extra-repo", action="append", default=None, metavar="REPO",
                    help=f"also tag the vLLM stand-in as REPO:<vllm tag> (repeatable; default: {', '.join(DEFAULT_VLLM_EXTRA_REPOS) or 'none'})")
    ap.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    args = ap.parse_args(argv)
    extra = DEFAULT_VLLM_EXTRA_REPOS if args.vllm_extra_repo is None else tuple(args.vllm_extra_repo)
    try:
        manifest = build(args.out, args.ollama_version, args.vllm_tag, args.llamafactory_tag, force=args.force, vllm_extra_repos=extra)
    except cc.CompileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
