"""The stand-in artifacts: manifest, determinism and caching, the Ollama archive, the images and
their shared Debian layer, and the loopback mirror that serves them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from components import ollama_release
from testhost.util import free_port
from tests.standins import build as b
from tests.standins import mirror
from tests.standins.image import File, deterministic_tar, docker_archive
from tests.standins.runner import http
from tests.unit.conftest import TEST_ADMIN_CIDR, test_ssh_key

VERSIONS = {"ollama_version": "0.12.3", "vllm_tag": "v0.11.0", "llamafactory_tag": "0.9.4"}
ROOT = b.HERE.parents[1]


@pytest.fixture(scope="module")
def fake_base(tmp_path_factory):
    """A stand-in for the Debian layer (the real one: test_the_debian_layer_runs_the_stand_ins)."""
    path = tmp_path_factory.mktemp("base") / "base.tar"
    path.write_bytes(deterministic_tar([File("usr/bin/python3", b"#!fake\n", 0o755)]))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, fake_base):
    out = tmp_path_factory.mktemp("mirror")
    return out, b.build(out, **VERSIONS, base=fake_base, log=lambda _m: None)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _image(path) -> tuple[dict, dict, list[bytes]]:
    """(manifest entry, config, layers) of a docker-archive, checking the digests ``docker load`` checks."""
    with tarfile.open(path) as tar:
        entry = json.loads(tar.extractfile("manifest.json").read())[0]
        raw = tar.extractfile(entry["Config"]).read()
        layers = [tar.extractfile(name).read() for name in entry["Layers"]]
    config = json.loads(raw)
    assert entry["Config"] == hashlib.sha256(raw).hexdigest() + ".json"
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    assert len(config["history"]) == len(layers)
    return entry, config, layers


def _when_up(url: str, proc: subprocess.Popen, headers: dict | None = None):
    for _ in range(150):
        try:
            return http("GET", url, headers=headers)
        except OSError:
            assert proc.poll() is None, f"exited {proc.returncode}"
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer")


def _members(layer: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_manifest_lists_every_artifact_with_its_checksum(built):
    out, manifest = built
    assert json.loads((out / "manifest.json").read_text()) == manifest and manifest["standin"] is True
    assert manifest["ollama"]["path"] == "ollama/v0.12.3/ollama-linux-amd64.tgz"
    assert {k: v["ref"] for k, v in manifest["images"].items()} == {
        "vllm": "vllm/vllm-openai:v0.11.0",
        "llamafactory": "hiyouga/llamafactory:0.9.4",
        "vllm-cpu": "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.11.0",
    }
    assert manifest["images"]["vllm"]["path"] == "images/vllm-openai-v0.11.0.tar"
    for item in [manifest["ollama"], *manifest["images"].values()]:
        assert _sha(out / item["path"]) == item["sha256"]
    # only the name the real 0.12.3 release has, with its sha256sum.txt in the release's format
    assert sorted(p.name for p in (out / "ollama/v0.12.3").iterdir()) == ["ollama-linux-amd64.tgz", "sha256sum.txt"]
    assert (
        out / manifest["ollama"]["checksums"]
    ).read_text() == f"{manifest['ollama']['sha256']}  ./ollama-linux-amd64.tgz\n"


def test_build_is_deterministic_and_skipped_when_unchanged(built, fake_base, tmp_path):
    out, manifest = built
    mtime = (out / "manifest.json").stat().st_mtime_ns
    assert b.build(out, **VERSIONS, base=fake_base, log=lambda _m: None) == manifest
    assert (out / "manifest.json").stat().st_mtime_ns == mtime  # skipped
    assert (
        b.build(tmp_path / "again", **VERSIONS, base=fake_base, force=True, log=lambda _m: None) == manifest
    )  # same bytes
    (out / manifest["images"]["vllm"]["path"]).write_bytes(b"corrupt")
    assert b.up_to_date(out, manifest["inputs"]) is None
    assert b.build(out, **VERSIONS, base=fake_base, log=lambda _m: None) == manifest  # repaired
    other = tmp_path / "other-base.tar"
    other.write_bytes(deterministic_tar([File("usr/bin/python3", b"#!other\n", 0o755)]))
    assert b.build(tmp_path / "o", **VERSIONS, base=other, log=lambda _m: None)["inputs"] != manifest["inputs"]


def test_ollama_archive_has_the_release_layout_and_runs(built, tmp_path):
    out, manifest = built
    with tarfile.open(out / manifest["ollama"]["path"], "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        tar.extractall(tmp_path, filter="data")
    assert members["bin/ollama"].mode == 0o755 and members["lib/ollama"].isdir()
    assert {"lib/ollama/standin/ollama.py", "lib/ollama/standin/openai_api.py"} <= set(members)
    assert {m.mtime for m in members.values()} == {946684800}
    res = subprocess.run(
        [sys.executable, str(tmp_path / "bin/ollama"), "-v"], capture_output=True, text=True, timeout=30
    )
    assert res.stdout.strip() == "ollama version is 0.12.3 (stand-in)"


@pytest.fixture
def debian_tools():
    """mmdebstrap and zstd, installed the way the local test host's tooling installs its own."""
    from testhost.util import ensure_host_packages

    ensure_host_packages({"mmdebstrap": "mmdebstrap", "zstd": "zstd"})


