def test_gpu_stack_matches_the_hardware(root, data):
    gpus = root.run("lspci -d 10de:").stdout.strip() if data.gpu == "auto" else ""
    daemon = root.file("/etc/docker/daemon.json")
    if gpus:
        assert root.run("nvidia-smi -L").rc == 0
        assert daemon.exists and "nvidia" in daemon.content_string
    else:
        assert not (daemon.exists and "nvidia" in daemon.content_string), "nvidia runtime configured without a GPU"
