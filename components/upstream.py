"""The upstream pins: every external thing the deploy or the cloud layer depends on, in one table.

Each ``Pin`` holds the value the code uses and the upstream file, **at that version**, that proves
it (``owner/repo@tag:path``), or says ``UNVERIFIED`` and what would verify it. Code reads the values
from here (settings defaults, the vLLM arguments, the stand-ins); where an upstream fact changes
across versions (the vLLM image's entrypoint here, the Ollama archive format in
``components.ollama_release``) the choice is a function of the version, tested on both sides of the
boundary.

``python -m components.upstream`` prints the table as Markdown; ``--write`` puts it into docs/upstream.md.
This module is plain data: it imports nothing from Pulumi or pyinfra.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from components.patterns import RELEASE_VERSION_TEXT

UNVERIFIED = "UNVERIFIED"


@dataclass(frozen=True)
class Pin:
    key: str
    value: str
    source: str  # "owner/repo@tag:path" (or a documentation page), or UNVERIFIED + what would verify it
    note: str = ""

    @property
    def verified(self) -> bool:
        return not self.source.startswith(UNVERIFIED)


def version_tuple(version: str) -> tuple[int, ...]:
    """'v0.14.0' / '0.14.0' → (0, 14, 0); anything after the numbers (-rc1) is ignored."""
    m = re.match(rf"^v?({RELEASE_VERSION_TEXT})(?![0-9])", version)  # [0-9]: int() reads other scripts' digits too
    if not m:
        raise ValueError(f"not a release version: {version!r}")
    return tuple(int(p) for p in m.group(1).split("."))


# --------------------------------------------------------------------------------------------------
# Ollama
# --------------------------------------------------------------------------------------------------
OLLAMA_VERSION = "0.13.5"
OLLAMA_RELEASES = "https://github.com/ollama/ollama/releases/download"
# The Linux release is a gzip tarball up to v0.13.x and a zstd tarball from v0.14.0 on.
OLLAMA_ZSTD_SINCE = (0, 14, 0)
OLLAMA_CHECKSUMS = "sha256sum.txt"  # published beside the archives of every release
# A release's files by these (archive name, URL, unpacking, checksum file): components/ollama_release.py


# --------------------------------------------------------------------------------------------------
# vLLM
# --------------------------------------------------------------------------------------------------
VLLM_TAG = "v0.11.0"
VLLM_GPU_IMAGE = "vllm/vllm-openai"
VLLM_CPU_IMAGE = "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo"
# The image's entrypoint. At v0.11.0 (and still on :latest in January 2026, vllm-project/vllm#32292)
# it is the OpenAI API server module, which takes the model as ``--model`` only: a positional model
# is accepted and ignored, and the default model is served under the configured name. Newer images
# run ``vllm serve``, which also takes it positionally. The deploy passes ``--model``, which both
# understand; the vLLM stand-in follows this function, so a positional model fails the smoke check.
# The first tag with ``vllm serve`` is UNVERIFIED (after 2026-01-13); until it is read from
# docker/Dockerfile at a tag, every parseable tag below this bound counts as the API server module.
VLLM_SERVE_ENTRYPOINT_SINCE = (0, 14, 0)
VLLM_API_SERVER_ENTRYPOINT = ("python3", "-m", "vllm.entrypoints.openai.api_server")
VLLM_SERVE_ENTRYPOINT = ("vllm", "serve")


def vllm_entrypoint(tag: str) -> tuple[str, ...]:
    """The ENTRYPOINT of the vllm/vllm-openai image at ``tag`` (a tag that is not a release version,
    e.g. a nightly, counts as new)."""
    try:
        version = version_tuple(tag)
    except ValueError:
        return VLLM_SERVE_ENTRYPOINT
    return VLLM_SERVE_ENTRYPOINT if version >= VLLM_SERVE_ENTRYPOINT_SINCE else VLLM_API_SERVER_ENTRYPOINT


# The CPU release image is built with AVX512 kernels: on a CPU without ``avx512f`` it dies with SIGILL
# (vllm-project/vllm#18660, 2025-05-24, still so for v0.10.1 on 2025-09-08; the docs' advice is to build
# an image with VLLM_CPU_DISABLE_AVX512=true, vllm-project/vllm#22707). One release that dispatches
# AVX2 or AVX512 came with vllm-project/vllm#35466 (merged 2026-02-27); the first tag with it is not
# read here, so every tag of the CPU release repository counts as needing avx512f. Another image (a
# stack's own AVX2 build in host.vllm.image) is the operator's choice: nothing is required of it.
VLLM_CPU_REQUIRED_FLAGS = ("avx512f",)
# What the CPU docs run the image with: shared memory for the engine's processes and an explicit KV
# cache (GiB); the deploy sets both from settings (host.vllm.cpuShmSizeGb, host.vllm.cpuKvcacheSpaceGb).


def vllm_cpu_flags_required(ref: str) -> tuple[str, ...]:
    """CPU flags the image ``ref`` (``repo:tag``) cannot run without: the CPU release image's AVX512."""
    return VLLM_CPU_REQUIRED_FLAGS if ref.rsplit(":", 1)[0] == VLLM_CPU_IMAGE else ()


