"""Issue 21 §2: the LLaMA-Factory web UI behind nginx at /llamafactory/.

nginx's location for the UI, as the proxy role renders it, is replayed in Python in front of the
web UI stand-in started with the role's environment: the request headers nginx would set, the
prefix its ``proxy_pass .../`` strips. The page must reference its assets under the public
``https://<domain>/llamafactory/`` (Gradio builds that URL from GRADIO_ROOT_PATH and X-Forwarded-
Host/-Proto), and the asset must load through the same location. tests/hosts/test_proxy.py makes the
same check against a host's real nginx."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from components import upstream
from components.catalogue import service
from hosts.roles import llamafactory as lf_role
from testhost.util import free_port
from tests.standins.runner import http, server_process

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "llm.example.test"
CLIENT = "198.51.100.7"
PREFIX = upstream.LLAMAFACTORY_UI_PATH + "/"


def ui_location() -> str:
    """The rendered ``location /llamafactory/ { ... }`` block of the HTTPS server."""
    template = jinja2.Template((ROOT / "hosts/templates/nginx-https.conf.j2").read_text())
    conf = template.render(
        domain=DOMAIN,
        port=443,
        cert_dir="/c",
        backend="127.0.0.1:8000",
        backend_name="vllm",
        llamafactory=service("llamafactory-webui").listen,
        htpasswd="/h",
        admin_cidrs=["198.51.100.0/24"],
        node_exporter="127.0.0.1:9100",
        api_burst=40,
        api_conn=32,
    )
    m = re.search(r"location %s \{(.*?)\n    \}" % re.escape(PREFIX), conf, re.S)
    assert m, "no UI location in the HTTPS server"
    return m.group(1)


def nginx_headers(block: str, client_headers: dict) -> dict:
    """The headers nginx sends upstream: the client's, then each proxy_set_header (an empty value drops it)."""
    variables = {
        "$host": DOMAIN,
        "$http_host": DOMAIN,
        "$scheme": "https",
        "$remote_addr": CLIENT,
        "$proxy_add_x_forwarded_for": CLIENT,
        "$http_upgrade": "",
    }
    out = {k.title(): v for k, v in client_headers.items()}
    for name, value in re.findall(r'proxy_set_header\s+(\S+)\s+("[^"]*"|\S+);', block):
        value = value.strip('"')
        for var, sub in variables.items():
            value = value.replace(var, sub)
        if value:
            out[name.title()] = value
        else:
            out.pop(name.title(), None)
    return out


def through_nginx(block: str, upstream_url: str, public_url: str, client_headers: dict):
    """GET ``public_url`` as nginx's location forwards it (the prefix replaced by proxy_pass's /)."""
    path = public_url.removeprefix(f"https://{DOMAIN}")
    assert path.startswith(PREFIX), f"{public_url} is outside {PREFIX}: nginx answers it with `location /` (404)"
    assert re.search(r"proxy_pass http://\S+/;", block), "proxy_pass must replace the prefix with /"
    return http("GET", upstream_url + "/" + path.removeprefix(PREFIX), headers=nginx_headers(block, client_headers))


def test_ui_page_and_its_asset_load_through_the_location():
    block = ui_location()
    port = free_port()
    env = {**lf_role.container_env(), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    client = {"Host": DOMAIN, "Authorization": "Basic YWRtaW46c2VjcmV0"}
    with server_process(["llamafactory-cli", "webui"], port, env, "/") as s:
        page = through_nginx(block, s.url, f"https://{DOMAIN}{PREFIX}", client)
        assert page.status == 200, page.text
        theme = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
        assert theme.startswith(f"https://{DOMAIN}{PREFIX}"), f"the page references {theme}"
        asset = through_nginx(block, s.url, theme.split("?", 1)[0], client)
        assert asset.status == 200 and asset.headers["Content-Type"] == "text/css"


def test_admin_basic_credentials_are_not_forwarded_to_the_ui():
    headers = nginx_headers(ui_location(), {"Authorization": "Basic YWRtaW46c2VjcmV0"})
    assert "Authorization" not in headers
    assert re.search(r'proxy_set_header\s+Authorization\s+"";', ui_location())


def test_standin_builds_urls_as_gradio_does():
    """Without the root path and the forwarded headers (v0.9.4's launch, nginx before the fix) the
    page points at the domain's root over http: outside /llamafactory/, as the real Gradio would."""
    port = free_port()
    env = {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    with server_process(["llamafactory-cli", "webui"], port, env, "/") as s:
        bare = http("GET", s.url + "/", headers={"Host": DOMAIN}).text
        assert f'href="http://{DOMAIN}/theme.css' in bare
        forwarded = http(
            "GET", s.url + "/", headers={"Host": DOMAIN, "X-Forwarded-Host": DOMAIN, "X-Forwarded-Proto": "https"}
        ).text
        assert f'href="https://{DOMAIN}/theme.css' in forwarded  # still outside the sub-path without root_path
        assert http("GET", s.url + "/theme.css").status == 200
        assert http("GET", s.url + "/llamafactory/theme.css").status == 404  # Gradio's routes are at its own /
