"""The local artifact mirror: the stand-ins' directory (``tests.standins.build``) served as static
files by http.server on loopback only; the qemu guest reaches it as http://10.0.2.2:<port>/.

    python -m tests.standins.mirror ensure --dir DIR [--ollama-version X] [--vllm-tag T] [--llamafactory-tag T]
    python -m tests.standins.mirror serve [--ensure] --port 8099 --dir DIR [--bind 127.0.0.1] [same versions]

``ensure`` builds the stand-ins into DIR unless they are up to date and prints the manifest's path;
``serve --ensure`` does the same first. SIGTERM/SIGINT stop the server.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import signal
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.standins import build


def server(root: str | Path, port: int = 0, bind: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A static file server of ``root`` on ``bind``:``port`` (0: a free one); refuses non-loopback addresses."""
    if not ipaddress.ip_address(bind).is_loopback:
        raise ValueError(f"the mirror binds loopback only, not {bind}")
    srv = ThreadingHTTPServer((bind, port), functools.partial(SimpleHTTPRequestHandler, directory=str(root)))
    srv.daemon_threads = True
    return srv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.standins.mirror")
    sub = ap.add_subparsers(dest="cmd", required=True)
    serve, ensure = (
        sub.add_parser("serve", help="serve DIR on loopback"),
        sub.add_parser("ensure", help="build into DIR unless up to date"),
    )
    serve.add_argument("--port", type=int, default=8099)
    serve.add_argument("--bind", default="127.0.0.1")
    serve.add_argument("--ensure", action="store_true", help="build the stand-ins first when missing or out of date")
    for p in (serve, ensure):
        p.add_argument("--dir", required=True)
        build.add_version_args(p)
    a = ap.parse_args(argv)
    root = Path(a.dir).resolve()
    if a.cmd == "ensure" or a.ensure:
        try:
            build.build(root, a.ollama_version, a.vllm_tag, a.llamafactory_tag)
        except Exception as e:  # noqa: BLE001 - one line for the operator, whatever failed
            print(f"error: {e}", file=sys.stderr)
            return 1
        if a.cmd == "ensure":
            print(root / "manifest.json")
            return 0
    try:
        srv = server(root, a.port, a.bind)
    except (OSError, ValueError) as e:
        print(f"error: cannot serve {root} on {a.bind}:{a.port}: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving {root} on http://{a.bind}:{srv.server_address[1]}/", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
