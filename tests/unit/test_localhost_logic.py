"""Pure logic of the local test host tooling (no VM, no root): recipe hash, mirror discovery,
rendered ssh_config / inventory / host.json / seed files, nmap and pyinfra output parsing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml  # PyYAML on purpose: cloud-init reads these seed files (cloud.cfg, user-data, network-config) with it

from testhost import access, image, netns, runner, services, vm
from testhost.config import TestHostConfig, discover_mirrors, host_apt_entries

# a well-formed (all-zero) ed25519 public key: host data refuses anything else
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA test"


@pytest.fixture
def s(tmp_path: Path) -> TestHostConfig:
    return TestHostConfig(
        repo_root=tmp_path / "repo",
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        mirror="http://deb.debian.org/debian",
        security_mirror="http://deb.debian.org/debian-security",
    )


# --- recipe --------------------------------------------------------------------------------------


def test_recipe_hash_is_stable_and_hex(s):
    h1 = image.recipe_hash(image.recipe(s))
    h2 = image.recipe_hash(image.recipe(s))
    assert h1 == h2 and len(h1) == 64 and int(h1, 16) >= 0


def test_recipe_hash_changes_with_content(s, monkeypatch):
    base = image.recipe_hash(image.recipe(s))
    other_mirror = TestHostConfig(**{**s.__dict__, "mirror": "http://mirror.example/debian"})
    assert image.recipe_hash(image.recipe(other_mirror)) != base
    monkeypatch.setattr(image, "PACKAGES", [*image.PACKAGES, "htop"])
    assert image.recipe_hash(image.recipe(s)) != base
    monkeypatch.undo()
    monkeypatch.setattr(image, "BUILD_VERSION", image.BUILD_VERSION + 1)
    assert image.recipe_hash(image.recipe(s)) != base


def test_recipe_independent_of_state_and_ports(s):
    moved = TestHostConfig(**{**s.__dict__, "state_dir": Path("/elsewhere"), "ssh_port": 2299})
    assert image.recipe_hash(image.recipe(moved)) == image.recipe_hash(image.recipe(s))


def test_image_preinstalls_exactly_the_local_roles_packages(s, monkeypatch):
    from hosts import packages
    from testhost.config import ROLES

    wanted = packages.for_roles(ROLES)
    assert image.recipe(s)["preinstalled"] == wanted
    assert {"docker.io", "nginx", "certbot", "ufw", "unattended-upgrades"} <= set(wanted)
    # a package added to a role rebuilds the image; opting out gives another image too
    base = image.recipe_hash(image.recipe(s))
    monkeypatch.setitem(packages.ROLE_PACKAGES, "proxy", (*packages.ROLE_PACKAGES["proxy"], "htop"))
    assert "htop" in image.recipe(s)["preinstalled"]
    assert image.recipe_hash(image.recipe(s)) != base
    monkeypatch.undo()
    bare = TestHostConfig(**{**s.__dict__, "preinstall": False})
    assert image.recipe(bare)["preinstalled"] == []
    assert image.recipe_hash(image.recipe(bare)) != base


def test_roles_take_their_packages_from_the_one_list():
    """Every Debian package a (non-GPU) role installs comes from hosts/packages.py, so the image's
    preinstalled set cannot miss one."""
    import re

    roles_dir = Path(__file__).resolve().parents[2] / "hosts" / "roles"
    for path in roles_dir.glob("*.py"):
        if path.name in ("__init__.py", "nvidia.py"):  # GPU packages depend on the distribution
            continue
        text = path.read_text()
        assert "apt.packages(" not in text, f"{path.name}: install through hosts.ops.apt_install"
        for call in re.findall(r"apt_install\((.*?)\)\n", text, flags=re.S):
            assert re.search(r", packages\(\"\w+\"\)$", call), f"{path.name}: {call}"


def test_image_lives_in_cache_named_by_hash(s):
    img = image.image_for(s)
    assert img.dir.parent == s.cache_dir / "images"
    assert img.dir.name == image.recipe_hash(image.recipe(s))


def test_recipe_has_required_packages_and_no_initramfs_updates():
    for pkg in ("linux-image-amd64", "systemd-sysv", "openssh-server", "sudo", "python3", "iproute2",
                "cloud-init", "ca-certificates", "curl", "gnupg", "ifupdown", "isc-dhcp-client"):  # fmt: skip
        assert pkg in image.PACKAGES
    assert "update_initramfs=no" in image.ROOTFS_FILES["etc/initramfs-tools/update-initramfs.conf"]
    cfg = yaml.safe_load(image.ROOTFS_FILES["etc/cloud/cloud.cfg.d/90-llm-local.cfg"])
    # a new VM gets fresh host keys unless its user-data brings some, as a new cloud server does
    assert cfg.get("ssh_deletekeys", True) is True and cfg["ssh_genkeytypes"] == ["ed25519"]
    assert cfg["datasource_list"][0] == "NoCloud"


def test_image_carries_no_host_keys(tmp_path):
    """openssh-server's postinst makes host keys at build time; every VM of the image would share
    them (and a rebuilt VM would keep them where a new cloud server would not)."""
    ssh = tmp_path / "etc/ssh"
    ssh.mkdir(parents=True)
    for name in (
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
        "ssh_host_rsa_key",
        "ssh_host_rsa_key.pub",
        "ssh_host_ecdsa_key",
        "ssh_host_ecdsa_key.pub",
        "sshd_config",
    ):
        (ssh / name).write_text("x")
    assert len(image.drop_host_keys(tmp_path)) == 6
    assert [p.name for p in ssh.iterdir()] == ["sshd_config"]


def test_host_key_made_once_per_state_dir_and_pinned(s):
    from components import hostkeys

    key = access.ensure_host_key(s)
    assert access.ensure_host_key(s) == key  # kept: a new VM of this host gets the same key
    assert access.host_key_file(s).stat().st_mode & 0o777 == 0o600
    assert access.render_known_hosts(s, key) == f"[127.0.0.1]:2222,198.18.0.2 {hostkeys.public_of(key)}\n"


# --- mirror discovery ----------------------------------------------------------------------------

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


def _apt_entries(tmp_path, name: str, text: str) -> list:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / name).write_text(text)
    return host_apt_entries("Dir::Etc::SourceList=/dev/null", f"Dir::Etc::SourceParts={parts}")


needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="reads sources through apt-get")


@needs_apt
def test_deb822_sources_through_apt(tmp_path):
    entries = _apt_entries(tmp_path, "debian.sources", DEB822)
    assert sorted(entries) == [
        ("http://deb.debian.org/debian/", ["bookworm"]),
        ("http://deb.debian.org/debian/", ["bookworm-updates"]),
        ("http://security.example/debian-security/", ["bookworm-security"]),
    ]
    assert discover_mirrors(entries) == ("http://deb.debian.org/debian", "http://security.example/debian-security")


@needs_apt
def test_one_line_sources_with_options_through_apt(tmp_path):
    text = (
        "# comment\n"
        "deb [arch=amd64 signed-by=/x.gpg] http://mirror.example/debian/ bookworm main\n"
        "deb-src http://x/ bookworm main\n"
    )
    entries = _apt_entries(tmp_path, "m.list", text)
    assert entries == [("http://mirror.example/debian/", ["bookworm"])]
    assert discover_mirrors(entries) == ("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_discover_defaults_without_sources():
    assert discover_mirrors([]) == ("http://deb.debian.org/debian", "http://deb.debian.org/debian-security")


def test_mirror_env_override(monkeypatch):
    from testhost.config import config as local_host_config

    monkeypatch.setenv("LLM_LOCAL_DEBIAN_MIRROR", "http://m.example/debian/")
    monkeypatch.delenv("LLM_LOCAL_DEBIAN_SECURITY_MIRROR", raising=False)
    got = local_host_config()
    assert got.mirror == "http://m.example/debian"
    assert got.security_mirror == "http://m.example/debian-security"


# --- access files --------------------------------------------------------------------------------


def test_ssh_config(s):
    cfg = access.render_ssh_config(s)
    assert "Host llm-local\n" in cfg
    for line in (
        "HostName 127.0.0.1",
        "Port 2222",
        "User llmadmin",
        f"IdentityFile {s.ssh_key}",
        f"UserKnownHostsFile {s.known_hosts}",
        "StrictHostKeyChecking yes",
        "ControlMaster auto",
        f"ControlPath {access.control_path(s)}",  # the state dir, or /tmp when its path is too long
        "ControlPersist",
    ):
        assert f"  {line}" in cfg
    assert "StrictHostKeyChecking no" not in cfg


def test_control_path_falls_back_for_long_state_dirs(s):
    long = TestHostConfig(**{**s.__dict__, "state_dir": Path("/x" * 60)})
    cp = access.control_path(long)
    assert cp.startswith("/tmp/llm-local-") and cp.endswith("-%C")
    assert len(cp.replace("%C", "x" * 40)) <= 100


def test_host_data_is_the_production_model_on_a_cpu_host(s):
    from components import roles
    from components.host_settings import OllamaSettings, VllmSettings

    data = access.host_data(s, KEY, "/cache/pebble-tls/ca.pem")
    assert data.roles == roles.select(gpu=False, llamafactory=True)
    assert "volume" in data.roles and "nvidia" not in data.roles
    assert "10.0.2.0/24" in data.admin_cidrs and "198.18.0.0/24" in data.admin_cidrs
    assert (data.domain, data.acme_email) == ("llm.local.test", "ops@llm.local.test")
    assert data.acme_directory == "https://10.0.2.2:14000/dir"
    assert data.acme_ca_cert_src == "/cache/pebble-tls/ca.pem"
    assert data.apt_proxy == "http://10.0.2.2:3142"
    assert (data.gpu, data.vllm.device) == ("none", "cpu")
    assert data.ssh_public_keys == [KEY]
    # the settings models' defaults, not a copy of them
    assert data.vllm.model == VllmSettings().model and data.ollama.models == OllamaSettings().models
    assert data.secrets == [
        "huggingfaceApiKey",
        "vllmApiKey",
        "vllmApiKeyPrevious",
        "vllmLocalKey",
        "llamafactoryApiKey",
        "llamafactoryUiPassword",
    ]


def test_inventory_is_valid_pyinfra_inventory(s):
    data = access.host_data(s, KEY, "/ca.pem").model_dump(mode="json")
    text = access.render_inventory(s, data)
    ns: dict = {}
    exec(compile(text, "inventory.py", "exec"), ns)
    ((name, hd),) = ns["local_host"]
    assert name == "llm-local"
    assert hd["ssh_hostname"] == "127.0.0.1" and hd["ssh_port"] == 2222 and hd["ssh_user"] == "llmadmin"
    assert hd["ssh_key"] == str(s.ssh_key) and hd["ssh_known_hosts_file"] == str(s.known_hosts)
    assert hd["ssh_strict_host_key_checking"] == "yes" and hd["_sudo"] is True
    for k, v in data.items():
        assert hd[k] == v


def test_inventory_loads_in_pyinfra(s, tmp_path):
    # In a subprocess: importing pyinfra_cli monkey-patches the process with gevent, which would
    # deadlock the Pulumi mock engine used by other unit tests in this process.
    import subprocess
    import sys

    data = access.host_data(s, KEY, "/ca.pem").model_dump(mode="json")
    path = tmp_path / "inventory.py"
    path.write_text(access.render_inventory(s, data))
    code = (
        "import sys\n"
        "from pyinfra.api import State\n"
        "from pyinfra.context import ctx_state\n"
        "from pyinfra_cli.inventory import make_inventory\n"
        "with ctx_state.use(State()):\n"
        "    inv = make_inventory(sys.argv[1])\n"
        "h = inv.get_host('llm-local')\n"
        "print(h.data.ssh_port, h.data.admin_user, h.data._sudo)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2222", "llmadmin", "True"]


def test_testinfra_spec(s):
    assert access.testinfra_host_spec() == "ssh://llm-local?sudo=true"
    assert access.testinfra_args(s) == ["--hosts=ssh://llm-local?sudo=true", f"--ssh-config={s.ssh_config}"]


def test_seed_documents(s, monkeypatch):
    meta = yaml.safe_load(vm.render_meta_data("llm-local-abc"))
    assert meta == {"instance-id": "llm-local-abc", "local-hostname": "llm-local"}
    net = yaml.safe_load(vm.render_network_config(s))
    assert net["ethernets"]["eth0"] == {"dhcp4": True}
    assert net["ethernets"]["eth1"] == {"addresses": ["198.18.0.2/24"]}
    host_key = access.ensure_host_key(s)
    ud = vm.render_seed_user_data(KEY, host_key)
    assert ud.startswith("#cloud-config\n")
    doc = yaml.safe_load(ud)
    assert doc["users"][0]["name"] == "llmadmin"
    assert doc["fs_setup"][0]["device"] == "/dev/vdb"
    # the host's own key, as a stack's server gets the stack's (components.cloud_init)
    assert doc["ssh_keys"]["ed25519_private"] == host_key and doc["ssh_deletekeys"] is True


def test_qemu_argv(s, tmp_path):
    img = image.Image(tmp_path / "img")
    argv = vm.qemu_argv(s, img, "tcg")
    joined = " ".join(argv)
    assert "tcg,thread=multi,tb-size=512" in joined and "-cpu max" in joined
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in joined
    assert "hostfwd=tcp:127.0.0.1:8080-:80" in joined
    assert "hostfwd=tcp:127.0.0.1:8443-:443" in joined
    assert "hostfwd=tcp::" not in joined and "0.0.0.0" not in joined  # loopback only
    assert f"ifname={s.tap}" in joined and "-daemonize" in argv
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives[0].startswith(f"file={s.overlay},") and drives[1].startswith(f"file={s.data_disk},")
    assert "-accel kvm -cpu host" in " ".join(vm.qemu_argv(s, img, "kvm"))


def test_accel_forced(s):
    forced = TestHostConfig(**{**s.__dict__, "accel": "tcg"})
    assert vm.detect_accel(forced)[0] == "tcg"


# --- services ------------------------------------------------------------------------------------


def test_acng_conf_has_remaps_and_binds_loopback(s):
    conf = services.render_acng_conf(s)
    assert "BindAddress: 127.0.0.1" in conf and "Port: 3142" in conf
    deb = next(ln for ln in conf.splitlines() if ln.startswith("Remap-debrep:"))
    assert "deb.debian.org/debian" in deb and deb.endswith("; http://deb.debian.org/debian/")
    sec = next(ln for ln in conf.splitlines() if ln.startswith("Remap-secdeb:"))
    assert "security.debian.org" in sec and sec.endswith("; http://deb.debian.org/debian-security/")
    assert f"CacheDir: {s.cache_dir}/apt-cacher-ng" in conf


def test_pebble_config(s, tmp_path):
    cfg = json.loads(services.render_pebble_config(s, tmp_path))["pebble"]
    assert cfg["listenAddress"] == "127.0.0.1:14000"
    assert cfg["managementListenAddress"] == "127.0.0.1:15000"
    assert cfg["certificate"] == str(tmp_path / "cert.pem")
    assert services.PEBBLE_ENV["PEBBLE_VA_ALWAYS_VALID"] == "1" and services.PEBBLE_ENV["PEBBLE_VA_NOSLEEP"] == "1"


# --- parsing -------------------------------------------------------------------------------------

NMAP_XML = """<?xml version="1.0"?>
<nmaprun><host><status state="up"/><address addr="198.18.0.2" addrtype="ipv4"/>
<address addr="52:54:00:4C:4C:02" addrtype="mac"/>
<ports><extraports state="closed" count="65533"/>
<port protocol="tcp" portid="22"><state state="open"/></port>
<port protocol="tcp" portid="9999"><state state="open"/></port>
<port protocol="tcp" portid="80"><state state="filtered"/></port>
</ports></host></nmaprun>"""


def test_parse_nmap_xml():
    assert netns.parse_nmap_xml(NMAP_XML, "198.18.0.2") == [22, 9999]
    assert netns.parse_nmap_xml(NMAP_XML, "198.18.0.3") == []


def test_scan_refuses_other_targets(s):
    with pytest.raises(Exception, match="refusing to scan"):
        netns.scan("22", s, target="192.0.2.1")


PYINFRA_JSON = json.dumps(
    {
        "plan": [],
        "results": {
            "operations": [
                {
                    "name": "Install nginx",
                    "names": ["Install nginx"],
                    "success": ["llm-local"],
                    "error": [],
                    "no_change": [],
                },
                {
                    "name": "Write config",
                    "names": ["Write config"],
                    "success": [],
                    "error": [],
                    "no_change": ["llm-local"],
                },
            ],
            "totals": {"hosts": 2, "success": 1, "error": 0, "no_change": 1},
        },
    }
)


def test_parse_pyinfra_json_with_noise():
    out = "--> Loading config...\n" + PYINFRA_JSON + "\n"
    assert runner.parse_pyinfra_json(out) == (1, ["Install nginx"], 0)


def test_parse_pyinfra_json_no_change():
    payload = json.loads(PYINFRA_JSON)
    payload["results"]["operations"][0]["success"] = []
    payload["results"]["totals"]["success"] = 0
    assert runner.parse_pyinfra_json(json.dumps(payload)) == (0, [], 0)


def test_converge_without_deploy_says_so(s):
    s.repo_root.mkdir(parents=True)
    with pytest.raises(Exception, match="hosts/deploy.py does not exist"):
        runner.converge(json=True, s=s)


def test_verify_without_tests_says_so(s):
    s.repo_root.mkdir(parents=True)
    with pytest.raises(Exception, match="tests/hosts/ does not exist"):
        runner.verify(s)


def test_acme_ca_bundle_has_listen_ca_and_issuing_root(s):
    s.pebble_tls_dir.mkdir(parents=True)
    s.state_dir.mkdir(parents=True)
    (s.pebble_tls_dir / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nLISTEN\n-----END CERTIFICATE-----\n")
    s.acme_root_ca.write_text("-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----")
    bundle = services.write_acme_ca_bundle(s)
    assert bundle == services.acme_ca_bundle_src(s)
    text = bundle.read_text()
    assert text.count("BEGIN CERTIFICATE") == 2 and "LISTEN" in text and "ROOT" in text
    assert text.endswith("\n")


def test_service_port_taken_by_a_stranger_is_reported(s):
    import socket as _socket

    with _socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        taken = TestHostConfig(**{**s.__dict__, "apt_proxy_port": port})
        with pytest.raises(Exception, match=f"port {port} on 127.0.0.1 \\(for apt-cacher-ng\\) is already in use"):
            services.start_services(taken)


def test_host_data_from_mirror_manifest(s):
    manifest = {
        "ollama": {
            "version": "0.13.5",
            "sha256": "a" * 64,
            "path": "ollama/v0.13.5/ollama-linux-amd64.tgz",
            "archive": "ollama-linux-amd64.tgz",
            "checksums": "ollama/v0.13.5/sha256sum.txt",
        },
        "images": {
            "vllm": {"ref": "vllm/vllm-openai:v0.11.0", "path": "images/vllm-openai-v0.11.0.tar", "sha256": "b" * 64},
            "llamafactory": {
                "ref": "hiyouga/llamafactory:0.9.4",
                "path": "images/llamafactory-0.9.4.tar",
                "sha256": "c" * 64,
            },
        },
    }
    d = access.host_data(s, KEY, "/bundle.pem", manifest)
    assert d.acme_ca_cert_src == "/bundle.pem"
    assert (d.ollama.version, d.ollama.sha256) == ("0.13.5", "a" * 64)  # the one archive the mirror serves
    assert (d.vllm.image, d.vllm.tag, d.vllm.device) == ("vllm/vllm-openai", "v0.11.0", "cpu")
    assert (d.llamafactory.image, d.llamafactory.tag) == ("hiyouga/llamafactory", "0.9.4")
    assert d.artifacts.ollama_base_url == "http://10.0.2.2:8099/ollama"
    assert d.artifacts.images["vllm/vllm-openai:v0.11.0"].model_dump() == {
        "url": "http://10.0.2.2:8099/images/vllm-openai-v0.11.0.tar",
        "sha256": "b" * 64,
    }
    # what the inventory carries validates back into the same model (the deploy's side)
    from components.hostdata import HostData

    assert HostData.model_validate(d.model_dump(mode="json")) == d


def test_secrets_generated_once_mode_0600(s):
    path = access.ensure_secrets(s)
    first = path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(access.api_key_file(s).stat().st_mode & 0o777) == "0o600"
    assert access.ensure_secrets(s).read_text() == first
    assert set(json.loads(first)) == {"vllmApiKey", "vllmLocalKey", "llamafactoryApiKey", "llamafactoryUiPassword"}


def test_account_fact_parses_one_account_or_none():
    from hosts.facts import Account

    fact = Account()
    assert fact.process([]) is None
    entry = fact.process(["ollama:x:998:998::/usr/share/ollama:/bin/false", "ollama"])
    assert entry == {"uid": 998, "gid": 998, "home": "/usr/share/ollama", "shell": "/bin/false", "groups": ["ollama"]}
    admin = fact.process(["llmadmin:x:1000:1000:,,,:/home/llmadmin:/bin/bash", "llmadmin sudo users"])
    assert admin["groups"] == ["llmadmin", "sudo", "users"] and admin["home"] == "/home/llmadmin"
    assert "getent passwd llmadmin" in fact.command("llmadmin")


LYNIS_REPORT = """\
# Lynis Report
report_version_major=1
hardening_index=86
warning[]=PKGS-7392|Found one or more vulnerable packages.|-|-|
suggestion[]=SSH-7408|Consider hardening SSH configuration|MaxSessions (4 --> 2)|-|
suggestion[]=XYZ-0001|Something new|-|-|
"""


def test_lynis_report_parsed_and_judged():
    from testhost import audit

    a = audit.parse_report(LYNIS_REPORT)
    assert a.index == 86
    assert a.warnings == [("PKGS-7392", "Found one or more vulnerable packages.")]
    assert a.suggestions[0] == ("SSH-7408", "Consider hardening SSH configuration", "MaxSessions (4 --> 2)")
    assert not a.ok  # a warning fails the audit whatever the index
    out = audit.render(a)
    assert "not taken: SSH port 22" in out and "no reason recorded" in out
    clean = audit.parse_report(LYNIS_REPORT.replace("warning[]", "#"))
    assert clean.ok
    assert not audit.parse_report(f"hardening_index={audit.TARGET - 1}\n").ok
    assert audit.parse_report("").index is None


LYNIS_LOG = """\
2026-12-05 12:00:00 Performing test ID AUTH-9262 (Checking presence password strength testing tools (PAM))
2026-12-05 12:00:01 Hardening: assigned maximum number of hardening points for this item (3). Currently having 100 points (out of 120)
2026-12-05 12:00:02 Performing test ID SSH-7408 (Check SSH specific defined options)
2026-12-05 12:00:03 Hardening: assigned partial number of hardening points (1 of 3). Currently having 101 points (out of 123)
2026-12-05 12:00:04 Hardening: assigned partial number of hardening points (0 of 3). Currently having 101 points (out of 126)
2026-12-05 12:00:05 Performing test ID KRNL-6000 (Check sysctl key pairs in scan profile)
2026-12-05 12:00:06 Hardening: assigned partial number of hardening points (0 of 1). Currently having 101 points (out of 127)
"""  # noqa: E501 (Lynis' log lines as it writes them)


def test_lynis_log_gives_points_and_what_each_test_lost():
    from testhost import audit

    points, lost = audit.parse_log(LYNIS_LOG)
    assert points == (101, 127)
    assert lost == {"SSH-7408": 5, "KRNL-6000": 1}
    a = audit.parse_report("hardening_index=79\n")
    a.points, a.lost, a.profile, a.seconds = points, lost, "stock", 3900
    out = audit.render(a)
    assert (
        out.splitlines()[0]
        == f"Lynis hardening index: 79 (target {audit.TARGET}), 101 of 127 points, profile stock, 65 min"
    )
    assert "points not scored: KRNL-6000 -1, SSH-7408 -5" in out
    assert audit.parse_log("") == (None, {})


def test_ollama_version_of_the_test_host(monkeypatch, s):
    """The version-bump rehearsal's knob: the mirror builds, and the host data pins, the release
    LLM_LOCAL_OLLAMA_VERSION names (default: the upstream pin); anything else is refused."""
    from components.upstream import OLLAMA_VERSION
    from testhost import services
    from testhost.config import config as local_host_config

    monkeypatch.delenv("LLM_LOCAL_OLLAMA_VERSION", raising=False)
    assert local_host_config().ollama_version == OLLAMA_VERSION == s.ollama_version
    monkeypatch.setenv("LLM_LOCAL_OLLAMA_VERSION", "v0.14.0")
    got = local_host_config()
    assert got.ollama_version == "0.14.0"
    assert services.mirror_versions(got) == ["--ollama-version", "0.14.0"]
    monkeypatch.setenv("LLM_LOCAL_OLLAMA_VERSION", "0.14.0; rm -rf /")
    with pytest.raises(ValueError, match="LLM_LOCAL_OLLAMA_VERSION"):
        local_host_config()
