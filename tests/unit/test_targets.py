"""One way to reach a host (operate/targets.py): ``resolve`` gives typed host data, addresses, pinned
keys and secrets in memory; files only when a subprocess needs them; the local test host's secrets
read as the deploy reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.hostdata import HostData
from operate import targets
from operate.automation import Unavailable
from tests.unit.conftest import automation_config, plan_for

PUB = plan_for("prod").outputs["inventory"]["hosts"][0]["host_key"]


def fake_stack(overrides: dict | None = None, inventory: dict | None = None):
    """The Automation API's view of the ready prod stack (outputs and config)."""
    inv = plan_for("prod").outputs["inventory"] if inventory is None else inventory
    config = automation_config("prod", overrides)
    return SimpleNamespace(
        name="prod", outputs=lambda: {"inventory": SimpleNamespace(value=inv)}, get_all_config=lambda: config
    )


def stack_target() -> targets.Target:
    return targets.from_stack(fake_stack())


def local_state(tmp_path: Path, mode: int = 0o600):
    """A local test host's state dir as `scripts/local-host up` leaves it (host.json, secrets.json)."""
    from components import hostkeys
    from testhost import access
    from testhost.config import config as local_host_config

    s = local_host_config(state_dir=tmp_path / "state")
    s.state_dir.mkdir(parents=True)
    pub = hostkeys.public_of(hostkeys.from_seed(b"admin"))
    s.host_json.write_text(access.host_data(s, pub, tmp_path / "ca.pem").model_dump_json())
    access.ensure_secrets(s)
    access.secrets_file(s).chmod(mode)
    access.ensure_host_key(s)
    return s


def test_a_stack_resolves_to_typed_host_data_in_memory_and_writes_nothing(monkeypatch):
    written = []
    monkeypatch.setattr(targets, "_private_dir", lambda: written.append(1) or pytest.fail("nothing written yet"))
    t = stack_target()
    [h] = t.hosts
    assert isinstance(h.data, HostData) and h.data.proxy_backend == "vllm"
    assert (h.name, h.ssh_user, h.address, h.host_key) == ("llm-prod", "llmadmin", "203.0.113.209:22", PUB)
    assert t.secrets["vllmApiKey"] and "openaiApiKey" not in t.secrets  # only what the hosts' roles read
    assert not t.is_local and t.host() is h and t.host("llm-prod") is h
    assert t.secrets["vllmApiKey"] not in repr(t)
    with pytest.raises(LookupError, match=r"no host 'x' \(hosts: llm-prod\)"):
        t.host("x")
    assert written == []


def test_files_are_written_once_private_and_read_back_as_the_deploy_reads_them():
    from hosts.inventory import hosts_from_output
    from hosts.secret_values import read_file

    t = stack_target()
    files = t.files()
    assert t.files() is files
    inv, sec = Path(files.env["LLM_PLATFORM_INVENTORY"]), Path(files.env["LLM_PLATFORM_SECRETS_FILE"])
    assert oct(sec.parent.stat().st_mode & 0o777) == "0o700"
    for p in (inv, sec, Path(files.env["LLM_PLATFORM_KNOWN_HOSTS"])):
        assert oct(p.stat().st_mode & 0o777) == "0o600", p
    assert read_file(sec) == t.secrets
    [(name, data)] = hosts_from_output(json.loads(inv.read_text()), files.env["LLM_PLATFORM_KNOWN_HOSTS"])
    assert (
        name == "llm-prod" and HostData.model_validate({k: data[k] for k in HostData.model_fields}) == t.hosts[0].data
    )
    [hf] = files.hosts
    assert json.loads(hf.host_data_file.read_text())["data"] == t.hosts[0].data.model_dump(mode="json")
    assert hf.testinfra_args[0] == "--hosts=ssh://llmadmin@203.0.113.209?sudo=true"


def test_the_unapplied_stack_file_refusal_is_kept_and_smoke_may_read_what_is_deployed():
    host = json.loads(automation_config("prod")["llm-platform:host"].value)
    host["vllm"]["servedModelName"] = "renamed"
    stack = fake_stack({"host": json.dumps(host)})
    with pytest.raises(Unavailable, match=r"differs from the last pulumi up in host\.vllm\.servedModelName:"):
        targets.from_stack(stack)
    assert targets.from_stack(stack, refuse_unapplied=False).hosts[0].data.vllm.served_model_name != "renamed"


def test_host_data_the_deploy_would_refuse_is_one_line():
    inv = plan_for("prod").outputs["inventory"]
    bad = {"hosts": [{**inv["hosts"][0], "data": {**inv["hosts"][0]["data"], "domain": "not a domain"}}]}
    with pytest.raises(Unavailable, match=r"^stack prod's inventory output has host data .*\(domain: .*run pulumi up"):
        targets.from_stack_outputs("prod", bad, {})


