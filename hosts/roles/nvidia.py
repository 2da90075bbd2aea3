"""nvidia: only where ``lspci -d 10de:`` finds a GPU. Driver (Ubuntu: ubuntu-drivers; Debian 12:
non-free nvidia-driver), nvidia-container-toolkit, ``nvidia-ctk runtime configure``; a reboot only
when the driver changed, done explicitly and waited for."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command, LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from components.hostdata import HostData
from hosts.facts import GpuDevices

TOOLKIT_KEY = "https://nvidia.github.io/libnvidia-container/gpgkey"
TOOLKIT_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
TOOLKIT_LIST = "https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list"


@deploy("nvidia")
def apply(data: HostData) -> None:
    gpus = host.get_fact(GpuDevices) if data.gpu == "auto" else []
    if not gpus:
        host.noop("nvidia: no NVIDIA GPU found (lspci -d 10de:), driver and container toolkit skipped")
        return
    distro = host.get_fact(LinuxDistribution)
    has_driver = bool(host.get_fact(Command, command="command -v nvidia-smi || true"))
    driver = None
    if not has_driver:
        if distro["name"] == "Ubuntu":
            apt.packages(name="ubuntu-drivers-common", packages=["ubuntu-drivers-common"], update=True)
            driver = server.shell(
                name="NVIDIA driver (ubuntu-drivers --gpgpu)", commands=["ubuntu-drivers install --gpgpu"]
            )
        else:
            files.replace(
                name="apt: enable contrib non-free non-free-firmware",
                path="/etc/apt/sources.list.d/debian.sources",
                text=r"^Components: main$",
                replace="Components: main contrib non-free non-free-firmware",
            )
            driver = apt.packages(
                name="NVIDIA driver (Debian non-free)",
                packages=["linux-headers-amd64", "nvidia-driver", "firmware-misc-nonfree", "nvidia-smi"],
                update=True,
            )

    keyring = host.get_fact(Command, command=f"test -s {TOOLKIT_KEYRING} && echo yes || true")
    if not keyring:
        server.shell(
            name="nvidia-container-toolkit: apt key and list",
            commands=[
                f"curl -fsSL {TOOLKIT_KEY} | gpg --dearmor --yes -o {TOOLKIT_KEYRING}",
                f"curl -fsSL {TOOLKIT_LIST} | sed 's#deb https://#deb [signed-by={TOOLKIT_KEYRING}] https://#g' "
                "> /etc/apt/sources.list.d/nvidia-container-toolkit.list",
            ],
        )
    apt.packages(name="nvidia-container-toolkit", packages=["nvidia-container-toolkit"], update=True)
    configured = host.get_fact(Command, command="grep -qs nvidia /etc/docker/daemon.json && echo yes || true")
    if not configured:
        server.shell(name="docker: nvidia runtime", commands=["nvidia-ctk runtime configure --runtime=docker"])
        systemd.service(name="docker: restart for the nvidia runtime", service="docker", restarted=True)
    if driver is not None:
        server.reboot(name="reboot to load the new NVIDIA driver", delay=10, reboot_timeout=900, _if=driver.did_change)
