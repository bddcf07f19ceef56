"""The CRM connector's settings and HTTP surface: `POST /webhooks/crm`, `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.events import RepairRequested
from accord.kafka_config import client_properties
from accord.webhooks import DEFAULT_TOLERANCE_SECONDS

from .inbound import WEBHOOK_PATH, CrmInbound
from .status import HANDLED

SCHEMA = "crm_connector"
#: catalogue topics the connector consumes (billing status, the reconciler's repairs) and publishes (CRM events)
CATALOGUE_TOPICS = frozenset({"crm.accounts", "crm.contracts", RepairRequested.TOPIC} | {cls.TOPIC for cls in HANDLED})


class CrmConnectorSettings(BaseSettings):
    """Settings of the CRM connector process: standard names, then ACCORD_CRM_… for the rest."""

    model_config = SettingsConfigDict(env_prefix="ACCORD_CRM_", frozen=True, extra="ignore")

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL"), repr=False)
    kafka_bootstrap_servers: str = Field(validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"))
    schema_registry_url: str | None = Field(default=None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"))
    #: librdkafka properties from ACCORD_KAFKA_* (SASL, TLS…); out of repr, passwords travel here
    kafka_config: dict[str, str] = Field(default_factory=client_properties, repr=False)
    #: the CRM's API base (the sandbox serves it under /crm/…)
    api_url: str = Field(validation_alias=AliasChoices("ACCORD_CRM_API_URL", "ACCORD_SANDBOX_URL"))
    #: OAuth client credentials; the client id is also what marks our own write-backs (Sforce-Call-Options)
    client_id: str = Field(default="accord-crm-connector", min_length=1, pattern=r"^[^;,\s]+$")
    client_secret: SecretStr
    #: every webhook secret accepted now, comma separated (two while rotating); not JSON
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(min_length=1)
    webhook_tolerance_seconds: int = Field(default=DEFAULT_TOLERANCE_SECONDS, gt=0)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8082, ge=0, le=65535)
    #: catalogue topic → topic to use instead, for what is consumed AND what is published (JSON object)
    topics: dict[str, str] = Field(default_factory=dict)
    #: the status consumer's group (and its dead-letter topic `<group>.dlq`)
    group: str = Field(default="crm_connector", min_length=1)
    #: seconds between catch-up polls of the change replay (webhooks can be dropped)
    poll_interval_seconds: float = Field(default=30.0, gt=0)
    #: where a connector without a cursor starts reading the replay (None: at the tip, nothing older)
    start_replay_id: int | None = None
    #: write-backs per second to the CRM (token bucket), and how many may run at once
    write_rate: float = Field(default=5.0, gt=0)
    write_concurrency: int = Field(default=4, ge=1)
    write_attempts: int = Field(default=8, ge=1)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    shutdown_timeout: float = Field(default=10.0, gt=0)

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_topics(self) -> CrmConnectorSettings:
        unknown = sorted(set(self.topics) - CATALOGUE_TOPICS)
        if unknown:
            raise ValueError(
                f"ACCORD_CRM_TOPICS names {', '.join(unknown)}, which the CRM connector neither consumes nor "
                f"publishes; use catalogue topics: {', '.join(sorted(CATALOGUE_TOPICS))}"
            )
        return self


def create_app(inbound: CrmInbound, *, ready: Callable[[], bool], service: str = "crm-connector") -> Starlette:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": service})

    async def readyz(_: Request) -> Response:
        return JSONResponse({"ready": ready()}, status_code=200 if ready() else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, inbound.handle, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )
