"""The upstream pins (components/upstream.py) against what the code renders, on both sides of every
version boundary, and the stand-ins against the entrypoint semantics the real images have."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components import ollama_release, prices, stackfile, upstream, yamlio
from components.config import SettingsError, parse_settings
from components.hostdata import HostData
from hosts.roles.vllm import vllm_args
from operate.plan import format_plan
from tests.unit.conftest import STACKS, pin_overrides, plan_for

ROOT = Path(__file__).resolve().parents[2]


# ---- Ollama: archive name, URL, unpack, checksums ---------------------------------------------
@pytest.mark.parametrize(
    ("version", "archive", "flag"),
    [
        ("0.13.5", "ollama-linux-amd64.tgz", "--gzip"),
        ("0.13.99", "ollama-linux-amd64.tgz", "--gzip"),
        ("0.14.0", "ollama-linux-amd64.tar.zst", "--zstd"),
        ("0.15.6", "ollama-linux-amd64.tar.zst", "--zstd"),
    ],
)
def test_ollama_archive_by_version(version, archive, flag):
    assert ollama_release.ollama_archive(version) == archive
    assert ollama_release.ollama_release_url(upstream.OLLAMA_RELEASES, version, archive) == (
        f"https://github.com/ollama/ollama/releases/download/v{version}/{archive}"
    )
    assert ollama_release.ollama_unpack_command(f"/c/{archive}", "/usr/local") == [
        "tar",
        flag,
        "-xf",
        f"/c/{archive}",
        "-C",
        "/usr/local",
    ]


def test_the_default_release_is_the_gzip_one():
    """Fact 1: 0.13.5 (the default) publishes ollama-linux-amd64.tgz, never .tar.zst."""
    assert upstream.OLLAMA_VERSION == "0.13.5"
    assert ollama_release.ollama_archive(upstream.OLLAMA_VERSION).endswith(".tgz")


def test_checksum_file_in_the_release_format():
    # `find . -type f | xargs sha256sum` in dist/ (ollama@v0.13.5 release.yaml): "<hex>  ./<name>"
    text = (
        f"{'a' * 64}  ./ollama-linux-amd64.tgz\n"
        f"{'b' * 64}  ./ollama-darwin.tgz\n"
        f"{'C' * 64} *./x/OllamaSetup.exe\n"
        "noise\n"
    )
    assert ollama_release.parse_sha256sums(text) == {
        "ollama-linux-amd64.tgz": "a" * 64,
        "ollama-darwin.tgz": "b" * 64,
        "OllamaSetup.exe": "c" * 64,
    }
    assert ollama_release.parse_sha256sums(ollama_release.format_sha256sums({"ollama-linux-amd64.tgz": "d" * 64})) == {
        "ollama-linux-amd64.tgz": "d" * 64,
    }


def test_ollama_role_takes_name_url_and_unpack_from_the_table():
    src = (ROOT / "hosts" / "roles" / "ollama.py").read_text()
    assert (
        "ollama_release.ollama_archive(" in src
        and "ollama_release.ollama_release_url(" in src
        and "ollama_release.ollama_unpack_command(" in src
    )
    assert ".tar.zst" not in src and ".tgz" not in src  # no archive name of its own


# ---- Unpinned Ollama: refused at plan time, one line naming the command ---------------------
@pytest.mark.parametrize("stack", [s for s in STACKS if pin_overrides(s)])
def test_unpinned_host_stack_fails_at_plan_time_naming_the_command(stack):
    """Each stack's host block, made ready but for the pin and creating its host (a fixture: not the
    committed phase), is refused with the one line naming the command."""
    host = json.loads(pin_overrides(stack)["host"])
    del host["ollama"]["sha256"]
    raw, secure = stackfile.read_stack_file(stack, {"host": json.dumps(host), "hostEnabled": True})
    with pytest.raises(SettingsError) as info:
        parse_settings(raw, stack, secure_keys=secure)
    version = host["ollama"].get("version") or upstream.OLLAMA_VERSION
    assert info.value.problems == [
        f"llm-platform:host.ollama.sha256: required: the sha256 of {ollama_release.ollama_archive(version)} of Ollama "
        f"{version}, from the release's sha256sum.txt; pin it with: scripts/pin ollama {stack} {version}"
    ]


# ---- vLLM: --model, and the entrypoint by tag -------------------------------------------------
@pytest.mark.parametrize(
    ("tag", "entrypoint"),
    [
        ("v0.11.0", upstream.VLLM_API_SERVER_ENTRYPOINT),
        ("v0.13.9", upstream.VLLM_API_SERVER_ENTRYPOINT),
        ("v0.14.0", upstream.VLLM_SERVE_ENTRYPOINT),
        ("nightly", upstream.VLLM_SERVE_ENTRYPOINT),
    ],
)
def test_vllm_entrypoint_by_tag(tag, entrypoint):
    assert upstream.vllm_entrypoint(tag) == entrypoint


def _host_data(stack: str) -> HostData:
    doc = plan_for(stack).outputs["inventory"]["hosts"][0]["data"]
    return HostData.model_validate({k: v for k, v in doc.items() if k in HostData.model_fields})


def test_vllm_args_name_the_model_with_the_flag():
    data = _host_data("prod")
    args = vllm_args(data)
    assert args[args.index("--model") + 1] == data.vllm.model
    assert data.vllm.model not in [a for i, a in enumerate(args) if i == 0 or args[i - 1] != "--model"]


@pytest.mark.parametrize("tag", ["v0.11.0", "v0.14.0"])
def test_vllm_standin_serves_the_configured_model_under_either_entrypoint(tag):
    """The role's arguments behind the image's entrypoint at that tag (the stand-in follows the real
    semantics: the API server module ignores a positional model) load the configured model."""
    from testhost.util import free_port
    from tests.standins.runner import http, server_process

    data = _host_data("prod")
    port = free_port()
    argv = [
        *upstream.vllm_entrypoint(tag),
        *vllm_args(data),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        "k",
    ]
    with server_process(argv, port, ready_path="/health") as s:
        models = http("GET", s.url + "/v1/models", headers={"Authorization": "Bearer k"}).json()["data"]
    assert [(m["id"], m["root"]) for m in models] == [(data.vllm.served_model_name, data.vllm.model)]


def test_vllm_standin_api_server_ignores_a_positional_model():
    """Fact 2 as the stand-in sees it: a positional model behind the v0.11.0 entrypoint is not served."""
    from testhost.util import free_port
    from tests.standins.runner import http, server_process

    port = free_port()
    argv = [
        *upstream.vllm_entrypoint("v0.11.0"),
        "org/wanted",
        "--served-model-name",
        "wanted",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        "k",
    ]
    with server_process(argv, port, ready_path="/health") as s:
        models = http("GET", s.url + "/v1/models", headers={"Authorization": "Bearer k"}).json()["data"]
    assert [(m["id"], m["root"]) for m in models] == [("wanted", "Qwen/Qwen3-0.6B")]


# ---- LLaMA-Factory: the image tag ------------------------------------------------------------
def test_llamafactory_tag_is_not_refused_by_an_unsourced_rule():
    """No source says which versioned tags exist: docker.yml pushed `:<version>` on every push to
    main from ad345ec05 (2025-06-17, VERSION still 0.9.3 in that commit) to 3fe6f0feb (2025-10-05),
    so `:0.9.4` was a moving dev build until the release re-pushed it, and `:0.9.3` may exist. A
    tag is the operator's choice; the settings refuse only `latest` (not a pin)."""
    assert upstream.LLAMAFACTORY_TAG == "0.9.4" and _host_data("prod").llamafactory.tag == "0.9.4"
    raw = stackfile.read_stack_file("prod", pin_overrides("prod"))[0]
    host = json.loads(raw["llm-platform:host"])
    for tag in ("0.9.3", "0.9.5"):
        host["llamafactory"] = {**(host.get("llamafactory") or {}), "tag": tag}
        assert parse_settings({**raw, "llm-platform:host": json.dumps(host)}, "prod").host.llamafactory.tag == tag
    host["llamafactory"]["tag"] = "latest"
    with pytest.raises(SettingsError, match="not 'latest'"):
        parse_settings({**raw, "llm-platform:host": json.dumps(host)}, "prod")
    assert not hasattr(upstream, "llamafactory_tag_published")


