"""ModelHost over every stack that creates one, under Pulumi's mock engine."""

from __future__ import annotations

import yaml  # PyYAML on purpose: cloud-init reads user data with it

from components import catalogue


def firewall(plan):
    fws = [r for r in plan.resources if r.type.endswith("/firewall:Firewall")]
    assert len(fws) == 1
    return fws[0].plain_inputs


def inbound(plan) -> dict[int, list[str]]:
    fw = firewall(plan)
    rules = fw.get("inboundRules") or [r for r in fw.get("rules", []) if r["direction"] == "in"]
    out: dict[int, list[str]] = {}
    for r in rules:
        assert r["protocol"] == "tcp"
        port = r.get("portRange") or r.get("port")
        out[int(port)] = sorted(r.get("sourceAddresses") or r.get("sourceIps"))
    return out


def test_firewall_is_exactly_ssh_from_admins_and_web_from_anywhere(host_plan):
    admin = sorted(host_plan.settings.host.admin_cidrs)
    assert inbound(host_plan) == {22: admin, 80: ["0.0.0.0/0", "::/0"], 443: ["0.0.0.0/0", "::/0"]}


def test_firewall_is_attached_to_the_server(host_plan):
    fw = firewall(host_plan)
    server = next(r for r in host_plan.resources if r.name.endswith("-server"))
    if host_plan.settings.host.provider == "digitalocean":
        assert [int(x) for x in fw["dropletIds"]] == [int(server.id)]
    else:
        fw_res = next(r for r in host_plan.resources if r.type.endswith("/firewall:Firewall"))
        assert [int(x) for x in server.plain_inputs["firewallIds"]] == [int(fw_res.id)]


def test_data_volume_and_ip_survive_a_server_replacement(host_plan):
    volume = next(r for r in host_plan.resources if r.type.endswith("/volume:Volume"))
    ip = next(r for r in host_plan.resources if r.type.endswith(("/reservedIp:ReservedIp", "/primaryIp:PrimaryIp")))
    for r in (volume, ip):
        assert r.protect and r.retain_on_delete, r.name
    assert volume.plain_inputs["size"] == host_plan.settings.host.volume_size_gb
    # Attached by separate resources, so replacing the server never replaces them.
    types = {r.type.rsplit(":", 1)[-1] for r in host_plan.resources}
    assert "VolumeAttachment" in types
    server = next(r for r in host_plan.resources if r.name.endswith("-server"))
    assert not server.protect
    assert "volumeIds" not in server.plain_inputs
    if ip.type.startswith("hcloud"):
        assert ip.plain_inputs["autoDelete"] is False


def test_cloud_init_creates_admin_and_mounts_the_volume_by_label(host_plan):
    server = next(r for r in host_plan.resources if r.name.endswith("-server"))
    ud = server.plain_inputs["userData"]
    doc = yaml.safe_load(ud)
    host = host_plan.settings.host
    assert doc["users"][0]["name"] == host.admin_user
    assert doc["users"][0]["ssh_authorized_keys"] == host.ssh_public_keys
    assert doc["ssh_pwauth"] is False
    assert doc["mounts"][0][:2] == [f"LABEL={catalogue.DATA_LABEL}", "/data"]
    device = doc["fs_setup"][0]["device"]
    volume = next(r for r in host_plan.resources if r.type.endswith("/volume:Volume"))
    if host.provider == "digitalocean":
        assert device == f"/dev/disk/by-id/scsi-0DO_Volume_{volume.plain_inputs['name']}"
        assert volume.plain_inputs["initialFilesystemLabel"] == catalogue.DATA_LABEL
    else:
        assert device.startswith("/dev/disk/by-id/scsi-0HC_Volume_")


def test_children_are_parented_and_named_from_the_component(host_plan):
    host = next(r for r in host_plan.resources if r.type == "llm-platform:host:ModelHost")
    children = [r for r in host_plan.resources if r.parent == host.name]
    assert len(children) >= 6
    for r in children:
        assert r.name.startswith(host.name + "-"), r.name


def test_server_size_image_and_region_come_from_settings(host_plan):
    host = host_plan.settings.host
    server = next(r for r in host_plan.resources if r.name.endswith("-server")).plain_inputs
    if host.provider == "digitalocean":
        assert (server["size"], server["region"], server["image"]) == (host.size, host.region, host.resolved_image)
        if host.gpu:
            assert server["image"].startswith("gpu-")
    else:
        assert (server["serverType"], server["location"], server["image"]) == (host.size, host.region, "debian-12")


