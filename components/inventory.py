"""The host layer's inventory, as the cloud layer hands it over (a stack output).

Plain data, no secrets: the host's address and SSH user, its roles, and the settings each role reads.
``hosts/inventory.py`` turns this into a pyinfra inventory. Secret *names* are listed so the host
layer knows which ones to fetch (from the operator's environment or ``pulumi config get``); their
values never travel through here.
"""

from __future__ import annotations

from typing import Any

from components.settings import HostSettings


def host_data(host: HostSettings) -> dict[str, Any]:
    roles = host.roles
    secrets = []
    if "vllm" in roles or "proxy" in roles:
        secrets.append("vllmApiKey")
    if "vllm" in roles or "llamafactory" in roles:
        secrets.append("huggingfaceApiKey")  # gated model downloads (optional on the host)
    if "llamafactory" in roles:
        secrets += ["llamafactoryApiKey", "llamafactoryUiPassword"]
    return {
        "provider": host.provider,
        "roles": roles,
        "admin_user": host.admin_user,
        "admin_cidrs": list(host.admin_cidrs),
        "ssh_public_keys": list(host.ssh_public_keys),
        "domain": host.domain,
        "acme_email": host.acme_email,
        "acme_directory": host.acme_directory,
        "gpu": "auto" if host.gpu else "none",
        "proxy_backend": host.proxy_backend,
        "ollama": {
            "version": host.ollama.version,
            "models": list(host.ollama.models),
            "keep_alive": host.ollama.keep_alive,
            "num_parallel": host.ollama.num_parallel,
        },
        "vllm": {
            "image": host.vllm_image,
            "tag": host.vllm.tag,
            "model": host.vllm.model,
            "served_model_name": host.vllm.served_model_name,
            "max_model_len": host.vllm.max_model_len,
            "gpu_memory_utilization": host.vllm.gpu_memory_utilization,
            "device": "cuda" if host.gpu else "cpu",
        },
        "llamafactory": {
            "image": host.llamafactory.image,
            "tag": host.llamafactory.tag,
            "ui_user": host.llamafactory.ui_user,
        },
        "artifacts": {"ollama_sha256": host.ollama.sha256},  # vendor URLs: hosts/hostdata.py defaults
        "secrets": secrets,
    }


def inventory(host_name: str, address: Any, host: HostSettings) -> dict[str, Any]:
    """``{"hosts": [{name, ssh_hostname, ssh_user, data}]}`` — ``address`` may be a Pulumi Output."""
    return {
        "hosts": [
            {
                "name": host_name,
                "ssh_hostname": address,
                "ssh_user": host.admin_user,
                "data": host_data(host),
            }
        ]
    }