@pytest.mark.vm  # root and Debian packages: with the VM tests, not in the fast loop
def test_ollama_from_0_14_is_a_zstd_archive_only(debian_tools, fake_base, tmp_path):
    manifest = b.build(tmp_path, **{**VERSIONS, "ollama_version": "0.14.0"}, base=fake_base, log=lambda _m: None)
    rel = tmp_path / "ollama/v0.14.0"
    assert sorted(p.name for p in rel.iterdir()) == ["ollama-linux-amd64.tar.zst", "sha256sum.txt"]
    dest = tmp_path / "unpacked"
    dest.mkdir()
    subprocess.run(
        ollama_release.ollama_unpack_command(str(rel / "ollama-linux-amd64.tar.zst"), str(dest)), check=True, timeout=60
    )
    assert 'ollama.VERSION = "0.14.0"' in (dest / "bin/ollama").read_text()
    assert ollama_release.parse_sha256sums((rel / "sha256sum.txt").read_text()) == {
        "ollama-linux-amd64.tar.zst": manifest["ollama"]["sha256"]
    }


def test_images_share_the_base_layer_and_carry_the_stand_ins(built, fake_base):
    out, manifest = built
    vllm, vcfg, vlayers = _image(out / manifest["images"]["vllm"]["path"])
    lf, lcfg, llayers = _image(out / manifest["images"]["llamafactory"]["path"])
    assert vllm["RepoTags"] == ["vllm/vllm-openai:v0.11.0"] and lf["RepoTags"] == ["hiyouga/llamafactory:0.9.4"]
    assert vlayers[0] == llayers[0] == fake_base.read_bytes() and len(vlayers) == len(llayers) == 2
    app = _members(vlayers[1])
    assert app["usr/local/bin/vllm"].mode == 0o755 and "opt/standin/vllm/entrypoints/openai/api_server.py" in app
    with tarfile.open(fileobj=io.BytesIO(vlayers[1])) as tar:
        assert tar.extractfile("opt/standin/standin/openai_api.py").read() == (b.HERE / "openai_api.py").read_bytes()
    assert "usr/local/bin/llamafactory-cli" in _members(llayers[1]) and "app/output" in _members(llayers[1])
    v, lc = vcfg["config"], lcfg["config"]
    assert (
        v["Entrypoint"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"] and "Cmd" not in v
    )  # the v0.11.0 image's
    assert (
        lc["Cmd"] == ["llamafactory-cli", "webui"]
        and lc["WorkingDir"] == "/app"
        and set(lc["ExposedPorts"]) == {"7860/tcp", "8000/tcp"}
    )
    assert {"PYTHONPATH=/opt/standin", "STANDIN_VERSION=0.11.0"} <= set(v["Env"]) and v["Labels"][
        "io.llm-platform.standin"
    ] == "true"
    later = b.build(out.parent / "later", **{**VERSIONS, "vllm_tag": "v0.14.0"}, base=fake_base, log=lambda _m: None)
    assert _image(out.parent / "later" / later["images"]["vllm"]["path"])[1]["config"]["Entrypoint"] == [
        "vllm",
        "serve",
    ]


def test_docker_archive_is_deterministic_and_refuses_bad_paths():
    layer = deterministic_tar([File("/b", b"2"), File("a/x", b"1", 0o755)])
    assert layer == deterministic_tar([File("a/x", b"1", 0o755), File("/b", b"2")])
    one = docker_archive(["e/app:1"], [layer], {"Cmd": ["x"]}, "c")
    assert (
        one
        == docker_archive(["e/app:1"], [layer], {"Cmd": ["x"]}, "c")
        != docker_archive(["e/app:2"], [layer], {"Cmd": ["x"]}, "c")
    )
    with pytest.raises(ValueError):
        deterministic_tar([File("/../etc/passwd", b"")])


def test_mirror_serves_the_directory_on_loopback_only(built):
    out, manifest = built
    srv = mirror.server(out)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        r = http("GET", f"{url}/{manifest['ollama']['path']}")
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == manifest["ollama"]["sha256"]
        assert http("GET", f"{url}/manifest.json").json() == manifest
        assert http("GET", f"{url}/nope.tgz").status == 404
        assert http("GET", f"{url}/images/../../../etc/passwd").status == 404
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(ValueError):
        mirror.server(out, 0, "0.0.0.0")


def test_mirror_cli_ensure_then_serve(built, fake_base, tmp_path):
    """The two commands scripts/local-host runs, with the base layer cached where build looks for it."""
    out, manifest = built
    env = dict(os.environ, LLM_STANDINS_CACHE=str(tmp_path / "cache"))
    cached = b.base_path().relative_to(b.cache_dir())
    (tmp_path / "cache").mkdir()
    shutil.copy(fake_base, tmp_path / "cache" / cached)
    versions = ["--ollama-version", "0.12.3", "--vllm-tag", "v0.11.0", "--llamafactory-tag", "0.9.4"]
    res = subprocess.run(
        [sys.executable, "-m", "tests.standins.mirror", "ensure", "--dir", str(out), *versions],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and "up to date" in res.stderr and res.stdout.strip() == str(out / "manifest.json"), (
        res.stderr
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.standins.mirror",
            "serve",
            "--ensure",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(out),
            *versions,
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _when_up(f"http://127.0.0.1:{port}/manifest.json", proc).json()["inputs"] == manifest["inputs"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_default_versions_follow_the_platform_pins():
    from components import host_settings as st

    assert b.DEFAULT_OLLAMA_VERSION == st.OllamaSettings.model_fields["version"].default
    assert b.DEFAULT_VLLM_TAG == st.VllmSettings.model_fields["tag"].default
    assert b.DEFAULT_LLAMAFACTORY_TAG == st.LlamaFactorySettings.model_fields["tag"].default


@pytest.mark.vm  # root and mmdebstrap (the layer is cached afterwards)
def test_the_debian_layer_runs_the_stand_ins(debian_tools, tmp_path):
    """The real images, unpacked and run under chroot as Docker would: python3 with the modules the
    stand-ins import survived the trimming, and both entrypoints answer."""
    out = tmp_path / "mirror"
    manifest = b.build(out, **VERSIONS, log=lambda _m: None)
    assert _sha(b.base_path()) == _sha(b.base_layer())
    for key in ("vllm", "llamafactory"):
        entry, config, layers = _image(out / manifest["images"][key]["path"])
        root = tmp_path / key
        for layer in layers:
            with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
                tar.extractall(root)
        assert not (root / "usr/share").exists() and (root / "usr/bin/python3").is_symlink()
        env = dict(e.split("=", 1) for e in config["config"]["Env"])
        run = ["chroot", str(root), "/bin/sh", "-c", f'cd {config["config"]["WorkingDir"]} && exec "$@"', "sh"]
        if key == "llamafactory":
            res = subprocess.run(
                [*run, "llamafactory-cli", "version"], env=env, capture_output=True, text=True, timeout=60
            )
            assert res.returncode == 0 and "version 0.9.4 (stand-in)" in res.stdout, res.stderr
            continue
        port = free_port()
        argv = [*config["config"]["Entrypoint"], "--model", "org/M", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen([*run, *argv], env={**env, "VLLM_API_KEY": "k"})
        try:
            models = _when_up(f"http://127.0.0.1:{port}/v1/models", proc, {"Authorization": "Bearer k"}).json()["data"]
            assert [(m["id"], m["root"]) for m in models] == [("org/M", "org/M")]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_pin_reads_the_release_checksums_from_the_mirror(built, tmp_path):
    """scripts/pin, run as the operator runs it, against the mirror (laid out as a real release):
    the unpinned stack's plan fails with one line naming the command; after it, the plan passes with
    the archive's sha256, the file keeps its comments, and a second run changes nothing."""
    from tests.unit.test_plan_cli import ROOT as REPO
    from tests.unit.test_plan_cli import run_plan_subprocess

    out, manifest = built
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    # the prod example with the environment's own values filled in (admin CIDRs, SSH keys), not yet pinned
    text = (REPO / "stacks" / "Pulumi.prod.yaml").read_text().replace("[203.0.113.0/24]", f"[{TEST_ADMIN_CIDR}]")
    key = next(line.strip()[2:].split("   #")[0] for line in text.splitlines() if "oncall-placeholder" in line)
    (stacks / "Pulumi.prod.yaml").write_text(text.replace(key, test_ssh_key()))
    before = run_plan_subprocess("prod", stacks_dir=stacks)
    assert before.returncode == 1 and before.stderr.count("\n") == 1, before.stderr
    assert "host.ollama.sha256" in before.stderr and "scripts/pin ollama prod 0.13.5" in before.stderr
    srv = mirror.server(out)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        env = dict(
            os.environ,
            LLM_PLATFORM_STACKS_DIR=str(stacks),
            LLM_PLATFORM_OLLAMA_RELEASES=f"http://127.0.0.1:{srv.server_address[1]}/ollama",
        )
        # a loopback http mirror: --insecure (scripts/pin refuses a source without TLS otherwise)
        pin = [str(REPO / "scripts" / "pin"), "ollama", "prod", "0.12.3", "--insecure"]
        res = subprocess.run(pin, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert manifest["ollama"]["sha256"] in res.stdout and "ollama-linux-amd64.tgz" in res.stdout
        again = subprocess.run(pin, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout.startswith("already pinned"), again.stdout + again.stderr
        missing = subprocess.run(
            pin[:-2] + ["0.99.0", "--insecure"], env=env, capture_output=True, text=True, timeout=120
        )
        assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "HTTP 404" in missing.stderr, (
            missing.stderr
        )
    finally:
        srv.shutdown()
        srv.server_close()
    assert "# replace with the on-call keys" in (stacks / "Pulumi.prod.yaml").read_text()  # comments kept
    after = run_plan_subprocess("prod", "--json", stacks_dir=stacks)
    assert after.returncode == 0, after.stderr
    data = json.loads(after.stdout)["outputs"]["inventory"]["hosts"][0]["data"]
    assert (
        data["ollama"]["version"] == "0.12.3" and data["ollama"]["sha256"] == f"0.12.3@{manifest['ollama']['sha256']}"
    )
