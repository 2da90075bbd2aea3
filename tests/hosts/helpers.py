"""Helpers shared by the host checks."""


def listeners(host) -> set[str]:
    """``address:port`` of every TCP listener (IPv6 brackets removed)."""
    out = host.check_output("ss -Htln | awk '{print $4}'")
    return {line.replace("[", "").replace("]", "") for line in out.split()}
