"""The ERP connector's settings: ACCORD_ERP_… beside the standard names (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS,
SCHEMA_REGISTRY_URL, ACCORD_SANDBOX_URL). Bad values are refused at start-up with what to change."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .posting import ChartOfAccounts, ClosedPeriodPolicy, LegalEntity, PostingRules, Role, Summarization


class ErpConnectorSettings(BaseSettings):
    """Settings of the ERP connector process."""

    model_config = SettingsConfigDict(env_prefix="ACCORD_ERP_", frozen=True, extra="ignore")

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL"), repr=False)
    kafka_bootstrap_servers: str = Field(validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"))
    schema_registry_url: str | None = Field(default=None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"))
    #: the ERP's API base (the sandbox's, or the account's REST domain)
    api_url: str = Field(validation_alias=AliasChoices("ACCORD_ERP_API_URL", "ACCORD_SANDBOX_URL"))
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8083, ge=0, le=65535)
    #: consumer group, PostgreSQL schema and dead-letter topic prefix
    service_name: str = Field(default="erp_connector", pattern=r"^[a-z_][a-z0-9_]*$")
    #: catalogue topic → topic used instead, for what is consumed and what is published (JSON object)
    topics: dict[str, str] = Field(default_factory=dict)
    closed_period_policy: ClosedPeriodPolicy = ClosedPeriodPolicy.REROUTE
    summarization: Summarization = Summarization.PER_DOCUMENT
    #: ERP calls in flight at once (also bounded by what the ERP publishes at /erp/limits)
    command_concurrency: int = Field(default=4, ge=1, le=64)
    #: commands started per second against the ERP, all kinds (a journal is 2 calls: the upsert, the read)
    commands_per_second: float = Field(default=20.0, gt=0)
    #: calls per command before it ends failed, or in doubt when its last call may have been applied
    command_attempts: int = Field(default=8, ge=1, le=100)
    #: legal entity code (the subsidiary's externalId) → its base currency (JSON object)
    base_currencies: dict[str, str] = Field(default_factory=lambda: {"US": "USD", "EU": "EUR", "UK": "GBP"})
    #: role → account externalId, over the default chart (acct-1100 …), for every legal entity (JSON object)
    accounts: dict[str, str] = Field(default_factory=dict)
    #: "FROM/TO" → one unit of FROM in TO, e.g. {"USD/EUR": "0.92"} (JSON object)
    rates: dict[str, str] = Field(default_factory=dict)
    external_id_prefix: str = Field(default="accord", pattern=r"^[A-Za-z0-9_.-]{1,20}$")
    period_poll_seconds: float = Field(default=30.0, gt=0)
    period_full_reload_seconds: float = Field(default=600.0, gt=0)
    hold_sweep_seconds: float = Field(default=5.0, gt=0)
    #: SUMMARIZED: a period's batch closes this many days after the period ends (then its summary is posted)
    summary_grace_days: int = Field(default=0, ge=0, le=60)
    #: SUMMARIZED: how often the period job looks for closed batches
    summary_job_seconds: float = Field(default=60.0, gt=0)

    @field_validator("base_currencies")
    @classmethod
    def _currencies(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in value.items() if len(v) != 3 or not v.isalpha() or not v.isupper()}
        if bad:
            raise ValueError(f"base currencies must be ISO 4217 codes in capitals, got {bad}")
        return value

    @field_validator("accounts")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - {r.value for r in Role} - {r.value.lower() for r in Role})
        if unknown:
            raise ValueError(f"unknown account roles {unknown}; roles are {', '.join(r.value for r in Role)}")
        return value

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        for pair, rate in value.items():
            try:
                ok = len(pair.split("/")) == 2 and Decimal(rate) > 0
            except InvalidOperation:
                ok = False
            if not ok:
                raise ValueError(
                    f'rate {pair!r}: {rate!r} must be "FROM/TO": "<positive decimal>", e.g. "USD/EUR": "0.92"'
                )
        return value

    def rules(self) -> PostingRules:
        chart = ChartOfAccounts.default(**self.accounts)
        entities = [LegalEntity(e) for e in self.base_currencies]
        return PostingRules(
            charts={e: chart for e in entities},
            base_currencies={LegalEntity(e): c for e, c in self.base_currencies.items()},
            closed_period_policy=self.closed_period_policy,
            summarization=self.summarization,
            external_id_prefix=self.external_id_prefix,
        )

    def rate_table(self) -> dict[tuple[str, str], Decimal]:
        table = {}
        for pair, rate in self.rates.items():
            source, target = pair.split("/")
            table[(source, target)] = Decimal(rate)
        return table
