"""base: admin user, SSH keys only, unattended security upgrades, time sync, kernel and login
hardening, the tools roles rely on.

Hardening follows what Lynis (``scripts/local-host audit``) suggests where it fits a single-purpose
server; the suggestions not taken, and why, are listed in ``testhost/audit.py``.
"""

from __future__ import annotations

import io

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from components import roles
from components.hostdata import HostData
from hosts.ops import Restart, UPLOAD_DIR, account, apt_install, put_file, service_running
from hosts.packages import packages



def sshd_config(admin_user: str) -> str:
    return (
        "# Managed by llm-platform (hosts/roles/base.py)\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        "PubkeyAuthentication yes\n"
        "PermitEmptyPasswords no\n"
        f"AllowUsers {admin_user}\n"
        "X11Forwarding no\n"
        "AllowTcpForwarding no\n"
        "AllowAgentForwarding no\n"
        "MaxAuthTries 3\n"
        "MaxSessions 4\n"
        "ClientAliveInterval 300\n"
        "ClientAliveCountMax 2\n"
        "TCPKeepAlive no\n"
        "Compression no\n"
        "LogLevel VERBOSE\n"
    )


SYSCTL = {
    # Docker needs forwarding (bridge networks); everything else is the usual server set.
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.sysrq": "0",
    "kernel.yama.ptrace_scope": "1",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "fs.suid_dumpable": "0",
    "dev.tty.ldisc_autoload": "0",
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.conf.default.log_martians": "1",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.icmp_ignore_bogus_error_responses": "1",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
}
SYSCTL_FILE = "/etc/sysctl.d/60-llm-platform.conf"

LIMITS = "# Managed by llm-platform: no core dumps (they may hold secrets or prompts)\n* hard core 0\n"
COREDUMP = "# Managed by llm-platform\n[Coredump]\nStorage=none\nProcessSizeMax=0\n"

LOGIN_DEFS = {  # /etc/login.defs key → value
    "UMASK": "027",
    "PASS_MAX_DAYS": "365",
    "PASS_MIN_DAYS": "1",
    "SHA_CRYPT_MIN_ROUNDS": "65536",
    "SHA_CRYPT_MAX_ROUNDS": "65536",
}

MODPROBE = """\
# Managed by llm-platform: drivers and protocols a model host never needs
install usb-storage /bin/false
install firewire-core /bin/false
install firewire-ohci /bin/false
install dccp /bin/false
install sctp /bin/false
install rds /bin/false
install tipc /bin/false
blacklist usb-storage
blacklist firewire-core
blacklist dccp
blacklist sctp
blacklist rds
blacklist tipc
"""

BANNER = "Authorised access only. Activity on this system is logged.\n"

AUDIT_RULES = """\
# Managed by llm-platform: who changed accounts, sudo, SSH or the platform's secrets
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/sudoers -p wa -k sudo
-w /etc/sudoers.d/ -p wa -k sudo
-w /etc/ssh/sshd_config -p wa -k sshd
-w /etc/ssh/sshd_config.d/ -p wa -k sshd
-w /etc/llm-platform/ -p wa -k llm-secrets
"""

FAIL2BAN = """\
# Managed by llm-platform: ban repeated SSH failures (the proxy role adds the UI's basic auth).
# Debian 12 logs SSH to the journal only, hence the systemd backend for sshd.
[DEFAULT]
bantime = 1h
findtime = 10m
maxretry = 5
ignoreip = 127.0.0.1/8 ::1 {ignore}

[sshd]
enabled = true
backend = systemd
"""
AUTO_UPGRADES = """\
// Managed by llm-platform: daily package lists and unattended security upgrades
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
"""

PENDING_SECURITY = (
    "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c '^Inst .*-security' || true"
)


def sysctl_conf() -> str:
    return "# Managed by llm-platform (hosts/roles/base.py)\n" + "".join(f"{k} = {v}\n" for k, v in SYSCTL.items())


def apply_sysctl(name: str) -> Restart:
    """``sysctl -p`` of the platform's sysctl file, run when a watched operation changed (the
    file itself; ufw's pointer to it in the firewall role)."""
    return Restart("sysctl", name=name, command=[f"sysctl -q -p {SYSCTL_FILE}"])


