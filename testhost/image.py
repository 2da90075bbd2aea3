"""The cached Debian 12 base image of the local test host.

``ensure_image()`` returns the image for the current recipe, building it if needed:

  mmdebstrap bookworm with the packages below and the roles' packages, through the apt-cacher-ng
  proxy (which caches the .debs) → configure the rootfs (network through ifupdown + cloud-init
  NoCloud, no SSH host keys: each VM gets its own from its user-data or cloud-init,
  ``update_initramfs=no`` set after the kernel's initramfs is built) → copy vmlinuz + initrd out of
  /boot → ``mkfs.ext4 -d`` → qcow2.

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

from . import services
from .config import HOSTNAME, ROLES, TestHostConfig
from .config import config as _config
from .util import LocalHostError, detail, file_lock, log, run, stage, which

# Bump when the build procedure changes in a way the recipe below does not capture.
BUILD_VERSION = 8  # 7: mmdebstrap instead of debootstrap; 8: no host keys in the image
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
        "ca-certificates",
        "curl",
        "gnupg",
        # boot + networking of a bootstrapped system: initramfs, ifupdown (cloud-init's ENI
        # renderer on Debian 12), a DHCP client, /etc/services etc., dbus for hostnamectl/logind
        "initramfs-tools",
        "kmod",
        "ifupdown",
        "isc-dhcp-client",
        "netbase",
        "dbus",
        "udev",
        # Recommended by the kernel package and present on every real Debian 12 install/cloud
        # image; the build skips Recommends. Without apparmor_parser docker cannot start
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
    the image natively at build time (services kept from starting by mmdebstrap's policy-rc.d):
    dpkg under TCG costs about five minutes of every fresh converge. The converge still runs every
    ``apt.packages`` operation (they find the packages installed) and all configuration.
    ``LLM_LOCAL_PREINSTALL=0`` builds an image without them, for a first converge that installs
    everything itself, as on a stock cloud image."""
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
        "# no host keys in the image: a VM whose user-data brings none (ssh_keys) gets fresh ones, as a\n"
        "# new cloud server does; ed25519 only, so the first boot under emulation stays fast\n"
        "ssh_genkeytypes: [ed25519]\n"
        "system_info:\n"
        "  network:\n"
        "    renderers: [eni]\n"
    ),
    # Under emulation one initramfs rebuild takes ~10 minutes; the VM boots an external initrd.
    "etc/initramfs-tools/update-initramfs.conf": "update_initramfs=no\nbackup_initramfs=no\n",
    "etc/default/locale": "LANG=C.UTF-8\n",
    "etc/apt/apt.conf.d/90-llm-local": ('APT::Install-Recommends "false";\nAcquire::Languages "none";\n'),
}
# mmdebstrap writes its --aptopt/--dpkgopt (the build's proxy, force-unsafe-io) here; not for the guest.
BUILD_ONLY_FILES = ("etc/apt/apt.conf.d/99mmdebstrap", "etc/dpkg/dpkg.cfg.d/99mmdebstrap")
# Units masked in the image: apt-daily* would grab the dpkg lock in the middle of a converge.
MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service", "apt-daily-upgrade.service"]


def apt_sources(mirror: str, security_mirror: str) -> str:
    return (
        f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {security_mirror} {SUITE}-security main\n"
    )


def recipe(s: TestHostConfig) -> dict:
    """Everything that determines the image's content. Its hash names the cache directory."""
    return {
        "build_version": BUILD_VERSION,
        "builder": "mmdebstrap",
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
    def recipe_file(self) -> Path:
        return self.dir / "recipe.json"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.qcow2, self.kernel, self.initrd, self.recipe_file))


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


def _chroot(root: Path, *cmd: str) -> None:
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    run(["chroot", root, *cmd], quiet=True, env=env)


def mmdebstrap_argv(s: TestHostConfig, rootfs: Path, proxy: str) -> list[str]:
    """One mmdebstrap run: minbase + PACKAGES + the roles' packages from bookworm, -updates and
    -security (so a fresh host has no security update pending), no Recommends, dpkg without fsync."""
    return [
        "mmdebstrap", f"--variant={VARIANT}", f"--arch={ARCH}",
        f"--include={','.join(sorted({*PACKAGES, *preinstalled(s)}))}",
        f'--aptopt=Acquire::http::Proxy "{proxy}"', '--aptopt=APT::Install-Recommends "false"',
        "--dpkgopt=force-unsafe-io",
        SUITE, str(rootfs), *apt_sources(s.mirror, s.security_mirror).splitlines(),
    ]  # fmt: skip


