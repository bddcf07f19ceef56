"""Operator knobs: latency, 5xx, 429, in-doubt timeouts and webhook chaos, per system and endpoint.

A knob is set for a system and an endpoint ("*" for every endpoint of the system, or a prefix of
"METHOD /path" such as "POST /billing/v1/invoices"); the longest matching prefix wins. Each knob draws
from its own random.Random seeded from (sandbox seed, knob seed, system, endpoint), so the same requests
in the same order meet the same faults in every run. Webhook knobs are read from the system's
"webhooks" knob if there is one, else from its "*" knob.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SYSTEMS = ("crm", "billing", "erp")

Rate = Field(default=0.0, ge=0.0, le=1.0)


class Knob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    error_rate: float = Rate
    rate_429: float = Rate
    #: the write is applied, then the caller gets a 504 (after `timeout_hang_seconds`): the in-doubt case
    timeout_after_write_rate: float = Rate
    timeout_hang_seconds: float = Field(default=0.0, ge=0.0, le=120.0)
    webhook_drop_rate: float = Rate
    webhook_duplicate_rate: float = Rate
    webhook_delay_rate: float = Rate
    #: a delayed delivery waits a uniform 0..this many seconds of sandbox time
    webhook_delay_seconds: float = Field(default=60.0, ge=0.0, le=86_400.0)
    #: a reordered delivery is held back a moment so that later events overtake it
    webhook_reorder_rate: float = Rate
    seed: int | None = None


@dataclass
class Rule:
    system: str
    endpoint: str
    knob: Knob
    rng: random.Random

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def uniform(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)


class Faults:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rules: dict[tuple[str, str], Rule] = {}

    def set(self, system: str, endpoint: str, knob: Knob) -> Rule:
        seed = f"{self.seed}:{knob.seed}:{system}:{endpoint}"
        rule = Rule(system, endpoint, knob, random.Random(seed))
        self.rules[(system, endpoint)] = rule
        return rule

    def clear(self, system: str | None = None, endpoint: str | None = None) -> int:
        doomed = [
            key
            for key in self.rules
            if (system is None or key[0] == system) and (endpoint is None or key[1] == endpoint)
        ]
        for key in doomed:
            del self.rules[key]
        return len(doomed)

    def match(self, system: str, method: str, path: str) -> Rule | None:
        target = f"{method} {path}"
        best: Rule | None = None
        for (sys_, endpoint), rule in self.rules.items():
            if sys_ != system or endpoint == "webhooks":
                continue
            if (endpoint == "*" or target.startswith(endpoint)) and (
                best is None or best.endpoint == "*" or len(endpoint) > len(best.endpoint)
            ):
                best = rule
        return best

    def webhooks(self, system: str) -> Rule | None:
        return self.rules.get((system, "webhooks")) or self.rules.get((system, "*"))

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"system": r.system, "endpoint": r.endpoint, **r.knob.model_dump(exclude_defaults=True)}
            for r in self.rules.values()
        ]

    def to_setting(self) -> list[dict[str, Any]]:
        return [{"system": r.system, "endpoint": r.endpoint, "knob": r.knob.model_dump()} for r in self.rules.values()]

    def load(self, saved: list[dict[str, Any]]) -> None:
        self.rules.clear()
        for item in saved:
            self.set(item["system"], item["endpoint"], Knob.model_validate(item["knob"]))
