"""Price and slug table: the one place that knows what each slug costs and where the figure came from.

Every figure carries a source note. Monthly figures for hourly-billed resources are ``hourly × 730``.
Hetzner bills in EUR; figures are converted at ``EUR_TO_USD`` (an assumption, stated here once).
Update a figure here and every stack's cost breakdown, budget guard and test follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.upstream import DO_DEBIAN_IMAGE

HOURS_PER_MONTH = 730
EUR_TO_USD = 1.10  # assumption used for Hetzner's EUR prices; adjust when it drifts

_SRC_APP = "DO OpenAPI instance_sizes example (digitalocean/openapi 7c1300c)"
_SRC_GPU = "docs.digitalocean.com/products/droplets/details/pricing (2025/2026 pages)"
_SRC_GPU_NOSLUG = (
    "UNVERIFIED: price from the DO pricing page, but the slug is in neither the DO OpenAPI examples nor "
    "pulumi-digitalocean 4.84.1 _enums.py DropletSlug; verify with `doctl compute size list`"
)
_SRC_GPU_3P = "UNVERIFIED: slug and price from third-party sources only; verify with `doctl compute size list`"
_SRC_CPU = (
    "UNVERIFIED: digitalocean.com/pricing/droplets, Basic Regular plans, from memory; "
    "verify with `doctl compute size list`"
)
_SRC_HCLOUD_CX23 = (
    "server type from pulumi-hcloud 1.43.3's examples; its price UNVERIFIED: third-party "
    "listings 2026, verify with hcloud.get_server_types()"
)
_SRC_HCLOUD = "UNVERIFIED: server type and price from third-party listings 2026; verify with hcloud.get_server_types()"
UNVERIFIED = "UNVERIFIED"


@dataclass(frozen=True)
class Price:
    slug: str
    usd_month: float
    source: str
    note: str = ""

    @property
    def verified(self) -> bool:
        """False when no source confirms the slug or the figure (its source says UNVERIFIED)."""
        return UNVERIFIED not in self.source


@dataclass(frozen=True)
class DropletSize(Price):
    gpu: bool = False
    gpu_memory_gb: int = 0
    default_image: str = DO_DEBIAN_IMAGE
    memory_gb: int = 0


@dataclass(frozen=True)
class ServerType(Price):
    memory_gb: int = 0
    arch: str = "x86"


def _hourly(usd_hour: float) -> float:
    return round(usd_hour * HOURS_PER_MONTH, 2)


def _eur_hourly(eur_hour: float) -> float:
    return round(eur_hour * HOURS_PER_MONTH * EUR_TO_USD, 2)


APP_INSTANCE_SIZES: dict[str, Price] = {
    p.slug: p
    for p in (
        Price("apps-s-1vcpu-0.5gb", 5, _SRC_APP, "basic, single instance only"),
        Price("apps-s-1vcpu-1gb-fixed", 10, _SRC_APP, "single instance only"),
        Price("apps-s-1vcpu-1gb", 12, _SRC_APP),
        Price("apps-s-1vcpu-2gb", 25, _SRC_APP),
        Price("apps-s-2vcpu-4gb", 50, _SRC_APP),
        Price("apps-d-1vcpu-0.5gb", 29, _SRC_APP, "dedicated"),
        Price("apps-d-1vcpu-1gb", 34, _SRC_APP, "dedicated"),
        Price("apps-d-1vcpu-2gb", 39, _SRC_APP, "dedicated"),
        Price("apps-d-1vcpu-4gb", 49, _SRC_APP, "dedicated"),
        Price("apps-d-2vcpu-4gb", 78, _SRC_APP, "dedicated"),
        Price("apps-d-2vcpu-8gb", 98, _SRC_APP, "dedicated"),
        Price("apps-d-4vcpu-8gb", 156, _SRC_APP, "dedicated"),
        Price("apps-d-4vcpu-16gb", 196, _SRC_APP, "dedicated"),
        Price("apps-d-8vcpu-32gb", 392, _SRC_APP, "dedicated"),
    )
}
# Sizes that App Platform refuses to run as more than one instance.
APP_SINGLE_INSTANCE_SIZES = {"apps-s-1vcpu-0.5gb", "apps-s-1vcpu-1gb-fixed"}

APP_REGIONS = ("atl", "nyc", "sfo", "tor", "ams", "fra", "lon", "blr", "sgp", "syd")

DROPLET_SIZES: dict[str, DropletSize] = {
    p.slug: p
    for p in (
        DropletSize("gpu-h100x1-80gb", _hourly(3.39), _SRC_GPU, "$3.39/h", True, 80, "gpu-h100x1-base", 240),
        DropletSize("gpu-h100x8-640gb", _hourly(23.92), _SRC_GPU, "$23.92/h", True, 640, "gpu-h100x8-base", 1920),
        DropletSize("gpu-l40sx1-48gb", _hourly(1.57), _SRC_GPU_NOSLUG, "$1.57/h", True, 48, "gpu-h100x1-base", 64),
        DropletSize(
            "gpu-4000adax1-20gb", _hourly(0.76), _SRC_GPU_3P, "$0.76/h (RTX 4000 Ada)", True, 20, "gpu-h100x1-base", 32
        ),
        DropletSize(
            "gpu-6000adax1-48gb", _hourly(1.89), _SRC_GPU_3P, "$1.89/h (RTX 6000 Ada)", True, 48, "gpu-h100x1-base", 64
        ),
        DropletSize("s-2vcpu-4gb", 24, _SRC_CPU, "", False, 0, DO_DEBIAN_IMAGE, 4),
        DropletSize("s-4vcpu-8gb", 48, _SRC_CPU, "", False, 0, DO_DEBIAN_IMAGE, 8),
        DropletSize("s-8vcpu-16gb", 96, _SRC_CPU, "", False, 0, DO_DEBIAN_IMAGE, 16),
    )
}
# Regions where DigitalOcean offers GPU droplets: tor1 confirmed (DO OpenAPI example), the others from
# third-party sources only: allowed, but the plan prints them as unverified.
DO_GPU_REGIONS = ("tor1", "nyc2", "atl1", "ams3", "ric1")
DO_GPU_REGIONS_CONFIRMED = ("tor1",)
DO_DROPLET_REGIONS = (
    "nyc1",
    "nyc2",
    "nyc3",
    "sfo2",
    "sfo3",
    "ams3",
    "sgp1",
    "lon1",
    "fra1",
    "tor1",
    "blr1",
    "syd1",
    "atl1",
    "ric1",
)

HCLOUD_SERVER_TYPES: dict[str, ServerType] = {
    p.slug: p
    for p in (
        ServerType("cx23", _eur_hourly(0.006), _SRC_HCLOUD_CX23, "2 vCPU / 4 GB", 4),
        ServerType("cx33", _eur_hourly(0.011), _SRC_HCLOUD, "4 vCPU / 8 GB", 8),
        ServerType("cx43", _eur_hourly(0.021), _SRC_HCLOUD, "8 vCPU / 16 GB", 16),
        ServerType("cx53", _eur_hourly(0.036), _SRC_HCLOUD, "16 vCPU / 32 GB", 32),
    )
}
HCLOUD_LOCATIONS = ("fsn1", "nbg1", "hel1", "ash", "hil", "sin")
HCLOUD_LOCATIONS_CONFIRMED = ("fsn1", "nbg1", "hel1")  # pulumi-hcloud 1.43.3 docs; the rest third-party

# Storage and addresses.
DO_VOLUME_USD_PER_GIB = Price(
    "do-volume-gib", 0.10, "docs.digitalocean.com/products/volumes/details/pricing ($0.10/GiB-month)"
)
DO_RESERVED_IP = Price(
    "do-reserved-ipv4", 0.0, "DO: reserved IPv4 free while assigned to a droplet ($5/mo when unassigned)"
)
HCLOUD_VOLUME_USD_PER_GB = Price(
    "hcloud-volume-gb", round(0.044 * EUR_TO_USD, 4), "UNVERIFIED: Hetzner volumes EUR 0.044/GB-month, third-party"
)
HCLOUD_PRIMARY_IPV4 = Price(
    "hcloud-primary-ipv4", round(0.50 * EUR_TO_USD, 2), "UNVERIFIED: Hetzner primary IPv4 EUR 0.50/month, third-party"
)

# Hugging Face serverless (Inference Providers): usage-based, so the figure is an estimate. The basis
# is the seed plan's: a dev call is about 500 tokens, and 250 of them cost about $0.05 a month, i.e.
# $0.40 per million tokens. Provider rates for an 8B model vary; the stack's invoice is the truth.
HF_TOKENS_PER_REQUEST = 500
HF_USD_PER_MILLION_TOKENS = 0.40
HF_DEFAULT_USD_PER_1K_REQUESTS = Price(
    "hf-serverless-1k-requests",
    round(HF_TOKENS_PER_REQUEST * HF_USD_PER_MILLION_TOKENS / 1000, 4),
    f"UNVERIFIED: the seed plan's rate ({HF_TOKENS_PER_REQUEST} tokens/request at ${HF_USD_PER_MILLION_TOKENS:.2f} per "
    "1M tokens); read huggingface.co/docs/inference-providers/pricing or the invoice and set "
    "huggingface.usdPer1kRequests",
)
HF_PRO_SUBSCRIPTION = Price(
    "hf-pro", 9.0, "huggingface.co/pricing: PRO account $9/month (includes monthly inference credits)"
)

# Fine-tuning in phase 1 has no model host to train on; the seed plan prices one run, paid once.
FINE_TUNING_ONE_OFF = Price(
    "fine-tuning-run",
    15.0,
    "UNVERIFIED: the seed plan's one-off estimate for one fine-tuning run in phase 1 (no model host); "
    "on a GPU droplet a run costs its hourly price × the hours it takes",
)
