"""Monthly cost of a stack, with a breakdown, and the budget guard.

Pure Python over ``StackSettings`` and ``components.prices``: the figure is known before any resource
exists, so an over-budget stack fails before ``pulumi up`` creates anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from components import prices, upstream
from components.settings import HomelabStackSettings, StackSettings


@dataclass(frozen=True)
class CostItem:
    item: str
    slug: str
    quantity: float
    unit_usd: float
    usd_month: float
    source: str
    verified: bool = True


@dataclass(frozen=True)
class CostReport:
    stack: str
    items: tuple[CostItem, ...]
    budget: float
    unverified: tuple[str, ...] = ()  # provider facts this stack relies on that no source confirms

    @property
    def total(self) -> float:
        return round(sum(i.usd_month for i in self.items), 2)

    @property
    def over_budget(self) -> bool:
        return self.total > self.budget

    def table(self) -> str:
        width = max([len(i.item) for i in self.items] + [10])
        lines = [f"  {'item'.ljust(width)}  {'slug':<26} {'qty':>7}  {'$/unit':>9}  {'$/month':>9}"]
        for i in self.items:
            lines.append(
                f"  {i.item.ljust(width)}  {i.slug:<26} {i.quantity:>7g}  {i.unit_usd:>9.2f}  {i.usd_month:>9.2f}"
                + ("  UNVERIFIED" if not i.verified else "")
            )
        lines.append(f"  {'total'.ljust(width)}  {'':<26} {'':>7}  {'':>9}  {self.total:>9.2f}")
        lines.append(f"  budget {self.budget:.2f} USD/month")
        if self.unverified:
            lines.append("  unverified provider facts (no source confirms them; check before relying on the figure):")
            lines += [f"    - {u}" for u in self.unverified]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "total_usd_month": self.total,
            "budget_usd_month": self.budget,
            "items": [asdict(i) for i in self.items],
            "unverified": list(self.unverified),
        }


class BudgetExceeded(Exception):
    def __init__(self, report: CostReport):
        self.report = report
        super().__init__(
            f"stack {report.stack}: estimated {report.total:.2f} USD/month exceeds budget {report.budget:.2f} "
            f"(set llm-platform:allowOverBudget: true to accept)\n{report.table()}"
        )


def _item(item: str, price: prices.Price, qty: float) -> CostItem:
    return CostItem(item, price.slug, qty, price.usd_month, round(price.usd_month * qty, 2), price.source, price.verified)


def _unverified(items: list[CostItem], settings: StackSettings) -> tuple[str, ...]:
    out = [f"{i.slug} ({i.item}): {i.source}" for i in items if not i.verified]
    host = settings.host if settings.host_enabled else None
    if host is not None and host.provider == "digitalocean" and host.gpu and host.region not in prices.DO_GPU_REGIONS_CONFIRMED:
        out.append(f"GPU droplets in region {host.region}: only {', '.join(prices.DO_GPU_REGIONS_CONFIRMED)} is confirmed "
                   "(third-party listings only); verify with `doctl compute size list` / GET /v2/sizes")
    image = next(p for p in upstream.PINS if p.key == "do.debian_image")
    if host is not None and host.provider == "digitalocean" and host.resolved_image == image.value and not image.verified:
        out.append(f"droplet image {image.value}: {image.source}")
    if host is not None and host.provider == "hetzner" and host.region not in prices.HCLOUD_LOCATIONS_CONFIRMED:
        out.append(f"Hetzner location {host.region}: third-party only; verify with hcloud.get_locations()")
    return tuple(out)


def estimate(settings: StackSettings | HomelabStackSettings) -> CostReport:
    items: list[CostItem] = []
    if isinstance(settings, HomelabStackSettings):
        own = prices.Price("self-hosted", 0.0, "your own Docker host: no cloud charge")
        return CostReport(settings.stack, (_item("homelab: Docker host", own, 1),), settings.budget)
    app = settings.app
    items.append(_item("app: ai-service", prices.APP_INSTANCE_SIZES[app.ai_service.instance_size], app.ai_service.instance_count))
    items.append(_item("app: llm", prices.APP_INSTANCE_SIZES[app.llm.instance_size], app.llm.instance_count))

    if app.llm.provider == "huggingface":
        hf = settings.huggingface
        rate = prices.Price("hf-serverless-1k-requests", hf.usd_per_1k_requests, prices.HF_DEFAULT_USD_PER_1K_REQUESTS.source)
        items.append(_item("huggingface: serverless usage", rate, hf.requests_per_month / 1000))
        if hf.pro_subscription:
            items.append(_item("huggingface: PRO subscription", prices.HF_PRO_SUBSCRIPTION, 1))

    host = settings.host if settings.host_enabled else None
    if host is not None:
        if host.provider == "digitalocean":
            items.append(_item(f"host: droplet ({host.region})", prices.DROPLET_SIZES[host.size], 1))
            items.append(_item("host: data volume (GiB)", prices.DO_VOLUME_USD_PER_GIB, host.volume_size_gb))
            items.append(_item("host: reserved IPv4", prices.DO_RESERVED_IP, 1))
        else:
            items.append(_item(f"host: server ({host.region})", prices.HCLOUD_SERVER_TYPES[host.size], 1))
            items.append(_item("host: data volume (GB)", prices.HCLOUD_VOLUME_USD_PER_GB, host.volume_size_gb))
            items.append(_item("host: primary IPv4", prices.HCLOUD_PRIMARY_IPV4, 1))
    return CostReport(settings.stack, tuple(items), settings.budget, _unverified(items, settings))


def guard(settings: StackSettings | HomelabStackSettings) -> CostReport:
    """Return the cost report, or raise ``BudgetExceeded`` unless the stack allows going over."""
    report = estimate(settings)
    if report.over_budget and not settings.allow_over_budget:
        raise BudgetExceeded(report)
    return report
