"""sshd: keys only, the admin user only, no forwarding, few tries and sessions.

Lynis: SSH-7408 (each option of its list), SSH-7440 (AllowUsers). ``MaxSessions`` stays at 4 (Lynis
wants 2): the operator's one multiplexed connection carries pyinfra, testinfra and scripts/finetune
side by side. The port stays 22 (the catalogue, the cloud firewall and ufw open it to the admin CIDRs
only).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from components.hostdata import HostData
from hosts.file_ops import put_file
from hosts.ops import Restart

CONFIG = "/etc/ssh/sshd_config.d/50-llm-platform.conf"


@dataclass(frozen=True)
class Tunables:
    max_auth_tries: int = 3
    max_sessions: int = 4
    client_alive_interval: int = 300  # seconds
    client_alive_count_max: int = 2
    log_level: str = "VERBOSE"


DEFAULTS = Tunables()


def sshd_config(admin_user: str, t: Tunables = DEFAULTS) -> str:
    return (
        "# Managed by llm-platform (hosts/hardening/sshd.py)\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        "PubkeyAuthentication yes\n"
        "PermitEmptyPasswords no\n"
        f"AllowUsers {admin_user}\n"
        "X11Forwarding no\n"
        "AllowTcpForwarding no\n"
        "AllowAgentForwarding no\n"
        f"MaxAuthTries {t.max_auth_tries}\n"
        f"MaxSessions {t.max_sessions}\n"
        f"ClientAliveInterval {t.client_alive_interval}\n"
        f"ClientAliveCountMax {t.client_alive_count_max}\n"
        "TCPKeepAlive no\n"
        "Compression no\n"
        f"LogLevel {t.log_level}\n"
    )


def apply(data: HostData, t: Tunables = DEFAULTS) -> None:
    sshd = Restart("ssh", name="sshd: validate and reload on change", command=["sshd -t", "systemctl reload ssh"])
    sshd.watch(
        put_file(
            name="sshd: keys only, admin user only, no forwarding",
            src=io.StringIO(sshd_config(data.admin_user, t)),
            dest=CONFIG,
            mode="644",
        )
    )
    sshd.apply()
