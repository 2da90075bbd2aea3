"""proxy: nginx as the only public entry. HTTPS with certbot (non-interactive, ACME directory
configurable, renewal timer on), HTTP → HTTPS, ``/v1/`` → vLLM or Ollama's OpenAI API behind a
bearer key (401 without it), the LLaMA-Factory UI behind basic auth, nginx status and node metrics
for the admin CIDRs only.

Order matters for a first (or interrupted) converge: port 80 and the ACME webroot first, then the
certificate, then the HTTPS server, which is only ever present together with its certificate.

Certificates and the ACME account live on the data volume (``/etc/letsencrypt`` → ``/data/letsencrypt``,
the volume role mounts it first), so a rebuilt server finds them: no new certificate while the old
one is valid (Let's Encrypt allows 5 duplicate certificates a week).
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

from passlib.hash import sha512_crypt
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from components import roles
from components.catalogue import DATA_MOUNT, SECRETS_DIR, service
from components.hostdata import HostData
from hosts import secret_values
from hosts.file_ops import put_file, secret_file, template_file
from hosts.ops import Restart, apt_install, service_running
from hosts.packages import packages

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
WEBROOT = "/var/www/acme"
KEYS_MAP = f"{SECRETS_DIR}/nginx-api-keys.map"
UPSTREAM_AUTH = f"{SECRETS_DIR}/nginx-upstream-auth.conf"
HTPASSWD = "/etc/nginx/llm-platform.htpasswd"
NGINX_RELOAD = ["nginx -t -q", "systemctl reload nginx"]
ACME_CA = "/etc/llm-platform/acme-ca.pem"
"""A private ACME directory's CA bundle (host data ``acme_ca_cert_src``; the local test host's pebble),
trusted by certbot alone (``REQUESTS_CA_BUNDLE``, also in its renewal service) rather than system-wide:
``update-ca-certificates`` walks every CA of the system store (45-60 s on the emulated local host)."""
CERTBOT_DROPIN = "/etc/systemd/system/certbot.service.d/50-llm-platform-acme-ca.conf"
LETSENCRYPT, LETSENCRYPT_DATA = "/etc/letsencrypt", f"{DATA_MOUNT}/letsencrypt"
CERTBOT_LOG = "/var/log/letsencrypt/letsencrypt.log"  # the last run's (certbot rotates it per run)
RENEW_WITHIN_S = 30 * 86400
"""A certificate this close to its end is renewed anyway (certbot's own renewal window): not kept."""
API_RATE, API_BURST, API_CONN = "10r/s", 40, 32
"""Per client address on /v1/: sustained request rate, burst above it, concurrent connections."""
LOGIN_RATE = "30r/m"
"""Per client address on the LLaMA-Factory UI (basic auth): a password guesser gets 429s."""
FAIL2BAN_JAIL = "/etc/fail2ban/jail.d/61-llm-platform-nginx.local"
FAIL2BAN_NGINX = """\
# Managed by llm-platform (hosts/roles/proxy.py): repeated LLaMA-Factory UI password failures.
[nginx-http-auth]
enabled = true
port = http,https
logpath = /var/log/nginx/error.log
backend = polling
"""


HTPASSWD_HASH = sha512_crypt.using(rounds=5000)
"""The UI password's hash: SHA-512-crypt (``$6$``, libpass), which nginx's auth_basic checks through
the host's crypt(3) on every request. Drepper's default 5000 rounds (written without ``rounds=``),
not libpass's 656000: each UI request pays them, on the emulated local host too. Not bcrypt: as
slow per request, and it ignores a password past 72 bytes."""


def _is_hash_of(password: str, hashed: str) -> bool:
    """Whether ``hashed`` is a ``$6$`` hash of ``password``; a line in any other or a damaged form is not."""
    try:
        return HTPASSWD_HASH.verify(password, hashed)
    except ValueError:  # not a sha512_crypt hash, or a malformed one (passlib's MalformedHashError)
        return False


def htpasswd_line(user: str, password: str, current: list[str] | None) -> str:
    """``user:$6$salt$hash``: the host's current line when it is still this password's (so a
    converge changes nothing), else a new hash with a random salt."""
    for line in current or []:
        name, _, hashed = line.partition(":")
        if name == user and _is_hash_of(password, hashed):
            return f"{line}\n"
    return f"{user}:{HTPASSWD_HASH.hash(password)}\n"


def keys_map(keys: list[str]) -> str:
    """The API key map's entries: one case-sensitive regex per accepted key, every character that
    is not a letter or digit escaped (PCRE reads ``\\x`` of a non-alphanumeric as that character;
    nginx keeps such a backslash inside a quoted string)."""
    return "".join('"~^Bearer\\ ' + re.sub(r"([^A-Za-z0-9])", r"\\\1", k) + '$" 1;\n' for k in keys)


def accepted_keys() -> list[str]:
    """The public /v1 keys nginx accepts: the current one, and during a rotation (scripts/rotate-key)
    the one being replaced."""
    keys = [secret_values.get("vllmApiKey")]  # hosts.secret_values checks characters and length
    previous = secret_values.get_optional("vllmApiKeyPrevious")
    return keys + [previous] if previous and previous not in keys else keys


def upstream_auth(local_key: str) -> str:
    """What nginx sends to the backend instead of the client's key: the host-local key (a HOST_SECRET
    value: no quote, backslash, space or ';' to break out of the string)."""
    return f'proxy_set_header Authorization "Bearer {local_key}";\n'


def backend(data: HostData) -> tuple[str, str]:
    if data.proxy_backend == "ollama":
        return "ollama", service("ollama").listen
    return "vllm", service("vllm").listen


def letsencrypt_on_volume(etc: str = LETSENCRYPT, data: str = LETSENCRYPT_DATA) -> str:
    """Shell: make ``etc`` a link to ``data``. A host converged before has its certificates in
    ``etc``: they move to the empty volume. A rebuilt host's ``etc`` is the certbot package's
    skeleton (cli.ini) beside a volume that has them: the skeleton goes; certificates found on both
    (never expected) are kept aside as ``etc.root-disk-<time>``, never deleted."""
    e, d = shlex.quote(etc), shlex.quote(data)
    return (
        f"set -e; mkdir -p {d}; chmod 755 {d}; "
        f"if [ -d {e} ] && [ ! -L {e} ]; then "
        f'if [ -z "$(ls -A {d})" ]; then cp -a {e}/. {d}/; rm -rf {e}; '
        f'elif [ -n "$(ls -A {e}/live 2>/dev/null)" ]; then mv {e} {e}.root-disk-$(date +%s); '
        f"else rm -rf {e}; fi; "
        f"fi; ln -sfn {d} {e}"
    )


def cert_valid_command(
    domain: str, ca_pem: str | None = None, etc: str = LETSENCRYPT, data: str = LETSENCRYPT_DATA
) -> str:
    """Shell printing ``yes`` when the host holds a certificate for ``domain`` (on the volume, or
    in /etc/letsencrypt before its move) that is not due for renewal and chains to a trusted root:
    the system's, plus ``ca_pem`` (the private ACME server's CA the deploy installs, not yet
    installed on a new server when this is asked)."""
    ca = f"ca=$(mktemp); printf '%s' {shlex.quote(ca_pem)} > \"$ca\"; " if ca_pem else "ca=; "
    live = f"live/{domain}/fullchain.pem"
    return (
        f'{ca}c={data}/{live}; [ -e "$c" ] || c={etc}/{live}; '
        f'test -e "$c" && openssl x509 -in "$c" -noout -checkend {RENEW_WITHIN_S} >/dev/null '
        f"&& openssl x509 -in \"$c\" -noout -checkhost {shlex.quote(domain)} | grep -q 'does match' "
        f'&& openssl verify ${{ca:+-CAfile "$ca"}} -untrusted "$c" "$c" >/dev/null 2>&1 && echo yes; '
        f'[ -z "$ca" ] || rm -f "$ca"; true'
    )


def certificate_command(
    domain: str,
    email: str,
    directory: str,
    certbot: str = "certbot",
    etc: str = LETSENCRYPT,
    log: str = CERTBOT_LOG,
    ca_bundle: str | None = None,
) -> str:
    """Shell: ask the ACME server for a certificate (only run when none valid is kept:
    ``--force-renewal`` replaces one kept but untrusted or expiring). The account kept on the volume
    may be unknown to the server (deactivated; the local test host's pebble forgets its accounts
    when it restarts): then it is moved aside (``<dir>.unknown-<time>``) and certbot registers a
    new one, once."""
    from urllib.parse import urlparse

    u = urlparse(directory)
    account_dir = shlex.quote(f"{etc}/accounts/{u.netloc}{u.path}")
    trust = f"REQUESTS_CA_BUNDLE={shlex.quote(ca_bundle)} " if ca_bundle else ""  # a private ACME server
    run = trust + " ".join(
        shlex.quote(c)
        for c in [
            certbot,
            "certonly",
            "--webroot",
            "-w",
            WEBROOT,
            "-d",
            domain,
            "--non-interactive",
            "--agree-tos",
            "-m",
            email,
            "--no-eff-email",
            "--server",
            directory,
            "--deploy-hook",
            "systemctl reload nginx",
            "--force-renewal",
        ]
    )
    return (
        f"{run} || {{ grep -q accountDoesNotExist {shlex.quote(log)} && "
        f"mv {account_dir} {account_dir}.unknown-$(date +%s) && {run}; }}"
    )


@deploy("proxy")
def apply(data: HostData) -> None:
    keys = accepted_keys()
    cert_dir = f"{LETSENCRYPT}/live/{data.domain}"
    ca_pem = Path(data.acme_ca_cert_src).read_text() if data.acme_ca_cert_src else None
    have_cert = host.get_fact(Command, command=cert_valid_command(data.domain, ca_pem)) == "yes"

    # install
    apt_install("nginx, certbot, node exporter", packages("proxy"))
    # the link, and its target: a volume replaced by a blank one leaves the link dangling
    linked = f"test -d {LETSENCRYPT_DATA} && readlink {LETSENCRYPT} || true"
    if host.get_fact(Command, command=linked) != LETSENCRYPT_DATA:
        server.shell(
            name=f"certificates and ACME account on the data volume ({LETSENCRYPT} → {LETSENCRYPT_DATA})",
            commands=[letsencrypt_on_volume()],
        )

    # configure: node exporter on loopback only
    exporter = Restart("prometheus-node-exporter", name="node exporter: restart on change")
    exporter.watch(
        put_file(
            name="node exporter: listen on loopback",
            src=io.StringIO(f'ARGS="--web.listen-address={service("node-exporter").listen}"\n'),
            dest="/etc/default/prometheus-node-exporter",
        )
    )
    exporter.apply()
    service_running(name="node exporter running", unit="prometheus-node-exporter", units=roles.units(data.roles))

    if data.acme_ca_cert_src:
        put_file(name="the private ACME server's CA (for certbot)", src=data.acme_ca_cert_src, dest=ACME_CA, mode="644")
        dropin = put_file(
            name="certbot renewals trust the private ACME server's CA",
            dest=CERTBOT_DROPIN,
            mode="644",
            src=io.StringIO(f"[Service]\nEnvironment=REQUESTS_CA_BUNDLE={ACME_CA}\n"),
        )
    else:
        files.file(name="no private ACME CA", path=ACME_CA, present=False)
        dropin = files.file(name="certbot renewals: no private ACME CA", path=CERTBOT_DROPIN, present=False)
    systemd.daemon_reload(name="certbot: reload units on change", _if=dropin.did_change)

    reload = Restart("nginx", name="nginx: check and reload", command=NGINX_RELOAD)
    for op in (
        files.link(name="nginx: no default site", path="/etc/nginx/sites-enabled/default", present=False),
        files.directory(name="ACME webroot", path=WEBROOT, mode="755"),
        template_file(
            name="nginx: port 80 (ACME + redirect)",
            src=str(TEMPLATES / "nginx-http.conf.j2"),
            dest="/etc/nginx/sites-enabled/llm-platform-http.conf",
            domain=data.domain,
            webroot=WEBROOT,
            port=service("http").port,
        ),
        template_file(
            name="nginx: API key map",
            src=str(TEMPLATES / "nginx-auth.conf.j2"),
            dest="/etc/nginx/conf.d/llm-platform-auth.conf",
            keys_map=KEYS_MAP,
            api_rate=API_RATE,
            login_rate=LOGIN_RATE,
        ),
        files.directory(name="secrets directory", path=SECRETS_DIR, mode="700"),
        secret_file(name="nginx: API keys (0600)", dest=KEYS_MAP, value=keys_map(keys), uploader=data.admin_user),
        secret_file(
            name="nginx: host-local backend key (0600)",
            dest=UPSTREAM_AUTH,
            value=upstream_auth(secret_values.get("vllmLocalKey")),
            uploader=data.admin_user,
        ),
    ):
        reload.watch(op)
    llamafactory = "llamafactory" in data.roles
    if llamafactory:
        reload.watch(
            secret_file(
                name="nginx: LLaMA-Factory UI htpasswd",
                dest=HTPASSWD,
                group="www-data",
                mode="640",
                uploader=data.admin_user,
                value=htpasswd_line(
                    data.llamafactory.ui_user,
                    secret_values.get("llamafactoryUiPassword"),
                    host.get_fact(FileContents, path=HTPASSWD),
                ),
            )
        )
    https_conf = "/etc/nginx/sites-enabled/llm-platform-https.conf"
    if not have_cert:  # never leave an HTTPS server without its certificate (interrupted first run)
        reload.watch(files.file(name="nginx: HTTPS server waits for its certificate", path=https_conf, present=False))

    # activate (port 80)
    service_running(name="nginx running and enabled", unit="nginx", units=roles.units(data.roles))
    reload.apply()

    # certificate
    if not have_cert:
        server.shell(
            name=f"certificate for {data.domain} ({data.acme_directory})",
            commands=[
                certificate_command(
                    data.domain,
                    data.acme_email,
                    data.acme_directory,
                    ca_bundle=ACME_CA if data.acme_ca_cert_src else None,
                )
            ],
        )
    service_running(name="certbot renewal timer", unit="certbot.timer", units=roles.units(data.roles))

    # HTTPS server
    name, address = backend(data)
    https = Restart("nginx", name="nginx: check and reload (HTTPS)", command=NGINX_RELOAD)
    https.watch(
        template_file(
            name=f"nginx: HTTPS server (/v1/ → {name})",
            src=str(TEMPLATES / "nginx-https.conf.j2"),
            dest=https_conf,
            domain=data.domain,
            port=service("https").port,
            cert_dir=cert_dir,
            backend=address,
            backend_name=name,
            llamafactory=service("llamafactory-webui").listen if llamafactory else None,
            htpasswd=HTPASSWD,
            upstream_auth=UPSTREAM_AUTH,
            admin_cidrs=data.admin_cidrs,
            node_exporter=service("node-exporter").listen,
            api_burst=API_BURST,
            api_conn=API_CONN,
        )
    )
    https.apply()

    # brute force on the UI's basic auth: fail2ban (installed by the base role) reads nginx's log
    fail2ban = Restart("fail2ban")
    if llamafactory:
        fail2ban.watch(
            put_file(
                name="fail2ban: LLaMA-Factory UI jail", src=io.StringIO(FAIL2BAN_NGINX), dest=FAIL2BAN_JAIL, mode="644"
            )
        )
    else:
        fail2ban.watch(files.file(name="fail2ban: no UI jail", path=FAIL2BAN_JAIL, present=False))
    fail2ban.apply()
