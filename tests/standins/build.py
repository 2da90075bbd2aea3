"""Build the stand-in artifacts the local mirror serves.

    python -m tests.standins.build --out DIR [--ollama-version X] [--vllm-tag T] [--llamafactory-tag T] [--force]

DIR has the real download paths, so only the base URL differs from production:

    ollama/v<version>/ollama-linux-amd64.tgz      before 0.14.0, ``.tar.zst`` from it (components/upstream.py)
    ollama/v<version>/sha256sum.txt               its checksum in the release's format (scripts/pin reads it)
    images/vllm-openai-<tag>.tar                  docker-archives the guest loads with ``docker load -i``
    images/vllm-cpu-release-repo-<tag>.tar        (the CPU release image: dies with SIGILL without avx512f)
    images/llamafactory-<tag>.tar
    manifest.json                                 every artifact with its path and sha256 (written last)

Every image has two layers. The first, shared (Docker stores it once), is a Debian 12 rootfs of
python3 and busybox-static (``mmdebstrap --variant=extract``, docs/locales/unused modules and libraries
removed, byte code compiled): built once per recipe into ``<cache>/base-<hash>.tar``. The second holds
this package under /opt/standin and the image's commands. Defaults are the platform's pins. The
output is deterministic, and a build whose inputs did not change is skipped (a fingerprint in the
manifest).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from components import ollama_release, upstream
from tests.standins.image import (
    EPOCH,
    Dir,
    File,
    Symlink,
    deterministic_tar,
    deterministic_tgz,
    docker_archive,
    entries_from_tar,
    write,
)

HERE = Path(__file__).resolve().parent
FORMAT = 2
DEFAULT_OLLAMA_VERSION = upstream.OLLAMA_VERSION
DEFAULT_VLLM_TAG = upstream.VLLM_TAG
DEFAULT_LLAMAFACTORY_TAG = upstream.LLAMAFACTORY_TAG

# --- the shared base layer ------------------------------------------------------------------------
SUITE = "bookworm"
BASE_PACKAGES = ["python3", "busybox-static"]
UNUSED_LIBS = [
    "libssl",
    "libcrypto",
    "libsqlite3",
    "libdb-5.3",
    "libkrb5",
    "libkrb5support",
    "libgssapi_krb5",
    "libk5crypto",
    "libkeyutils",
    "libcom_err",
    "libtirpc",
    "libnsl",
    "libreadline",
    "libhistory",
    "libncursesw",
    "libtinfo",
    "libpcre2-8",
    "libselinux",
    "libzstd",
    "libmd",
    "libacl",
    "libcrypt",
]
UNUSED_STDLIB = [
    "test",
    "pydoc_data",
    "asyncio",
    "multiprocessing",
    "unittest",
    "sqlite3",
    "curses",
    "dbm",
    "lib2to3",
    "ensurepip",
    "idlelib",
    "tkinter",
    "turtledemo",
    "distutils",
    "ctypes",
    "venv",
    "xml",
    "xmlrpc",
    "concurrent",
    "pydoc.py",
    "turtle.py",
    "doctest.py",
    "_pydecimal.py",
    "_pyio.py",
    "sitecustomize.py",
]
UNUSED_EXTENSIONS = [
    "_ssl",
    "_hashlib",
    "_sqlite3",
    "_dbm",
    "_curses*",
    "readline",
    "nis",
    "_crypt",
    "_test*",
    "_ctypes*",
    "xx*",
    "_xx*",
    "audioop",
    "ossaudiodev",
    "_codecs_*",
    "_multibytecodec",
    "_asyncio",
    "_multiprocessing",
    "_posixshmem",
    "_lsprof",
]
STDLIB_USED = "argparse, json, http.server, socketserver, signal, struct, math, zlib, urllib.request, hashlib"
HOOKS = [  # mmdebstrap --extract-hook commands, run in order on the extracted tree "$1"
    'cd "$1" && rm -rf usr/share usr/sbin usr/libexec usr/lib/x86_64-linux-gnu/gconv'
    " && find bin -mindepth 1 ! -name busybox -exec rm -rf {} +"
    " && find usr/bin -mindepth 1 ! -name 'python3*' -exec rm -rf {} +"
    " && rm -f "
    + " ".join(f"{d}/x86_64-linux-gnu/{lib}.so*" for lib in UNUSED_LIBS for d in ("lib", "usr/lib"))
    + " && cd usr/lib/python3.11 && rm -rf "
    + " ".join(UNUSED_STDLIB)
    + " && cd lib-dynload && rm -f "
    + " ".join(f"{m}.cpython-*.so" for m in UNUSED_EXTENSIONS),
    # byte code beside the modules, sources removed: 7 MB less (tracebacks of the standard library lose their lines)
    'PYTHONHASHSEED=0 chroot "$1" /usr/bin/python3 -m compileall -q -b --invalidation-mode unchecked-hash'
    " /usr/lib/python3.11"
    ' && find "$1/usr/lib/python3.11" -name "*.py" -delete',
    f'chroot "$1" /usr/bin/python3 -c "import {STDLIB_USED}"',  # fails the build when trimmed too far
]
BASE_FILES = [
    File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
    File("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
    Dir("tmp", 0o1777),
    Dir("root", 0o700),
    *[Symlink(f"bin/{tool}", "busybox") for tool in ("sh", "cat", "ls", "ps", "env", "sleep", "wget")],
]


def cache_dir() -> Path:
    return Path(
        os.environ.get("LLM_STANDINS_CACHE")
        or Path(os.environ.get("LLM_PLATFORM_CACHE") or "/var/cache/llm-platform") / "standins"
    )


@contextlib.contextmanager
def debian_source() -> Iterator[tuple[str, list[str]]]:
    """(mirror, options): the VM image's mirror, through its apt-cacher-ng when installed (testhost), else Debian's."""
    try:
        from testhost.config import config
        from testhost.services import apt_proxy
    except ImportError:
        yield os.environ.get("LLM_LOCAL_DEBIAN_MIRROR") or "http://deb.debian.org/debian", []
        return
    s = config()
    if not shutil.which("apt-cacher-ng", path="/usr/sbin:/usr/bin"):
        yield s.mirror, []
        return
    with apt_proxy(s) as proxy:
        yield s.mirror, [f'--aptopt=Acquire::http::Proxy "{proxy}"']


def base_path() -> Path:
    """Where the base layer of the current recipe is cached."""
    recipe = json.dumps(
        {"suite": SUITE, "packages": BASE_PACKAGES, "hooks": HOOKS, "files": [repr(f) for f in BASE_FILES]}
    )
    return cache_dir() / f"base-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}.tar"


def base_layer() -> Path:
    """The cached base layer, built first when missing (mmdebstrap: as root, else in its unshare mode)."""
    path = base_path()
    if path.is_file():
        return path
    if not shutil.which("mmdebstrap"):
        try:
            from testhost.util import ensure_host_packages  # installs it as root, else names the command
        except ImportError:
            raise RuntimeError("mmdebstrap not found: apt-get install mmdebstrap") from None
        ensure_host_packages({"mmdebstrap": "mmdebstrap"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "rootfs.tar"
        with debian_source() as (mirror, options):
            cmd = [
                "mmdebstrap",
                "--quiet",
                "--variant=extract",
                f"--include={','.join(BASE_PACKAGES)}",
                "--format=tar",
                "--skip=output/dev,output/mknod",
                *[f"--extract-hook={h}" for h in HOOKS],
                *options,
                SUITE,
                str(raw),
                mirror,
            ]
            proc = subprocess.run(
                cmd, env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)}, capture_output=True, text=True, timeout=1200
            )
        if proc.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        keep = entries_from_tar(raw, lambda name: name.split("/")[0] in ("bin", "lib", "lib64", "usr"))
        write(path, deterministic_tar(keep + BASE_FILES))
    for old in path.parent.glob("base-*.tar"):  # layers of earlier recipes
        if old != path:
            old.unlink()
    return path


# --- the stand-ins' own layers ----------------------------------------------------------------------
def package(where: str, *modules: str) -> list[File]:
    """This package's runtime modules as ``<where>/standin/``."""
    init = File(f"{where}/standin/__init__.py", b'"""Stand-ins of llm-platform\'s tests/standins: for tests only."""\n')
    return [init, *[File(f"{where}/standin/{m}.py", (HERE / f"{m}.py").read_bytes()) for m in ("openai_api", *modules)]]


