"""The cached Debian 12 base image of the local test host.

``ensure_image()`` returns the image for the current recipe, building it if needed:

  debootstrap bookworm (``--cache-dir`` keeps the .debs) → configure the rootfs (network through
  ifupdown + cloud-init NoCloud, host keys kept, ``update_initramfs=no`` set after the kernel's
  initramfs is built) → copy vmlinuz + initrd out of /boot → ``mkfs.ext4 -d`` → qcow2.

The result lives in ``<cache>/images/<sha256 of the recipe>/`` (outside the clone, shared by CI
runs and checkouts). It is built in a temp dir next to it and renamed into place under an flock, so
a half-built image is never used and two concurrent builders don't both build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hosts import packages as role_packages

from .config import HOSTNAME, ROLES, TestHostConfig, config as _config
from .util import LocalHostError, detail, file_lock, log, run, stage

# Bump when the build procedure changes in a way the recipe below does not capture.
BUILD_VERSION = 6
SUITE = "bookworm"
ARCH = "amd64"
VARIANT = "minbase"
ROOT_SIZE = "16G"
ROOT_LABEL = "llm-root"

PACKAGES = sorted(
    {
        # asked for
        "linux-image-amd64",
        "systemd-sysv",
        "openssh-server",
        "sudo",
        "python3",
        "iproute2",
        "cloud-init",
        # debootstrap does not resolve virtual packages: python3-cryptography (via cloud-init's
        # python3-oauthlib) needs python3-cffi-backend-api-*, provided by this one
        "python3-cffi-backend",
        "ca-certificates",
        "curl",
        "gnupg",
        # boot + networking of a debootstrapped system: initramfs, ifupdown (cloud-init's ENI
        # renderer on Debian 12), a DHCP client, /etc/services etc., dbus for hostnamectl/logind
        "initramfs-tools",
        "kmod",
        "ifupdown",
        "isc-dhcp-client",
        "netbase",
        "dbus",
        "udev",
        # Recommended by the kernel package and present on every real Debian 12 install/cloud
        # image; debootstrap skips Recommends. Without apparmor_parser docker cannot start
        # containers on a kernel with AppArmor enabled (Debian's default).
        "apparmor",
        # cloud-init's disk_setup/mounts and general admin comfort
        "e2fsprogs",
        "util-linux",
        "fdisk",
        "locales",
        "procps",
        "less",
        "iputils-ping",
    }
)


def preinstalled(s: TestHostConfig) -> list[str]:
    """The Debian packages the local host's roles install (``hosts/packages.py``), installed into
    the image natively at build time: dpkg under TCG costs about five minutes of every fresh
    converge. The converge still runs every ``apt.packages`` operation (they find the packages
    installed) and all configuration. ``LLM_LOCAL_PREINSTALL=0`` builds an image without them, for
    a first converge that installs everything itself, as on a stock cloud image."""
    return role_packages.for_roles(ROLES) if s.preinstall else []


# Files written into the rootfs (path -> content). Part of the recipe: editing one rebuilds.
ROOTFS_FILES: dict[str, str] = {
    "etc/hostname": f"{HOSTNAME}\n",
    "etc/hosts": f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/fstab": f"LABEL={ROOT_LABEL}\t/\text4\tdefaults,errors=remount-ro\t0\t1\n",
    "etc/network/interfaces": (
        "# cloud-init writes the NICs to /etc/network/interfaces.d/50-cloud-init\n"
        "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n"
    ),
    "etc/cloud/cloud.cfg.d/90-llm-local.cfg": (
        "# local test host image (testhost/image.py)\n"
        "datasource_list: [NoCloud, None]\n"
        "# host keys are generated at image build time and pinned in known_hosts: keep them\n"
        "ssh_deletekeys: false\n"
        "ssh_genkeytypes: []\n"
        "system_info:\n"
        "  network:\n"
        "    renderers: [eni]\n"
    ),
    # Under emulation one initramfs rebuild takes ~10 minutes; the VM boots an external initrd.
    "etc/initramfs-tools/update-initramfs.conf": "update_initramfs=no\nbackup_initramfs=no\n",
    "etc/default/locale": "LANG=C.UTF-8\n",
    "etc/apt/apt.conf.d/90-llm-local": (
        'APT::Install-Recommends "false";\n'
        'Acquire::Languages "none";\n'
    ),
}
# Units masked in the image: apt-daily* would grab the dpkg lock in the middle of a converge.
UNSAFE_IO_CFG = "etc/dpkg/dpkg.cfg.d/99-llm-build-unsafe-io"
MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service", "apt-daily-upgrade.service"]


def apt_sources(mirror: str, security_mirror: str) -> str:
    return (
        f"deb {mirror} {SUITE} main\n"
        f"deb {mirror} {SUITE}-updates main\n"
        f"deb {security_mirror} {SUITE}-security main\n"
    )


def recipe(s: TestHostConfig) -> dict:
    """Everything that determines the image's content. Its hash names the cache directory."""
    return {
        "build_version": BUILD_VERSION,
        "suite": SUITE,
        "arch": ARCH,
        "variant": VARIANT,
        "packages": list(PACKAGES),
        "preinstalled": preinstalled(s),
        "mirror": s.mirror,
        "security_mirror": s.security_mirror,
        "root_size": ROOT_SIZE,
        "root_label": ROOT_LABEL,
        "files": dict(sorted(ROOTFS_FILES.items())),
        "apt_sources": apt_sources(s.mirror, s.security_mirror),
        "masked_units": list(MASKED_UNITS),
    }