# ---- Citations that can be read here -------------------------------------------------------------
def _cited_openapi_files(pin) -> list[str]:
    return re.findall(r"digitalocean/openapi@7c1300c:specification/resources/apps/models/([\w.]+\.yml)", pin.source)


def test_app_spec_citations_name_the_files_that_hold_the_fields():
    """app.internal_service: `internal_ports` is declared in app_service_spec.yml and the health
    check's `port` in app_service_spec_health_check.yml (the copy in shared/do-openapi)."""
    from tests.unit.do_schema import SCHEMA_DIR

    if not SCHEMA_DIR.exists():
        pytest.skip(f"DigitalOcean schema copy not found at {SCHEMA_DIR}")
    pin = next(p for p in upstream.PINS if p.key == "app.internal_service")
    files = _cited_openapi_files(pin)
    assert files, pin.source

    def declared(name: str) -> set[str]:  # the properties the file itself declares (its own and its allOf parts')
        doc = yamlio.load((SCHEMA_DIR / name).read_text())
        parts = [doc, *(p for p in doc.get("allOf", []) if isinstance(p, dict))]
        return {k for part in parts for k in part.get("properties", {})}

    declared = {f: declared(f) for f in files}
    assert any("internal_ports" in keys for keys in declared.values()), declared
    assert any(f.endswith("health_check.yml") and "port" in keys for f, keys in declared.items()), declared


