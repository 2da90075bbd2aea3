"""proxy: nginx as the only public entry. HTTPS with certbot (non-interactive, ACME directory
configurable, renewal timer on), HTTP → HTTPS, ``/v1/`` → vLLM or Ollama's OpenAI API behind a
bearer key (401 without it), the LLaMA-Factory UI behind basic auth, nginx status and node metrics
for the admin CIDRs only.

Order matters for a first (or interrupted) converge: port 80 and the ACME webroot first, then the
certificate, then the HTTPS server, which is only ever present together with its certificate.
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd

from components.catalogue import SECRETS_DIR, service
from components import roles
from components.hostdata import HostData
from hosts import secret_values, sha512crypt
from hosts.ops import Restart, apt_install, secret_file, service_running
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


def htpasswd_line(user: str, password: str, current: list[str] | None) -> str:
    """``user:$6$salt$hash``: the host's current line when it is still this password's (so a
    converge changes nothing), else a new hash with a random salt."""
    for line in current or []:
        name, _, hashed = line.partition(":")
        if name == user and sha512crypt.verify(password, hashed):
            return f"{line}\n"
    return f"{user}:{sha512crypt.hash_password(password)}\n"


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


@deploy("proxy")
def apply(data: HostData) -> None:
    keys = accepted_keys()
    cert_dir = f"/etc/letsencrypt/live/{data.domain}"
    # live/ holds symlinks into archive/: test -e follows them (pyinfra's File fact does not)
    have_cert = host.get_fact(Command, command=f"test -e {cert_dir}/fullchain.pem && echo yes || true") == "yes"

    # install
    apt_install("nginx, certbot, node exporter", packages("proxy"))

    # configure: node exporter on loopback only
    exporter = Restart("prometheus-node-exporter", name="node exporter: restart on change")
    exporter.watch(files.put(
        name="node exporter: listen on loopback",
        src=io.StringIO(f'ARGS="--web.listen-address={service("node-exporter").listen}"\n'),
        dest="/etc/default/prometheus-node-exporter",
    ))
    exporter.apply()
    service_running(name="node exporter running", unit="prometheus-node-exporter", units=roles.units(data.roles))

    if data.acme_ca_cert_src:
        files.put(name="the private ACME server's CA (for certbot)", src=data.acme_ca_cert_src, dest=ACME_CA, mode="644")
        dropin = files.put(name="certbot renewals trust the private ACME server's CA", dest=CERTBOT_DROPIN, mode="644",
                           src=io.StringIO(f"[Service]\nEnvironment=REQUESTS_CA_BUNDLE={ACME_CA}\n"))
    else:
        files.file(name="no private ACME CA", path=ACME_CA, present=False)
        dropin = files.file(name="certbot renewals: no private ACME CA", path=CERTBOT_DROPIN, present=False)
    systemd.daemon_reload(name="certbot: reload units on change", _if=dropin.did_change)

    reload = Restart("nginx", name="nginx: check and reload", command=NGINX_RELOAD)
    for op in (
        files.link(name="nginx: no default site", path="/etc/nginx/sites-enabled/default", present=False),
        files.directory(name="ACME webroot", path=WEBROOT, mode="755"),
        files.template(name="nginx: port 80 (ACME + redirect)", src=str(TEMPLATES / "nginx-http.conf.j2"),
                       dest="/etc/nginx/sites-enabled/llm-platform-http.conf", domain=data.domain, webroot=WEBROOT,
                       port=service("http").port),
        files.template(name="nginx: API key map", src=str(TEMPLATES / "nginx-auth.conf.j2"),
                       dest="/etc/nginx/conf.d/llm-platform-auth.conf", keys_map=KEYS_MAP,
                       api_rate=API_RATE, login_rate=LOGIN_RATE),
        files.directory(name="secrets directory", path=SECRETS_DIR, mode="700"),
        secret_file(name="nginx: API keys (0600)", dest=KEYS_MAP, value=keys_map(keys),
                    uploader=data.admin_user),
        secret_file(name="nginx: host-local backend key (0600)", dest=UPSTREAM_AUTH,
                    value=upstream_auth(secret_values.get("vllmLocalKey")), uploader=data.admin_user),
    ):
        reload.watch(op)
    llamafactory = "llamafactory" in data.roles
    if llamafactory:
        reload.watch(secret_file(
            name="nginx: LLaMA-Factory UI htpasswd", dest=HTPASSWD, group="www-data", mode="640",
            uploader=data.admin_user,
            value=htpasswd_line(data.llamafactory.ui_user, secret_values.get("llamafactoryUiPassword"),
                                host.get_fact(FileContents, path=HTPASSWD)),
        ))
    https_conf = "/etc/nginx/sites-enabled/llm-platform-https.conf"
    if not have_cert:  # never leave an HTTPS server without its certificate (interrupted first run)
        reload.watch(files.file(name="nginx: HTTPS server waits for its certificate", path=https_conf, present=False))

    # activate (port 80)
    service_running(name="nginx running and enabled", unit="nginx", units=roles.units(data.roles))
    reload.apply()

    # certificate
    if not have_cert:
        trust = ["env", f"REQUESTS_CA_BUNDLE={ACME_CA}"] if data.acme_ca_cert_src else []
        cmd = [
            *trust, "certbot", "certonly", "--webroot", "-w", WEBROOT, "-d", data.domain,
            "--non-interactive", "--agree-tos", "-m", data.acme_email, "--no-eff-email",
            "--server", data.acme_directory, "--deploy-hook", "systemctl reload nginx",
        ]
        server.shell(name=f"certificate for {data.domain} ({data.acme_directory})",
                     commands=[" ".join(shlex.quote(c) for c in cmd)])
    service_running(name="certbot renewal timer", unit="certbot.timer", units=roles.units(data.roles))

    # HTTPS server
    name, address = backend(data)
    https = Restart("nginx", name="nginx: check and reload (HTTPS)", command=NGINX_RELOAD)
    https.watch(files.template(
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
    ))
    https.apply()

    # brute force on the UI's basic auth: fail2ban (installed by the base role) reads nginx's log
    fail2ban = Restart("fail2ban")
    if llamafactory:
        fail2ban.watch(files.put(name="fail2ban: LLaMA-Factory UI jail", src=io.StringIO(FAIL2BAN_NGINX),
                                 dest=FAIL2BAN_JAIL, mode="644"))
    else:
        fail2ban.watch(files.file(name="fail2ban: no UI jail", path=FAIL2BAN_JAIL, present=False))
    fail2ban.apply()
