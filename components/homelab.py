"""``Homelab``: the containers of ``docker/homelab/compose.yml`` on a Docker host, with pulumi-docker.

The compose file is the one description of the homelab (images, ports, environment, volumes); this
component reads it, so ``docker compose up`` and ``pulumi up -s homelab`` run the same thing. On top
it pulls the stack's models through Ollama (one short-lived client container per model, run to
completion) and can give Ollama the GPUs.

Compose features used by the file and mapped here: ``image``, ``ports`` (``ip:host:container``),
``environment`` (mapping), named ``volumes``, a read-only bind mount of a directory (its files are
uploaded into the container, so a remote ``ssh://`` Docker host works too), ``restart``,
``depends_on``, ``healthcheck``. Anything else in a service is refused with a clear error rather than
silently dropped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker

from components import NAMESPACE, ROOT, yamlio
from components.catalogue import service
from components.config import SettingsError
from components.files import Unreadable, read_bounded
from components.settings import HomelabStackSettings

SUPPORTED = {"image", "ports", "environment", "volumes", "restart", "depends_on", "healthcheck", "deploy"}
GPU_SERVICES = ("ollama",)


KEY = f"{NAMESPACE}:homelab.composeFile"
MAX_COMPOSE_BYTES = 256 << 10


class ComposeError(SettingsError):
    """The compose file cannot be used: one line naming the key (a SettingsError, so scripts/plan
    prints it as it prints a bad setting)."""

    def __init__(self, message: str):
        super().__init__([f"{KEY}: {message}"])


def load_compose(path: Path) -> dict[str, Any]:
    """The compose file, read with a bound. No error quotes its content: YAML's own errors show the
    offending line, and the path may name a file that is not a compose file at all."""
    try:
        doc = yamlio.load(read_bounded(path, MAX_COMPOSE_BYTES).decode("utf-8"))
    except Unreadable as exc:
        raise ComposeError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise ComposeError(f"{path}: not UTF-8 text") from None
    except yamlio.YAMLError as exc:  # a key given twice too (docker compose refuses it as well)
        mark = getattr(exc, "problem_mark", None)
        raise ComposeError(f"{path}: not valid YAML" + (f" (line {mark.line + 1})" if mark else "")) from None
    except RecursionError:
        raise ComposeError(f"{path}: nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise ComposeError(f"{path}: not a compose file (a mapping with services:)")
    for name, svc in doc["services"].items():
        if not isinstance(svc, dict):
            raise ComposeError(f"{path.name}: service {name!r} is not a mapping")
        unknown = sorted(set(svc) - SUPPORTED)
        if unknown:
            raise ComposeError(
                f"{path.name}: service {name}: {', '.join(unknown)} not supported by components/homelab.py"
            )
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                raise ComposeError(f"{path.name}: service {name} publishes {port}: publish on 127.0.0.1 only")
    return doc


def compose_path(relative: str) -> Path:
    """The setting (a repository path, checked by the settings) resolved; a link out of the
    repository is refused."""
    path = (ROOT / relative).resolve()
    if not path.is_relative_to(ROOT):
        raise ComposeError(f"{relative!r} leads out of the repository")
    return path


def parse_port(spec: str) -> docker.ContainerPortArgs:
    ip, external, internal = str(spec).split(":")
    return docker.ContainerPortArgs(ip=ip, external=int(external), internal=int(internal.split("/")[0]))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class Homelab(pulumi.ComponentResource):
    def __init__(self, name: str, settings: HomelabStackSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-platform:homelab:Homelab", name, None, opts)
        cfg = settings.homelab
        compose_file = compose_path(cfg.compose_file)
        compose = load_compose(compose_file)
        provider = docker.Provider(f"{name}-docker", host=cfg.docker_host, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        network = docker.Network(f"{name}-net", name=f"{name}-net", opts=child)
        volumes = {
            vol: docker.Volume(
                f"{name}-{vol}",
                name=f"{name}-{vol}",
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True, retain_on_delete=True),
            )
            for vol in (compose.get("volumes") or {})
        }
        self.containers: dict[str, docker.Container] = {}
        images: dict[str, docker.RemoteImage] = {}
        for svc_name, svc in compose["services"].items():
            image = images.setdefault(
                svc["image"],
                docker.RemoteImage(
                    f"{name}-image-{slug(svc['image'])}", name=svc["image"], keep_locally=True, opts=child
                ),
            )
            mounts, uploads = [], []
            for spec in svc.get("volumes", []):
                src, dst, *mode = spec.split(":")
                if src.startswith("./"):
                    local = compose_file.parent / src
                    for f in sorted(p for p in local.rglob("*") if p.is_file()):
                        uploads.append(
                            docker.ContainerUploadArgs(file=f"{dst}/{f.relative_to(local)}", content=f.read_text())
                        )
                else:
                    mounts.append(
                        docker.ContainerVolumeArgs(
                            volume_name=volumes[src].name, container_path=dst, read_only=("ro" in mode) or None
                        )
                    )
            hc = svc.get("healthcheck")
            deps = [self.containers[d] for d in svc.get("depends_on", [])]
            self.containers[svc_name] = docker.Container(
                f"{name}-{svc_name}",
                name=f"{name}-{svc_name}",
                image=image.image_id,
                restart=svc.get("restart", "unless-stopped"),
                ports=[parse_port(p) for p in svc.get("ports", [])],
                envs=[f"{k}={v}" for k, v in (svc.get("environment") or {}).items()],
                volumes=mounts,
                uploads=uploads or None,
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[svc_name])],
                healthcheck=docker.ContainerHealthcheckArgs(
                    tests=hc["test"],
                    interval=hc.get("interval"),
                    timeout=hc.get("timeout"),
                    retries=hc.get("retries"),
                )
                if hc
                else None,
                gpus="all" if (cfg.gpu and svc_name in GPU_SERVICES) else None,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=deps),
            )

        ollama_image = compose["services"]["ollama"]["image"]
        self.pulls = [
            docker.Container(
                f"{name}-pull-{slug(model)}",
                name=f"{name}-pull-{slug(model)}",
                image=images[ollama_image].image_id,
                entrypoints=["ollama"],
                command=["pull", model],
                envs=[f"OLLAMA_HOST=http://ollama:{service('ollama').port}"],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name)],
                must_run=False,
                attach=True,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.containers["ollama"]]),
            )
            for model in cfg.models
        ]
        ports = {s: [str(p) for p in svc.get("ports", [])] for s, svc in compose["services"].items()}
        self.ollama_url = f"http://{ports['ollama'][0].rsplit(':', 1)[0]}"
        self.n8n_url = f"http://{ports['n8n'][0].rsplit(':', 1)[0]}" if "n8n" in ports else None
        self.register_outputs({"ollama_url": self.ollama_url, "n8n_url": self.n8n_url})
