import pytest
import yaml  # PyYAML on purpose: cloud-init reads user data with it

from components.catalogue import DATA_LABEL, DATA_MOUNT
from components.cloud_init import render_user_data


def render(**kw):
    args = dict(admin_user="llmadmin", ssh_public_keys=["ssh-ed25519 AAAAC3Nza k"], data_device="/dev/vdb")
    args.update(kw)
    text = render_user_data(**args)
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_admin_user_keys_only():
    doc = render()
    user = doc["users"][0]
    assert user["name"] == "llmadmin" and user["lock_passwd"] is True
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3Nza k"]
    assert doc["ssh_pwauth"] is False and doc["disable_root"] is True


def test_volume_formatted_only_when_blank_and_mounted_by_label():
    doc = render(data_device="/dev/disk/by-id/scsi-0DO_Volume_x")
    fs = doc["fs_setup"][0]
    assert fs == {
        "label": DATA_LABEL,
        "filesystem": "ext4",
        "device": "/dev/disk/by-id/scsi-0DO_Volume_x",
        "overwrite": False,
    }
    mount = doc["mounts"][0]
    assert mount[0] == f"LABEL={DATA_LABEL}" and mount[1] == DATA_MOUNT and "nofail" in mount[3]


def test_requires_a_key():
    with pytest.raises(ValueError):
        render(ssh_public_keys=[])


def test_host_key_installed_as_the_only_host_key():
    """cloud-init 22.4.2 cc_ssh: ssh_deletekeys removes the image's keys, ssh_keys writes ours, and
    with ssh_keys present nothing is generated (ssh_genkeytypes [] says so where ssh_keys is dropped)."""
    from components import hostkeys

    key = hostkeys.from_seed(b"test")
    doc = render(host_key=key.strip())  # as `pulumi config get` hands it back: no trailing newline
    assert doc["ssh_deletekeys"] is True and doc["ssh_genkeytypes"] == []
    assert doc["ssh_keys"] == {"ed25519_private": key, "ed25519_public": hostkeys.public_of(key) + "\n"}
    assert set(doc["ssh_keys"]) <= {
        f"{t}_{k}" for t in ("rsa", "dsa", "ecdsa", "ed25519") for k in ("private", "public", "certificate")
    }  # cc_ssh's CONFIG_KEY_TO_FILE


def test_no_host_key_no_key_settings():
    doc = render()
    assert not {"ssh_keys", "ssh_deletekeys", "ssh_genkeytypes"} & set(doc)


def test_the_rendered_bytes_stay_the_same(monkeypatch):
    """The text is each server's user data: DigitalOcean and Hetzner replace a server whose user data
    changes, so a new YAML emitter (ruamel.yaml folds long strings elsewhere) or a reordered key must
    not slip in. Change this digest only together with a decision to rebuild every host. (A fixed
    host key of the real shape: an OpenSSH private key's serialization carries a random check word.)"""
    import hashlib

    from components import hostkeys

    body = "".join(f"{chr(65 + i) * 70}\n" for i in range(5))
    private = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}-----END OPENSSH PRIVATE KEY-----\n"
    monkeypatch.setattr(hostkeys, "normalize", lambda key: private)
    monkeypatch.setattr(hostkeys, "public_of", lambda key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + "B" * 43)
    rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + "C" * 340 + " alice@laptop"
    ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5vdC1hLXJlYWwta2V5LWp1c3QtYnl0ZXMtMDEyMzQ1 ops@example.com"
    text = render_user_data(
        admin_user="llmadmin",
        ssh_public_keys=[ed, rsa],
        hostname="llm-prod",
        data_device="/dev/disk/by-id/scsi-0DO_Volume_llm-prod-data",
        host_key="fixed",
    )
    assert (
        hashlib.sha256(text.encode()).hexdigest() == "502650829a834e0645965bef606ff912a4deeaaa9ee7d45a62fcb6b69ea3ade6"
    ), text