# vLLM on a GPU at startup (v0.11.0, vllm/v1/worker/gpu_worker.py ``init_device``): it asks for
# ``gpu_memory_utilization`` x the device's *total* memory and raises ValueError when the device's
# free memory is below that. Whatever else holds GPU memory then (Ollama's loaded model) must leave it.


# --------------------------------------------------------------------------------------------------
# LLaMA-Factory
# --------------------------------------------------------------------------------------------------
LLAMAFACTORY_IMAGE = "hiyouga/llamafactory"
LLAMAFACTORY_TAG = "0.9.4"
# Which versioned tags exist is not established, so no tag is refused for it. docker.yml pushed only
# `:latest` at v0.9.3; from ad345ec05 (2025-06-17) every push to main also pushed
# `:<version without .dev0>` (that commit still said 0.9.3; from 3e392473d, 0.9.4.dev0 → `:0.9.4`),
# until 3fe6f0feb (2025-10-05) limited versioned tags to releases. So `:0.9.4` was a moving dev build
# for months before the v0.9.4 release re-pushed it: a tag is not a pin of content (pin a digest).

# QLoRA's 4-bit load: the value of ``quantization_method`` that means bitsandbytes at v0.9.4 (the enum
# value, not the library's name). parse_dict checks no value: any other string loads the base model
# in 16 bits without a word, and the QLoRA run (chosen because LoRA does not fit) runs out of memory.
LLAMAFACTORY_QUANTIZATION_METHOD = "bnb"

# The web UI behind nginx at a sub-path. v0.9.4's webui/interface.py launches Gradio without root_path
# (``create_ui().queue().launch(share=..., server_name=..., inbrowser=True)``); Gradio reads it from
# GRADIO_ROOT_PATH then, and builds the page's public URL (its ``root``: the theme, the API calls,
# files) from X-Forwarded-Host / X-Forwarded-Proto and that root path (gradio/route_utils.py
# get_root_url). Gradio's own routes stay at its server's /, so nginx strips the prefix.
LLAMAFACTORY_UI_PATH = "/llamafactory"


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
_DO_APPS = "digitalocean/openapi@7c1300c:specification/resources/apps/models"  # copied into shared/do-openapi
# The droplet image for CPU sizes. The slug itself is in no source read here: not in the OpenAPI
# examples at 7c1300c (they show ubuntu-20-04-x64), not in pulumi-digitalocean 4.84.1.
DO_DEBIAN_IMAGE = "debian-12-x64"

