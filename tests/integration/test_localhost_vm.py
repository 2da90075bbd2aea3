"""The local Debian 12 test host itself, booted but not yet converged (the session's shared VM,
tests/integration/conftest.py): cached base image → boot → SSH → cloud-init made the admin user
and mounted the blank second disk at /data (label llm-data).

These run before anything converges the shared host. That data on /data survives re-creating the
VM from the base image is proven by the rebuild test (tests/integration/test_host_layer.py), and
the namespace scan (which must be able to fail) by the scan tests there.
"""

from __future__ import annotations

import pytest

from testhost import vm
from tests.integration.conftest import sh

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def guest(local_host):
    return local_host


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
