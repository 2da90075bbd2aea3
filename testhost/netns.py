"""The scan namespace: the guest's second NIC is a tap device living in a network namespace the tool
owns (default ``llmtest``), addressed from the benchmark range 198.18.0.0/24 (host side
198.18.0.1, guest 198.18.0.2). qemu's user network only shows forwarded ports, so a TCP scan of
the guest from inside this namespace is the honest "what is open from outside" check.

The tap is created (persistent) in the root namespace, opened by qemu by name, then moved into the
namespace and configured there. The namespace has no route anywhere else: traffic from it can only
reach the guest. ``scan()`` refuses every target but the guest address.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .config import TestHostConfig
from .config import config as _config
from .util import LocalHostError, detail, run, stage, which


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", *args], check=check, capture=True)


def netns_exists(s: TestHostConfig) -> bool:
    return Path(f"/run/netns/{s.netns}").exists()


def _link_in_root(s: TestHostConfig) -> bool:
    return _ip("link", "show", "dev", s.tap, check=False).returncode == 0


def _link_in_ns(s: TestHostConfig) -> bool:
    return netns_exists(s) and _ip("-n", s.netns, "link", "show", "dev", s.tap, check=False).returncode == 0


def ensure_netns(s: TestHostConfig | None = None) -> None:
    """Create the namespace (idempotent) with loopback up; configure the tap if it is in there."""
    s = s or _config()
    if not netns_exists(s):
        _ip("netns", "add", s.netns)
    _ip("-n", s.netns, "link", "set", "lo", "up")
    if _link_in_ns(s):
        configure_tap(s)


def prepare_tap(s: TestHostConfig | None = None) -> None:
    """A fresh persistent tap in the ROOT namespace, ready for qemu to open by name."""
    s = s or _config()
    if _link_in_ns(s):
        _ip("-n", s.netns, "link", "del", s.tap)
    if _link_in_root(s):
        _ip("link", "del", s.tap)
    _ip("tuntap", "add", "dev", s.tap, "mode", "tap")


def attach_tap(s: TestHostConfig | None = None) -> None:
    """After qemu opened the tap: move it into the namespace and give it the host-side address."""
    s = s or _config()
    ensure_netns(s)
    if _link_in_root(s):
        _ip("link", "set", s.tap, "netns", s.netns)
    if not _link_in_ns(s):
        raise LocalHostError(f"tap {s.tap} is neither in the root namespace nor in {s.netns}")
    configure_tap(s)


def configure_tap(s: TestHostConfig) -> None:
    addr = f"{s.ns_host_addr}/{s.ns_prefix}"
    shown = _ip("-n", s.netns, "-o", "addr", "show", "dev", s.tap).stdout
    if f" {addr} " not in shown:
        _ip("-n", s.netns, "addr", "add", addr, "dev", s.tap)
    _ip("-n", s.netns, "link", "set", s.tap, "up")


def teardown(s: TestHostConfig | None = None) -> None:
    """Delete the tap (wherever it is) and the namespace. Idempotent."""
    s = s or _config()
    if _link_in_ns(s):
        _ip("-n", s.netns, "link", "del", s.tap, check=False)
    if _link_in_root(s):
        _ip("link", "del", s.tap, check=False)
    if netns_exists(s):
        _ip("netns", "del", s.netns, check=False)


def ns_run(s: TestHostConfig, argv: list[str], **kw) -> subprocess.CompletedProcess:
    return run(["ip", "netns", "exec", s.netns, *argv], **kw)


def parse_nmap_xml(xml_text: str, target: str) -> list[int]:
    """Open TCP ports of ``target`` in nmap's ``-oX`` output."""
    root = ET.fromstring(xml_text)
    ports: list[int] = []
    for host in root.iter("host"):
        addrs = {a.get("addr") for a in host.iter("address")}
        if target not in addrs:
            continue
        for port in host.iter("port"):
            state = port.find("state")
            if port.get("protocol") == "tcp" and state is not None and state.get("state") == "open":
                ports.append(int(port.get("portid")))
    return sorted(ports)


