"""Issue 21 §3 on the local test host: the data volume arrives blank after first boot (as a Hetzner
VolumeAttachment made after the server does; cloud-init 22.4.2's cc_disk_setup does not wait for it),
and a converge formats and mounts it.

On the shared converged host: the services using /data are stopped, /data unmounted and its volume's
label moved aside (so no device carries ``llm-data``, as on a host whose volume came late); a new blank
disk is hot-plugged through QEMU's QMP (blockdev-add + device_add virtio-blk-pci with a serial: the
guest names it /dev/disk/by-id/virtio-<serial>, as a provider names its volume) and named as the
host data's ``data_device``. A converge must format it (label llm-data) and mount it at /data; a
device with data (the old volume, relabelled) is never touched. Afterwards the old volume gets its
label back and the host data is restored (the session's last test: the VM is purged after it).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from components.catalogue import DATA_LABEL, DATA_MOUNT
from testhost import access, runner
from tests.integration.conftest import sh

pytestmark = pytest.mark.vm

SERIAL = "late-volume"
LATE = f"/dev/disk/by-id/virtio-{SERIAL}"
ASIDE = "llm-data-old"
SERVICES = "llm-vllm llm-llamafactory ollama"


def qmp(s, command: str, **args) -> dict:
    q = QEMUMonitorProtocol(str(s.qmp_socket))
    try:
        q.connect()
        q.settimeout(30)
        return q.cmd(command, **args)
    finally:
        q.close()


def set_data_device(s, device: str | None) -> None:
    """Name the volume in the host's data (host.json and the inventory the deploy reads)."""
    data = json.loads(s.host_json.read_text())
    if device is None:
        data.pop("data_device", None)
    else:
        data["data_device"] = device
    s.host_json.write_text(json.dumps(data, indent=2) + "\n")
    s.inventory.write_text(access.render_inventory(s, data))


def test_blank_volume_attached_after_boot_is_formatted_and_mounted(converged, timed, tmp_path):
    s = converged[0]
    old = sh(s, f"blkid -L {DATA_LABEL}")
    image = tmp_path / "late.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "2G"], check=True)
    sh(s, f"systemctl stop {SERVICES}; umount {DATA_MOUNT}; e2label {old} {ASIDE}")
    try:
        qmp(s, "blockdev-add", driver="qcow2", **{"node-name": "late0"}, file={"driver": "file", "filename": str(image)})
        qmp(s, "device_add", driver="virtio-blk-pci", drive="late0", id="late0", serial=SERIAL)
        sh(s, f"udevadm settle; test -b {LATE}")
        assert sh(s, f"blkid -p {LATE} || true") == ""  # blank
        set_data_device(s, LATE)
        with timed("converge (the late blank volume)"):
            runner.converge(json=True, s=s)  # raises when the deploy fails
        assert sh(s, f"readlink -f {LATE}") == sh(s, f"blkid -L {DATA_LABEL}")
        assert sh(s, f"findmnt -no SOURCE {DATA_MOUNT}") == sh(s, f"readlink -f {LATE}")
        assert sh(s, f"blkid -o value -s LABEL {old}") == ASIDE  # the volume with data untouched
    finally:  # the session's last test: put the labels and the host data back, no converge
        set_data_device(s, None)
        sh(s, f"e2label {LATE} late || true; e2label {old} {DATA_LABEL}")
