"""volume: the data volume mounted at /data by label (cloud-init put it in fstab and formatted it only
if blank), and the directories for models, datasets and fine-tuning output.

cloud-init formats it only if it is attached at first boot (22.4.2's cc_disk_setup logs a missing
device once and never retries; Hetzner's VolumeAttachment comes after the server). So when no device
carries the label, the role formats the provider's device (host data ``data_device``) itself, and
only when it is provably blank (hosts.ops.format_blank_volume)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import files, server

from components.catalogue import DATA_DIRS, DATA_FS, DATA_LABEL, DATA_MOUNT, DATA_MOUNT_OPTIONS
from components.hostdata import HostData
from hosts.ops import format_blank_volume

FSTAB_LINE = f"LABEL={DATA_LABEL} {DATA_MOUNT} {DATA_FS} {DATA_MOUNT_OPTIONS} 0 2"


@deploy("volume")
def apply(data: HostData) -> None:
    device = host.get_fact(Command, command=f"blkid -L {DATA_LABEL} || true")
    if not device and data.data_device:
        format_blank_volume(
            name=f"data volume {data.data_device}: format if blank",
            device=data.data_device,
            label=DATA_LABEL,
            filesystem=DATA_FS,
        )
    elif not device:
        raise RuntimeError(
            f"no block device labelled {DATA_LABEL!r}: is the data volume attached? "
            "(cloud-init labels a blank volume on first boot; see components/cloud_init.py)"
        )
    files.directory(name="mount point", path=DATA_MOUNT, mode="755")
    # One fstab entry for /data, by label. cloud-init writes one (with comment=cloudconfig) on first
    # boot; keep it, add ours only if there is none, and drop duplicates (systemd warns about them).
    entries = host.get_fact(Command, command=f"grep -c '^LABEL={DATA_LABEL}[[:space:]]' /etc/fstab || true")
    if entries == "0":
        server.shell(name="fstab: data volume by label", commands=[f"echo '{FSTAB_LINE}' >> /etc/fstab"])
    elif entries not in ("0", "1"):
        server.shell(
            name="fstab: one entry for the data volume",
            commands=[
                f"awk '!(/^LABEL={DATA_LABEL}[[:space:]]/ && seen++)' /etc/fstab > /etc/fstab.new "
                "&& cat /etc/fstab.new > /etc/fstab && rm /etc/fstab.new"
            ],
        )
    server.mount(name="mount the data volume", path=DATA_MOUNT)  # as fstab says
    for key, path in DATA_DIRS.items():
        if key == "ollama":
            continue  # owned by the ollama service user, created by the ollama role
        # 0750: datasets and fine-tuning output may hold chat history; no other account reads them
        files.directory(name=f"{DATA_MOUNT} directory: {key}", path=path, mode="750")
