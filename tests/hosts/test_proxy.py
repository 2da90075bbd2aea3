import re

import pytest

from components.catalogue import HOST_SERVICES, SECRETS_DIR, service
from hosts import secret_values
from hosts.roles.proxy import ACME_CA, API_BURST, HTPASSWD, KEYS_MAP
from tests.hosts.helpers import admin_address, listeners, run_with_stdin, stats, units

HTTPS, HTTP = service("https").port, service("http").port


def trust(data) -> str:
    """curl's CA option: the system store, or a private ACME directory's CA (hosts/roles/proxy.py)."""
    return f"--cacert {ACME_CA} " if data.acme_ca_cert_src else ""


def curl(data, path, *extra, scheme="https", port=HTTPS, out="-o /dev/null -w '%{http_code}'"):
    """curl on the host itself, through nginx, with the host's CA store verifying the certificate."""
    return (
        f"curl -s {trust(data)}{out} --max-time 20 --resolve {data.domain}:{port}:127.0.0.1 "
        f"{' '.join(extra)} {scheme}://{data.domain}:{port}{path}"
    )


KEY_HEADER = (
    f"sed -n '1s/^\"~^Bearer\\\\ \\(.*\\)\\$\" 1;$/\\1/p' {KEYS_MAP} "
    "| sed -e 's/\\\\\\(.\\)/\\1/g' -e 's/^/Authorization: Bearer /'"
)
"""The host's own (first) key, never sent over SSH, as an Authorization header line for ``curl -H @-``:
the key file's regex entry (hosts.roles.proxy.keys_map) with its escapes removed."""


def with_key(data, path):
    return f"{KEY_HEADER} | " + curl(data, path, "-H @-")


def test_nginx_is_the_only_public_listener(root):
    assert units(root, "nginx")["nginx"] == {"active": True, "enabled": True}
    socks = listeners(root)
    assert {f"0.0.0.0:{HTTP}", f"0.0.0.0:{HTTPS}"} <= socks
    public = {s for s in socks if not s.startswith(("127.", "::1:"))}
    ports = {s.rsplit(":", 1)[1] for s in public}
    assert ports <= {str(s.port) for s in HOST_SERVICES.values() if s.exposure != "local"}, public


def test_certificate_valid_for_the_host_name(root, data):
    cert = f"/etc/letsencrypt/live/{data.domain}/fullchain.pem"
    names = root.run(f"openssl x509 -in {cert} -noout -checkhost {data.domain}")
    assert names.rc == 0 and "does match certificate" in names.stdout, names.stdout + names.stderr
    assert root.run(f"openssl x509 -in {cert} -noout -checkend 86400").rc == 0, "expires within a day"
    # and the chain verifies against the host's trust store (as every client of the endpoint will)
    ca = f"-CAfile {ACME_CA} " if data.acme_ca_cert_src else ""
    chain = root.run(f"openssl verify {ca}-untrusted {cert} {cert}")
    assert chain.rc == 0, chain.stdout + chain.stderr


def test_https_api_requires_the_key(root, data):
    assert root.check_output(curl(data, "/v1/models")) == "401"
    assert root.check_output(curl(data, "/v1/models", "-H 'Authorization: Bearer wrong-key-0123456789'")) == "401"
    assert root.check_output(with_key(data, "/v1/models")) == "200"


def test_http_redirects_to_https(root, data):
    assert root.check_output(curl(data, "/v1/models", scheme="http", port=HTTP)) == "301"
    # to the configured name, whatever Host the client sent
    where = root.check_output(
        curl(data, "/x", "-H 'Host: evil.example'", scheme="http", port=HTTP, out="-o /dev/null -w '%{redirect_url}'")
    )
    assert where == f"https://{data.domain}/x"


def test_api_key_is_matched_exactly(root, data):
    """A map's plain keys are compared case-blind by nginx: the key in other case must get 401."""
    variants = {  # the header line as sent: the key itself, in other case, cut short, extended
        "key": "cat",
        "upper": "sed -E 's/^(Authorization: Bearer )(.*)$/\\1\\U\\2/'",
        "lower": "sed -E 's/^(Authorization: Bearer )(.*)$/\\1\\L\\2/'",
        "prefix": "sed 's/.$//'",
        "extended": "sed 's/$/x/'",
    }
    script = "; ".join(  # one remote command: each variant's header (hashed) and the answer it gets
        f'h=$({KEY_HEADER} | {edit}); printf \'{name} %s \' "$(printf %s "$h" | sha256sum | cut -c1-16)"; '
        f"printf '%s\\n' \"$h\" | {curl(data, '/v1/models', '-H @-')}; echo"
        for name, edit in variants.items()
    )
    got = {
        name: (digest, code) for name, digest, code in (line.split() for line in root.check_output(script).splitlines())
    }
    assert got["key"][1] == "200", got
    for name in ("upper", "lower"):
        assert got[name][0] != got["key"][0], f"the key has no letters to change ({name})"
    for name in ("upper", "lower", "prefix", "extended"):
        assert got[name][1] == "401", (name, got[name])


def burst(root, data, n: int, header: str, stdin: str = "") -> list[str]:
    """The status codes of ``n`` parallel /v1/models requests from the host itself (one client
    address), each with the Authorization header ``header`` (``@-``: read from ``stdin``, a pipe)."""
    return root.check_output(
        f"{stdin}curl -s {trust(data)}-Z --parallel-max 50 --max-time 60 -H {header} "
        f"--resolve {data.domain}:{HTTPS}:127.0.0.1 -w '%{{http_code}}\\n' "
        + " ".join([f"-o /dev/null https://{data.domain}/v1/models"] * n)
    ).split()