def _build(s: TestHostConfig, r: dict, img: Image) -> None:
    if os.geteuid() != 0:
        raise LocalHostError("building the base image needs root (mmdebstrap, chroot, mkfs)")
    for tool in ("mmdebstrap", "mkfs.ext4", "qemu-img", "chroot"):
        if not which(tool):
            raise LocalHostError(f"{tool} not found (apt-get install mmdebstrap e2fsprogs qemu-utils)")
    s.images_dir.mkdir(parents=True, exist_ok=True)
    tmp = s.images_dir / f".tmp-{img.dir.name[:16]}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    rootfs = tmp / "rootfs"
    timings: dict[str, float] = {}
    t_all = time.monotonic()
    log(
        f"base image: building {img.dir.name[:16]}… (mmdebstrap {SUITE} from {s.mirror}, {len(preinstalled(s))} role "
        "packages)"
    )
    try:
        t = time.monotonic()
        with (
            services.apt_proxy(s) as proxy,
            stage("mmdebstrap", expect="~5 min with the apt cache warm, longer cold; its I: lines follow", tick=60),
        ):
            run(mmdebstrap_argv(s, rootfs, proxy))
        timings["mmdebstrap"] = time.monotonic() - t

        t = time.monotonic()
        with stage("configure rootfs"):
            _configure_rootfs(rootfs, s)
        timings["configure"] = time.monotonic() - t

        t = time.monotonic()
        with stage("extract kernel and initrd"):
            _extract_boot(rootfs, tmp)
        timings["extract"] = time.monotonic() - t

        t = time.monotonic()
        with stage(f"rootfs -> {ROOT_SIZE} ext4 -> qcow2", expect="~10-30 s"):
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
        shutil.rmtree(tmp, ignore_errors=True)  # mmdebstrap unmounts what it mounted, also on failure
        raise
    log(f"base image: built {img.dir} in {timings['total']:.0f}s")


def _write(root: Path, rel: str, content: str, mode: int = 0o644) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_symlink():
        p.unlink()
    p.write_text(content)
    p.chmod(mode)


def _configure_rootfs(root: Path, s: TestHostConfig) -> None:
    # The kernel's initramfs was built during the install; only now switch rebuilds off.
    if not list((root / "boot").glob("initrd.img-*")):
        raise LocalHostError("mmdebstrap produced no initrd in /boot; cannot boot the image")
    for rel in BUILD_ONLY_FILES:
        (root / rel).unlink(missing_ok=True)
    for rel, content in ROOTFS_FILES.items():
        _write(root, rel, content)
    _write(root, "etc/apt/sources.list", apt_sources(s.mirror, s.security_mirror))
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # Every VM made from the image gets its own machine-id on first boot (mmdebstrap also removes
    # /var/lib/dbus/machine-id, the apt lists and the .debs; the guest runs apt-get update anyway).
    _write(root, "etc/machine-id", "")
    # Root login only through the admin user + sudo.
    _chroot(root, "passwd", "-l", "root")
    drop_host_keys(root)


def drop_host_keys(root: Path) -> list[str]:
    """Remove the host keys openssh-server's postinst generated at build time: every VM made from
    the image would share them. A VM gets its host key from its user-data (the local host's own,
    kept in its state dir, as a stack's host gets the stack's) or, without one, a fresh one from
    cloud-init. Returns the names removed."""
    removed = []
    for p in sorted((root / "etc/ssh").glob("ssh_host_*key*")):
        p.unlink()
        removed.append(p.name)
    return removed


def _extract_boot(root: Path, out: Path) -> None:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise LocalHostError("no vmlinuz/initrd.img in the rootfs /boot")
    shutil.copyfile(kernels[-1], out / "vmlinuz")
    shutil.copyfile(initrds[-1], out / "initrd.img")
    (out / "kernel-version").write_text(kernels[-1].name.removeprefix("vmlinuz-") + "\n")
    detail(f"kernel {kernels[-1].name}")


def list_images(s: TestHostConfig | None = None) -> list[Path]:
    s = s or _config()
    if not s.images_dir.is_dir():
        return []
    return sorted(p for p in s.images_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def prune_images(
    s: TestHostConfig | None = None, keep: Path | None = None, also_keep: tuple[Path, ...] = ()
) -> list[Path]:
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
