"""The local artifact mirror: serves the stand-in artifacts to the test VM over HTTP.

    python -m tests.standins.mirror serve --port 8099 --dir DIR [--bind 127.0.0.1] [--ensure]
    python -m tests.standins.mirror ensure --dir DIR [--ollama-version X] [--vllm-tag T] [--llamafactory-tag T]

``serve`` is a static file server (GET and HEAD, single byte ranges, directory listings) bound to
loopback only; the qemu guest reaches it as http://10.0.2.2:<port>/ through user-mode networking.
Every request is logged to stderr. SIGTERM/SIGINT stop it cleanly. ``ensure`` builds the
stand-ins into DIR when missing or out of date (see ``tests.standins.build``).

From Python: ``start_in_thread(dir)`` (in-process, for tests) or ``start_process(dir, port)``
(a child ``serve`` process) both return once the mirror answers.
"""

from __future__ import annotations

import argparse
import html
import ipaddress
import os
import posixpath
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 8099
CONTENT_TYPES = {
    ".tgz": "application/gzip",
    ".gz": "application/gzip",
    ".zst": "application/zstd",
    ".tar": "application/x-tar",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def _log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} mirror: {msg}\n")
    sys.stderr.flush()


class MirrorHandler(BaseHTTPRequestHandler):
    server_version = "llm-platform-standin-mirror"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # replaced by log_request below
        pass

    def log_request(self, code="-", size="-"):
        _log(f'{self.client_address[0]} "{self.command} {self.path}" {code} {size}')

    def _resolve(self) -> Path | None:
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        norm = posixpath.normpath("/" + raw)
        if any(part == ".." for part in raw.split("/")):
            return None
        root: Path = self.server.root  # type: ignore[attr-defined]
        target = (root / norm.lstrip("/")).resolve()
        if target != root and root not in target.parents:
            return None
        if any(part.startswith(".") for part in target.relative_to(root).parts):
            return None  # temp files of an ongoing build
        return target

    def _send_plain(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        target = self._resolve()
        if target is None or not target.exists():
            return self._send_plain(404, "404 not found\n")
        if target.is_dir():
            if not self.path.split("?", 1)[0].endswith("/"):
                self.send_response(301)
                self.send_header("Location", self.path.split("?", 1)[0] + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self._listing(target)
        size = target.stat().st_size
        start, end = 0, size - 1
        code = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            try:
                if a == "":
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start, end = int(a), (int(b) if b else size - 1)
                end = min(end, size - 1)
                if start > end or start >= size:
                    raise ValueError
                code = 206
            except ValueError:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        length = end - start + 1 if size else 0
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPES.get(target.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD" or not length:
            return
        with open(target, "rb") as f:
            f.seek(start)
            left = length
            while left > 0:
                buf = f.read(min(left, 1 << 20))
                if not buf:
                    break
                self.wfile.write(buf)
                left -= len(buf)

    def _listing(self, d: Path) -> None:
        rel = "/" + str(d.relative_to(self.server.root)).strip(".")  # type: ignore[attr-defined]
        rows = []
        for p in sorted(d.iterdir()):
            if p.name.startswith("."):
                continue
            name = p.name + ("/" if p.is_dir() else "")
            rows.append(f'<li><a href="{urllib.parse.quote(name)}">{html.escape(name)}</a></li>')
        body = (f"<!doctype html><title>stand-in mirror {html.escape(rel)}</title><h1>stand-in mirror {html.escape(rel)}</h1><ul>" + "".join(rows) + "</ul>\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, bind: str, port: int):
        if not ipaddress.ip_address(bind).is_loopback:
            raise ValueError(f"the mirror binds loopback only, not {bind}")
        if ":" in bind:
            self.address_family = socket.AF_INET6
        self.root = Path(root).resolve()
        super().__init__((bind, port), MirrorHandler)


@dataclass
class RunningMirror:
    url: str
    port: int
    stop: callable  # type: ignore[valid-type]


def start_in_thread(root: str | os.PathLike, port: int = 0, bind: str = "127.0.0.1") -> RunningMirror:
    """Serve ``root`` from a background thread of this process; port 0 picks a free one."""
    srv = MirrorServer(Path(root), bind, port)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="standin-mirror")
    t.start()
    real_port = srv.server_address[1]

    def stop() -> None:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)

    return RunningMirror(f"http://{bind}:{real_port}", real_port, stop)


def wait_ready(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mirror exited with status {proc.returncode}")
        try:
            with opener.open(urllib.request.Request(url + "/", method="HEAD"), timeout=2):
                return
        except Exception as e:  # noqa: BLE001 - keep polling
            last = e
            time.sleep(0.1)
    raise TimeoutError(f"mirror at {url} not ready after {timeout}s: {last}")


def start_process(root: str | os.PathLike, port: int = DEFAULT_PORT, bind: str = "127.0.0.1", timeout: float = 15.0, log_file=None) -> tuple[subprocess.Popen, str]:
    """Start ``python -m tests.standins.mirror serve`` as a child process and wait until it answers.

    Returns (process, base URL). Stop it with ``proc.terminate(); proc.wait()``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "tests.standins.mirror", "serve", "--port", str(port), "--dir", str(root), "--bind", bind]
    proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdout=subprocess.DEVNULL, stderr=log_file or subprocess.DEVNULL, start_new_session=True)
    url = f"http://{bind}:{port}"
    try:
        wait_ready(url, timeout, proc)
    except BaseException:
        proc.terminate()
        proc.wait(timeout=5)
        raise
    return proc, url


def serve(root: Path, port: int, bind: str) -> int:
    if not root.is_dir():
        _log(f"directory {root} does not exist (build it with: python -m tests.standins.mirror ensure --dir {root})")
        return 2
    if not (root / "manifest.json").is_file():
        _log(f"warning: {root}/manifest.json is missing; the stand-ins are not built")
    try:
        srv = MirrorServer(root, bind, port)
    except (OSError, ValueError) as e:
        _log(f"cannot listen on {bind}:{port}: {e}")
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    _log(f"serving {srv.root} on http://{bind}:{srv.server_address[1]}/")
    while not stop.wait(0.5):
        pass
    _log("stopping")
    srv.shutdown()
    srv.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    from tests.standins import build as b

    ap = argparse.ArgumentParser(prog="python -m tests.standins.mirror")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve DIR over HTTP on loopback")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    s.add_argument("--dir", required=True)
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--ensure", action="store_true", help="build the stand-ins first when missing or out of date")
    e = sub.add_parser("ensure", help="build the stand-ins into DIR unless up to date")
    e.add_argument("--dir", required=True)
    for p in (s, e):
        p.add_argument("--ollama-version", default=b.DEFAULT_OLLAMA_VERSION)
        p.add_argument("--vllm-tag", default=b.DEFAULT_VLLM_TAG)
        p.add_argument("--llamafactory-tag", default=b.DEFAULT_LLAMAFACTORY_TAG)
        p.add_argument("--vllm-extra-repo", action="append", default=None, metavar="REPO", help="also tag the vLLM stand-in as REPO:<tag>")
    args = ap.parse_args(argv)
    root = Path(args.dir).resolve()
    if args.cmd == "ensure" or args.ensure:
        extra = b.DEFAULT_VLLM_EXTRA_REPOS if args.vllm_extra_repo is None else tuple(args.vllm_extra_repo)
        try:
            b.build(root, args.ollama_version, args.vllm_tag, args.llamafactory_tag, vllm_extra_repos=extra)
        except b.cc.CompileError as err:
            _log(f"error: {err}")
            return 1
        if args.cmd == "ensure":
            print(root / "manifest.json")
            return 0
    return serve(root, args.port, args.bind)


if __name__ == "__main__":
    sys.exit(main())
