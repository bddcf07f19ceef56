"""Wiring only: the workflow engine's tables, then the standard host with the engine as its runtime."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from accord.runtime import ServiceHost, schema_name, setup_logging, setup_tracing
from accord.serde import EventCodec
from accord.workflows import WorkflowEngine, workflow_runtime

from .settings import OrchestratorSettings
from .workflows import NAME, service, workflows

MIGRATIONS = Path(__file__).parent / "migrations"


async def main(settings: OrchestratorSettings) -> None:
    config = settings.hub()
    codec = EventCodec.connect(settings.schema_registry_url)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        await WorkflowEngine(workflows(config), pool=pool, schema=schema_name(NAME), encode=codec.encode).migrate()
    finally:
        await pool.close()

    class OrchestratorHost(ServiceHost):
        runtime_class = workflow_runtime(workflows(config))

    host = OrchestratorHost(service(config), settings, codec, migrations=MIGRATIONS)
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
    asyncio.run(main(OrchestratorSettings()))  # type: ignore[call-arg]
