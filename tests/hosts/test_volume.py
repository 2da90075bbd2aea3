from components.catalogue import DATA_DIRS, DATA_LABEL, DATA_MOUNT_OPTIONS
from tests.hosts.helpers import stats


def test_data_volume_mounted_by_label(root):
    assert root.mount_point("/data").exists
    assert root.check_output("findmnt -n -o LABEL /data") == DATA_LABEL
    entries = [
        line.split()
        for line in root.file("/etc/fstab").content_string.splitlines()
        if line.split()[:2] == [f"LABEL={DATA_LABEL}", "/data"]
    ]
    assert len(entries) == 1, f"expected one fstab entry for /data by label, found {len(entries)}"
    assert entries[0][3].startswith(DATA_MOUNT_OPTIONS), entries[0]  # cloud-init adds comment=cloudconfig


def test_data_directories(root):
    have = stats(root, *DATA_DIRS.values())
    for key, path in DATA_DIRS.items():
        d = have[path]
        assert d and d["type"] == "directory", path
        if key != "ollama":  # the ollama service user's own directory (see the ollama role)
            # datasets and fine-tuning output may hold chat history: no access for other accounts
            assert d["mode"] & 0o007 == 0, f"{path} is {oct(d['mode'])}"
