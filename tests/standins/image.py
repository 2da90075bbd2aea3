"""Deterministic tarballs: plain tar/.tgz, layers, and ``docker load``-able docker-archives.

Entries are sorted, every one has mtime 2000-01-01, owner root and a fixed mode, so the same inputs
always give the same bytes (and sha256). No Docker engine is needed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from testhost.util import atomic_write

EPOCH = 946684800  # 2000-01-01T00:00:00Z
CREATED = "2000-01-01T00:00:00Z"


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


def _norm(path: str) -> str:
    if ".." in path.split("/") or posixpath.normpath("/" + path) == "/":
        raise ValueError(f"bad path in tar: {path!r}")
    return posixpath.normpath("/" + path).lstrip("/")


def deterministic_tar(entries: Iterable[Entry]) -> bytes:
    """A tar of the entries (parent directories added), sorted, fixed metadata."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        p = _norm(e.path)
        if by_path.get(p, e) != e:
            raise ValueError(f"two different entries for /{p}")
        by_path[p] = e
        while p := posixpath.dirname(p):
            by_path.setdefault(p, Dir(p))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for p in sorted(by_path):
            e = by_path[p]
            ti = tarfile.TarInfo(p)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = EPOCH, 0, 0, "root", "root"
            if isinstance(e, File):
                ti.mode, ti.size = e.mode, len(e.data)
                tar.addfile(ti, io.BytesIO(e.data))
            else:
                ti.type, ti.mode = (tarfile.DIRTYPE, e.mode) if isinstance(e, Dir) else (tarfile.SYMTYPE, 0o777)
                ti.linkname = getattr(e, "target", "")
                tar.addfile(ti)
    return buf.getvalue()


def entries_from_tar(path: str | os.PathLike, keep: Callable[[str], bool]) -> list[Entry]:
    """The files, directories and symlinks of a tar whose path passes ``keep`` (hard links become copies)."""
    out: list[Entry] = []
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            name = m.name.removeprefix("./").rstrip("/")
            if not name or not keep(name):
                continue
            if m.isdir():
                out.append(Dir(name, m.mode & 0o7777))
            elif m.issym():
                out.append(Symlink(name, m.linkname))
            elif m.isfile() or m.islnk():
                f = tar.extractfile(m)
                out.append(File(name, f.read() if f else b"", m.mode & 0o7777))
    return out


def deterministic_tgz(entries: Iterable[Entry]) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as z:
        z.write(deterministic_tar(entries))
    return out.getvalue()


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def docker_archive(repo_tags: list[str], layers: list[bytes], config: dict, comment: str) -> bytes:
    """A docker-archive (what ``docker save`` writes) of one image: ``layers`` bottom first, ``config``
    its runtime part (Entrypoint, Cmd, Env, ...). Images with the same first layer share it in Docker."""
    diff = [hashlib.sha256(layer).hexdigest() for layer in layers]
    image = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff]},
        "history": [{"created": CREATED, "created_by": "tests/standins/build.py", "comment": comment} for _ in layers],
    }
    raw = _json(image)
    cfg = hashlib.sha256(raw).hexdigest()
    manifest = [{"Config": f"{cfg}.json", "RepoTags": repo_tags, "Layers": [f"{d}/layer.tar" for d in diff]}]
    files = [File(f"{d}/layer.tar", layer) for d, layer in zip(diff, layers)]
    return deterministic_tar([*files, File(f"{cfg}.json", raw), File("manifest.json", _json(manifest))])


def write(path: str | os.PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` in one step (``testhost.util.atomic_write``); returns its sha256."""
    atomic_write(Path(path), data)
    return hashlib.sha256(data).hexdigest()
