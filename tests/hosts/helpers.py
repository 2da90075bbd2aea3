"""Helpers shared by the host checks."""

from shlex import quote


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


# Each remote command costs a round trip and a sudo (~0.4 s on an emulated guest): these answer
# for many units, files or keys in one command where testinfra's modules ask once per attribute.
ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")


def units(host, *names: str) -> dict[str, dict[str, bool]]:
    """``{name: {"active": bool, "enabled": bool}}`` from one ``systemctl show``."""
    ids = [n if "." in n else f"{n}.service" for n in names]
    out = host.check_output("systemctl show -p Id -p ActiveState -p UnitFileState " + " ".join(quote(i) for i in ids))
    found: dict[str, dict[str, str]] = {}
    for block in out.split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            found[props["Id"]] = props
    return {
        name: {
            "active": found.get(i, {}).get("ActiveState") == "active",
            "enabled": found.get(i, {}).get("UnitFileState") in ENABLED_STATES,
        }
        for name, i in zip(names, ids)
    }


def stats(host, *paths: str) -> dict[str, dict | None]:
    """``{path: {"mode": int, "user", "group", "type"} or None}`` from one command."""
    script = "; ".join(f"stat -c '%a|%U|%G|%F' -- {quote(p)} 2>/dev/null || echo missing" for p in paths)
    lines = host.check_output(script).splitlines()
    out = {}
    for path, line in zip(paths, lines):
        if line == "missing":
            out[path] = None
            continue
        mode, user, group, kind = line.split("|", 3)
        out[path] = {"mode": int(mode, 8), "user": user, "group": group, "type": kind}
    return out


def sysctls(host, *keys: str) -> dict[str, str]:
    """``{key: value}`` from one ``sysctl -n``."""
    values = host.check_output("sysctl -n " + " ".join(quote(k) for k in keys)).splitlines()
    return dict(zip(keys, values))


def admin_address(host, admin_cidrs: list[str]) -> str | None:
    """An address of the host itself inside one of the admin networks (a request it sends from there
    to itself is an admin's request to nginx), or None."""
    import ipaddress

    nets = [ipaddress.ip_network(c) for c in admin_cidrs]
    for word in host.check_output("ip -o addr show scope global | awk '{print $4}'").split():
        addr = ipaddress.ip_interface(word).ip
        if any(addr in n for n in nets if n.version == addr.version):
            return str(addr)
    return None


def run_with_stdin(host, command: str, stdin: str) -> str:
    """``command`` on the host through the checks' own SSH access, ``stdin`` fed to it: a secret sent
    this way is never on a command line (testinfra's run has no stdin). Its stdout; fails on exit != 0."""
    import subprocess

    b = host.backend
    cmd = ["ssh", "-o", "BatchMode=yes"]
    if getattr(b, "ssh_config", None):
        cmd += ["-F", b.ssh_config]
    if getattr(b.host, "user", None):
        cmd += ["-o", f"User={b.host.user}"]
    if getattr(b.host, "port", None):
        cmd += ["-o", f"Port={b.host.port}"]
    if getattr(b, "ssh_identity_file", None):
        cmd += ["-i", b.ssh_identity_file]
    proc = subprocess.run([*cmd, b.host.name, command], input=stdin, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}: {proc.stderr[-500:]}"
    return proc.stdout


# Run inside a container: connect to every ``address:port`` argument at once (3 s each) and print
# ``address:port=open|closed|timeout`` for each, on one line; the address ``gateway`` is the
# container's default gateway (from /proc/net/route). Python's standard library only: the platform's
# images (and their stand-ins) all have python3.
CONNECT_PROBE = """\
import socket, struct, sys, threading
def gateway():
    return next(socket.inet_ntoa(struct.pack("<L", int(f[2], 16))) for f in (l.split() for l in open("/proc/net/route"))
                if f[1] == "00000000" and f[2] != "00000000")
gw = gateway() if any(t.startswith("gateway:") for t in sys.argv[1:]) else None
res = {}
def probe(t):
    h, p = t.rsplit(":", 1)
    h = gw if h == "gateway" else h
    try:
        socket.create_connection((h, int(p)), timeout=3).close()
        res[t] = "open"
    except socket.timeout:
        res[t] = "timeout"
    except OSError:
        res[t] = "closed"
threads = [threading.Thread(target=probe, args=(t,)) for t in sys.argv[1:]]
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(f"{t}={res[t]}" for t in sys.argv[1:]))
"""


def bridge_probe_command(image: str, ports: list[int], control_port: int) -> str:
    """One shell command: from a new container on Docker's default bridge (``image``, run with its
    entrypoint replaced by python3), try ``ports`` on the bridge's gateway, on every address of the
    host, on 127.0.0.1 (the container's own: a container has no other way to name the host's
    loopback) and on each running container's bridge address with that container's own ports; and
    ``control_port`` on the gateway (a port open to everyone, so a probe that reaches nothing is seen).
    Prints the probe's line (see ``parse_probe``); the gateway is named ``gateway`` in it, and it is
    also among the host's addresses."""
    import base64

    code = base64.b64encode(CONNECT_PROBE.encode()).decode()
    plist = " ".join(str(p) for p in ports)
    return (
        "set -e; "
        'addrs="gateway 127.0.0.1 $(ip -o -4 addr show scope global | awk \'{split($4, a, "/"); print a[1]}\')"; '
        f't="gateway:{control_port}"; '
        f'for a in $addrs; do for p in {plist}; do t="$t $a:$p"; done; done; '
        "for c in $(docker ps -q); do "
        "t=\"$t $(docker inspect -f '{{$ip := .NetworkSettings.IPAddress}}{{range $p, $_ := .Config.ExposedPorts}}"
        "{{if $ip}}{{$ip}}:{{$p}} {{end}}{{end}}' \"$c\" | sed 's#/tcp##g; s#/udp##g')\"; done; "
        f"docker run --rm --network bridge --entrypoint python3 {quote(image)} "
        f"-c \"import base64; exec(base64.b64decode('{code}'))\" $t"
    )


def parse_probe(line: str) -> dict[str, str]:
    """``{"address:port": "open" | "closed" | "timeout"}`` from the probe's line."""
    return dict(word.rsplit("=", 1) for word in line.split())
