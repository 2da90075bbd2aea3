"""``LlmApp``: the DigitalOcean App holding ``ai-service`` and the ``llm`` gateway.

The spec is rendered by ``render_app_spec`` (plain function over the typed settings) and handed to
``digitalocean.App``. Secret values are Pulumi secrets and ``type: SECRET``, ``scope: RUN_TIME`` envs.

App Platform hands SECRET values back encrypted (``EV[1:...]``; pulumi-digitalocean#624), so after a
refresh the state never equals the program's plaintext and every preview would show an update. The
component therefore asks Pulumi to ignore changes to the *value* of each SECRET env (only those; the
paths are computed from the rendered spec, see ``secret_value_paths``). To push a new or rotated
secret, run the update with ``LLM_PLATFORM_APPLY_SECRETS=1`` (see docs/oncall.md): the ignore list is
then left out for that one run. SECRET envs come first in each service's env list, in the fixed
order of ``secrets.SECRET_SPECS``, so adding a plain env never moves a secret's index. Adding or
removing a secret (e.g. the phase 1 → 2 upgrade adds ``VLLM_API_KEY``) changes the layout: apply it
with ``LLM_PLATFORM_APPLY_SECRETS=1``; the ``env_layout`` output shows the layout of each service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_digitalocean as do

from components.catalogue import APP_PORTS, LLM_INTERNAL_URL
from components.secrets import SECRET_SPECS
from components.settings import StackSettings

APPLY_SECRETS_ENV = "LLM_PLATFORM_APPLY_SECRETS"

HEALTH_CHECK = {"http_path": "/health", "initial_delay_seconds": 30, "period_seconds": 10, "timeout_seconds": 5}

# Exposure of each service on App Platform. ``ai-service`` is public (an ``http_port`` and the ingress
# rule). ``llm`` is internal only: ``internal_ports`` and no ``http_port`` and no ingress rule, the
# shape DigitalOcean documents for an internal service (docs "manage internal routing"; the app spec's
# ``internal_ports``: digitalocean/openapi specification/resources/apps/models/app_service_spec.yml).
# Its health check then names the port: without ``port`` the check goes to ``http_port``
# (app_service_spec_health_check.yml), which an internal-only service does not have.
PUBLIC_SERVICES = ("ai-service",)


@dataclass(frozen=True)
class Env:
    key: str
    value: pulumi.Input[str]
    secret: bool = False

    def args(self) -> do.AppSpecServiceEnvArgs:
        if self.secret:
            return do.AppSpecServiceEnvArgs(key=self.key, value=self.value, type="SECRET", scope="RUN_TIME")
        return do.AppSpecServiceEnvArgs(key=self.key, value=self.value, type="GENERAL", scope="RUN_AND_BUILD_TIME")


def _secret_envs(service: str, settings: StackSettings, secrets: Mapping[str, pulumi.Input[str]]) -> list[Env]:
    """SECRET envs of a service: the secrets table's entries for it that this stack needs, in the
    table's order (a secret kept for the model host reaches ``llm`` only when it calls the host)."""
    needed = {s.key for s in settings.required_secrets()}
    uses_host = settings.app.llm.provider in ("vllm", "ollama")  # the key is there before the gateway moves
    return [
        Env(s.env, secrets[s.key], secret=True)
        for s in SECRET_SPECS
        if s.env and service in s.services and s.key in needed and (s.required == "always" or uses_host)
    ]


def service_envs(
    settings: StackSettings, secrets: Mapping[str, pulumi.Input[str]], host_base_url: pulumi.Input[str] | None
) -> dict[str, list[Env]]:
    """Env lists of both services: SECRET envs first (canonical order), then plain envs."""
    llm = settings.app.llm
    ai = settings.app.ai_service
    provider = settings.gateway_provider  # Hugging Face until the model host is verified

    llm_plain = [
        Env("LLM_PROVIDER", provider),
        Env("HUGGINGFACE_MODEL", llm.huggingface_model),
        Env("PORT", str(APP_PORTS["llm"])),
        Env("LOG_LEVEL", llm.log_level),
        Env("ENABLE_METRICS", "true" if llm.enable_metrics else "false"),
    ]
    if provider in ("vllm", "ollama"):
        assert settings.host is not None and host_base_url is not None
        prefix = "VLLM" if provider == "vllm" else "OLLAMA"
        llm_plain += [Env(f"{prefix}_BASE_URL", host_base_url)]
        if provider == "vllm":
            llm_plain += [Env("VLLM_MODEL", settings.host.vllm.served_model_name)]

    ai_plain = [
        Env("LLM_SERVICE_URL", LLM_INTERNAL_URL),
        Env("LLM_TRAFFIC_SHARE", str(ai.llm_traffic_share)),
    ] + [Env(k, v) for k, v in sorted(ai.envs.items())]

    return {
        "ai-service": _secret_envs("ai-service", settings, secrets) + ai_plain,
        "llm": _secret_envs("llm", settings, secrets) + llm_plain,
    }