@deploy("base")
def apply(data: HostData) -> None:

    if data.apt_proxy:
        put_file(
            name="apt: use the caching proxy",
            src=io.StringIO(f'Acquire::http::Proxy "{data.apt_proxy}";\n'),
            dest="/etc/apt/apt.conf.d/01llm-platform-proxy",
        )
    else:
        files.file(name="apt: no proxy", path="/etc/apt/apt.conf.d/01llm-platform-proxy", present=False)
    apt_install("base packages", packages("base"))

    # Security updates the host is missing now (unattended-upgrades applies later ones daily).
    # Counted from a simulation, so an up-to-date host reports no change.
    pending = host.get_fact(Command, command=PENDING_SECURITY)
    if pending and pending != "0":
        server.shell(name=f"apply {pending} pending security upgrades",
                     commands=["apt-get update -q", "unattended-upgrade"])

    account(name=f"admin user {data.admin_user}", user=data.admin_user, groups=["sudo"], shell="/bin/bash",
            home=f"/home/{data.admin_user}")
    server.user_authorized_keys(name=f"admin user {data.admin_user}: SSH keys", user=data.admin_user,
                                public_keys=data.ssh_public_keys)
    # the private directory secret uploads go through (see hosts.ops.secret_file)
    files.directory(name="private upload directory", path=UPLOAD_DIR, user=data.admin_user,
                    group=data.admin_user, mode="700")
    put_file(
        name="admin user: passwordless sudo",
        src=io.StringIO(f"{data.admin_user} ALL=(ALL) NOPASSWD:ALL\n"),
        dest=f"/etc/sudoers.d/90-llm-platform-{data.admin_user}",
        mode="440",
    )

    sshd = Restart("ssh", name="sshd: validate and reload on change", command=["sshd -t", "systemctl reload ssh"])
    sshd.watch(put_file(
        name="sshd: keys only, admin user only, no forwarding",
        src=io.StringIO(sshd_config(data.admin_user)),
        dest="/etc/ssh/sshd_config.d/50-llm-platform.conf",
        mode="644",
    ))
    sshd.apply()

    # kernel, core dumps, logins, drivers, banners
    sysctl = apply_sysctl("sysctl: apply on change")
    sysctl.watch(put_file(name="sysctl hardening", src=io.StringIO(sysctl_conf()), dest=SYSCTL_FILE, mode="644"))
    sysctl.apply()
    put_file(name="no core dumps (limits)", src=io.StringIO(LIMITS),
              dest="/etc/security/limits.d/60-llm-platform.conf", mode="644")
    put_file(name="no core dumps (systemd)", src=io.StringIO(COREDUMP),
              dest="/etc/systemd/coredump.conf.d/60-llm-platform.conf", mode="644")
    for key, value in LOGIN_DEFS.items():
        files.line(name=f"login.defs: {key} {value}", path="/etc/login.defs", extended_regex=True,
                   line=f"^#?[[:space:]]*{key}[[:space:]]+[0-9]+[[:space:]]*$", replace=f"{key}\t{value}")
    put_file(name="modprobe: no USB storage, firewire, rare protocols", src=io.StringIO(MODPROBE),
              dest="/etc/modprobe.d/60-llm-platform.conf", mode="644")
    for path in ("/etc/issue", "/etc/issue.net"):
        put_file(name=f"legal banner {path}", src=io.StringIO(BANNER), dest=path, mode="644")

    # accounting and audit trail
    auditd = Restart("auditd", name="auditd: load rules on change", command=["augenrules --load"])
    auditd.watch(put_file(name="auditd rules", src=io.StringIO(AUDIT_RULES),
                           dest="/etc/audit/rules.d/60-llm-platform.rules", mode="640"))
    service_running(name="auditd running and enabled", unit="auditd", units=roles.units(data.roles))
    auditd.apply()
    sysstat = Restart("sysstat")
    sysstat.watch(files.line(name="sysstat: collect", path="/etc/default/sysstat",
                             line=r"^ENABLED=.*$", replace='ENABLED="true"'))
    sysstat.apply()
    service_running(name="sysstat running and enabled", unit="sysstat", units=roles.units(data.roles))
    service_running(name="process accounting", unit="acct", units=roles.units(data.roles))

    # brute force: fail2ban for SSH and the UI's basic auth; admins are never banned
    fail2ban = Restart("fail2ban")
    fail2ban.watch(put_file(name="fail2ban: SSH jail", dest="/etc/fail2ban/jail.d/60-llm-platform.local",
                             mode="644", src=io.StringIO(FAIL2BAN.format(ignore=" ".join(data.admin_cidrs)))))
    fail2ban.apply()
    service_running(name="fail2ban running and enabled", unit="fail2ban", units=roles.units(data.roles))

    put_file(name="unattended security upgrades", src=io.StringIO(AUTO_UPGRADES),
              dest="/etc/apt/apt.conf.d/20auto-upgrades", mode="644")
    service_running(name="unattended-upgrades enabled", unit="unattended-upgrades", units=roles.units(data.roles))
    service_running(name="time sync", unit="systemd-timesyncd", units=roles.units(data.roles))
