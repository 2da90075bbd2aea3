"""The distribution packages each role installs (Debian 12 / Ubuntu names), in one place.

The roles install them with ``apt.packages``; the local test host's image builder
(``testhost/image.py``) preinstalls the same lists natively at image-build time, because
dpkg under qemu's software emulation (TCG) costs minutes per converge. GPU-only packages (the
``nvidia`` role) are not listed here: they depend on the host's distribution and hardware.
"""

from __future__ import annotations

ROLE_PACKAGES: dict[str, tuple[str, ...]] = {
    "base": (
        "openssh-server",
        "sudo",
        "ca-certificates",
        "curl",
        "gnupg",
        "jq",
        "zstd",
        "pciutils",
        "unattended-upgrades",
        "systemd-timesyncd",
        # hardening (Lynis): audit trail, accounting, brute-force bans, package integrity, restarts
        "auditd",
        "acct",
        "sysstat",
        "fail2ban",
        "python3-systemd",
        "debsums",
        "needrestart",
        "apt-show-versions",
        # hosts/hardening/: password quality (pam), mandatory access control (apparmor), rootkit scan (malware)
        "libpam-pwquality",
        "apparmor",
        "chkrootkit",
        # not libpam-tmpdir: under sudo it points $TMPDIR at /tmp/user/0 (root-only), where pyinfra
        # then tries to upload as the SSH user, and every file upload fails (Lynis DEB-0280)
    ),
    "firewall": ("ufw",),
    "docker": ("docker.io",),
    "proxy": ("nginx", "certbot", "prometheus-node-exporter"),
}


def packages(role: str) -> list[str]:
    return list(ROLE_PACKAGES[role])


def for_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    """Every package the given roles install, sorted and without duplicates."""
    return sorted({p for r in roles for p in ROLE_PACKAGES.get(r, ())})
