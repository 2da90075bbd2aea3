"""scripts/smoke's and scripts/rotate-key's HTTPS client against a loopback server: connected to
another address than the URL's (the local host's 127.0.0.1:PORT) while TLS is checked for the URL's
host against the given CA file only, and nothing taken from the environment (proxies, CA bundle)."""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from operate import rotate_key, smoke

DOMAIN = "llm.example.test"
KEY = "tls-test-key-0123456789"


def _cert(name: str, key, issuer_name: str, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca(tmp: Path, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(name, key, name, key, ca=True)
    (tmp / f"{name}.pem").write_bytes(_pem(cert))
    return key, cert, str(tmp / f"{name}.pem")


class _Handler(BaseHTTPRequestHandler):
    seen_hosts: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, doc: dict) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        self.seen_hosts.append(self.headers.get("Host", ""))
        return self.headers.get("Authorization") == f"Bearer {KEY}"

    def do_GET(self):
        if not self._authorized():
            return self._send(401, {"error": "bad key"})
        self._send(200, {"data": [{"id": "m"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self._authorized():
            return self._send(401, {"error": "bad key"})
        self._send(200, {"choices": [{"message": {"content": "bonjour"}}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, right CA file, other CA file, port of a server whose certificate names another host)."""
    tmp = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert, ca_file = _ca(tmp, "smoke-test-ca")
    _, _, other_ca_file = _ca(tmp, "another-ca")
    servers, ports = [], []
    for name in (DOMAIN, "elsewhere.example.test"):
        key = ec.generate_private_key(ec.SECP256R1())
        (tmp / f"{name}.pem").write_bytes(_pem(_cert(name, key, "smoke-test-ca", ca_key, ca=False)) + _pem(ca_cert))
        (tmp / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / f"{name}.pem", tmp / f"{name}.key")
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        ports.append(httpd.server_address[1])
    yield ports[0], ca_file, other_ca_file, ports[1]
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _endpoint(port: int, ca_file: str, key: str = KEY) -> smoke.Endpoint:
    return smoke.Endpoint(
        f"https://{DOMAIN}/v1", key, "m", ca_file=ca_file, connect_host="127.0.0.1", connect_port=port
    )


def test_connects_to_the_address_given_and_checks_tls_for_the_urls_host(server, monkeypatch):
    port, ca_file, _, _ = server
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the environment's proxy and CA bundle: not used
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server[2])
    _Handler.seen_hosts.clear()
    results = smoke.run(_endpoint(port, ca_file), count=3)
    assert [r.ok for r in results] == [True] * 3 and results[0].detail == "bonjour", results[0].detail
    assert set(_Handler.seen_hosts) == {DOMAIN}


def test_a_certificate_from_another_ca_is_refused(server):
    port, _, other_ca_file, _ = server
    [result] = smoke.run(_endpoint(port, other_ca_file), count=1)
    assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.detail and "\n" not in result.detail


def test_a_certificate_for_another_host_is_refused(server):
    _, ca_file, _, wrong_name_port = server
    [result] = smoke.run(_endpoint(wrong_name_port, ca_file), count=1)
    assert not result.ok and DOMAIN in result.detail, result.detail


def test_a_refused_connection_is_one_short_line(server):
    [result] = smoke.run(_endpoint(9, server[1]), count=1)
    assert not result.ok and "Connection refused" in result.detail and "Max retries" not in result.detail, result.detail


def test_rotate_key_probe_tells_accepted_from_refused_keys(server):
    port, ca_file, _, _ = server
    hosts = rotate_key.ConvergeHosts("local", lambda key: _endpoint(port, ca_file, key))
    assert hosts.accepts(KEY) and not hosts.accepts("not-the-key-0123456789")
    down = rotate_key.ConvergeHosts("local", lambda key: _endpoint(9, ca_file, key))
    with pytest.raises(rotate_key.RotationError, match="cannot reach https://llm.example.test/v1"):
        down.accepts(KEY)
