"""The drift report as data: findings, per-host and per-layer outcomes, and the one rule that turns
them into a status and an exit code (anything not checked → 2, else any finding → 1, else 0).
``operate.drift.render`` writes it as text and Markdown; ``to_dict`` is the JSON report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Finding:
    layer: str
    host: str | None
    target: str
    detail: str
    role: str = ""
    kind: str = ""  # operation | check | resource
    commands: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    message: str = ""


NOT_CHECKED = "not_checked"
# Every unit (a host, a layer, the report) has one outcome and its exit code. One rule at every level:
# anything not checked makes it "not checked" (2), whatever else was found (the findings are still
# listed and ``drift_found`` says so); otherwise any finding makes it drift (1); otherwise clean (0).
EXIT_CODES = {"clean": 0, "skipped": 0, "drift": 1, NOT_CHECKED: 2}
LABELS = {NOT_CHECKED: "not checked"}


@dataclass
class HostOutcome:
    host: str
    status: str  # clean | drift | not_checked
    # why not checked: one line naming the host ("llm-prod: SSH to 203.0.113.10:22 timed out after 10 s")
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("clean", "drift", NOT_CHECKED):
            raise ValueError(f"host outcome {self.status!r}: one of clean, drift, {NOT_CHECKED}")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


@dataclass
class LayerResult:
    layer: str
    status: str  # clean | drift | not_checked | skipped
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    hosts: list[HostOutcome] = field(default_factory=list)  # the hosts layer: one outcome per host

    def __post_init__(self) -> None:
        if self.status not in EXIT_CODES:  # an unknown status must never read as clean
            raise ValueError(f"layer status {self.status!r}: one of {', '.join(EXIT_CODES)}")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def drift_found(self) -> bool:
        return self.status == "drift" or bool(self.findings) or any(h.status == "drift" for h in self.hosts)

    def not_checked(self) -> list[dict[str, Any]]:
        """What this layer could not check: one entry per host where hosts were the cause, else the layer."""
        if self.status != NOT_CHECKED:
            return []
        hosts = [h for h in self.hosts if h.status == NOT_CHECKED]
        if hosts:
            return [{"layer": self.layer, "host": h.host, "reason": h.reason} for h in hosts]
        return [{"layer": self.layer, "host": None, "reason": self.reason}]


@dataclass
class Report:
    stack: str
    layers: list[LayerResult]
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def not_checked(self) -> list[dict[str, Any]]:
        return [x for layer in self.layers for x in layer.not_checked()]

    @property
    def drift_found(self) -> bool:
        return any(layer.drift_found for layer in self.layers)

    @property
    def status(self) -> str:
        """clean | drift | incomplete (something was not checked; drift findings, if any, still listed)."""
        if self.not_checked:
            return "incomplete"
        return "drift" if self.drift_found else "clean"

    @property
    def exit_code(self) -> int:
        return {"clean": 0, "drift": 1, "incomplete": 2}[self.status]

    def headline(self) -> str:
        if self.status != "incomplete":
            return self.status
        layers = ", ".join(dict.fromkeys(x["layer"] for x in self.not_checked))
        return f"incomplete: {'drift found' if self.drift_found else 'no drift found'}; not checked: {layers}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "started_at": self.started_at,
            "status": self.status,
            "exit_code": self.exit_code,
            "drift_found": self.drift_found,
            "not_checked": self.not_checked,
            "layers": [
                {
                    "layer": layer.layer,
                    "status": layer.status,
                    "exit_code": layer.exit_code,
                    "drift_found": layer.drift_found,
                    "reason": layer.reason,
                    "seconds": round(layer.seconds, 1),
                    "hosts": [
                        {"host": h.host, "status": h.status, "exit_code": h.exit_code, "reason": h.reason}
                        for h in layer.hosts
                    ],
                }
                for layer in self.layers
            ],
            "findings": [asdict(f) for layer in self.layers for f in layer.findings],
        }


KIND_ORDER = {"resource": 0, "operation": 1, "check": 2}


def grouped(findings: list[Finding]) -> list[tuple[tuple[str | None, str], list[Finding]]]:
    """Findings by (host, role) in first-seen order; in each group operations (the probable cause)
    before the checks that failed with them."""
    groups: dict[tuple[str | None, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.host, f.role), []).append(f)
    return [(k, sorted(v, key=lambda f: KIND_ORDER.get(f.kind, 3))) for k, v in groups.items()]
