"""Compile ``server.c`` into the static stand-in binary, cached by source hash.

The cache lives outside the clone (``$LLM_STANDINS_CACHE``, else ``$XDG_CACHE_HOME/llm-platform/standins``,
else ``~/.cache/llm-platform/standins``), so fresh clones on the same machine reuse it. Needs ``gcc`` and
glibc's static libc (Debian: ``apt-get install gcc libc6-dev``); ``CC=musl-gcc`` also works.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("server.c")
CFLAGS = ["-static", "-O2", "-s", "-Wall", "-Wl,--build-id=none", "-fno-ident"]
LIBS = ["-lm", "-lpthread"]


class CompileError(RuntimeError):
    pass


def cache_dir() -> Path:
    if os.environ.get("LLM_STANDINS_CACHE"):
        return Path(os.environ["LLM_STANDINS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llm-platform" / "standins"


def compiler() -> str:
    cc = os.environ.get("CC", "gcc")
    if not shutil.which(cc):
        raise CompileError(f"C compiler {cc!r} not found: install gcc and libc6-dev (apt-get install gcc libc6-dev)")
    return cc


def _compiler_id(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompileError(f"cannot run {cc}: {e}") from e
    return out.splitlines()[0] if out else cc


def source_key(cc: str | None = None) -> str:
    """Hash of what decides the binary: source, flags, compiler version."""
    cc = cc or compiler()
    h = hashlib.sha256()
    h.update(SOURCE.read_bytes())
    h.update("\0".join(CFLAGS + LIBS + [_compiler_id(cc)]).encode())
    return h.hexdigest()


def compile_server(cache: Path | None = None) -> Path:
    """Path of the compiled binary (compiling only when the source/flags/compiler changed)."""
    cc = compiler()
    key = source_key(cc)
    cache = Path(cache) if cache else cache_dir()
    out = cache / f"standin-server-{key[:20]}"
    if out.is_file() and os.access(out, os.X_OK):
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="standin-cc-") as tmp:
        src = Path(tmp) / "server.c"
        shutil.copyfile(SOURCE, src)
        binary = Path(tmp) / "standin-server"
        cmd = [cc, *CFLAGS, "-o", str(binary), "server.c", *LIBS]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise CompileError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
        fd, staged = tempfile.mkstemp(dir=cache, prefix=".standin-server-")
        os.close(fd)
        shutil.copyfile(binary, staged)
        os.chmod(staged, 0o755)
        os.replace(staged, out)
    return out


if __name__ == "__main__":
    print(compile_server())
