"""Hosting a service: settings, wiring, the HTTP surface for probes and metrics, and a clean shutdown.

A service's `__main__.py` is wiring only:

    from accord.runtime import RuntimeSettings, run
    from .handlers import SERVICE

    run(SERVICE, RuntimeSettings())
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from confluent_kafka import Consumer, Producer
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.kafka_config import client_properties
from accord.migrations import migrate

from . import _metrics as m
from ._consumer import RetryPolicy, Runtime, consumer_config
from ._dlq import dlq_topic
from ._model import EventCodec, Service
from ._process import ensure_topic, every
from ._relay import OutboxRelay, producer_config
from ._store import PostgresStore
from ._tracing import setup_tracing

log = logging.getLogger("accord.runtime")


class RuntimeSettings(BaseSettings):
    """One frozen settings object per service process; standard names where they exist, ACCORD_ for the rest."""

    model_config = SettingsConfigDict(env_prefix="ACCORD_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"))
    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL"), repr=False)  # may hold a password
    schema_registry_url: str | None = Field(default=None, validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"))
    #: librdkafka properties passed through from ACCORD_KAFKA_* (SASL, TLS, ...; see accord.kafka_config);
    #: kept out of repr because SASL passwords travel here
    kafka_config: dict[str, str] = Field(default_factory=client_properties, repr=False)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    poll_timeout: float = Field(default=0.5, gt=0)
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(default=None, ge=0, le=65535)
    pool_size: int = Field(default=4, ge=2)
    handler_attempts: int = Field(default=3, ge=1)
    shutdown_timeout: float = Field(default=10.0, gt=0)
    #: how long processed event ids are kept; replays reaching further back are skipped by offset watermark
    idempotency_retention_seconds: float = Field(default=7 * 86400, gt=0)


def schema_name(service: str) -> str:
    """A service's PostgreSQL schema: its name as a lower-case SQL identifier."""
    return re.sub(r"[^a-z0-9_]", "_", service.lower())


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the current trace id; never record values (they may be personal data)."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = trace.get_current_span().get_span_context()
        data: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if ctx.is_valid:
            data["trace_id"] = f"{ctx.trace_id:032x}"
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # One line per HTTP call to the registry is noise at INFO, and URLs may carry ids of customers.
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ServiceHost:
    """Everything one service process runs: consumer loop, outbox relay, parked retries, probes and metrics."""

    def __init__(
        self,
        service: Service,
        settings: RuntimeSettings,
        codec: EventCodec,
        *,
        migrations: Path | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.codec = codec
        self.migrations = migrations
        self.schema = schema_name(service.name)
        self.stop = asyncio.Event()
        self.ready = False
        self.http_port: int | None = None

    async def run(self) -> None:
        s = self.settings
        pool = await asyncpg.create_pool(s.database_url, min_size=2, max_size=s.pool_size)
        assert pool is not None
        store = PostgresStore(pool, self.schema)
        await store.migrate()
        if self.migrations is not None:
            async with pool.acquire() as conn:
                await migrate(conn, self.migrations, schema=self.schema)
        self._ensure_dlq()
        dlq_producer = self.make_producer("dead-letters")
        relay_producer = self.make_producer("relay")
        consumer = Consumer(consumer_config(s.kafka_bootstrap_servers, self.service.group, s.kafka_config))
        consumer.subscribe(list(self.service.topics))
        runtime = self.runtime_class(
            self.service,
            store=store,
            codec=self.codec,
            producer=dlq_producer,
            retry=RetryPolicy(attempts=s.handler_attempts),
        )
        relay = OutboxRelay(pool, self.schema, relay_producer, service=self.service.name)
        server = self._http_server()
        tasks = [
            asyncio.create_task(
                runtime.run(consumer, self.stop, batch_size=s.batch_size, poll_timeout=s.poll_timeout), name="consumer"
            ),
            asyncio.create_task(relay.run(self.stop), name="relay"),
            asyncio.create_task(self._every(1.0, runtime.retry_parked), name="parked"),
            asyncio.create_task(self._every(5.0, lambda: self._lag(consumer)), name="lag"),
            asyncio.create_task(self._every(5.0, lambda: self._backlog(pool)), name="backlog"),
            asyncio.create_task(
                self._every(
                    3600.0,
                    lambda: store.prune_processed(
                        consumer=self.service.group, older_than_seconds=s.idempotency_retention_seconds
                    ),
                ),
                name="retention",
            ),
        ]
        if server is not None:
            tasks.append(asyncio.create_task(server.serve(), name="http"))
        tasks += [asyncio.create_task(work, name=name) for name, work in self.background(pool).items()]
        self.ready = True
        log.info(
            "service %s running (schema %s, topics %s)", self.service.name, self.schema, ",".join(self.service.topics)
        )
        try:
            # A task that dies takes the process down with it: a half-running service is worse than a restart.
            done, _ = await asyncio.wait(
                [*tasks, asyncio.create_task(self.stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.ready = False
            self.stop.set()
            if server is not None:
                server.should_exit = True
            # SIGTERM: the consumer finishes the batch in hand and commits; then everything closes.
            _, pending = await asyncio.wait(tasks, timeout=s.shutdown_timeout)
            for task in pending:
                task.cancel()
            await asyncio.to_thread(consumer.close)
            await asyncio.to_thread(dlq_producer.flush, 5)
            await asyncio.to_thread(relay_producer.flush, 5)
            await pool.close()
            log.info("service %s stopped", self.service.name)

    #: the consumer runtime to run (a subclass may add behaviour, e.g. fault injection in tests)
    runtime_class: type[Runtime] = Runtime

    def background(self, pool: asyncpg.Pool) -> dict[str, Coroutine[Any, Any, None]]:
        """More work a service runs beside its consumer, by name (a subclass's schedule: the reconciler's state
        runs). Each ends when `self.stop` is set; one that fails takes the process down, as every task does."""
        return {}

    def make_producer(self, role: str) -> Producer:
        """The idempotent producer for `role` ("dead-letters" or "relay")."""
        return Producer(producer_config(self.settings.kafka_bootstrap_servers, self.settings.kafka_config))

    def _ensure_dlq(self) -> None:
        ensure_topic(self.settings.kafka_bootstrap_servers, self.settings.kafka_config, dlq_topic(self.service.group))

    async def _every(self, seconds: float, action: Callable[[], Any]) -> None:
        await every(self.stop, seconds, action)

    def _lag(self, consumer: Consumer) -> None:
        for tp in consumer.assignment():
            _low, high = consumer.get_watermark_offsets(tp, timeout=1, cached=True)
            position = consumer.position([tp])[0].offset
            if position is not None and position >= 0 and high >= 0:
                m.CONSUMER_LAG.labels(self.service.name, tp.topic, str(tp.partition)).set(max(0, high - position))

    async def _backlog(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetchval(f"SELECT count(*) FROM {self.schema}.outbox")
        m.OUTBOX_BACKLOG.labels(service=self.service.name).set(rows)

    def _http_server(self) -> uvicorn.Server | None:
        if self.settings.http_port is None:
            return None

        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "ok", "service": self.service.name})

        async def readyz(_: Request) -> Response:
            return JSONResponse({"ready": self.ready}, status_code=200 if self.ready else 503)

        async def metrics(_: Request) -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)])
        config = uvicorn.Config(
            app, host=self.settings.http_host, port=self.settings.http_port, log_level="warning", lifespan="off"
        )
        # uvicorn captures SIGTERM/SIGINT while it serves and re-raises them when it exits, so the host's own
        # handlers still run; its task ending also ends the host (see run()).
        return uvicorn.Server(config)


def run(service: Service, settings: RuntimeSettings, codec: EventCodec, *, migrations: Path | None = None) -> None:
    """Run a service until SIGTERM or SIGINT, then drain and exit."""
    setup_logging()
    setup_tracing(service.name)
    host = ServiceHost(service, settings, codec, migrations=migrations)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, host.stop.set)
        await host.run()

    asyncio.run(main())
