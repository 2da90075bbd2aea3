"""Stand-in artifacts: deterministic build, manifest, tarball structure, and the mirror."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests.standins import build as b
from tests.standins.compile import CompileError, compile_server
from tests.standins.image import Dir, File, ImageConfig, Symlink, docker_archive, inspect_archive, read_layer_file
from tests.standins.mirror import MirrorServer, start_in_thread, start_process
from tests.standins.runner import free_port, http

VERSIONS = {"ollama_version": "0.12.3", "vllm_tag": "v0.11.0", "llamafactory_tag": "0.9.4", "vllm_extra_repos": ("example.org/vllm-cpu",)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    try:
        compile_server()
    except CompileError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"no static C toolchain: {e}")
    out = tmp_path_factory.mktemp("mirror")
    manifest = b.build(out, **VERSIONS, log=lambda _m: None)
    return out, manifest


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_format_and_checksums(built):
    out, manifest = built
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["ollama"]["version"] == "0.12.3"
    assert manifest["ollama"]["path"] == "ollama/v0.12.3/ollama-linux-amd64.tgz"
    assert manifest["images"]["vllm"]["ref"] == "vllm/vllm-openai:v0.11.0"
    assert manifest["images"]["llamafactory"]["ref"] == "hiyouga/llamafactory:0.9.4"
    # only the name the real 0.12.3 release has (a .tgz: components.upstream), with its sha256sum.txt
    assert sorted(p.name for p in (out / "ollama" / "v0.12.3").iterdir()) == ["ollama-linux-amd64.tgz", "sha256sum.txt"]
    sums = (out / manifest["ollama"]["checksums"]).read_text()
    assert sums == f"{manifest['ollama']['sha256']}  ./ollama-linux-amd64.tgz\n"  # sha256sum's line, as the release writes it
    items = [manifest["ollama"], *manifest["images"].values()]
    for item in items:
        assert _sha(out / item["path"]) == item["sha256"]
        assert (out / item["path"]).stat().st_size == item["size"]
    for img in manifest["images"].values():
        assert img["path"].startswith("images/") and img["path"].endswith(".tar")
        assert img["image_id"] == "sha256:" + inspect_archive(out / img["path"]).manifest[0]["Config"].split(".")[0]


def test_build_is_deterministic_and_cached(built, tmp_path):
    out, manifest = built
    mtime = (out / "manifest.json").stat().st_mtime_ns
    assert b.build(out, **VERSIONS, log=lambda _m: None) == manifest  # inputs unchanged: skipped
    assert (out / "manifest.json").stat().st_mtime_ns == mtime
    again = b.build(tmp_path / "second", **VERSIONS, force=True, log=lambda _m: None)
    assert again == manifest  # a fresh build elsewhere gives the same bytes
    (out / manifest["images"]["vllm"]["path"]).write_bytes(b"corrupt")
    assert b.up_to_date(out, manifest["inputs"]) is None  # a damaged file triggers a rebuild
    assert b.build(out, **VERSIONS, log=lambda _m: None) == manifest


def test_ollama_tarball_layout_and_version(built, tmp_path):
    out, manifest = built
    with tarfile.open(out / manifest["ollama"]["path"], "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert "bin/ollama" in members and members["bin/ollama"].mode & 0o111
        assert members["lib/ollama"].isdir()
        assert all(m.mtime == members["bin/ollama"].mtime for m in members.values())
        tar.extractall(tmp_path, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp_path)
    script = (tmp_path / "bin" / "ollama").read_bytes()
    assert script.startswith(b"#!/usr/bin/env python3\n") and b'STANDIN_VERSION = "0.12.3"' in script
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{free_port()}")
    env.pop("OLLAMA_STANDIN_VERSION", None)
    res = subprocess.run([str(tmp_path / "bin" / "ollama"), "--version"], env=env, capture_output=True, text=True, timeout=20)
    assert res.returncode == 0 and "client version is 0.12.3 (stand-in)" in res.stdout


def test_ollama_from_0_14_is_a_zstd_tarball_only(tmp_path):
    """The other side of the archive boundary: from 0.14.0 the release (and so the mirror) has only
    ollama-linux-amd64.tar.zst, which the deploy's unpack command reads."""
    from components import upstream

    manifest = b.build(tmp_path, **{**VERSIONS, "ollama_version": "0.14.0"}, log=lambda _m: None)
    rel = tmp_path / "ollama" / "v0.14.0"
    assert sorted(p.name for p in rel.iterdir()) == ["ollama-linux-amd64.tar.zst", "sha256sum.txt"]
    assert manifest["ollama"]["archive"] == "ollama-linux-amd64.tar.zst"
    dest = tmp_path / "unpacked"
    dest.mkdir()
    subprocess.run(upstream.ollama_unpack_command(str(rel / "ollama-linux-amd64.tar.zst"), str(dest)), check=True, timeout=60)
    assert b'STANDIN_VERSION = "0.14.0"' in (dest / "bin" / "ollama").read_bytes()
    assert upstream.parse_sha256sums((rel / "sha256sum.txt").read_text()) == {"ollama-linux-amd64.tar.zst": manifest["ollama"]["sha256"]}


