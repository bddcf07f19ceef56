"""Wiring only: the casework tables, then the standard host with the reconciler as its runtime."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg

from accord.casework import migrate_casework
from accord.events import DivergenceDetected, DivergenceResolved, ExceptionChanged, RepairRequested
from accord.runtime import PostgresStore, ServiceHost, every, schema_name, setup_logging, setup_tracing
from accord.serde import EventCodec

from .engine import Reconciler
from .service import NAME, reconciler_runtime, service
from .settings import ReconcilerSettings, sources
from .staterun import last_until, state_run

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("accord_reconciler")


async def scheduled_runs(
    stop: asyncio.Event, pool: asyncpg.Pool, settings: ReconcilerSettings, codec: EventCodec
) -> None:
    """A state run every `state_run_seconds`, each reading what changed since the last one. A run that fails (a
    system unreachable) is logged and the next one tries again: the stream goes on meanwhile."""
    engine = Reconciler(
        schema=schema_name(settings.service_name), policy=settings.policy(), encode=codec.encode, topics=settings.topics
    )

    async def once() -> None:
        try:
            async with pool.acquire() as conn:
                since = await last_until(conn, engine.s)
            async with sources(settings) as readers:
                result = await state_run(pool, engine, readers, since=since, dry_run=settings.dry_run)
            log.info("state run %s", json.dumps(result.summary()))
        except Exception as exc:
            log.warning("state run failed, the next one tries again: %s: %s", type(exc).__name__, exc)

    await every(stop, settings.state_run_seconds, once)


async def main(settings: ReconcilerSettings) -> None:
    codec = EventCodec.connect(settings.schema_registry_url)
    # Schema ids looked up now: encoding inside a transaction never waits on HTTP.
    topics = settings.topics
    codec.warm_up(
        (topics.get(cls.TOPIC, cls.TOPIC), cls)
        for cls in (DivergenceDetected, DivergenceResolved, ExceptionChanged, RepairRequested)
    )
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        # the runtime's outbox first: cases write to it
        await PostgresStore(pool, schema_name(settings.service_name)).migrate()
        async with pool.acquire() as conn:
            await migrate_casework(conn, schema=schema_name(settings.service_name))
    finally:
        await pool.close()

    class ReconcilerHost(ServiceHost):
        runtime_class = reconciler_runtime(
            settings.policy(), dry_run=settings.dry_run, sweep_batch=settings.sweep_batch, topics=topics
        )

        def background(self, pool: asyncpg.Pool) -> dict[str, Coroutine[Any, Any, None]]:
            if not settings.state_run_seconds:
                return {}
            return {"state-runs": scheduled_runs(self.stop, pool, settings, codec)}

    host = ReconcilerHost(service(topics, name=settings.service_name), settings, codec, migrations=MIGRATIONS)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.stop.set)
    try:
        await host.run()
    finally:
        codec.close()


if __name__ == "__main__":
    setup_logging()
    setup_tracing(NAME)
    asyncio.run(main(ReconcilerSettings()))  # type: ignore[call-arg]
