"""Monthly cost of a stack, with a breakdown, and the budget guard.

Pure Python over ``StackSettings`` and ``components.prices``: the figure is known before any resource
exists, so an over-budget stack fails before ``pulumi up`` creates anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from components import prices, upstream
from components.settings import HomelabStackSettings, StackSettings

# What a line is: a monthly charge this project adds (the total, the budget), a monthly charge of
# what already runs (the existing ai-service: shown apart, not added by this project), or a charge
# paid once (shown apart; it counts in the first month only).
MONTHLY, EXISTING, ONE_OFF = "monthly", "existing", "one-off"


@dataclass(frozen=True)
class CostItem:
    item: str
    slug: str
    quantity: float
    unit_usd: float
    usd_month: float
    source: str
    verified: bool = True
    kind: str = MONTHLY
    basis: str = ""  # the assumption behind the quantity, printed beside the line


@dataclass(frozen=True)
class CostReport:
    stack: str
    items: tuple[CostItem, ...]
    budget: float
    unverified: tuple[str, ...] = ()  # provider facts this stack relies on that no source confirms
    options: tuple[str, ...] = ()  # what is not counted and what it would add

    def _sum(self, kind: str) -> float:
        return round(sum(i.usd_month for i in self.items if i.kind == kind), 2)

    @property
    def total(self) -> float:
        """What this project adds per month: the figure the budget is checked against."""
        return self._sum(MONTHLY)

    @property
    def existing_total(self) -> float:
        return self._sum(EXISTING)

    @property
    def one_off_total(self) -> float:
        return self._sum(ONE_OFF)

    @property
    def first_month(self) -> float:
        return round(self.total + self.one_off_total, 2)

    @property
    def with_existing(self) -> float:
        return round(self.total + self.existing_total, 2)

    @property
    def over_budget(self) -> bool:
        return self.total > self.budget

    def table(self) -> str:
        width = max([len(i.item) for i in self.items] + [10])
        label = width + 2 + 27 + 8 + 11  # a total's label spans the item, slug, qty and $/unit columns

        def row(i: CostItem) -> str:
            return (
                f"  {i.item.ljust(width)}  {i.slug:<26} {i.quantity:>7g}  {i.unit_usd:>9.2f}  {i.usd_month:>9.2f}"
                + ("  UNVERIFIED" if not i.verified else "")
                + (f"  ({i.basis})" if i.basis else "")
            )

        lines = [
            f"  {'item'.ljust(width)}  {'slug':<26} {'qty':>7}  {'$/unit':>9}  {'$/month':>9}",
            "  this project adds, monthly:",
        ]
        lines += [row(i) for i in self.items if i.kind == MONTHLY]
        lines.append(f"  {'total, monthly (this project)':<{label}}{self.total:>9.2f}")
        if self.one_off_total:
            lines.append("  one-off, paid once (first month only; not in the monthly total or the budget):")
            lines += [row(i) for i in self.items if i.kind == ONE_OFF]
            lines.append(f"  {'first month (monthly + one-off)':<{label}}{self.first_month:>9.2f}")
        if self.existing_total:
            lines.append("  already running, not added by this project:")
            lines += [row(i) for i in self.items if i.kind == EXISTING]
            lines.append(f"  {'monthly with what already runs':<{label}}{self.with_existing:>9.2f}")
        lines.append(f"  budget {self.budget:.2f} USD/month (against this project's monthly total)")
        lines += [f"  not counted: {o}" for o in self.options]
        if self.unverified:
            lines.append("  unverified provider facts (no source confirms them; check before relying on the figure):")
            lines += [f"    - {u}" for u in self.unverified]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "total_usd_month": self.total,
            "first_month_usd": self.first_month,
            "one_off_usd": self.one_off_total,
            "existing_usd_month": self.existing_total,
            "with_existing_usd_month": self.with_existing,
            "budget_usd_month": self.budget,
            "items": [asdict(i) for i in self.items],
            "options": list(self.options),
            "unverified": list(self.unverified),
        }


class BudgetExceeded(Exception):
    def __init__(self, report: CostReport):
        self.report = report
        super().__init__(
            f"stack {report.stack}: estimated {report.total:.2f} USD/month exceeds budget {report.budget:.2f} "
            f"(set llm-platform:allowOverBudget: true to accept)\n{report.table()}"
        )


def _item(item: str, price: prices.Price, qty: float, kind: str = MONTHLY, basis: str = "") -> CostItem:
    return CostItem(
        item,
        price.slug,
        qty,
        price.usd_month,
        round(price.usd_month * qty, 2),
        price.source,
        price.verified,
        kind,
        basis,
    )


def _hf_basis(hf) -> str:
    """The assumption behind the usage line: the seed's tokens and rate, or the stack's own rate."""
    if hf.usd_per_1k_requests == prices.HF_DEFAULT_USD_PER_1K_REQUESTS.usd_month:
        return (
            f"{hf.requests_per_month:,} requests × {prices.HF_TOKENS_PER_REQUEST} tokens a month at "
            f"${prices.HF_USD_PER_MILLION_TOKENS:.2f} per 1M tokens"
        )
    return f"{hf.requests_per_month:,} requests a month at huggingface.usdPer1kRequests"


def _unverified(items: list[CostItem], settings: StackSettings) -> tuple[str, ...]:
    out = [f"{i.slug} ({i.item}): {i.source}" for i in items if not i.verified]
    host = settings.host if settings.host_enabled else None
    if (
        host is not None
        and host.provider == "digitalocean"
        and host.gpu
        and host.region not in prices.DO_GPU_REGIONS_CONFIRMED
    ):
        out.append(
            f"GPU droplets in region {host.region}: only {', '.join(prices.DO_GPU_REGIONS_CONFIRMED)} is confirmed "
            "(third-party listings only); verify with `doctl compute size list` / GET /v2/sizes"
        )
    image = next(p for p in upstream.PINS if p.key == "do.debian_image")
    if (
        host is not None
        and host.provider == "digitalocean"
        and host.resolved_image == image.value
        and not image.verified
    ):
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
    options: list[str] = []
    # The ai-service already runs in the app this project adopts: its instances are not this project's.
    items.append(
        _item(
            "app: ai-service",
            prices.APP_INSTANCE_SIZES[app.ai_service.instance_size],
            app.ai_service.instance_count,
            EXISTING,
        )
    )
    items.append(_item("app: llm", prices.APP_INSTANCE_SIZES[app.llm.instance_size], app.llm.instance_count))

    if app.llm.provider == "huggingface":
        hf = settings.huggingface
        rate = prices.Price(
            "hf-serverless-1k-requests", hf.usd_per_1k_requests, prices.HF_DEFAULT_USD_PER_1K_REQUESTS.source
        )
        items.append(_item("huggingface: serverless usage", rate, hf.requests_per_month / 1000, basis=_hf_basis(hf)))
        pro = prices.HF_PRO_SUBSCRIPTION
        if hf.pro_subscription:
            items.append(_item("huggingface: PRO subscription", pro, 1, basis="huggingface.proSubscription: true"))
        else:
            options.append(f"Hugging Face PRO, {pro.usd_month:.2f}/month (huggingface.proSubscription: true)")
        # No model host to train on in phase 1: the seed plan's fine-tuning run, paid once.
        items.append(
            _item("fine-tuning run", prices.FINE_TUNING_ONE_OFF, 1, ONE_OFF, "one run, the seed plan's estimate")
        )

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
    return CostReport(settings.stack, tuple(items), settings.budget, _unverified(items, settings), tuple(options))


def guard(settings: StackSettings | HomelabStackSettings) -> CostReport:
    """Return the cost report, or raise ``BudgetExceeded`` unless the stack allows going over."""
    report = estimate(settings)
    if report.over_budget and not settings.allow_over_budget:
        raise BudgetExceeded(report)
    return report