def command(module: str) -> bytes:
    return f"#!/usr/bin/python3\nfrom standin.{module} import main\nraise SystemExit(main())\n".encode()


def vllm_app() -> list:
    server = "opt/standin/vllm/entrypoints/openai"
    return [
        *package("opt/standin", "vllm"),
        File("usr/local/bin/vllm", command("vllm"), 0o755),
        *[File(f"{d}/__init__.py", b"") for d in ("opt/standin/vllm", "opt/standin/vllm/entrypoints", server)],
        File(f"{server}/api_server.py", b"from standin.vllm import main\nraise SystemExit(main(api_server=True))\n"),
        Dir("vllm-workspace"),
        Dir("root/.cache/huggingface"),
    ]


def llamafactory_app() -> list:
    return [
        *package("opt/standin", "llamafactory"),
        File("usr/local/bin/llamafactory-cli", command("llamafactory"), 0o755),
        *[Dir(d) for d in ("app/data", "app/output", "app/saves", "root/.cache/huggingface")],
    ]


def image_config(ref: str, version: str, ports: list[int], **extra) -> dict:
    env = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH=/opt/standin",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        f"STANDIN_VERSION={version}",
        *extra.pop("env", []),
    ]
    labels = {
        "io.llm-platform.standin": "true",
        "io.llm-platform.standin.replaces": ref,
        "org.opencontainers.image.description": (
            f"STAND-IN for {ref} built by llm-platform tests/standins; runs no model"
        ),
    }
    return {"Env": env, "ExposedPorts": {f"{p}/tcp": {} for p in ports}, "Labels": labels, **extra}