def test_guesses_without_the_key_are_rate_limited(root, data):
    """The key is checked after nginx's limits: a guesser gets 429s like any client over the rate."""
    n = API_BURST + 30
    codes = burst(root, data, n, "'Authorization: Bearer wrong-key-0123456789'")
    assert len(codes) == n and set(codes) <= {"401", "429"}, codes
    assert codes.count("429") > 0, "no unauthenticated request was limited"


def test_security_headers_on_every_response_including_the_401(root, data):
    for path in ("/v1/models", "/health"):  # the 401 and a 200
        headers = root.check_output(curl(data, path, out="-D - -o /dev/null")).lower()
        assert "strict-transport-security: max-age=31536000" in headers, headers
        assert "x-content-type-options: nosniff" in headers, headers
        assert "nginx/" not in headers, "server_tokens off: no version in the Server header"


def test_tls_is_modern_only(root, data):
    old = root.run(f"openssl s_client -connect 127.0.0.1:{HTTPS} -servername {data.domain} -tls1_1 </dev/null")
    assert old.rc != 0, "TLS 1.1 accepted"
    conf = root.check_output("nginx -T 2>/dev/null")
    assert "ssl_session_tickets off;" in conf and "ssl_ciphers ECDHE-" in conf and "server_tokens off;" in conf


def test_api_is_rate_limited_per_client(root, data):
    # More parallel requests from one address than the burst allows: the excess gets 429 without
    # reaching the backend.
    n = API_BURST + 30
    codes = burst(root, data, n, "@-", stdin=f"{KEY_HEADER} | ")  # the key never on a command line
    assert len(codes) == n and set(codes) <= {"200", "429"}, codes
    assert codes.count("429") > 0, "no request was limited"
    assert codes.count("200") >= API_BURST // 2, "the burst should reach the backend"


def test_status_and_metrics_only_for_admins(root, data):
    # 127.0.0.1 is not an admin network: the host itself is refused.
    assert root.check_output(curl(data, "/nginx_status")) == "403"
    assert root.check_output(curl(data, "/metrics")) == "403"


def test_llamafactory_ui_behind_admin_networks_and_basic_auth(root, data):
    if "llamafactory" not in data.roles:
        assert root.check_output(curl(data, "/llamafactory/")) == "404"
        return
    # the host itself is not an admin network: refused before the password prompt (see the
    # integration test for an admin network, which gets the 401)
    assert root.check_output(curl(data, "/llamafactory/")) == "403"
    ht = stats(root, HTPASSWD)[HTPASSWD]
    assert ht["mode"] == 0o640 and ht["group"] == "www-data"


def test_llamafactory_ui_page_and_its_asset_through_nginx_from_an_admin_network(root, data):
    """An admin's browser: the UI page through nginx with the UI's password, then the asset it
    references. Gradio puts the asset under https://<domain>/llamafactory/ only with GRADIO_ROOT_PATH
    and nginx's X-Forwarded-Host/-Proto; else it points at the domain's root (nginx: 404) or at http.
    curl runs on the host from one of its addresses inside an admin network (to that address); the
    password reaches it on stdin (curl -K -), never on a command line."""
    if "llamafactory" not in data.roles:
        pytest.skip("no LLaMA-Factory on this host")
    source = admin_address(root, data.admin_cidrs)
    if source is None:
        pytest.skip("no address of this host lies in its admin networks (the local test host has one)")
    password = secret_values.get("llamafactoryUiPassword")
    login = 'user = "' + f"{data.llamafactory.ui_user}:{password}".replace("\\", "\\\\").replace('"', '\\"') + '"\n'

    def fetch(path: str) -> tuple[str, str]:
        """(status and content type, body) of GET https://<domain><path> from ``source``."""
        out = run_with_stdin(
            root,
            f"curl -s {trust(data)}-K - --max-time 20 --interface {source} --resolve {data.domain}:{HTTPS}:{source} "
            f"-w '\\n%{{http_code}} %{{content_type}}' https://{data.domain}:{HTTPS}{path}",
            login,
        )
        body, _, status = out.rpartition("\n")
        return status, body

    base = f"https://{data.domain}/llamafactory/"
    status, page = fetch("/llamafactory/")
    assert status.startswith("200 "), (status, page[:300])
    hrefs = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert hrefs and hrefs[0].startswith(base), f"the page references {hrefs[:1]}, not under {base}"
    status, _ = fetch("/" + hrefs[0].removeprefix(f"https://{data.domain}/"))
    assert status.startswith("200 text/css"), (hrefs[0], status)


def test_secret_files_are_private(root):
    paths = root.check_output(f"find {SECRETS_DIR} -type f").split()
    have = stats(root, SECRETS_DIR, *paths)
    for path in paths:
        assert have[path]["mode"] == 0o600 and have[path]["user"] == "root", path
    assert have[SECRETS_DIR]["mode"] == 0o700


def test_certbot_renewal_timer(root):
    assert units(root, "certbot.timer")["certbot.timer"] == {"active": True, "enabled": True}


def test_certificates_and_acme_account_on_the_data_volume(root, data):
    """A rebuilt server finds them there (no new certificate while the old one is valid)."""
    from hosts.roles.proxy import LETSENCRYPT, LETSENCRYPT_DATA

    assert root.file(LETSENCRYPT).is_symlink and root.file(LETSENCRYPT).linked_to == LETSENCRYPT_DATA
    assert root.run(f"findmnt -n -o TARGET -T {LETSENCRYPT_DATA}").stdout.strip() == "/data"
    assert root.file(f"{LETSENCRYPT_DATA}/live/{data.domain}/fullchain.pem").exists