def test_debian_image_slugs_cite_what_says_them():
    """Hetzner's `debian-12` is in pulumi-hcloud's docstring examples (the installed package is the
    cited version); DigitalOcean's `debian-12-x64` is in no file we can read (not in the OpenAPI
    examples at 7c1300c, not in pulumi-digitalocean 4.84.1): its row must say UNVERIFIED."""
    import importlib.metadata as md

    import pulumi_hcloud

    pins = {p.key: p for p in upstream.PINS}
    hc = pins["hcloud.debian_image"]
    assert hc.verified and f"pulumi-hcloud@v{md.version('pulumi_hcloud')}" in hc.source
    assert 'image="debian-12"' in (Path(pulumi_hcloud.__file__).parent / "server.py").read_text()
    do = pins["do.debian_image"]
    assert do.value == upstream.DO_DEBIAN_IMAGE == prices.DropletSize("x", 0, "").default_image
    assert not do.verified and "doctl compute image list-distribution" in do.source
    from components.cost import estimate

    cpu_droplet = estimate(plan_for("dev", (("phase", 2),)).settings)  # a DO CPU droplet on the default image
    assert any(u.startswith(f"droplet image {upstream.DO_DEBIAN_IMAGE}: UNVERIFIED") for u in cpu_droplet.unverified)


# ---- Pulumi on a fresh clone --------------------------------------------------------------------
def test_fresh_clone_pulumi_installs_the_project():
    """Pulumi's pip toolchain installs requirements.txt into the virtualenv (pulumi.pip_toolchain);
    it must install the project itself, whose packages the program imports."""
    project = yamlio.load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-e ." in lines
    main = (ROOT / project["main"] / "__main__.py").read_text()
    assert "from components" in main
    # the test virtualenv itself is built from the same file (scripts/lib/venv.sh)
    assert "-r requirements.txt" in (ROOT / "scripts" / "lib" / "venv.sh").read_text()


# ---- The table ---------------------------------------------------------------------------------
SOURCE = re.compile(r"[\w.-]+/[\w.-]+(@[\w.-]+(:\S+)?|#\d+)|shared/do-openapi|components/\w+\.py")


@pytest.mark.parametrize("pin", upstream.PINS, ids=lambda p: p.key)
def test_every_row_has_a_source_or_says_unverified(pin):
    if pin.verified:
        assert SOURCE.search(pin.source), f"{pin.key}: {pin.source!r} names no repo@tag:path"
    else:
        assert re.search(r"verify|read|docs", pin.source[len(upstream.UNVERIFIED) :]), (
            f"{pin.key}: say what would verify it"
        )


def test_docs_table_is_the_generated_one():
    doc = (ROOT / "docs" / "upstream.md").read_text()
    assert upstream.table_markdown() in doc, "docs/upstream.md is stale: regenerate with python -m components.upstream"


# ---- Provider facts: unverified ones printed beside the cost -----------------------------------
def test_unverified_provider_facts_are_printed_beside_the_cost():
    # prod: H100 in tor1 (confirmed), cpu: Hetzner (its prices are third-party)
    confirmed = plan_for("prod").settings
    assert confirmed.host.size == "gpu-h100x1-80gb" and confirmed.host.region == "tor1"
    from components.cost import estimate

    droplet = next(i for i in estimate(confirmed).items if i.item.startswith("host: droplet"))
    assert droplet.verified
    host = json.loads(stackfile.read_stack_file("prod", pin_overrides("prod"))[0]["llm-platform:host"])
    host.update(size="gpu-l40sx1-48gb", region="nyc2")
    plan = plan_for("prod", (*pin_overrides("prod").items(), ("host", json.dumps(host))))
    report = estimate(plan.settings)
    table = report.table()
    assert re.search(r"gpu-l40sx1-48gb .*UNVERIFIED", table)
    assert any("region nyc2" in u and "tor1" in u for u in report.unverified)
    assert "unverified provider facts" in format_plan(plan)
    cpu = estimate(plan_for("cpu").settings)
    assert any(not i.verified for i in cpu.items) and cpu.to_dict()["unverified"]


def test_prices_table_marks_what_facts_do_not_confirm():
    assert prices.DROPLET_SIZES["gpu-h100x1-80gb"].verified and prices.DROPLET_SIZES["gpu-h100x8-640gb"].verified
    assert not any(
        p.verified for s, p in prices.DROPLET_SIZES.items() if s not in ("gpu-h100x1-80gb", "gpu-h100x8-640gb")
    )
    assert not any(p.verified for p in prices.HCLOUD_SERVER_TYPES.values())  # cx23's type is known, not its price
    assert prices.DO_GPU_REGIONS_CONFIRMED == ("tor1",)
