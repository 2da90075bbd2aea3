"""Cloud-init user-data for a model host.

Rendered by ``ModelHost`` for DigitalOcean and Hetzner servers, and by ``scripts/local-host`` as the
NoCloud seed of the local test host, so the same first boot runs everywhere. Plain Python (no Pulumi
import): the component calls it inside an ``Output.apply``.

What the first boot does:
- creates the admin user (sudo without password, SSH keys only, password locked);
- turns SSH password login off and root login off;
- formats the data volume **only if it carries no filesystem yet** (``overwrite: false``), labelling
  it ``llm-data``; an existing volume (a rebuilt server re-attached to its old volume) is never
  touched;
- mounts it at ``/data`` by label through fstab (``nofail`` so a missing volume cannot brick boot);
- with ``host_key`` (the host's own ed25519 key, ``components.hostkeys``): installs it as the SSH host
  key (cloud-init's ``ssh_keys``), after deleting whatever keys the image carries
  (``ssh_deletekeys``) and generating none (``ssh_genkeytypes: []``), so every server built for
  this host answers with the same, and only this, host key. Semantics as cloud-init 22.4.2's
  ``cc_ssh`` (Debian 12): with ``ssh_keys`` present it writes them and generates nothing; the
  public half is given too, so no ``ssh-keygen -y`` runs. The rendered document then holds a
  private key: the caller keeps it secret (a Pulumi secret; a 0600 seed on the local host).
"""

from __future__ import annotations

# PyYAML, not the project's ruamel.yaml (components/yamlio.py): the rendered text is the servers'
# user data, and a changed byte replaces every server on the next `pulumi up` (DigitalOcean's and
# Hetzner's user_data force a new server). ruamel's emitter folds long strings differently (an SSH
# key after its type, the host key as one double-quoted string), so it would change every document;
# tests/unit/test_cloud_init.py pins the bytes. cloud-init reads the document with PyYAML itself.
import yaml

from components import hostkeys
from components.catalogue import DATA_FS, DATA_LABEL, DATA_MOUNT, DATA_MOUNT_OPTIONS

# Prepended to the YAML document: cloud-init only reads user-data that starts with this line.
HEADER = "#cloud-config\n"


def render_user_data(
    *,
    admin_user: str,
    ssh_public_keys: list[str],
    data_device: str,
    hostname: str | None = None,
    filesystem: str = DATA_FS,
    host_key: str | None = None,
) -> str:
    """Return the ``#cloud-config`` document for a model host.

    ``data_device`` is the block device of the data volume as the server sees it, e.g.
    ``/dev/disk/by-id/scsi-0DO_Volume_<name>`` (DigitalOcean), ``/dev/disk/by-id/scsi-0HC_Volume_<id>``
    (Hetzner) or ``/dev/vdb`` (local test host).
    """
    if not ssh_public_keys:
        raise ValueError("render_user_data: at least one SSH public key is required")
    doc: dict = {
        "users": [
            {
                "name": admin_user,
                "groups": ["sudo"],
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": list(ssh_public_keys),
            }
        ],
        "disable_root": True,
        "ssh_pwauth": False,
        "fs_setup": [
            {
                "label": DATA_LABEL,
                "filesystem": filesystem,
                "device": data_device,
                "overwrite": False,
            }
        ],
        "mounts": [
            [
                f"LABEL={DATA_LABEL}",
                DATA_MOUNT,
                filesystem,
                DATA_MOUNT_OPTIONS,
                "0",
                "2",
            ]
        ],
        "package_update": False,
    }
    if host_key is not None:
        doc["ssh_deletekeys"] = True
        doc["ssh_genkeytypes"] = []
        doc["ssh_keys"] = {
            "ed25519_private": hostkeys.normalize(host_key),
            "ed25519_public": hostkeys.public_of(host_key) + "\n",
        }
    if hostname:
        doc["hostname"] = hostname
        doc["preserve_hostname"] = False
    return HEADER + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