def recipe_hash(r: dict) -> str:
    return hashlib.sha256(json.dumps(r, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Image:
    dir: Path

    @property
    def qcow2(self) -> Path:
        return self.dir / "base.qcow2"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def host_keys(self) -> Path:
        """Public host keys of the image, one ``<type> <base64>`` per line (known_hosts material)."""
        return self.dir / "host_keys.pub"

    @property
    def recipe_file(self) -> Path:
        return self.dir / "recipe.json"

    @property
    def build_log(self) -> Path:
        return self.dir / "build.json"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.qcow2, self.kernel, self.initrd, self.host_keys, self.recipe_file))

    def known_hosts_lines(self, names: list[str]) -> str:
        """known_hosts content for the given host patterns (e.g. ``[127.0.0.1]:2222``)."""
        keys = [ln.split()[:2] for ln in self.host_keys.read_text().splitlines() if ln.strip()]
        pattern = ",".join(names)
        return "".join(f"{pattern} {k[0]} {k[1]}\n" for k in keys)


def image_for(s: TestHostConfig | None = None) -> Image:
    s = s or _config()
    return Image(s.images_dir / recipe_hash(recipe(s)))


def ensure_image(s: TestHostConfig | None = None, *, rebuild: bool = False) -> Image:
    """Return the cached base image for the current recipe, building it first if needed."""
    s = s or _config()
    r = recipe(s)
    h = recipe_hash(r)
    img = Image(s.images_dir / h)
    if img.complete() and not rebuild:
        log(f"base image: reusing {img.dir}")
        return img
    with file_lock(s.images_dir / f".{h}.lock"):
        if img.complete() and not rebuild:  # someone else built it while we waited
            log(f"base image: reusing {img.dir} (built by a concurrent run)")
            return img
        _build(s, r, img)
    return img


def _chroot(root: Path, *cmd: str, quiet: bool = True) -> None:
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    run(["chroot", root, *cmd], quiet=quiet, env=env)


