"""The reconciler's settings: the runtime's standard names, and ACCORD_RECONCILER_… for its policy."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from accord.runtime import RuntimeSettings

from .model import Relation
from .rules import Policy


class ReconcilerSettings(RuntimeSettings):
    model_config = SettingsConfigDict(env_prefix="ACCORD_RECONCILER_", frozen=True, extra="ignore")

    #: the consumer group and PostgreSQL schema (several reconcilers on one cluster, or a test's own)
    service_name: str = Field(default="reconciler", pattern=r"^[a-z_][a-z0-9_]*$")
    #: per relation (journal, contract, amendment, account): seconds the target system has to agree, e.g.
    #: ACCORD_RECONCILER_SLA_SECONDS='{"journal": 300}'; relations not named keep their default (rules.Policy)
    sla_seconds: dict[Relation, float] = Field(default_factory=dict)
    settle_seconds: float = Field(default=60, ge=0)
    in_doubt_grace_seconds: float = Field(default=120, ge=0)
    amount_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)
    allow_reroute: bool = True
    #: legal entity → base currency, e.g. '{"US": "USD", "EU": "EUR"}' (tells a converted posting from a wrong one)
    base_currencies: dict[str, str] = Field(default_factory=dict)
    #: detect and publish, but decide no repair and raise no case: findings stay open, `repairs` says what it would do
    dry_run: bool = False
    #: catalogue topic → topic in use, e.g. '{"billing.invoices": "acme.billing.invoices"}'
    topics: dict[str, str] = Field(default_factory=dict)
    #: how many due keys one sweep takes (the sweeper runs every second)
    sweep_batch: int = Field(default=500, ge=1, le=10_000)

    def policy(self) -> Policy:
        defaults = Policy()
        return Policy(
            slas={**defaults.slas, **{r: timedelta(seconds=s) for r, s in self.sla_seconds.items()}},
            settle=timedelta(seconds=self.settle_seconds),
            in_doubt_grace=timedelta(seconds=self.in_doubt_grace_seconds),
            amount_tolerance=self.amount_tolerance,
            allow_reroute=self.allow_reroute,
            base_currencies=dict(self.base_currencies),
        )
