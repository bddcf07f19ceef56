"""Wiring only: the decider on billing.invoices, billing.payments, q2c.provisioning and recon.repairs (accord.runtime's
host, with the outbox relay and /healthz), the command worker calling the ERP, the period poller and the sweeper of
decided holds, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from datetime import UTC, datetime

import asyncpg
import httpx
from pydantic import ValidationError
from pydantic_settings import SettingsError

from accord.casework import migrate_casework
from accord.commands import CommandWorker, RetryPolicy, TokenBucket
from accord.errors import ConfigurationError
from accord.events import (
    ExceptionChanged,
    JournalPosted,
    JournalRejected,
    JournalRequested,
    PeriodStatusChanged,
    ProvisioningCompleted,
    ProvisioningFailed,
)
from accord.migrations import migrate
from accord.runtime import PostgresStore, RuntimeSettings, ServiceHost, schema_name, setup_logging, setup_tracing
from accord.serde import EncodeError, EventCodec

from . import holds, summaries
from .erp_client import CustomerExecutor, ErpClient, JournalExecutor, LocalExecutor
from .handlers import (
    CUSTOMER_KIND,
    HOLD_KIND,
    KIND,
    LOCAL,
    READ_BACK_KIND,
    STAGE_KIND,
    SYSTEM,
    ConnectorConfig,
    service,
)
from .holds import Calendar, Outbox
from .periods import PeriodPoller, run_poller
from .posting import Summarization
from .results import CommandResults
from .settings import ErpConnectorSettings
from .store import MIGRATIONS

log = logging.getLogger("accord.erp_connector")
PUBLISHED = (
    JournalRequested,
    JournalPosted,
    JournalRejected,
    PeriodStatusChanged,
    ExceptionChanged,
    ProvisioningCompleted,
    ProvisioningFailed,
)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def main(settings: ErpConnectorSettings) -> None:
    calendar = Calendar()
    config = ConnectorConfig(
        rules=settings.rules(), calendar=calendar, rates=settings.rate_table(), topics=settings.topics
    )
    summarized = settings.summarization is Summarization.SUMMARIZED
    svc = service(config, name=settings.service_name, summary_job=summarized)
    schema = schema_name(svc.name)
    # The runtime's own settings from this connector's (ACCORD_ERP_HTTP_PORT, not ACCORD_HTTP_PORT, and so on).
    runtime_settings = RuntimeSettings.model_validate(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "DATABASE_URL": settings.database_url,
            "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
            "http_host": settings.http_host,
            "http_port": settings.http_port,
        }
    )
    codec = EventCodec.connect(settings.schema_registry_url)
    outbox = Outbox(schema, codec.encode, settings.topics)
    # Schema ids looked up now: encoding inside a closing transaction never waits on HTTP, and a subject that is
    # not registered stops the start with its name rather than failing the first command.
    codec.warm_up((outbox.topic(cls.TOPIC), cls) for cls in PUBLISHED)

    pool = await asyncpg.create_pool(settings.database_url, min_size=2, max_size=settings.command_concurrency + 4)
    assert pool is not None
    await PostgresStore(pool, schema).migrate()  # runtime + commands
    async with pool.acquire() as conn:
        await migrate_casework(conn, schema=schema)
        await migrate(conn, MIGRATIONS, schema=schema)

    http = httpx.AsyncClient(base_url=settings.api_url, timeout=30)
    client = ErpClient(
        http,
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        concurrency=settings.command_concurrency,
    )
    host = ServiceHost(svc, runtime_settings, codec)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stop.set)

    # The whole calendar once before the first event is decided; the ERP away at start is waited for.
    poller = PeriodPoller(client, pool, outbox, calendar, full_reload_seconds=settings.period_full_reload_seconds)
    try:
        # The ERP's governance limit is shared by every caller: the client keeps to what it publishes.
        await client.adopt_published_limit()
    except Exception as exc:
        log.warning("the ERP's published limit is unknown (%s); keeping %d calls at once", exc, client.concurrency)
    while not host.stop.is_set():
        try:
            await poller.load()
            break
        except Exception as exc:  # reported and retried: the ERP or the database may be starting
            log.warning("loading the ERP's period calendar failed, retrying: %s: %s", type(exc).__name__, exc)
            await _wait(host.stop, 2.0)

    worker = CommandWorker(
        pool,
        schema,
        executors={
            f"{SYSTEM}/{KIND}": JournalExecutor(client),
            f"{SYSTEM}/{CUSTOMER_KIND}": CustomerExecutor(client),
            f"{LOCAL}/{HOLD_KIND}": LocalExecutor(),
            f"{LOCAL}/{STAGE_KIND}": LocalExecutor(),
            f"{LOCAL}/{READ_BACK_KIND}": LocalExecutor(),  # its effect is repairs.read_back, where it closes
        },
        rate_limits={SYSTEM: TokenBucket(settings.commands_per_second, burst=max(1.0, settings.commands_per_second))},
        on_result=CommandResults(
            outbox, calendar=calendar, policy=settings.closed_period_policy, clock=lambda: datetime.now(UTC)
        ),
        concurrency=settings.command_concurrency,
        retry=RetryPolicy(max_attempts=settings.command_attempts),
    )

    async def sweep() -> None:
        while not host.stop.is_set():
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await holds.sweep(conn, outbox)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("sweeping decided holds failed, will retry: %s", exc)
            await _wait(host.stop, settings.hold_sweep_seconds)

    async def summarize() -> None:
        while not host.stop.is_set():
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await summaries.close_batches(
                        conn,
                        schema,
                        today=datetime.now(UTC).date(),
                        grace_days=settings.summary_grace_days,
                        prefix=settings.external_id_prefix,
                    )
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("closing summary batches failed, will retry: %s", exc)
            await _wait(host.stop, settings.summary_job_seconds)

    tasks = [
        asyncio.create_task(host.run(), name="host"),
        asyncio.create_task(worker.run(), name="commands"),
        asyncio.create_task(
            run_poller(poller, host.stop.is_set, lambda s: _wait(host.stop, s), settings.period_poll_seconds),
            name="periods",
        ),
        asyncio.create_task(sweep(), name="holds"),
        *([asyncio.create_task(summarize(), name="summaries")] if summarized else []),
    ]
    try:
        # Any part ending ends the process: a half-running connector is worse than a restart.
        done, _ = await asyncio.wait([*tasks, asyncio.create_task(host.stop.wait())], return_when="FIRST_COMPLETED")
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        host.stop.set()
        worker.stop()  # calls in flight finish and record their outcome; nothing new is claimed
        _, pending = await asyncio.wait(tasks, timeout=runtime_settings.shutdown_timeout + 5)
        for task in pending:
            task.cancel()
        await http.aclose()
        codec.close()
        await pool.close()
        log.info("erp connector stopped")


def cli() -> int:
    setup_logging()
    setup_tracing("erp_connector")
    try:
        settings = ErpConnectorSettings()  # type: ignore[call-arg]
    except (ValidationError, SettingsError) as exc:
        log.error(
            "the ERP connector's settings are not usable; fix these environment variables (a lower-case name "
            "is ACCORD_ERP_<NAME>; JSON objects for TOPICS, BASE_CURRENCIES, ACCOUNTS, RATES): %s",
            exc,
        )
        return 2
    try:
        asyncio.run(main(settings))
    except (ConfigurationError, EncodeError) as exc:
        # A subject not registered, a bad mapping: a diagnosis, not a stack trace.
        log.error("the ERP connector cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