def test_inventory_output_has_roles_and_no_secrets(host_plan):
    inv = host_plan.outputs["inventory"]
    [h] = inv["hosts"]
    assert h["ssh_hostname"] == host_plan.outputs["host_ip"]
    assert h["ssh_user"] == host_plan.settings.host.admin_user
    data = h["data"]
    assert data["roles"][:4] == ["base", "firewall", "volume", "docker"] and data["roles"][-1] == "proxy"
    assert ("nvidia" in data["roles"]) == host_plan.settings.host.gpu
    assert data["vllm"]["device"] == ("cuda" if host_plan.settings.host.gpu else "cpu")
    # the deploy and the checks read this output back into the same model, unchanged
    from components.hostdata import HostData

    back = HostData.model_validate(data)
    assert back.model_dump(mode="json") == data
    assert back.ollama.sha256 == host_plan.settings.host.ollama.sha256
    assert set(back.secrets) == {"huggingfaceApiKey", "vllmApiKey", "vllmApiKeyPrevious", "vllmLocalKey"} | (
        {"llamafactoryApiKey", "llamafactoryUiPassword"} if "llamafactory" in data["roles"] else set()
    )
    assert "offline-placeholder" not in str(inv)


def test_phase_one_creates_no_host():
    from tests.unit.conftest import plan_for

    plan = plan_for("dev", (("phase", 1),))  # a fixture: dev's committed phase may be 2
    assert plan.settings.phase == 1
    assert not [r for r in plan.resources if r.type.startswith("hcloud") or r.type.endswith("Droplet")]
    assert plan.outputs["inventory"] == {"hosts": []} and plan.outputs["host_ip"] is None


def test_dns_record_points_at_the_fixed_ip():
    from tests.unit.conftest import one, plan_for

    plan = plan_for("prod")
    rec = one(plan, "digitalocean:index/dnsRecord:DnsRecord").plain_inputs
    assert rec["type"] == "A" and rec["domain"] == "intelia.example" and rec["name"] == "llm"
    assert rec["value"] == plan.outputs["host_ip"]


def test_server_gets_the_stack_host_key_and_only_its_public_half_is_an_output(host_plan):
    """A rebuilt server answers with the same host key: the stack's hostSshKey secret is in the
    user-data (cloud-init ssh_keys), the user-data is a Pulumi secret, and only the public half
    reaches the outputs (known_hosts line, inventory)."""
    import json

    from components import hostkeys, offline, stackfile

    private = stackfile.placeholder("hostSshKey")
    public = hostkeys.public_of(private)
    server = next(r for r in host_plan.resources if r.name.endswith("-server"))
    assert "userData" in offline.secret_paths(server.inputs)
    doc = yaml.safe_load(server.plain_inputs["userData"])
    assert doc["ssh_keys"]["ed25519_private"] == private and doc["ssh_deletekeys"] is True
    assert host_plan.outputs["host_known_hosts"] == f"{host_plan.outputs['host_ip']} {public}\n"
    assert host_plan.outputs["inventory"]["hosts"][0]["host_key"] == public
    assert "host_known_hosts" not in host_plan.secret_outputs and "inventory" not in host_plan.secret_outputs
    text = json.dumps(host_plan.outputs)
    assert "PRIVATE KEY" not in text and private.splitlines()[1] not in text


def test_a_host_stack_without_host_key_names_the_command():
    import pytest

    from components import offline
    from components.config import SettingsError
    from tests.unit.conftest import pin_overrides

    with pytest.raises(
        SettingsError,
        match=r"llm-platform:hostSshKey: required secret is missing .*"
        r"set it with: scripts/host-keys prod$",
    ):
        offline.run("prod", {**pin_overrides("prod"), "hostSshKey": None})
    with pytest.raises(
        SettingsError,
        match=r"hostSshKey: the secret is not an OpenSSH private key .*; make one "
        r"with: scripts/host-keys prod --rotate",
    ):
        offline.run("prod", {**pin_overrides("prod"), "hostSshKey": "not-a-key-0123456789"})
