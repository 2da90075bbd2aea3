"""A container as a systemd service: image present (pulled, or loaded from a checksummed archive),
secrets in an env file of mode 0600, no new privileges and no capabilities, ports published on
127.0.0.1 only, restarted only when its unit or its env file changed."""

from __future__ import annotations

from pathlib import Path

from pyinfra.operations import files

from components import roles
from components.catalogue import LOOPBACK, SECRETS_DIR
from components.hostdata import HostData
from hosts.file_ops import secret_file, template_file
from hosts.ops import Restart, docker_image, service_running

TEMPLATE = Path(__file__).resolve().parent / "templates" / "container.service.j2"


HARDENING = ["--security-opt", "no-new-privileges", "--cap-drop", "ALL"]
"""Every container: no privilege gain through setuid binaries, no Linux capabilities (the services
bind ports above 1024 and write only to volumes their root user owns)."""


def publish(host_port: int, container_port: int) -> str:
    return f"{LOOPBACK}:{host_port}:{container_port}"


def container_service(
    data: HostData,
    name: str,
    ref: str,
    *,
    publish_ports: list[str],
    volumes: list[str],
    env: dict[str, str],
    args: list[str],
    gpu: bool,
    mounts: list[str],
    docker_args: list[str] | None = None,
) -> None:
    for p in publish_ports:
        if not p.startswith(LOOPBACK + ":"):
            raise ValueError(f"{name}: {p} would publish past ufw; publish on {LOOPBACK} only")
    archive = data.artifacts.images.get(ref)
    docker_image(
        name=f"{name}: image {ref}",
        ref=ref,
        archive_url=archive.url if archive else None,
        sha256=archive.sha256 if archive else None,
    )
    files.directory(name="secrets directory", path=SECRETS_DIR, mode="700")
    env_file = f"{SECRETS_DIR}/{name}.env"
    env_op = secret_file(
        name=f"{name}: env file (0600)",
        uploader=data.admin_user,
        dest=env_file,
        value="".join(f"{k}={v}\n" for k, v in sorted(env.items())),
    )
    container = f"llm-{name}"
    restart = Restart(container, daemon_reload=True, name=f"{name}: restart on change")
    restart.watch(env_op)
    restart.watch(
        template_file(
            name=f"{name}: systemd unit",
            src=str(TEMPLATE),
            dest=f"/etc/systemd/system/{container}.service",
            svc=name,
            ref=ref,
            container=container,
            publish=publish_ports,
            volumes=volumes,
            env_file=env_file,
            docker_args=HARDENING + (["--gpus", "all", "--ipc=host"] if gpu else []) + list(docker_args or []),
            args=args,
            mounts=mounts,
        )
    )
    restart.apply()
    service_running(name=f"{name}: running and enabled", unit=container, units=roles.units(data.roles))
