"""Helpers shared by the host checks."""


def listeners(host) -> set[str]:
    """``address:port`` of every TCP listener (IPv6 brackets removed)."""
    out = host.check_output("ss -Htln | awk '{print $4}'")
    return {line.replace("[", "").replace("]", "") for line in out.split()}


def assert_loopback_only(host, port: int) -> None:
    """``port`` listens on 127.0.0.1 and on no wildcard or public address."""
    socks = listeners(host)
    assert f"127.0.0.1:{port}" in socks, f"nothing on 127.0.0.1:{port}"
    others = {s for s in socks if s.rsplit(":", 1)[1] == str(port) and not s.startswith("127.")}
    assert not others, f"port {port} also listens on {others}"