def _alerts(settings: StackSettings) -> list[do.AppSpecServiceAlertArgs]:
    a = settings.app.alerts
    dest = do.AppSpecServiceAlertDestinationsArgs(emails=a.emails) if a.emails else None
    return [
        do.AppSpecServiceAlertArgs(
            rule=rule, operator="GREATER_THAN", value=float(limit), window="FIVE_MINUTES", destinations=dest
        )
        for rule, limit in (("RESTART_COUNT", a.restart_count), ("CPU_UTILIZATION", a.cpu_percent))
    ]


SERVICE_ORDER = ("ai-service", "llm")


def render_app_spec(
    settings: StackSettings, secrets: Mapping[str, pulumi.Input[str]], host_base_url: pulumi.Input[str] | None
) -> do.AppSpecArgs:
    envs = service_envs(settings, secrets, host_base_url)

    def service(name: str, cfg, health_check: do.AppSpecServiceHealthCheckArgs | None = None):
        public = name in PUBLIC_SERVICES
        return do.AppSpecServiceArgs(
            name=name,
            github=do.AppSpecServiceGithubArgs(repo=cfg.repo, branch=cfg.branch, deploy_on_push=True),
            source_dir=cfg.source_dir,
            http_port=APP_PORTS[name] if public else None,
            internal_ports=None if public else [APP_PORTS[name]],
            instance_size_slug=cfg.instance_size,
            instance_count=cfg.instance_count,
            health_check=health_check,
            envs=[e.args() for e in envs[name]],
            alerts=_alerts(settings),
        )

    services = {
        "ai-service": service("ai-service", settings.app.ai_service),
        "llm": service(
            "llm", settings.app.llm, do.AppSpecServiceHealthCheckArgs(**HEALTH_CHECK, port=APP_PORTS["llm"])
        ),
    }
    # Only ai-service is public; llm is reached over the app's internal network at http://llm:8081.
    ingress = do.AppSpecIngressArgs(
        rules=[
            do.AppSpecIngressRuleArgs(
                match=do.AppSpecIngressRuleMatchArgs(path=do.AppSpecIngressRuleMatchPathArgs(prefix="/")),
                component=do.AppSpecIngressRuleComponentArgs(name=name),
            )
            for name in PUBLIC_SERVICES
        ]
    )
    domains = [do.AppSpecDomainNameArgs(name=settings.app.domain, type="PRIMARY")] if settings.app.domain else None
    return do.AppSpecArgs(
        name=settings.app_name,
        region=settings.region,
        services=[services[n] for n in SERVICE_ORDER],
        ingress=ingress,
        domain_names=domains,
        alerts=[do.AppSpecAlertArgs(rule="DEPLOYMENT_FAILED"), do.AppSpecAlertArgs(rule="DOMAIN_FAILED")],
    )


def secret_value_paths(envs: Mapping[str, list[Env]]) -> list[str]:
    """Property paths (Pulumi syntax) of the value of every SECRET env in the spec."""
    paths = []
    for i, name in enumerate(SERVICE_ORDER):
        for j, env in enumerate(envs[name]):
            if env.secret:
                paths.append(f"spec.services[{i}].envs[{j}].value")
    return paths


def env_layout(envs: Mapping[str, list[Env]]) -> dict[str, list[str]]:
    """Keys only (no values) of each service's env list, SECRET ones marked."""
    return {n: [f"{e.key}{' (SECRET)' if e.secret else ''}" for e in envs[n]] for n in SERVICE_ORDER}


class LlmApp(pulumi.ComponentResource):
    """The App Platform app: ``ai-service`` (public) and ``llm`` (the internal gateway)."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        secrets: Mapping[str, pulumi.Input[str]],
        host_base_url: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("llm-platform:app:LlmApp", name, None, opts)
        envs = service_envs(settings, secrets, host_base_url)
        apply_secrets = os.environ.get(APPLY_SECRETS_ENV) == "1"
        ignore = [] if apply_secrets else secret_value_paths(envs)
        self.app = do.App(
            f"{name}-app",
            spec=render_app_spec(settings, secrets, host_base_url),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )
        self.live_url = self.app.live_url
        self.env_layout = env_layout(envs)
        self.register_outputs(
            {"live_url": self.live_url, "llm_internal_url": LLM_INTERNAL_URL, "env_layout": self.env_layout}
        )
