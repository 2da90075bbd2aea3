"""operate/httpclient.py: the helpers around requests, the project's one HTTP client."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from operate.httpclient import Bearer, reason


@pytest.fixture
def echo():
    """``http://127.0.0.1:PORT``: answers with the Authorization header it got."""

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = (self.headers.get("Authorization") or "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_netrc_entry_does_not_replace_the_bearer_token(echo, tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert requests.get(echo, headers={"Authorization": "Bearer t0ken"}, timeout=5).text.startswith("Basic ")  # why
    assert requests.get(echo, auth=Bearer("t0ken"), timeout=5).text == "Bearer t0ken"


def test_reason_is_the_cause_on_one_line():
    with pytest.raises(requests.ConnectionError) as info:
        requests.get("http://127.0.0.1:9/x", timeout=5)
    line = reason(info.value)
    assert "Connection refused" in line and "127.0.0.1" in line and "Max retries" not in line and "\n" not in line
    assert reason(RuntimeError("HTTP 401:\n  {}")) == "HTTP 401: {}"