def test_vllm_image_structure(built):
    out, manifest = built
    info = inspect_archive(out / manifest["images"]["vllm"]["path"])  # checks config/layer digests too
    assert info.manifest[0]["RepoTags"] == ["vllm/vllm-openai:v0.11.0", "example.org/vllm-cpu:v0.11.0"]
    assert manifest["images"]["vllm"]["refs"] == info.manifest[0]["RepoTags"]
    layer_id = info.manifest[0]["Layers"][0].split("/")[0]
    assert info.repositories == {"vllm/vllm-openai": {"v0.11.0": layer_id}, "example.org/vllm-cpu": {"v0.11.0": layer_id}}
    layer = next(iter(info.layers.values()))
    assert read_layer_file(info, "usr/local/bin/standin-server") == compile_server().read_bytes()
    assert layer["usr/local/bin/standin-server"].mode == 0o755
    assert layer["usr/local/bin/vllm"].issym() and layer["usr/local/bin/vllm"].linkname == "standin-server"
    assert layer["usr/local/bin/python3"].issym() and layer["usr/local/bin/python3"].linkname == "standin-server"
    assert layer["root/.cache/huggingface"].isdir() and layer["tmp"].mode == 0o1777
    cfg = info.config["config"]
    # the real v0.11.0 image's entrypoint (components/upstream.py, vllm.entrypoint)
    assert cfg["Entrypoint"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"] and "Cmd" not in cfg
    assert "STANDIN_VERSION=0.11.0" in cfg["Env"] and any(e.startswith("PATH=") and "/usr/local/bin" in e for e in cfg["Env"])
    assert cfg["ExposedPorts"] == {"8000/tcp": {}}
    assert info.config["os"] == "linux" and info.config["architecture"] == "amd64"


def test_llamafactory_image_structure(built):
    out, manifest = built
    info = inspect_archive(out / manifest["images"]["llamafactory"]["path"])
    assert info.manifest[0]["RepoTags"] == ["hiyouga/llamafactory:0.9.4"]
    layer = next(iter(info.layers.values()))
    for d in ("root/.cache/huggingface", "app/data", "app/output", "app/saves"):
        assert layer[d].isdir(), d
    assert layer["usr/local/bin/llamafactory-cli"].issym()
    assert layer["bin/sh"].issym() and layer["bin/sh"].linkname == "../usr/local/bin/standin-server"
    cfg = info.config["config"]
    assert cfg["Cmd"] == ["llamafactory-cli", "standin-serve"] and cfg["WorkingDir"] == "/app"
    assert {"GRADIO_SERVER_PORT=7860", "API_PORT=8000", "STANDIN_VERSION=0.9.4"} <= set(cfg["Env"])
    assert set(cfg["ExposedPorts"]) == {"7860/tcp", "8000/tcp"}
    info_json = json.loads(read_layer_file(info, "app/data/dataset_info.json"))
    assert {"identity", "alpaca_en_demo"} <= set(info_json)


def test_image_builder_is_deterministic_and_tag_sensitive():
    entries = [File("/usr/bin/app", b"\x7fELF...", 0o755), Symlink("/bin/app", "../usr/bin/app"), Dir("/data")]
    cfg = ImageConfig(cmd=["app"], env={"A": "1"}, exposed_ports=["80"])
    one = docker_archive(["example/app:1.0"], entries, cfg)
    assert one == docker_archive(["example/app:1.0"], list(reversed(entries)), cfg)
    assert one != docker_archive(["example/app:2.0"], entries, cfg)
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        names = tar.getnames()
        assert {"manifest.json", "repositories"} <= set(names)
        assert all(m.mtime == tar.getmembers()[0].mtime and m.uid == 0 for m in tar.getmembers())
    with pytest.raises(ValueError):
        docker_archive(["x:1"], [File("/../etc/passwd", b"")], cfg)


def test_mirror_serves_files_head_and_ranges(built):
    out, manifest = built
    m = start_in_thread(out)
    try:
        tgz = manifest["ollama"]["path"]
        r = http("GET", f"{m.url}/{tgz}")
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == manifest["ollama"]["sha256"]
        assert r.headers["Content-Type"] == "application/gzip"
        h = http("HEAD", f"{m.url}/{manifest['images']['vllm']['path']}")
        assert h.status == 200 and int(h.headers["Content-Length"]) == manifest["images"]["vllm"]["size"] and h.body == b""
        part = http("GET", f"{m.url}/{tgz}", headers={"Range": "bytes=0-9"})
        assert part.status == 206 and part.body == (out / tgz).read_bytes()[:10]
        assert http("GET", f"{m.url}/manifest.json").json() == manifest
        assert http("GET", f"{m.url}/nope.tgz").status == 404
        assert http("GET", f"{m.url}/images/../../etc/passwd").status == 404
        assert http("GET", f"{m.url}/%2e%2e/%2e%2e/etc/passwd").status == 404
        listing = http("GET", f"{m.url}/ollama/")
        assert listing.status == 200 and "v0.12.3/" in listing.text
    finally:
        m.stop()


def test_mirror_binds_loopback_only(tmp_path):
    with pytest.raises(ValueError):
        MirrorServer(tmp_path, "0.0.0.0", 0)


def test_mirror_cli_serve(built):
    out, manifest = built
    port = free_port()
    proc, url = start_process(out, port)
    try:
        assert url == f"http://127.0.0.1:{port}"
        assert http("GET", f"{url}/manifest.json").json()["inputs"] == manifest["inputs"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_build_cli(built, tmp_path):
    out, manifest = built
    res = subprocess.run(
        [sys.executable, "-m", "tests.standins.mirror", "ensure", "--dir", str(out), "--ollama-version", "0.12.3", "--vllm-tag", "v0.11.0",
         "--llamafactory-tag", "0.9.4", "--vllm-extra-repo", "example.org/vllm-cpu"],
        cwd=b.HERE.parents[1], capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stderr and res.stdout.strip() == str(out / "manifest.json")


def test_default_versions_follow_the_platform_pins():
    from components import settings as st

    assert b.DEFAULT_OLLAMA_VERSION == st.OllamaSettings.model_fields["version"].default
    assert b.DEFAULT_VLLM_TAG == st.VllmSettings.model_fields["tag"].default
    assert b.DEFAULT_LLAMAFACTORY_TAG == st.LlamaFactorySettings.model_fields["tag"].default
    assert st.VLLM_CPU_IMAGE in b.DEFAULT_VLLM_EXTRA_REPOS


def test_pin_reads_the_release_checksums_from_the_mirror(built, tmp_path):
    """scripts/pin, run as the operator runs it, against the mirror (laid out as a real release):
    the unpinned stack's plan fails with one line naming the command; after it, the plan passes with
    the archive's sha256, the file keeps its comments, and a second run changes nothing."""
    import shutil

    from tests.unit.test_plan_cli import ROOT, run_plan_subprocess

    out, manifest = built
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    shutil.copy(ROOT / "stacks" / "Pulumi.prod.yaml", stacks / "Pulumi.prod.yaml")
    before = run_plan_subprocess("prod", stacks_dir=stacks)
    assert before.returncode == 1 and before.stderr.count("\n") == 1, before.stderr
    assert "host.ollama.sha256" in before.stderr and "scripts/pin ollama prod 0.13.5" in before.stderr

    m = start_in_thread(out)
    try:
        env = dict(os.environ, LLM_PLATFORM_STACKS_DIR=str(stacks), LLM_PLATFORM_OLLAMA_RELEASES=f"{m.url}/ollama")
        pin = [str(ROOT / "scripts" / "pin"), "ollama", "prod", "0.12.3"]
        res = subprocess.run(pin, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert manifest["ollama"]["sha256"] in res.stdout and "ollama-linux-amd64.tgz" in res.stdout
        again = subprocess.run(pin, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout.startswith("already pinned"), again.stdout + again.stderr
        missing = subprocess.run(pin[:-1] + ["0.99.0"], env=env, capture_output=True, text=True, timeout=120)
        assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "HTTP 404" in missing.stderr, missing.stderr
    finally:
        m.stop()
    text = (stacks / "Pulumi.prod.yaml").read_text()
    assert "# replace with the on-call keys" in text  # comments kept
    after = run_plan_subprocess("prod", "--json", stacks_dir=stacks)
    assert after.returncode == 0, after.stderr
    data = json.loads(after.stdout)["outputs"]["inventory"]["hosts"][0]["data"]
    assert data["ollama"]["version"] == "0.12.3" and data["artifacts"]["ollama_sha256"] == manifest["ollama"]["sha256"]
