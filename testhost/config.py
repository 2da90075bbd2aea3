"""TestHostConfig of the local test host: paths, ports, addresses. Every value can be overridden by an
environment variable so CI (or two checkouts on one machine) can move things around."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from components import ROOT, roles
from components.patterns import RELEASE_VERSION
from components.upstream import OLLAMA_VERSION

HOSTNAME = "llm-local"  # inventory name, guest hostname, ssh_config Host alias
ADMIN_USER = "llmadmin"
DOMAIN = "llm.local.test"
ACME_NAME = "acme.local.test"
ACME_EMAIL = "ops@llm.local.test"
GUEST_GATEWAY = "10.0.2.2"  # the host's loopback as seen from qemu's user network
USER_NET = "10.0.2.0/24"
ROLES = roles.select(gpu=False, llamafactory=True)  # a CPU host with every other role
DATA_DEVICE = "/dev/vdb"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


# --- Debian mirror discovery ---------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def host_apt_entries(*apt_options: str) -> list[tuple[str, list[str]]]:
    """(uri, [suite]) of the host's ``deb`` sources as apt itself reads them (one-line and deb822
    files, disabled entries left out); empty where there is no apt. ``apt_options``: ``-o`` values."""
    argv = [
        "apt-get",
        "indextargets",
        "--no-release-info",
        "--format",
        "$(REPO_URI) $(RELEASE)",
        "Created-By: Packages",
    ]
    try:
        out = subprocess.run(
            [*argv, *(f"-o{o}" for o in apt_options)], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [
        (uri, [suite]) for uri, suite in (ln.split() for ln in dict.fromkeys(out.splitlines()) if len(ln.split()) == 2)
    ]


def discover_mirrors(entries: list[tuple[str, list[str]]], suite: str = "bookworm") -> tuple[str, str]:
    """(debian mirror, security mirror) from the host's apt entries.

    The Debian mirror is the first URI that serves ``suite`` itself; the security mirror is the
    first serving ``<suite>-security`` (else the Debian mirror's ``-security`` sibling)."""
    mirror = next((u for u, suites in entries if suite in suites), None)
    if mirror is None:
        mirror = next((u for u, suites in entries if u.rstrip("/").endswith("/debian")), None)
    if mirror is None:
        mirror = "http://deb.debian.org/debian"
    mirror = mirror.rstrip("/")
    security = next((u for u, suites in entries if f"{suite}-security" in suites), None)
    if security is None:
        security = mirror + "-security" if mirror.endswith("/debian") else "http://deb.debian.org/debian-security"
    return mirror, security.rstrip("/")


# --- config --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestHostConfig:
    __test__ = False  # not a pytest test class despite the name
    repo_root: Path
    state_dir: Path
    cache_dir: Path
    mirror: str
    security_mirror: str
    ssh_port: int = 2222
    http_port: int = 8080
    https_port: int = 8443
    apt_proxy_port: int = 3142
    acme_port: int = 14000
    acme_mgmt_port: int = 15000
    mirror_port: int = 8099
    memory_mb: int = 2048
    cpus: int = 2
    # the Ollama release the stand-in mirror builds and the host data pins (a version bump rehearsed
    # locally: LLM_LOCAL_OLLAMA_VERSION=0.14.0 scripts/local-host up; docs/oncall.md §3a)
    ollama_version: str = OLLAMA_VERSION
    data_disk_size: str = "20G"
    accel: str = "auto"  # auto | kvm | tcg
    preinstall: bool = True  # image carries the roles' Debian packages (image.preinstalled)
    netns: str = "llmtest"
    tap: str = "llmtap0"
    ns_host_addr: str = "198.18.0.1"
    ns_guest_addr: str = "198.18.0.2"
    ns_prefix: int = 24
    extra: dict = field(default_factory=dict)

    # -- state files (per checkout) --
    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def ssh_pubkey(self) -> Path:
        return self.state_dir / "id_ed25519.pub"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def inventory(self) -> Path:
        return self.state_dir / "inventory.py"

    @property
    def host_json(self) -> Path:
        return self.state_dir / "host.json"

    @property
    def overlay(self) -> Path:
        return self.state_dir / "disk.qcow2"

    @property
    def data_disk(self) -> Path:
        return self.state_dir / "data.qcow2"

    @property
    def seed(self) -> Path:
        return self.state_dir / "seed.iso"

    @property
    def console_log(self) -> Path:
        return self.state_dir / "console.log"

    @property
    def qemu_pidfile(self) -> Path:
        return self.state_dir / "qemu.pid"

    @property
    def qmp_socket(self) -> Path:
        return self.state_dir / "qmp.sock"

    @property
    def vm_json(self) -> Path:
        """What the running VM was booted from (image dir, accel, ports)."""
        return self.state_dir / "vm.json"

    @property
    def acme_root_ca(self) -> Path:
        """Pebble's issuing root, fetched at pebble start: verifies the guest's HTTPS certificate."""
        return self.state_dir / "pebble-issuing-root.pem"

    # -- caches (outside the clone, shared by checkouts) --
    @property
    def images_dir(self) -> Path:
        return self.cache_dir / "images"

    @property
    def apt_cache(self) -> Path:
        return self.cache_dir / "apt-cacher-ng"

    @property
    def pebble_tls_dir(self) -> Path:
        return self.cache_dir / "pebble-tls"

    @property
    def mirror_dir(self) -> Path:
        """The stand-ins this checkout serves: one folder per checkout (its path's hash), so two
        checkouts on one machine (a second worktree, a CI clone) do not rebuild each other's."""
        tag = hashlib.sha256(str(self.repo_root.resolve()).encode()).hexdigest()[:12]
        return self.cache_dir / "mirror" / tag

    # -- URLs as the guest sees them --
    @property
    def apt_proxy_url(self) -> str:
        return f"http://{GUEST_GATEWAY}:{self.apt_proxy_port}"

    @property
    def acme_directory(self) -> str:
        return f"https://{GUEST_GATEWAY}:{self.acme_port}/dir"

    @property
    def artifact_base_url(self) -> str:
        return f"http://{GUEST_GATEWAY}:{self.mirror_port}"

    @property
    def ns_cidr(self) -> str:
        return f"198.18.0.0/{self.ns_prefix}"


def config(**overrides) -> TestHostConfig:
    """The test host's configuration from the environment (``LLM_LOCAL_*``, ``LLM_PLATFORM_CACHE``)
    plus ``overrides``."""
    repo = Path(overrides.pop("repo_root", ROOT))
    state = Path(os.environ.get("LLM_LOCAL_STATE_DIR") or repo / ".state" / "local-host")
    cache = Path(os.environ.get("LLM_PLATFORM_CACHE") or "/var/cache/llm-platform")
    mirror_env = os.environ.get("LLM_LOCAL_DEBIAN_MIRROR", "").strip()
    sec_env = os.environ.get("LLM_LOCAL_DEBIAN_SECURITY_MIRROR", "").strip()
    if not (mirror_env and sec_env):
        found_mirror, found_sec = discover_mirrors(host_apt_entries())
    mirror = (mirror_env or found_mirror).rstrip("/")
    security = (sec_env or (found_sec if not mirror_env else mirror + "-security")).rstrip("/")
    kw = dict(
        repo_root=repo,
        state_dir=state.resolve() if state.is_absolute() else (Path.cwd() / state).resolve(),
        cache_dir=cache,
        mirror=mirror,
        security_mirror=security,
        ssh_port=_int_env("LLM_LOCAL_SSH_PORT", 2222),
        http_port=_int_env("LLM_LOCAL_HTTP_PORT", 8080),
        https_port=_int_env("LLM_LOCAL_HTTPS_PORT", 8443),
        apt_proxy_port=_int_env("LLM_LOCAL_APT_PROXY_PORT", 3142),
        acme_port=_int_env("LLM_LOCAL_ACME_PORT", 14000),
        acme_mgmt_port=_int_env("LLM_LOCAL_ACME_MGMT_PORT", 15000),
        mirror_port=_int_env("LLM_LOCAL_MIRROR_PORT", 8099),
        memory_mb=_int_env("LLM_LOCAL_MEMORY_MB", 2048),
        cpus=_int_env("LLM_LOCAL_CPUS", 2),
        ollama_version=os.environ.get("LLM_LOCAL_OLLAMA_VERSION", "").strip().removeprefix("v") or OLLAMA_VERSION,
        data_disk_size=os.environ.get("LLM_LOCAL_DATA_DISK_SIZE", "20G"),
        accel=os.environ.get("LLM_LOCAL_ACCEL", "auto").lower(),
        preinstall=os.environ.get("LLM_LOCAL_PREINSTALL", "1") not in ("0", "no", "false"),
        netns=os.environ.get("LLM_LOCAL_NETNS", "llmtest"),
        tap=os.environ.get("LLM_LOCAL_TAP", "llmtap0"),
    )
    kw.update(overrides)
    if kw["accel"] not in ("auto", "kvm", "tcg"):
        raise ValueError("LLM_LOCAL_ACCEL must be auto, kvm or tcg")
    if not RELEASE_VERSION.match(kw["ollama_version"]):
        raise ValueError(f"LLM_LOCAL_OLLAMA_VERSION must be a release version like {OLLAMA_VERSION}")
    return TestHostConfig(**kw)
