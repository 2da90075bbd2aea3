"""Issue 21 §3 on the local test host: the data volume arrives blank after first boot (as a Hetzner
VolumeAttachment made after the server does; cloud-init 22.4.2's cc_disk_setup does not wait for it),
and the first converge formats and mounts it; a device with data is never touched.

Host B's first converge is that scenario (``converged_b`` in tests/integration/conftest.py: the
boot-time volume's label moved aside, a blank disk hot-plugged through QMP and named as the host
data's ``data_device``); these tests check what it left.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import ASIDE

pytestmark = pytest.mark.vm


def test_blank_volume_attached_after_boot_is_formatted_and_mounted(converged_b):
    _, seen = converged_b
    assert seen["blank_before"], "the hot-plugged disk was not blank before the converge"
    assert seen["changed"] > 0
    assert seen["labelled"] == seen["late"], seen  # formatted, label llm-data
    assert seen["mounted"] == seen["late"], seen  # mounted at /data


def test_device_with_data_is_never_touched(converged_b):
    _, seen = converged_b
    assert seen["old_label"] == ASIDE, seen  # the volume with a filesystem kept its (moved) label
