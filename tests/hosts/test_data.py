from components.catalogue import DATA_DIRS, DATA_LABEL


def test_data_volume_mounted_by_label(root):
    assert root.mount_point("/data").exists
    assert root.check_output("findmnt -n -o LABEL /data") == DATA_LABEL
    entries = [line.split() for line in root.file("/etc/fstab").content_string.splitlines()
               if line.split()[:2] == [f"LABEL={DATA_LABEL}", "/data"]]
    assert len(entries) == 1, f"expected one fstab entry for /data by label, found {len(entries)}"
    assert "nofail" in entries[0][3]


def test_data_directories(root):
    for path in DATA_DIRS.values():
        assert root.file(path).is_directory, path