def ollama_entries(version: str) -> list:
    """The release's layout: ``bin/ollama`` (here a Python launcher) and ``lib/ollama/`` (here the stand-in)."""
    launcher = (
        f'#!/usr/bin/env python3\n"""STAND-IN for the Ollama {version} release (llm-platform tests/standins): no model '
        'runs."""\n'
        "import os, sys\n"
        'sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "lib", "ollama"))\n'
        f"from standin import ollama\nollama.VERSION = {json.dumps(version)}\nsys.exit(ollama.main())\n"
    )
    return [File("bin/ollama", launcher.encode(), 0o755), *package("lib/ollama", "ollama")]


# --- build ----------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(params: dict, base_sha: str) -> str:
    h = hashlib.sha256(
        json.dumps({"format": FORMAT, "params": params, "base": base_sha, "zstd": bool(shutil.which("zstd"))}).encode()
    )
    for src in ("image.py", "build.py", "openai_api.py", "ollama.py", "vllm.py", "llamafactory.py"):
        h.update(src.encode() + b"\0" + (HERE / src).read_bytes())
    return h.hexdigest()


def up_to_date(out: Path, fp: str) -> dict | None:
    """The existing manifest when built from the same inputs and every file is intact."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
        items = [manifest["ollama"], *manifest["images"].values()]
    except (OSError, ValueError, KeyError):
        return None
    if manifest.get("inputs") != fp or not all(
        (out / i["path"]).is_file() and _sha256(out / i["path"]) == i["sha256"] for i in items
    ):
        return None
    return manifest


def build(
    out: str | os.PathLike,
    ollama_version: str = DEFAULT_OLLAMA_VERSION,
    vllm_tag: str = DEFAULT_VLLM_TAG,
    llamafactory_tag: str = DEFAULT_LLAMAFACTORY_TAG,
    force: bool = False,
    base: Path | None = None,
    log=lambda msg: print(msg, file=sys.stderr),
) -> dict:
    """Build everything into ``out`` unless up to date; returns the manifest. ``base``: the first
    layer's tar (default: the cached Debian one, ``base_layer()``)."""
    out, base = Path(out).resolve(), base or base_layer()
    version = ollama_version.removeprefix("v")
    params = {"ollama_version": version, "vllm_tag": vllm_tag, "llamafactory_tag": llamafactory_tag}
    fp = fingerprint(params, _sha256(base))
    if not force and (existing := up_to_date(out, fp)) is not None:
        log(f"stand-ins in {out} are up to date")
        return existing
    log(f"building stand-ins into {out}")

    # Ollama: only the archive that release publishes (its name changes at 0.14.0), with its sha256sum.txt
    name = ollama_release.ollama_archive(version)
    if name.endswith(".tar.zst"):
        if not shutil.which("zstd"):
            raise RuntimeError(
                f"zstd not found (apt-get install zstd): needed for the Ollama {version} stand-in ({name})"
            )
        data = subprocess.run(
            ["zstd", "-q", "-c", "-19"],
            input=deterministic_tar(ollama_entries(version)),
            capture_output=True,
            check=True,
        ).stdout
    else:
        data = deterministic_tgz(ollama_entries(version))
    path = f"ollama/v{version}/{name}"
    sha = write(out / path, data)
    sums = ollama_release.format_sha256sums({name: sha})
    write(out / f"ollama/v{version}/{upstream.OLLAMA_CHECKSUMS}", sums.encode())
    ollama = {
        "version": version,
        "archive": name,
        "path": path,
        "sha256": sha,
        "checksums": f"ollama/v{version}/{upstream.OLLAMA_CHECKSUMS}",
    }

    base_bytes, images = base.read_bytes(), {}
    cpu_flags = upstream.vllm_cpu_flags_required(f"{upstream.VLLM_CPU_IMAGE}:{vllm_tag}")
    for key, repo, tag, app, config in (
        (
            "vllm",
            upstream.VLLM_GPU_IMAGE,
            vllm_tag,
            vllm_app(),
            {"Entrypoint": list(upstream.vllm_entrypoint(vllm_tag)), "WorkingDir": "/vllm-workspace"},
        ),
        # the CPU release image: the same server, built with AVX512 kernels (SIGILL without them)
        (
            "vllm-cpu",
            upstream.VLLM_CPU_IMAGE,
            vllm_tag,
            vllm_app(),
            {
                "Entrypoint": list(upstream.vllm_entrypoint(vllm_tag)),
                "WorkingDir": "/vllm-workspace",
                "env": [f"STANDIN_REQUIRED_CPU_FLAGS={' '.join(cpu_flags)}"],
            },
        ),
        (
            "llamafactory",
            upstream.LLAMAFACTORY_IMAGE,
            llamafactory_tag,
            llamafactory_app(),
            {
                "Cmd": ["llamafactory-cli", "webui"],
                "WorkingDir": "/app",
                "env": ["GRADIO_SERVER_PORT=7860", "API_PORT=8000"],
            },
        ),
    ):
        ref = f"{repo}:{tag}"
        ports = [7860, 8000] if key == "llamafactory" else [8000]
        data = docker_archive(
            [ref],
            [base_bytes, deterministic_tar(app)],
            image_config(ref, tag.removeprefix("v"), ports, **config),
            comment=f"stand-in for {ref} (tests)",
        )
        path = f"images/{repo.rsplit('/', 1)[-1]}-{tag}.tar"
        images[key] = {"ref": ref, "path": path, "sha256": write(out / path, data), "size": len(data)}

    manifest = {"format": FORMAT, "standin": True, "inputs": fp, "ollama": ollama, "images": images}
    write(out / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    log(f"wrote {out / 'manifest.json'}")
    return manifest


def add_version_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ollama-version", default=DEFAULT_OLLAMA_VERSION)
    p.add_argument("--vllm-tag", default=DEFAULT_VLLM_TAG)
    p.add_argument("--llamafactory-tag", default=DEFAULT_LLAMAFACTORY_TAG)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.standins.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (the mirror's root)")
    add_version_args(ap)
    ap.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    a = ap.parse_args(argv)
    try:
        manifest = build(a.out, a.ollama_version, a.vllm_tag, a.llamafactory_tag, force=a.force)
    except Exception as e:  # noqa: BLE001 - one line for the operator, whatever failed
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
