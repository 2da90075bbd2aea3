"""The local Debian 12 test host (qemu) as a Python API; ``scripts/local-host`` is its CLI.

Every function takes an optional ``TestHostConfig`` (``config()`` reads the ``LLM_LOCAL_*`` env vars);
omit it for the checkout's default host in ``.state/local-host/``.

    s = config()
    img = ensure_image(s)                 # cached base image (built under a lock if missing)
    start_services(s)                     # apt-cacher-ng, pebble, mirror on 127.0.0.1
    boot(s, image=img, fresh=True)        # new overlay, same data disk; no-op if running
    wait_for_ssh(s, timeout=900)          # + cloud-init done
    ssh_run("findmnt /data", s)           # as root via the admin user + sudo
    scan("1-65535", s)                    # open TCP ports of the guest from the namespace
    recreate(s)                           # new VM from the base image, SAME data disk
    converge(json=True, s=s)              # -> (changed_count, changed_operation_names)
    verify(s)                             # testinfra exit code
    down(s, purge=False)
"""

from .access import (
    api_key_file,
    control_path,
    host_data,
    render_inventory,
    render_ssh_config,
    secrets_file,
    testinfra_args,
    testinfra_host_spec,
)
from .config import TestHostConfig, config
from .image import Image, ensure_image, image_for, recipe, recipe_hash
from .lifecycle import down, ensure_running, print_endpoint, status, up
from .netns import attach_tap, ensure_netns, prepare_tap, scan
from .netns import teardown as teardown_netns
from .runner import converge, parse_pyinfra_json, verify
from .services import acme_ca_bundle_src, services_status, start_services, stop_services
from .util import LocalHostError, ensure_host_packages
from .vm import (
    boot,
    boot_id,
    close_ssh_master,
    detect_accel,
    is_running,
    qemu_pid,
    reboot,
    recreate,
    refresh_access_files,
    ssh_args,
    ssh_run,
    stop,
    wait_for_ssh,
)

__all__ = [
    "Image",
    "LocalHostError",
    "TestHostConfig",
    "acme_ca_bundle_src",
    "api_key_file",
    "attach_tap",
    "boot",
    "boot_id",
    "close_ssh_master",
    "config",
    "control_path",
    "converge",
    "detect_accel",
    "down",
    "ensure_host_packages",
    "ensure_image",
    "ensure_netns",
    "ensure_running",
    "host_data",
    "image_for",
    "is_running",
    "parse_pyinfra_json",
    "prepare_tap",
    "print_endpoint",
    "qemu_pid",
    "reboot",
    "recipe",
    "recipe_hash",
    "recreate",
    "refresh_access_files",
    "render_inventory",
    "render_ssh_config",
    "scan",
    "secrets_file",
    "services_status",
    "ssh_args",
    "ssh_run",
    "start_services",
    "status",
    "stop",
    "stop_services",
    "teardown_netns",
    "testinfra_args",
    "testinfra_host_spec",
    "up",
    "verify",
    "wait_for_ssh",
]