def scan(ports: str = "1-65535", s: TestHostConfig | None = None, *, target: str | None = None) -> list[int]:
    """Open TCP ports of the guest as seen from the scan namespace (nmap SYN scan).

    Only the guest's namespace address may be scanned (or loopback inside the namespace)."""
    s = s or _config()
    target = target or s.ns_guest_addr
    if target not in (s.ns_guest_addr, "127.0.0.1"):
        raise LocalHostError(f"refusing to scan {target}: only {s.ns_guest_addr} (the test guest) may be scanned")
    if not netns_exists(s) or not _link_in_ns(s):
        raise LocalHostError(f"namespace {s.netns} with {s.tap} is not set up (is the VM running?)")
    if not which("nmap"):
        raise LocalHostError("nmap not found (apt-get install nmap)")
    argv = [
        "nmap", "-n", "-Pn", "-sS", "-p", ports,
        # ufw drops what it refuses, so each closed port waits for its timeout: a floor of 5000
        # probes/s and one retry scan all 65535 in ~25 s (88 s at -T4's own pace and two retries);
        # the scan of a port opened on purpose shows it still sees an open one
        "-T4", "--min-rate", "5000", "--max-retries", "1", "--host-timeout", "15m",
        "-oX", "-", target,
    ]  # fmt: skip
    expect = "all ports: seconds on a bare guest, ~25 s behind ufw"
    with stage(f"nmap SYN scan of {target} ports {ports}", expect=expect, tick=30):
        proc = ns_run(s, argv, capture=True, timeout=20 * 60)
    open_ports = parse_nmap_xml(proc.stdout, target)
    detail(f"scan {target} ports {ports}: open {open_ports}")
    return open_ports


# Sent from inside the namespace: one TCP SYN addressed to 127.0.0.1:PORT in an Ethernet frame for the
# guest's MAC on the tap, then the answers on the tap for a few seconds. Prints "open" (SYN-ACK),
# "closed" (RST: the packet reached a TCP stack) or "none".
_LOOPBACK_PROBE = r"""
import random, socket, struct, sys, time
tap, mac, src, port = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3], int(sys.argv[4])
def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((tap, 0))
own = s.getsockname()[4]
sport, seq = random.randint(40000, 60000), random.getrandbits(32)
saddr, daddr = socket.inet_aton(src), socket.inet_aton("127.0.0.1")
tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, saddr, daddr)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s.send(mac + own + b"\x08\x00" + ip + tcp)
s.settimeout(0.5)
deadline = time.monotonic() + 4
while time.monotonic() < deadline:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    pkt = frame[14:]
    if len(pkt) < 40 or pkt[9] != 6:
        continue
    hl = (pkt[0] & 0x0F) * 4
    sp, dp = struct.unpack("!HH", pkt[hl:hl + 4])
    if sp == port and dp == sport:
        flags = pkt[hl + 13]
        print("open" if flags & 0x12 == 0x12 else "closed" if flags & 0x04 else f"flags {flags:#x}")
        sys.exit(0)
print("none")
"""


def guest_mac(s: TestHostConfig) -> str:
    """The guest's MAC on the tap, as the namespace's neighbour table learns it from a ping."""
    ns_run(s, ["ping", "-c1", "-W2", s.ns_guest_addr], check=False, capture=True)
    out = _ip("-n", s.netns, "neigh", "show", s.ns_guest_addr, "dev", s.tap).stdout.split()
    if "lladdr" not in out:
        raise LocalHostError(f"no neighbour entry for {s.ns_guest_addr} in {s.netns} (is the VM running?)")
    return out[out.index("lladdr") + 1]


def loopback_probe(port: int, s: TestHostConfig | None = None) -> str:
    """Can a packet from the network addressed to the guest's 127.0.0.1:``port`` reach a listener
    there? Docker before 28 DNATs such packets to containers published on 127.0.0.1 (moby#45610).
    Returns "open", "closed" (a TCP stack answered) or "none" (dropped, as it should be)."""
    s = s or _config()
    argv = [sys.executable, "-c", _LOOPBACK_PROBE, s.tap, guest_mac(s), s.ns_host_addr, str(port)]
    answer = ns_run(s, argv, capture=True, timeout=30).stdout.strip()
    detail(f"loopback probe 127.0.0.1:{port} via {s.ns_guest_addr}: {answer}")
    return answer
