"""Run the stand-ins as local processes on loopback (for tests; no VM, no container).

    with ollama_process(models_dir) as o:          # o.url == "http://127.0.0.1:<free port>"
        ...
    with server_process(["vllm", "serve", "m", "--port", str(p), "--host", "127.0.0.1"]) as s:
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.standins.compile import compile_server

OLLAMA_SCRIPT = Path(__file__).with_name("ollama_standin.py")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 10.0) -> Response:
    """One HTTP request; JSON-encodes dict/list bodies; never raises on HTTP error statuses."""
    data = None
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, (bytes, str)):
        data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


def wait_http(url: str, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before {url} answered")
        try:
            http("GET", url, timeout=1.0)
            return
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


@dataclass
class Proc:
    proc: subprocess.Popen
    url: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def _process(cmd: list[str], env: dict, url: str, port: int, ready_path: str, timeout: float, cwd=None) -> Iterator[Proc]:
    fd, log_path = tempfile.mkstemp(prefix="standin-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=cwd)
    p = Proc(proc, url, port, Path(log_path))
    try:
        wait_http(url + ready_path, timeout, proc)
        yield p
    finally:
        p.stop()
        try:
            os.unlink(log_path)
        except OSError:
            pass


def ollama_process(models_dir: str | os.PathLike, port: int | None = None, version: str = "0.0.0-test", timeout: float = 10.0):
    """The Ollama stand-in serving on 127.0.0.1:<port> with OLLAMA_MODELS=models_dir."""
    port = port or free_port()
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_MODELS=str(models_dir), OLLAMA_STANDIN_VERSION=version)
    return _process([sys.executable, str(OLLAMA_SCRIPT), "serve"], env, f"http://127.0.0.1:{port}", port, "/", timeout)


def ollama_cli(args: list[str], port: int, timeout: float = 30.0, cwd=None, input: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_STANDIN_VERSION="0.0.0-test")
    return subprocess.run([sys.executable, str(OLLAMA_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd, input=input)


def server_process(args: list[str], port: int, env: dict | None = None, ready_path: str = "/", timeout: float = 10.0, cwd=None):
    """The static stand-in binary as ``standin-server ARGS...`` (ARGS[0] picks the personality)."""
    binary = compile_server()
    full_env = dict(os.environ)
    full_env.update(env or {})
    return _process([str(binary), *args], full_env, f"http://127.0.0.1:{port}", port, ready_path, timeout, cwd)


def run_server_cli(args: list[str], env: dict | None = None, cwd=None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """``standin-server ARGS...`` to completion (llamafactory-cli train/export, sh -c, ...)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([str(compile_server()), *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
