"""Issue 21 §4: vLLM's CPU release image on a CPU without AVX512, and the flags its docs run it with.

The stand-in of the CPU release image dies with SIGILL without avx512f, as the real one does
(vllm-project/vllm#18660); the deploy must refuse such a host with one line before the container
starts (the CPU's flags are a fact read from /proc/cpuinfo), and pass --shm-size and
VLLM_CPU_KVCACHE_SPACE on CPU hosts."""

from __future__ import annotations

import signal

import pytest

from components import upstream
from hosts.roles import vllm as vllm_role
from testhost.util import free_port
from tests.standins.runner import run_cli, server_process
from tests.unit.test_upstream import _host_data

TCG_MAX = ["fpu", "sse2", "avx", "avx2", "fma"]  # qemu 7.2 TCG `-cpu max`: avx2, no avx512f
AVX512 = TCG_MAX + ["avx512f", "avx512bw"]


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nflags\t\t: " + " ".join(flags) + "\n")
    return str(path)


def test_cpu_image_standin_dies_with_sigill_without_avx512f(tmp_path):
    env = {
        "STANDIN_REQUIRED_CPU_FLAGS": " ".join(upstream.vllm_cpu_flags_required(f"{upstream.VLLM_CPU_IMAGE}:v0.11.0")),
        "STANDIN_CPUINFO": _cpuinfo(tmp_path, TCG_MAX),
    }
    res = run_cli(["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m", "--port", "1"], env=env)
    assert res.returncode == -signal.SIGILL
    port = free_port()
    env["STANDIN_CPUINFO"] = _cpuinfo(tmp_path, AVX512)
    with server_process(
        [
            "python3",
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            "m",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        port,
        env,
    ):
        pass


def test_deploy_refuses_the_cpu_release_image_without_avx512f_in_one_line():
    data = _host_data("cpu")
    assert data.vllm.device == "cpu" and data.vllm.image == upstream.VLLM_CPU_IMAGE
    with pytest.raises(RuntimeError) as e:
        vllm_role.check_cpu(data, TCG_MAX)
    line = str(e.value)
    assert "\n" not in line and "avx512f" in line and "#18660" in line and "host.vllm.image" in line
    vllm_role.check_cpu(data, AVX512)  # passes
    # an image the stack chose (e.g. its own build with VLLM_CPU_DISABLE_AVX512=true) is the operator's call
    own = data.model_copy(update={"vllm": data.vllm.model_copy(update={"image": "registry.example/vllm-cpu-avx2"})})
    vllm_role.check_cpu(own, TCG_MAX)


def test_cpu_hosts_get_the_documented_shared_memory_and_kv_cache():
    cpu, gpu = _host_data("cpu"), _host_data("prod")
    args = vllm_role.docker_args(cpu)
    assert args[args.index("--shm-size") + 1] == f"{cpu.vllm.cpu_shm_size_gb}g"
    assert vllm_role.container_env(cpu)["VLLM_CPU_KVCACHE_SPACE"] == str(cpu.vllm.cpu_kvcache_space_gb)
    assert "--shm-size" not in vllm_role.docker_args(gpu) and "VLLM_CPU_KVCACHE_SPACE" not in vllm_role.container_env(
        gpu
    )