PINS: tuple[Pin, ...] = (
    # Ollama
    Pin("ollama.version", OLLAMA_VERSION, "ollama/ollama@v0.13.5 (tag exists)", "default of host.ollama.version"),
    Pin(
        "ollama.archive",
        "ollama-linux-amd64.tgz (< 0.14.0) / ollama-linux-amd64.tar.zst (>= 0.14.0)",
        "ollama/ollama@v0.13.5:.github/workflows/release.yaml (`pigz -9vc >...tgz`), "
        "ollama/ollama@v0.14.0:.github/workflows/release.yaml (`zstd --ultra -22 ... >...tar.zst`)",
        "ollama_release.ollama_archive(version); ollama_unpack_command picks tar --gzip / --zstd",
    ),
    Pin(
        "ollama.layout",
        "bin/ollama + lib/ollama/* at the archive root, unpacked into /usr/local",
        "ollama/ollama@v0.13.5:.github/workflows/release.yaml (`for COMPONENT in bin/* lib/ollama/*`; "
        "`tar c -C dist/linux-amd64 -T ...tar.in`); ollama/ollama@v0.13.5:scripts/install.sh (`tar -xzf - -C "
        "/usr/local`)",
    ),
    Pin(
        "ollama.checksums",
        f"{OLLAMA_CHECKSUMS} beside the archives, lines `<sha256>  ./<file>`",
        "ollama/ollama@v0.13.5:.github/workflows/release.yaml (`find . -type f -not -name 'sha256sum.txt' | "
        "xargs sha256sum | tee sha256sum.txt`, working-directory dist)",
        "scripts/pin reads it",
    ),
    Pin(
        "ollama.url",
        f"{OLLAMA_RELEASES}/v<version>/<archive>",
        "ollama/ollama@v0.13.5:.github/workflows/release.yaml (`gh release upload ${GITHUB_REF_NAME}`)",
    ),
    # vLLM
    Pin(
        "vllm.gpu_image",
        f"{VLLM_GPU_IMAGE}:{VLLM_TAG}",
        f"{UNVERIFIED}: tag from vLLM's release list; verify with `docker manifest inspect "
        f"{VLLM_GPU_IMAGE}:{VLLM_TAG}`",
        "pin a digest (host.vllm.tag accepts tags only today)",
    ),
    Pin(
        "vllm.entrypoint",
        " ".join(vllm_entrypoint(VLLM_TAG)),
        'vllm-project/vllm docker/Dockerfile (`ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]`, '
        "read at a 2025 commit, not at the tag) and vllm-project/vllm#32292 (2026-01-13: :latest still ignores a "
        f"positional model); {UNVERIFIED} at v0.11.0 itself and the first `vllm serve` tag: read "
        "`git show vX:docker/Dockerfile | tail`",
    ),
    Pin(
        "vllm.model_flag",
        "--model MODEL --served-model-name NAME --api-key (env VLLM_API_KEY)",
        "vllm-project/vllm#32292 (--model works with both entrypoints); /v1/models reports the loaded model as `root`",
        "tests/hosts/test_vllm.py checks id and root",
    ),
    Pin("vllm.cpu_image", f"{VLLM_CPU_IMAGE}:{VLLM_TAG}", f"{UNVERIFIED}: vLLM's CPU installation docs at v0.11.0"),
    Pin(
        "vllm.cpu_avx512",
        "the CPU release image needs avx512f (SIGILL without it); the deploy reads /proc/cpuinfo and "
        "refuses a CPU host without it in one line (another image in host.vllm.image: the operator's call)",
        "vllm-project/vllm#18660 (2025-05-24: vllm-cpu-release-repo:v0.8.5.post1 dies with SIGILL on `vinserti64x4`; "
        "2025-09-08: still so at v0.10.1); vllm-project/vllm#22707 (AVX512 optional only in an image built with "
        "VLLM_CPU_DISABLE_AVX512=true); vllm-project/vllm#35466 (2026-02-27: one release for AVX2 and AVX512, first "
        f"tag not read); {UNVERIFIED} at v0.11.0 itself: run the image on a CPU without avx512f",
        "hosts/roles/vllm.py check_cpu; the CPU-image stand-in dies with SIGILL without avx512f",
    ),
    Pin(
        "vllm.cpu_flags",
        "CPU hosts: --shm-size <cpuShmSizeGb>g (4), VLLM_CPU_KVCACHE_SPACE=<cpuKvcacheSpaceGb> (4), "
        "--cap-add SYS_NICE (not --privileged, not seccomp=unconfined)",
        "vllm-project/vllm@063345c:docs/getting_started/installation/cpu/x86.inc.md (`docker run --privileged=true "
        "--shm-size=4g -e VLLM_CPU_KVCACHE_SPACE=...`); "
        "vllm-project/vllm@0231979:docs/getting_started/installation/cpu.x86.inc.md (`--security-opt "
        f"seccomp=unconfined --cap-add SYS_NICE --shm-size=4g -e VLLM_CPU_KVCACHE_SPACE`); {UNVERIFIED}: the same file "
        "at v0.11.0 (the repository is too large to clone here); that CAP_SYS_NICE alone unlocks the NUMA "
        "memory-policy calls under Docker's default seccomp profile is not checked on a host",
        "hosts/roles/vllm.py docker_args, container_env",
    ),
    Pin(
        "vllm.gpu_startup_memory",
        "vLLM refuses to start when free GPU memory < gpu_memory_utilization x total (ValueError `Free memory on "
        "device (F/T GiB) on startup is less than desired GPU memory utilization (U, R GiB)`)",
        f"{UNVERIFIED} at v0.11.0 itself: read vllm/v1/worker/gpu_worker.py init_device at the tag. Read: that "
        "function in a 2025 derivative (`if self.init_snapshot.free_memory < self.requested_memory: raise "
        "ValueError(...)`) and the same message in reports against 0.10-0.11",
        "the vLLM stand-in applies it with STANDIN_GPU_TOTAL_GB/STANDIN_GPU_FREE_GB; tests/unit/test_gpu_split.py",
    ),
    Pin(
        "ollama.gpu_reserve",
        "on GPU hosts with vLLM: OLLAMA_GPU_OVERHEAD = vLLM's share in bytes, OLLAMA_MAX_LOADED_MODELS=1",
        'ollama/ollama@v0.13.5:envconfig/config.go (`GpuOverhead = Uint64("OLLAMA_GPU_OVERHEAD", 0)`, '
        '"Reserve a portion of VRAM per GPU (bytes)"; `MaxRunners = Uint("OLLAMA_MAX_LOADED_MODELS", '
        "0)`); ollama/ollama@v0.13.5:server/sched.go (`available := gpu.FreeMemory - "
        "envconfig.GpuOverhead() - gpu.MinimumMemory()`)",
        "hosts/roles/ollama.py unit_env",
    ),
    # LLaMA-Factory
    Pin(
        "llamafactory.image",
        f"{LLAMAFACTORY_IMAGE}:{LLAMAFACTORY_TAG}",
        "hiyouga/LLaMA-Factory@v0.9.4:.github/workflows/docker.yml (on `release: published`, tag = VERSION from "
        'src/llamafactory/extras/env.py = "0.9.4"); the same tag was pushed on every push to main before: '
        "hiyouga/LLaMA-Factory@ad345ec05:.github/workflows/docker.yml (2025-06-17: `:latest` and `:$(setup.py "
        "--version | sed 's/.dev0//')`) until hiyouga/LLaMA-Factory@3fe6f0feb:.github/workflows/docker.yml "
        "(2025-10-05: versioned tags on releases only)",
        "a tag, not a digest: `:0.9.4` was a moving dev build from 2025-06-17 to 2025-10-05; whether `:0.9.3` "
        "exists is not established, so no tag is refused for it",
    ),
    Pin(
        "llamafactory.cli",
        "llamafactory-cli webui|api|train|export; web UI 7860, API 8000",
        "hiyouga/LLaMA-Factory@v0.9.4:pyproject.toml ([project.scripts] llamafactory-cli), "
        "hiyouga/LLaMA-Factory@v0.9.4:docker/docker-cuda/Dockerfile (GRADIO_SERVER_PORT=7860, "
        "API_PORT=8000; no ENTRYPOINT)",
    ),
    Pin(
        "llamafactory.qlora",
        f"quantization_bit: 4, quantization_method: {LLAMAFACTORY_QUANTIZATION_METHOD}",
        'hiyouga/LLaMA-Factory@v0.9.4:src/llamafactory/extras/constants.py (class QuantizationMethod: `BNB = "bnb"`); '
        "hiyouga/LLaMA-Factory@v0.9.4:src/llamafactory/model/model_utils/quantization.py (on-the-fly branches compare "
        "with BNB/HQQ/EETQ; no else); hiyouga/LLaMA-Factory@v0.9.4:examples/train_qlora/qwen3_lora_sft_otfq.yaml "
        "(`choices: [bnb, hqq, eetq]`)",
        "operate/finetune/training.py writes it; the stand-in loads any other value in 16 bits, as v0.9.4 does",
    ),
    Pin(
        "llamafactory.webui_root_path",
        f"GRADIO_ROOT_PATH={LLAMAFACTORY_UI_PATH}; nginx: proxy_pass .../, "
        'X-Forwarded-Host $host, X-Forwarded-Proto https, Authorization ""',
        "hiyouga/LLaMA-Factory@v0.9.4:src/llamafactory/webui/interface.py (run_web_ui: "
        "`create_ui().queue().launch(share=..., server_name=..., inbrowser=True)`, no root_path); "
        "pyproject.toml at v0.9.4: `gradio>=4.38.0,<=5.50.0`; gradio-app/gradio@v5.50.1 (branch; 5.50.0 "
        "untagged in the clone) and gradio@5.49.1:gradio/blocks.py (launch: `self.root_path = "
        'os.environ.get("GRADIO_ROOT_PATH", "")` without root_path), gradio/route_utils.py (get_root_url '
        "from X-Forwarded-Host/-Proto and root_path), js/spa/src/Index.svelte (`config.root + "
        '"/theme.css"`), guides/11_other-tutorials/running-gradio-on-your-web-server-with-nginx.md (the '
        "location block and the headers)",
        "the web UI stand-in builds its URLs the same way; tests/hosts/test_proxy.py loads the "
        "page and its asset through nginx",
    ),
    Pin(
        "cloudinit.disk_setup",
        "cloud-init formats the data volume only if attached at first boot; else the volume role "
        "formats the provider's device when provably blank (blkid -p, wipefs -n, no partition)",
        "canonical/cloud-init@22.4.2:cloudinit/config/cc_disk_setup.py (frequency PER_INSTANCE; mkfs → "
        "assert_and_settle_device raises `Device ... did not exist and was not created with a udevadm settle`, handle "
        "logs `Failed during filesystem operation` and goes on); Debian 12: cloud-init 22.4.2-1+deb12u4",
        "hosts/ops.py format_blank_volume; host data data_device (scsi-0HC_Volume_<id>, scsi-0DO_Volume_<name>)",
    ),
    # NVIDIA (GPU hosts)
    Pin(
        "nvidia.driver",
        "Debian 12 non-free nvidia-driver + nvidia-smi + firmware-misc-nonfree + linux-headers-amd64; "
        "Ubuntu GPU images: ubuntu-drivers install --gpgpu",
        f"{UNVERIFIED} on a real GPU droplet; read: deb.debian.org/debian bookworm non-free Packages (apt-cache: "
        "nvidia-driver 535.261.03)",
    ),
    Pin(
        "nvidia.container_toolkit",
        "nvidia-container-toolkit from nvidia.github.io/libnvidia-container/stable/deb",
        f"{UNVERIFIED}: NVIDIA's install guide (docs.nvidia.com/datacenter/cloud-native/container-toolkit); "
        "needs a GPU host to verify",
    ),
    # Images and providers
    Pin(
        "do.debian_image",
        DO_DEBIAN_IMAGE,
        f"{UNVERIFIED}: docs.digitalocean.com/products/droplets/details/image-deprecation lists Debian 12 x64 and "
        "says API slugs are named after the major version (its example: debian-9-x64); verify the slug with "
        "`doctl compute image list-distribution --public`",
        "CPU droplet sizes (components/prices.py DropletSize.default_image)",
    ),
    Pin(
        "hcloud.debian_image",
        "debian-12",
        'pulumi/pulumi-hcloud@v1.43.3:sdk/python/pulumi_hcloud/server.py (docstring examples: `image="debian-12"`)',
        "HostSettings.resolved_image for provider hetzner",
    ),
    Pin(
        "do.gpu_image",
        "gpu-h100x1-base (AI/ML ready, Ubuntu) for GPU sizes",
        "digitalocean/openapi@7c1300c:specification/resources/droplets/responses/examples.yml",
    ),
    Pin(
        "do.gpu_sizes",
        "gpu-h100x1-80gb, gpu-h100x8-640gb confirmed; L40S, RTX 4000/6000 Ada UNVERIFIED",
        "components/prices.py (each size's source); scripts/plan prints unverified ones beside the cost",
    ),
    Pin(
        "do.gpu_regions",
        "tor1 confirmed; nyc2, atl1, ams3, ric1 UNVERIFIED",
        "components/prices.py DO_GPU_REGIONS_CONFIRMED; a GPU size outside DO_GPU_REGIONS is refused",
    ),
    Pin(
        "hcloud.server_types",
        "cx23 confirmed; cx33/cx43/cx53 and every price UNVERIFIED",
        "components/prices.py; verify with hcloud.get_server_types()",
    ),
    Pin(
        "docker.loopback_publish",
        "Debian 12 docker.io 20.10: a port published on 127.0.0.1 is reachable from the network by packets "
        "addressed to 127.0.0.1; hosts/roles/docker.py drops them in the raw table",
        "moby/moby#45610 (fixed in Docker 28); measured on the local test host by the loopback probe of "
        "tests/integration/test_host_layer.py: SYN-ACK from 127.0.0.1:7860 without the guard, none with it",
    ),
    Pin(
        "nginx.htpasswd",
        "the UI's htpasswd entry is SHA-512-crypt ($6$, libpass's sha512_crypt), checked by libc crypt(3)",
        "nginx/nginx@release-1.22.1:src/core/ngx_crypt.c (ngx_crypt: $apr1$, {PLAIN}, {SSHA}, {SHA}, else "
        "ngx_libc_crypt); Debian 12's libcrypt implements $6$ (Drepper's SHA-crypt)",
        "the integration suite logs in to the UI through nginx",
    ),
    Pin(
        "certbot.ca_bundle",
        "certbot trusts a private ACME server's CA given as REQUESTS_CA_BUNDLE "
        "(hosts/roles/proxy.py ACME_CA: the local test host's pebble, not the system store)",
        f"{UNVERIFIED}: not read at Debian 12's certbot 2.1.0 (acme's ClientNetwork is a requests Session, and "
        "requests reads REQUESTS_CA_BUNDLE); read acme/acme/client.py at certbot v2.1.0",
        "the integration suite's first converge gets its certificate from pebble this way",
    ),
    Pin(
        "pulumi.sdk_internals",
        "MockMonitor, rpc property helpers, run_pulumi_func, _sync_await (offline plan)",
        "components/pulumi_sdk.py (one module; tests/unit/test_pulumi_sdk.py checks each at the pinned SDK)",
    ),
    Pin(
        "app.internal_service",
        "llm: internal_ports [8081], no http_port, no route; health_check.port 8081",
        f"{_DO_APPS}/app_service_spec.yml (`internal_ports`; `http_port` defaults to 8080), "
        f"{_DO_APPS}/app_service_spec_health_check.yml (`port`: else the component's http_port); "
        "components/app.py PUBLIC_SERVICES",
    ),
    # The Pulumi program on a fresh clone
    Pin(
        "pulumi.pip_toolchain",
        "requirements.txt (`-e .`) installed into .venv on the first `pulumi up`",
        "pulumi/pulumi@v3.259.0:sdk/python/toolchain/pip.go (InstallDependencies: `pip install -r requirements.txt` "
        "in the project root when it creates the virtualenv)",
    ),
)


def table_markdown() -> str:
    lines = ["| pin | value | source at that version | note |", "|---|---|---|---|"]

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    for p in PINS:
        lines.append(f"| `{p.key}` | {cell(p.value)} | {cell(p.source)} | {cell(p.note)} |")
    return "\n".join(lines) + "\n"


DOC_MARKER = "<!-- table -->\n"


def write_doc(path: str) -> None:
    """Replace what follows DOC_MARKER in ``path`` (docs/upstream.md) with the table."""
    with open(path, encoding="utf-8") as f:
        head = f.read().split(DOC_MARKER, 1)[0]
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + DOC_MARKER + table_markdown())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_doc(sys.argv[2] if len(sys.argv) > 2 else "docs/upstream.md")
    else:
        sys.stdout.write(table_markdown())
