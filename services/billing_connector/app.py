"""The billing webhook endpoint (`POST /webhooks/billing`), on accord.ingest, and its settings."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.events import EVENTS
from accord.ingest import Source, WebhookReceiver
from accord.kafka_config import client_properties
from accord.runtime import EventCodec
from accord.webhooks import BILLING_SIGNATURE_HEADER, DEFAULT_TOLERANCE_SECONDS

from .mapping import SOURCE, map_event
from .store import SCHEMA, context_loader

WEBHOOK_PATH = "/webhooks/billing"


class BillingConnectorSettings(BaseSettings):
    """Settings of the billing connector process (ACCORD_BILLING_… beside the runtime's standard names)."""

    model_config = SettingsConfigDict(env_prefix="ACCORD_BILLING_", frozen=True, extra="ignore")

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL"), repr=False)
    kafka_bootstrap_servers: str = Field(validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"))
    schema_registry_url: str | None = Field(default=None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"))
    #: every webhook secret accepted now, comma separated (two while rotating). One string, not a list field:
    #: pydantic-settings would parse a list from the environment as JSON, before any validator sees it.
    webhook_secrets: SecretStr
    webhook_tolerance_seconds: int = Field(default=DEFAULT_TOLERANCE_SECONDS, gt=0)
    api_url: str = Field(validation_alias=AliasChoices("ACCORD_BILLING_API_URL", "ACCORD_SANDBOX_URL"))
    api_key: SecretStr = SecretStr("sk_test_accord_billing_connector")
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8081, ge=0, le=65535)
    #: JSON object, catalogue topic → topic to use instead, for what is consumed AND what is published
    topics: dict[str, str] = Field(default_factory=dict)
    #: the Kafka consumer group of the provisioning consumer (and its dead-letter topic `<group>.dlq`)
    consumer_group: str = Field(default="billing_connector", min_length=1)
    #: librdkafka properties passed through from ACCORD_KAFKA_* (SASL, TLS, ...); SASL passwords travel here
    kafka_config: dict[str, str] = Field(default_factory=client_properties, repr=False)
    batch_size: int = Field(default=100, ge=1, le=10_000)
    #: billing calls in flight at once, and the calls per second (and burst) billing allows this connector
    command_concurrency: int = Field(default=4, ge=1, le=64)
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: float = Field(default=20.0, ge=1)
    #: attempts per command before it ends failed (ProvisioningFailed retries-exhausted, retryable)
    command_max_attempts: int = Field(default=10, ge=1)
    command_retry_base_seconds: float = Field(default=1.0, gt=0)
    #: the longest one command (a few reads and writes) may take; longer is in doubt and read back
    command_timeout_seconds: float = Field(default=30.0, gt=0)
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("webhook_secrets")
    @classmethod
    def _some_secret(cls, value: SecretStr) -> SecretStr:
        if not any(s.strip() for s in value.get_secret_value().split(",")):
            raise ValueError("ACCORD_BILLING_WEBHOOK_SECRETS needs at least one secret (comma separated)")
        return value

    @property
    def secrets(self) -> list[str]:
        """The webhook secrets accepted now."""
        return [s.strip() for s in self.webhook_secrets.get_secret_value().split(",") if s.strip()]

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, value: dict[str, str]) -> dict[str, str]:
        known = {event.TOPIC for event in EVENTS.values()}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"ACCORD_BILLING_TOPICS maps {', '.join(unknown)}, which the catalogue does not have; "
                f"its keys are catalogue topics ({', '.join(sorted(known))})"
            )
        return value

    def topic(self, catalogue_topic: str) -> str:
        """The topic this process uses for `catalogue_topic`."""
        return self.topics.get(catalogue_topic, catalogue_topic)


def billing_source(schema: str = SCHEMA, topics: Mapping[str, str] | None = None) -> Source:
    """The billing source: the mapper, the customer lookup, and (tests) topics written instead of the catalogue's."""
    return Source(name=SOURCE, mapper=map_event, context=context_loader(schema), topics=dict(topics or {}))


def create_app(
    *,
    pool: asyncpg.Pool,
    codec: EventCodec,
    secrets: list[str],
    schema: str = SCHEMA,
    topics: Mapping[str, str] | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> Starlette:
    receiver = WebhookReceiver(
        pool=pool,
        schema=schema,
        source=billing_source(schema, topics),
        codec=codec,
        secrets=secrets,
        signature_header=BILLING_SIGNATURE_HEADER,
        tolerance=tolerance,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "billing-connector"})

    return Starlette(routes=[receiver.route(WEBHOOK_PATH), Route("/healthz", healthz)])
