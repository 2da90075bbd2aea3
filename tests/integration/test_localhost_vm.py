"""The local Debian 12 test host itself, end to end under qemu (slow: minutes under TCG).

Cached base image → boot → SSH → cloud-init made the admin user and mounted the blank second disk
at /data (label llm-data) → a file written to /data survives re-creating the VM from the base image
with the same data disk → a TCP scan from the namespace sees exactly sshd, and sees a listener we
start (so the scan can fail) → down.

Runs in its own state dir, namespace, tap and free loopback ports, so it does not disturb a
``scripts/local-host up`` of the same checkout. Needs root (qemu/tap/netns/debootstrap).
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

pytestmark = pytest.mark.vm

from hosts.localhost import image, netns, vm  # noqa: E402
from tests.integration.conftest import free_port  # noqa: E402
from hosts.localhost.config import settings  # noqa: E402
from hosts.localhost.util import ensure_host_packages  # noqa: E402

@pytest.fixture(scope="module")
def s(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the VM test needs root (qemu with a tap device, network namespaces, debootstrap)")
    repo = settings().repo_root
    st = settings(
        state_dir=repo / ".state" / "local-host-vmtest",
        ssh_port=free_port(),
        http_port=free_port(),
        https_port=free_port(),
        netns="llmtest-vmtest",
        tap="llmtapvmtest",
    )
    return st


@pytest.fixture(scope="module")
def guest(s, timed, say):
    ensure_host_packages()
    with timed("base image (build or reuse)"):
        img = image.ensure_image(s)
    # a clean slate: blank data disk, fresh overlay
    vm.stop(s)
    netns.teardown(s)
    shutil.rmtree(s.state_dir, ignore_errors=True)
    with timed("boot to SSH + cloud-init"):
        vm.boot(s, image=img, fresh=True)
        vm.wait_for_ssh(s, timeout=900)
    yield s
    with timed("down"):
        vm.stop(s)
        netns.teardown(s)
    shutil.rmtree(s.state_dir, ignore_errors=True)


def sh(s, cmd: str) -> str:
    return vm.ssh_run(cmd, s).stdout.strip()


def test_cloud_init_created_admin_user(guest, timed):
    with timed("check admin user"):
        assert sh(guest, "id -un llmadmin") == "llmadmin"
        assert "sudo" in sh(guest, "id -nG llmadmin").split()
        # we are llmadmin over SSH, root through passwordless sudo
        assert vm.ssh_run("id -un", guest, sudo=False).stdout.strip() == "llmadmin"
        assert sh(guest, "id -u") == "0"
        assert "status: done" in sh(guest, "cloud-init status")
        sshd = sh(guest, "sshd -T").splitlines()
        assert "passwordauthentication no" in sshd
        # root: password locked, no usable key (cloud-init's disable_root), keys-only sshd default
        assert sh(guest, "passwd -S root").split()[1] == "L"
        assert any(ln in sshd for ln in ("permitrootlogin no", "permitrootlogin without-password"))


def test_data_volume_mounted_from_second_disk(guest, timed):
    with timed("check /data"):
        source, fstype, label = sh(guest, "findmnt -n -o SOURCE,FSTYPE,LABEL /data").split()
        assert source == "/dev/vdb"
        assert fstype == "ext4"
        assert label == "llm-data"
        assert sh(guest, "findmnt -n -o SOURCE /") != "/dev/vdb"


def test_data_survives_recreate_from_base_image(guest, timed):
    s = guest
    with timed("write file to /data"):
        sh(s, "head -c 8M /dev/urandom > /data/persist.bin && sync")
        before = sh(s, "sha256sum /data/persist.bin").split()[0]
        sh(s, "touch /root/only-on-the-old-root")
        old_instance = sh(s, "cat /var/lib/cloud/data/instance-id")
    with timed("re-create VM from base image with the same data disk"):
        vm.recreate(s, timeout=900)
    with timed("check file after re-create"):
        assert sh(s, "cat /var/lib/cloud/data/instance-id") != old_instance  # really a new host
        assert sh(s, "test -e /root/only-on-the-old-root && echo yes || echo no") == "no"
        assert sh(s, "findmnt -n -o SOURCE,LABEL /data").split() == ["/dev/vdb", "llm-data"]
        assert sh(s, "sha256sum /data/persist.bin").split()[0] == before


def test_scan_from_namespace_sees_exactly_sshd(guest, timed):
    with timed("scan all TCP ports (sshd only)"):
        assert netns.scan("1-65535", guest) == [22]


def test_scan_sees_a_new_listener(guest, timed):
    s = guest
    # a transient unit: stopped by name afterwards, never by a pkill pattern
    sh(s, "systemd-run --unit=llm-scan-probe --property=WorkingDirectory=/tmp python3 -m http.server 9999")
    try:
        deadline = time.monotonic() + 60
        while "9999" not in sh(s, "ss -Hltn 'sport = :9999'"):
            assert time.monotonic() < deadline, "the probe listener did not start"
            time.sleep(1)
        with timed("scan with an extra listener"):
            assert netns.scan("1-65535", s) == [22, 9999]
    finally:
        vm.ssh_run("systemctl stop llm-scan-probe", s, check=False)
    with timed("scan after stopping it"):
        assert netns.scan("22,9999", s) == [22]
