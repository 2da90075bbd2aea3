"""data: the data volume mounted at /data by label (cloud-init put it in fstab and formatted it only
if blank), and the directories for models, datasets and fine-tuning output."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from components.catalogue import DATA_DIRS, DATA_LABEL, DATA_MOUNT
from hosts.hostdata import HostData

FSTAB_LINE = f"LABEL={DATA_LABEL} {DATA_MOUNT} ext4 defaults,nofail,x-systemd.device-timeout=30s 0 2"


@deploy("data")
def apply(data: HostData) -> None:
    device = host.get_fact(Command, command=f"blkid -L {DATA_LABEL} || true")
    if not device:
        raise RuntimeError(
            f"no block device labelled {DATA_LABEL!r}: is the data volume attached? "
            "(cloud-init labels a blank volume on first boot; see components/cloud_init.py)"
        )
    files.directory(name="mount point", path=DATA_MOUNT, mode="755")
    files.line(
        name="fstab: data volume by label",
        path="/etc/fstab",
        line=rf"^\S+\s+{DATA_MOUNT}\s+.*$",
        replace=FSTAB_LINE,
    )
    mounted = host.get_fact(Command, command=f"findmnt -n -o SOURCE {DATA_MOUNT} || true")
    if not mounted:
        server.shell(name="mount the data volume", commands=[f"mount {DATA_MOUNT}"])
    for key, path in DATA_DIRS.items():
        if key == "ollama":
            continue  # owned by the ollama service user, created by the ollama role
        files.directory(name=f"{DATA_MOUNT} directory: {key}", path=path, mode="755")