def test_a_rebuild_pins_the_stacks_host_key():
    from components import hostkeys

    other = hostkeys.public_of(hostkeys.from_seed(b"rebuilt"))
    t = targets.from_stack(fake_stack(), host_key=other)
    assert t.hosts[0].host_key == other
    assert Path(t.files().env["LLM_PLATFORM_KNOWN_HOSTS"]).read_text() == f"203.0.113.209 {other}\n"


def test_local_resolves_from_its_own_state_files(tmp_path):
    s = local_state(tmp_path)
    t = targets.resolve("local", local_settings=s)
    assert t.is_local and t.name == "local" and t.local is s
    [h] = t.hosts
    assert h.name == "llm-local" and h.address == f"127.0.0.1:{s.ssh_port}" and h.data.provider == "local"
    assert t.secrets["vllmApiKey"] == (s.state_dir / "api-key").read_text().strip()
    files = t.files()  # its own generated files, nothing temporary
    assert files.inventory == s.inventory and files.env["LLM_PLATFORM_SECRETS_FILE"] == str(
        s.state_dir / "secrets.json"
    )
    assert files.hosts[0].host_data_file == s.host_json


def test_local_secrets_readable_by_others_are_refused(tmp_path):
    s = local_state(tmp_path, mode=0o644)
    with pytest.raises(Unavailable, match="readable by group/others .*chmod 600"):
        targets.resolve("local", local_settings=s)


def test_rotate_key_refuses_local_secrets_readable_by_others(tmp_path):
    """The key rotation read the local host's secrets without the deploy's 0600 check (fails on the old code)."""
    from operate import rotate_key

    s = local_state(tmp_path, mode=0o644)
    with pytest.raises(rotate_key.CannotStart, match="readable by group/others"):
        rotate_key.LocalPlatform(s).get("vllmApiKey")


def test_local_without_its_state_says_what_to_run(tmp_path):
    from testhost.config import config as local_host_config

    s = local_host_config(state_dir=tmp_path / "none")
    with pytest.raises(Unavailable, match="run scripts/local-host up first"):
        targets.resolve("local", local_settings=s)


def test_smoke_derives_one_endpoint_from_the_resolved_target(tmp_path):
    from operate import smoke
    from testhost.config import DOMAIN

    s = local_state(tmp_path)
    t = targets.local(s)
    ep = smoke.endpoint(t)
    assert (ep.base_url, ep.model, ep.connect_port) == (
        f"https://{DOMAIN}/v1",
        t.hosts[0].data.vllm.served_model_name,
        s.https_port,
    )
    assert ep.api_key == t.secrets["vllmApiKey"]
    cloud = stack_target()
    cloud.stack = SimpleNamespace(
        outputs=lambda: {"host_base_url": SimpleNamespace(value="https://llm.example.com/v1")}
    )
    ep = smoke.endpoint(cloud)
    assert (ep.base_url, ep.api_key, ep.ca_file) == ("https://llm.example.com/v1", cloud.secrets["vllmApiKey"], None)


def test_no_string_compares_with_local_outside_the_resolver_and_the_cli():
    root = Path(__file__).resolve().parents[2]
    allowed = {root / "operate" / "targets.py", root / "operate" / "cli.py"}
    for path in (root / "operate").rglob("*.py"):
        if path in allowed:
            continue
        text = path.read_text()
        for bad in ('== "local"', '!= "local"', "== cli.LOCAL", "!= cli.LOCAL"):
            assert bad not in text, (path, bad)


def test_the_private_dir_is_0700():
    d = targets._private_dir()
    assert oct(os.stat(d).st_mode & 0o777) == "0o700"


def test_drift_of_a_local_host_without_its_state_is_not_checked_and_asks_no_cloud(tmp_path, monkeypatch):
    from operate.drift import cli as drift_cli
    from operate.drift import cloud
    from testhost.config import config as local_host_config

    monkeypatch.setattr(cloud, "check_cloud", lambda stack: pytest.fail("the local test host has no cloud layer"))
    report = drift_cli.run_drift("local", local_settings=local_host_config(state_dir=tmp_path / "none"))
    assert [(layer.layer, layer.status) for layer in report.layers] == [("cloud", "skipped"), ("hosts", "not_checked")]
    assert "run scripts/local-host up first" in report.layers[1].reason and report.exit_code == 2


def test_rotate_key_resolves_the_local_host_like_the_other_commands(tmp_path):
    from operate import rotate_key
    from testhost.config import DOMAIN

    s = local_state(tmp_path)
    platform, hosts = rotate_key._endpoints("local", local_settings=s)
    assert isinstance(platform, rotate_key.LocalPlatform) and platform.s is s
    ep = hosts.endpoint("k" * 32)
    assert ep.base_url == f"https://{DOMAIN}/v1" and ep.api_key == "k" * 32 and ep.connect_port == s.https_port