def _build(s: TestHostConfig, r: dict, img: Image) -> None:
    if os.geteuid() != 0:
        raise LocalHostError("building the base image needs root (debootstrap, chroot, mkfs)")
    for tool in ("debootstrap", "mkfs.ext4", "qemu-img", "chroot"):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            raise LocalHostError(f"{tool} not found (apt-get install debootstrap e2fsprogs qemu-utils)")
    s.images_dir.mkdir(parents=True, exist_ok=True)
    tmp = s.images_dir / f".tmp-{img.dir.name[:16]}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    rootfs = tmp / "rootfs"
    timings: dict[str, float] = {}
    t_all = time.monotonic()
    log(f"base image: building {img.dir.name[:16]}… (debootstrap {SUITE} from {s.mirror})")
    try:
        t = time.monotonic()
        with stage("debootstrap"):
            cache = s.debootstrap_cache / f"{SUITE}-{ARCH}"
            cache.mkdir(parents=True, exist_ok=True)
            # Two stages so dpkg can be told to skip fsync (force-unsafe-io) before it configures
            # anything: roughly halves the time on a slow disk. The setting is removed afterwards.
            run(
                [
                    "debootstrap",
                    "--foreign",
                    f"--variant={VARIANT}",
                    f"--arch={ARCH}",
                    "--components=main",
                    f"--include={','.join(PACKAGES)}",
                    f"--cache-dir={cache}",
                    SUITE,
                    rootfs,
                    s.mirror,
                ],
                quiet=True,
                env={"DEBIAN_FRONTEND": "noninteractive"},
            )
            _write(rootfs, UNSAFE_IO_CFG, "force-unsafe-io\n")
            _chroot(rootfs, "/debootstrap/debootstrap", "--second-stage")
            (rootfs / UNSAFE_IO_CFG).unlink()
        timings["debootstrap"] = time.monotonic() - t

        t = time.monotonic()
        with stage("configure rootfs"):
            _configure_rootfs(rootfs, s)
        timings["configure"] = time.monotonic() - t

        t = time.monotonic()
        with stage("extract kernel, initrd and host keys"):
            _extract_boot(rootfs, tmp)
        timings["extract"] = time.monotonic() - t

        t = time.monotonic()
        with stage(f"rootfs -> {ROOT_SIZE} ext4 -> qcow2"):
            raw = tmp / "base.raw"
            run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-d", rootfs, raw, ROOT_SIZE], quiet=True)
            run(["qemu-img", "convert", "-O", "qcow2", raw, tmp / "base.qcow2"], quiet=True)
            raw.unlink()
        timings["mkfs_qcow2"] = time.monotonic() - t

        shutil.rmtree(rootfs)
        timings["total"] = time.monotonic() - t_all
        (tmp / "recipe.json").write_text(json.dumps(r, indent=2, sort_keys=True) + "\n")
        (tmp / "build.json").write_text(
            json.dumps({"timings_s": {k: round(v, 1) for k, v in timings.items()}, "built_at": time.time()}, indent=2)
            + "\n"
        )
        if img.dir.exists():  # an incomplete leftover (or --rebuild): replace it
            old = s.images_dir / f".old-{img.dir.name[:16]}-{os.getpid()}"
            os.rename(img.dir, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, img.dir)
    except BaseException:
        dlog = rootfs / "debootstrap" / "debootstrap.log"
        if dlog.exists():
            saved = s.images_dir / f"failed-{img.dir.name[:16]}-debootstrap.log"
            shutil.copyfile(dlog, saved)
            log(f"base image build failed; debootstrap's log kept at {saved}")
        _cleanup_rootfs(rootfs)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"base image: built {img.dir} in {timings['total']:.0f}s")


def _cleanup_rootfs(rootfs: Path) -> None:
    """Unmount anything debootstrap left mounted inside a failed rootfs before removing it."""
    if not rootfs.exists():
        return
    try:
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for m in sorted((m for m in mounts if m.startswith(str(rootfs) + "/")), reverse=True):
        run(["umount", "-l", m], check=False, quiet=True)


def _write(root: Path, rel: str, content: str, mode: int = 0o644) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_symlink():
        p.unlink()
    p.write_text(content)
    p.chmod(mode)


