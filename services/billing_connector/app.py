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

from accord.ingest import Source, WebhookReceiver
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
    #: every webhook secret accepted now, comma separated (two while rotating)
    webhook_secrets: list[SecretStr] = Field(min_length=1)
    webhook_tolerance_seconds: int = Field(default=DEFAULT_TOLERANCE_SECONDS, gt=0)
    api_url: str = Field(validation_alias=AliasChoices("ACCORD_BILLING_API_URL", "ACCORD_SANDBOX_URL"))
    api_key: SecretStr = SecretStr("sk_test_accord_billing_connector")
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8081, ge=0, le=65535)

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value


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
