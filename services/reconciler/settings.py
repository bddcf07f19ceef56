"""The reconciler's settings: the runtime's standard names, and ACCORD_RECONCILER_… for its policy."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import httpx
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from accord.runtime import RuntimeSettings

from .model import Relation, System
from .rules import Policy
from .snapshots import BillingSnapshots, CrmSnapshots, ErpSnapshots
from .staterun import Source


class ReconcilerSettings(RuntimeSettings):
    model_config = SettingsConfigDict(
        env_prefix="ACCORD_RECONCILER_", frozen=True, extra="ignore", populate_by_name=True
    )

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
    #: how long a safe repair has to converge before it is requested again, and how many attempts before a person
    repair_timeout_seconds: float = Field(default=600, gt=0)
    repair_attempts: int = Field(default=3, ge=1)
    #: detect and publish, but decide no repair and raise no case: findings stay open, `repairs` says what it would do
    dry_run: bool = False
    #: catalogue topic → topic in use, e.g. '{"billing.invoices": "acme.billing.invoices"}'
    topics: dict[str, str] = Field(default_factory=dict)
    #: how many due keys one sweep takes (the sweeper runs every second)
    sweep_batch: int = Field(default=500, ge=1, le=10_000)

    # -- the systems' read APIs, for state runs (a system whose URL is unset is not read) --------------------------
    #: the sandbox (or each system's own base URL below): ACCORD_SANDBOX_URL serves all three in the local stack
    billing_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ACCORD_RECONCILER_BILLING_URL", "ACCORD_SANDBOX_URL")
    )
    billing_api_key: SecretStr = SecretStr("sk_test_accord_reconciler")  # read calls only
    erp_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ACCORD_RECONCILER_ERP_URL", "ACCORD_SANDBOX_URL")
    )
    #: OAuth client credentials of the ERP and the CRM (ACCORD_RECONCILER_CLIENT_ID / _SECRET serve both)
    erp_client_id: str = Field(
        default="accord-reconciler",
        validation_alias=AliasChoices("ACCORD_RECONCILER_ERP_CLIENT_ID", "ACCORD_RECONCILER_CLIENT_ID"),
    )
    erp_client_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("ACCORD_RECONCILER_ERP_CLIENT_SECRET", "ACCORD_RECONCILER_CLIENT_SECRET"),
    )
    crm_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ACCORD_RECONCILER_CRM_URL", "ACCORD_SANDBOX_URL")
    )
    crm_client_id: str = Field(
        default="accord-reconciler",
        validation_alias=AliasChoices("ACCORD_RECONCILER_CRM_CLIENT_ID", "ACCORD_RECONCILER_CLIENT_ID"),
    )
    crm_client_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("ACCORD_RECONCILER_CRM_CLIENT_SECRET", "ACCORD_RECONCILER_CLIENT_SECRET"),
    )

    #: a state run from the service every so many seconds (changed since the last one; the first reads everything);
    #: 0: only on demand (`accord reconcile run`)
    state_run_seconds: float = Field(default=0, ge=0)

    def policy(self) -> Policy:
        defaults = Policy()
        return Policy(
            slas={**defaults.slas, **{r: timedelta(seconds=s) for r, s in self.sla_seconds.items()}},
            settle=timedelta(seconds=self.settle_seconds),
            in_doubt_grace=timedelta(seconds=self.in_doubt_grace_seconds),
            amount_tolerance=self.amount_tolerance,
            allow_reroute=self.allow_reroute,
            base_currencies=dict(self.base_currencies),
            repair_timeout=timedelta(seconds=self.repair_timeout_seconds),
            repair_attempts=self.repair_attempts,
        )


@asynccontextmanager
async def sources(settings: ReconcilerSettings) -> AsyncIterator[dict[System, Source]]:
    """The read API of each system whose URL is set, on HTTP clients closed at the end."""
    async with contextlib.AsyncExitStack() as stack:
        out: dict[System, Source] = {}

        def client(url: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=url, timeout=60)

        if settings.billing_url:
            http = await stack.enter_async_context(client(settings.billing_url))
            out[System.BILLING] = BillingSnapshots(http, api_key=settings.billing_api_key.get_secret_value())
        if settings.erp_url:
            http = await stack.enter_async_context(client(settings.erp_url))
            out[System.ERP] = ErpSnapshots(
                http, client_id=settings.erp_client_id, client_secret=settings.erp_client_secret.get_secret_value()
            )
        if settings.crm_url:
            http = await stack.enter_async_context(client(settings.crm_url))
            out[System.CRM] = CrmSnapshots(
                http, client_id=settings.crm_client_id, client_secret=settings.crm_client_secret.get_secret_value()
            )
        yield out
