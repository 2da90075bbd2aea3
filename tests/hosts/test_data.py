from components.catalogue import DATA_DIRS, DATA_LABEL


def test_data_volume_mounted_by_label(root):
    assert root.mount_point("/data").exists
    assert root.check_output("findmnt -n -o LABEL /data") == DATA_LABEL
    assert f"LABEL={DATA_LABEL} /data " in root.file("/etc/fstab").content_string


def test_data_directories(root):
    for path in DATA_DIRS.values():
        assert root.file(path).is_directory, path
