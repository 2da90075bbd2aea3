"""Run the stand-ins on loopback for tests: the very files the images and the Ollama archive carry
(``tests.standins.build``), staged once into a temporary directory and run by this interpreter.

    with server_process(["vllm", "serve", "m", "--host", "127.0.0.1", "--port", str(p)], p) as s:
        http("GET", s.url + "/health")
    with ollama_process(models_dir) as o:
        ollama_cli(["list"], o.port)
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from testhost.util import free_port
from tests.standins import build
from tests.standins.image import Dir, File, Symlink

OLLAMA_VERSION = "0.0.0-test"


@functools.cache
def staged() -> Path:
    """Both images' own layers and the Ollama archive, written out (the same paths under one root)."""
    root = Path(tempfile.mkdtemp(prefix="standins-"))
    atexit.register(shutil.rmtree, root, True)
    for e in build.vllm_app() + build.llamafactory_app() + build.ollama_entries(OLLAMA_VERSION):
        p = root / e.path
        if isinstance(e, Dir):
            p.mkdir(parents=True, exist_ok=True)
        elif isinstance(e, File):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(e.data)
            p.chmod(e.mode)
        elif isinstance(e, Symlink):
            p.symlink_to(e.target)
    return root


def command(argv: list[str]) -> tuple[list[str], dict]:
    """(argv, env) to run an image's command (``python3 -m ...``, ``vllm``, ``llamafactory-cli``) here."""
    root = staged()
    cmd = argv[1:] if argv[0] == "python3" else [str(root / "usr/local/bin" / argv[0]), *argv[1:]]
    return [sys.executable, *cmd], dict(os.environ, PYTHONPATH=str(root / "opt/standin"), PYTHONDONTWRITEBYTECODE="1")


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 10.0) -> Response:
    """One request (dict bodies as JSON), without proxies; HTTP error statuses are returned, not raised."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


@dataclass
class Proc:
    proc: subprocess.Popen
    url: str
    port: int


@contextlib.contextmanager
def _serving(cmd: list[str], env: dict, port: int, ready_path: str, timeout: float) -> Iterator[Proc]:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{cmd} exited {proc.returncode}: {log.read().decode()[-2000:]}")
            try:
                http("GET", url + ready_path, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url}{ready_path} did not answer within {timeout}s") from None
                time.sleep(0.05)
        yield Proc(proc, url, port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def server_process(
    argv: list[str], port: int, env: dict | None = None, ready_path: str = "/health", timeout: float = 15.0
):
    """An image's server command (vLLM, ``llamafactory-cli webui|api``) listening on 127.0.0.1:``port``."""
    cmd, full_env = command(argv)
    return _serving(cmd, {**full_env, **(env or {})}, port, ready_path, timeout)


def run_cli(argv: list[str], env: dict | None = None, cwd=None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """An image's command to completion (``llamafactory-cli train|export|version``)."""
    cmd, full_env = command(argv)
    return subprocess.run(
        cmd, env={**full_env, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def ollama_process(models_dir: str | os.PathLike, port: int | None = None):
    """``bin/ollama serve`` of the stand-in archive with OLLAMA_MODELS=``models_dir``."""
    port = port or free_port()
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_MODELS=str(models_dir))
    return _serving([sys.executable, str(staged() / "bin/ollama"), "serve"], env, port, "/api/version", 15.0)


def ollama_cli(args: list[str], port: int, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{port}")
    return subprocess.run(
        [sys.executable, str(staged() / "bin/ollama"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
