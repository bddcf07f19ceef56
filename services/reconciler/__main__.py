"""Wiring only: the casework tables, then the standard host with the reconciler as its runtime."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from accord.casework import migrate_casework
from accord.events import DivergenceDetected, DivergenceResolved, ExceptionChanged, RepairRequested
from accord.runtime import PostgresStore, ServiceHost, schema_name, setup_logging, setup_tracing
from accord.serde import EventCodec

from .service import NAME, reconciler_runtime, service
from .settings import ReconcilerSettings

MIGRATIONS = Path(__file__).parent / "migrations"


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
