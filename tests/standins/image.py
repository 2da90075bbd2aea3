"""Deterministic tarballs: ``docker load``-able image archives built from scratch, and plain .tgz.

No Docker engine is needed. ``write_docker_archive`` takes a set of files and an image config and
writes a docker-archive tarball (the format of ``docker save``: ``manifest.json``, ``<config>.json``,
``<layer>/layer.tar``, ``repositories``) with one layer. Every tar entry has fixed mtime, owner
and mode and entries are sorted, so the same inputs always give the same bytes (and sha256).

    entries = [File("/usr/local/bin/app", data, mode=0o755), Symlink("/usr/bin/app", "../local/bin/app")]
    sha = write_docker_archive("out.tar", ["example/app:1.0"], entries, ImageConfig(cmd=["app"]))
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

# Fixed timestamp of every entry and of the image (2000-01-01T00:00:00Z): reproducible output.
EPOCH = 946684800
CREATED = "2000-01-01T00:00:00Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class File:
    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


Entry = File | Dir | Symlink


@dataclass
class ImageConfig:
    """The runtime part of an image config (what ``docker inspect`` shows under Config)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)  # "8000/tcp"
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    user: str = ""

    def to_json(self) -> dict:
        env = {"PATH": DEFAULT_PATH}
        env.update(self.env)
        out: dict = {"Env": [f"{k}={v}" for k, v in env.items()]}
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.exposed_ports:
            out["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in sorted(self.exposed_ports)}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(sorted(self.labels.items()))
        if self.volumes:
            out["Volumes"] = {v: {} for v in sorted(self.volumes)}
        if self.user:
            out["User"] = self.user
        return out


def _norm(path: str) -> str:
    p = posixpath.normpath("/" + path.lstrip("/"))
    if p == "/" or ".." in path.split("/"):
        raise ValueError(f"bad path in image: {path!r}")
    return p.lstrip("/")


def _tarinfo(name: str, kind: int, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.linkname = linkname
    ti.mtime = EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def deterministic_tar(entries: Iterable[Entry]) -> bytes:
    """A tar of the entries, parents created, sorted, fixed metadata."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        p = _norm(e.path)
        if p in by_path and by_path[p] != e:
            raise ValueError(f"duplicate path in image: /{p}")
        by_path[p] = e
        parent = posixpath.dirname(p)
        while parent:
            by_path.setdefault(parent, Dir(parent))
            parent = posixpath.dirname(parent)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for p in sorted(by_path):
            e = by_path[p]
            if isinstance(e, Dir):
                tar.addfile(_tarinfo(p, tarfile.DIRTYPE, e.mode))
            elif isinstance(e, Symlink):
                tar.addfile(_tarinfo(p, tarfile.SYMTYPE, 0o777, linkname=e.target))
            else:
                tar.addfile(_tarinfo(p, tarfile.REGTYPE, e.mode, len(e.data)), io.BytesIO(e.data))
    return buf.getvalue()


def deterministic_tgz(entries: Iterable[Entry]) -> bytes:
    """gzip of ``deterministic_tar`` with no name and a zero timestamp in the gzip header."""
    raw = deterministic_tar(entries)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return out.getvalue()


def _dumps(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def split_ref(ref: str) -> tuple[str, str]:
    """'vllm/vllm-openai:v0.11.0' -> ('vllm/vllm-openai', 'v0.11.0')."""
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return ref, "latest"
    repo, tag = ref.rsplit(":", 1)
    return repo, tag


def docker_archive(repo_tags: list[str], entries: Iterable[Entry], config: ImageConfig, comment: str = "") -> bytes:
    """Bytes of a single-layer docker-archive tarball."""
    if not repo_tags:
        raise ValueError("at least one repo:tag is required")
    layer = deterministic_tar(entries)
    layer_hex = hashlib.sha256(layer).hexdigest()
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "author": "llm-platform tests/standins (stand-in image)",
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_hex}"]},
        "history": [{"created": CREATED, "created_by": "tests/standins/image.py", "comment": comment or "stand-in image for tests"}],
    }
    config_bytes = _dumps(image_config)
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    tags = [t if ":" in t.rsplit("/", 1)[-1] else f"{t}:latest" for t in repo_tags]
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": tags, "Layers": [f"{layer_hex}/layer.tar"]}]
    repositories: dict[str, dict[str, str]] = {}
    for t in tags:
        repo, tag = split_ref(t)
        repositories.setdefault(repo, {})[tag] = layer_hex
    outer = [
        Dir(layer_hex),
        File(f"{layer_hex}/VERSION", b"1.0"),
        File(f"{layer_hex}/layer.tar", layer),
        File(f"{config_hex}.json", config_bytes),
        File("manifest.json", _dumps(manifest)),
        File("repositories", _dumps(repositories)),
    ]
    return deterministic_tar(outer)


def image_id(archive: bytes) -> str:
    """``sha256:<config digest>`` of a docker-archive: the ID ``docker images --no-trunc`` shows after loading it."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        f = tar.extractfile("manifest.json")
        if f is None:
            raise ValueError("no manifest.json in archive")
        return "sha256:" + json.loads(f.read())[0]["Config"].split(".")[0]


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> str:
    """Write bytes atomically; returns their sha256 hex."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(data).hexdigest()


def write_docker_archive(out: str | os.PathLike, repo_tags: list[str], entries: Iterable[Entry], config: ImageConfig, comment: str = "") -> str:
    """Write the archive to ``out``; returns its sha256 hex."""
    return atomic_write(out, docker_archive(repo_tags, entries, config, comment))


@dataclass
class ArchiveInfo:
    manifest: list
    config: dict
    repositories: dict
    layers: dict[str, dict[str, tarfile.TarInfo]]  # layer path -> {member name: TarInfo}
    layer_bytes: dict[str, bytes]


def inspect_archive(path: str | os.PathLike) -> ArchiveInfo:
    """Read a docker-archive back and check it is self-consistent (what ``docker load`` checks).

    Raises ValueError when the manifest references a missing file, or a layer's sha256 differs
    from the config's diff_id."""
    with tarfile.open(path, "r:") as tar:
        members = {m.name: m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            if name not in members:
                raise ValueError(f"{path}: missing {name}")
            f = tar.extractfile(members[name])
            assert f is not None
            return f.read()

        manifest = json.loads(read("manifest.json"))
        repositories = json.loads(read("repositories")) if "repositories" in members else {}
        if len(manifest) != 1:
            raise ValueError("expected one image in manifest.json")
        entry = manifest[0]
        config_raw = read(entry["Config"])
        if hashlib.sha256(config_raw).hexdigest() != entry["Config"].split(".")[0]:
            raise ValueError("config file name is not its sha256")
        config = json.loads(config_raw)
        diff_ids = config["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            raise ValueError("layer count differs between manifest and config")
        layers, layer_bytes = {}, {}
        for lp, diff in zip(entry["Layers"], diff_ids):
            data = read(lp)
            if "sha256:" + hashlib.sha256(data).hexdigest() != diff:
                raise ValueError(f"layer {lp} does not match diff_id {diff}")
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as lt:
                layers[lp] = {m.name.rstrip("/"): m for m in lt.getmembers()}
            layer_bytes[lp] = data
    return ArchiveInfo(manifest, config, repositories, layers, layer_bytes)


def read_layer_file(info: ArchiveInfo, name: str) -> bytes:
    """Contents of a regular file inside the (single) layer."""
    lp = info.manifest[0]["Layers"][0]
    with tarfile.open(fileobj=io.BytesIO(info.layer_bytes[lp]), mode="r:") as lt:
        f = lt.extractfile(name.lstrip("/"))
        if f is None:
            raise KeyError(name)
        return f.read()