def _configure_rootfs(root: Path, s: TestHostConfig) -> None:
    # Kernel and initramfs are installed by debootstrap above; only now switch rebuilds off.
    if not list((root / "boot").glob("initrd.img-*")):
        raise LocalHostError("debootstrap produced no initrd in /boot; cannot boot the image")
    for rel, content in ROOTFS_FILES.items():
        _write(root, rel, content)
    _write(root, "etc/apt/sources.list", apt_sources(s.mirror, s.security_mirror))
    pkgs = preinstalled(s)
    if pkgs:
        _preinstall(root, pkgs)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to("/dev/null")
    # Every VM made from the image gets its own machine-id on first boot.
    _write(root, "etc/machine-id", "")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    # Root login only through the admin user + sudo.
    _chroot(root, "passwd", "-l", "root")
    _chroot(root, "apt-get", "clean")
    # The lists debootstrap left cover bookworm main only; the guest runs apt-get update anyway.
    for entry in (root / "var/lib/apt/lists").iterdir():
        if entry.is_file() and entry.name != "lock":
            entry.unlink()
    # Host keys: debootstrap's openssh-server postinst generated them at build time. Drop DSA if
    # present; the rest are pinned into known_hosts by _extract_boot.
    for p in (root / "etc/ssh").glob("ssh_host_dsa_key*"):
        p.unlink()
    if not list((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        _chroot(root, "ssh-keygen", "-A")


def _preinstall(root: Path, pkgs: list[str]) -> None:
    """apt-get install the roles' packages inside the chroot, services kept from starting
    (policy-rc.d) and dpkg's fsyncs off; everything temporary is removed afterwards."""
    policy = "usr/sbin/policy-rc.d"
    resolv = root / "etc/resolv.conf"
    saved_resolv = resolv.read_bytes() if resolv.is_file() and not resolv.is_symlink() else None
    _write(root, policy, "#!/bin/sh\n# image build: no service starts in the chroot\nexit 101\n", 0o755)
    _write(root, UNSAFE_IO_CFG, "force-unsafe-io\n")
    _write(root, "etc/resolv.conf", Path("/etc/resolv.conf").read_text())
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    run(["mount", "-t", "proc", "proc", proc], quiet=True)
    try:
        with stage(f"preinstall the roles' packages ({len(pkgs)})"):
            _chroot(root, "apt-get", "update", "-q")
            # security updates released since the point release: a fresh host has none pending
            _chroot(root, "apt-get", "upgrade", "-y", "-q")
            _chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs)
    finally:
        run(["umount", "-l", proc], check=False, quiet=True)
        for rel in (policy, UNSAFE_IO_CFG):
            (root / rel).unlink(missing_ok=True)
        if saved_resolv is None:
            resolv.unlink(missing_ok=True)
        else:
            resolv.write_bytes(saved_resolv)


def _extract_boot(root: Path, out: Path) -> None:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise LocalHostError("no vmlinuz/initrd.img in the rootfs /boot")
    shutil.copyfile(kernels[-1], out / "vmlinuz")
    shutil.copyfile(initrds[-1], out / "initrd.img")
    (out / "kernel-version").write_text(kernels[-1].name.removeprefix("vmlinuz-") + "\n")
    keys = []
    for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        parts = pub.read_text().split()
        keys.append(f"{parts[0]} {parts[1]}\n")
    (out / "host_keys.pub").write_text("".join(keys))
    detail(f"kernel {kernels[-1].name}, {len(keys)} host keys pinned")


def list_images(s: TestHostConfig | None = None) -> list[Path]:
    s = s or _config()
    if not s.images_dir.is_dir():
        return []
    return sorted(p for p in s.images_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def prune_images(s: TestHostConfig | None = None, keep: Path | None = None, also_keep: tuple[Path, ...] = ()) -> list[Path]:
    """Remove cached images other than ``keep`` (default: the current recipe's) and ``also_keep``
    (e.g. the backing image of a running VM). Returns the removed directories."""
    s = s or _config()
    keep_set = {keep or image_for(s).dir, *also_keep}
    removed = []
    for p in list_images(s):
        if p not in keep_set:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
