"""Wiring only: the webhook endpoint, the catch-up poller and the outbox relay, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import asyncpg
import httpx
import uvicorn
from confluent_kafka import Producer

from accord.events import EVENTS
from accord.runtime import OutboxRelay, producer_config, setup_logging
from accord.serde import EventCodec

from .app import BillingConnectorSettings, billing_source, create_app
from .poller import CatchUpPoller
from .store import SCHEMA, migrate_all


async def main(settings: BillingConnectorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await asyncpg.create_pool(settings.database_url, min_size=2, max_size=6)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate_all(conn, schema=SCHEMA)
    codec = EventCodec.connect(settings.schema_registry_url)
    # Schema ids looked up now: encoding inside an ingest transaction never waits on HTTP.
    codec.warm_up((cls.TOPIC, cls) for cls in EVENTS.values() if cls.OWNER == "billing")
    secrets = [s.get_secret_value() for s in settings.webhook_secrets]
    app = create_app(pool=pool, codec=codec, secrets=secrets, tolerance=settings.webhook_tolerance_seconds)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning"))
    relay = OutboxRelay(pool, SCHEMA, Producer(producer_config(settings.kafka_bootstrap_servers)), service="billing")
    client = httpx.AsyncClient(
        base_url=settings.api_url, headers={"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    )
    poller = CatchUpPoller(pool=pool, schema=SCHEMA, source=billing_source(), codec=codec, client=client)

    async def poll() -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError, asyncpg.PostgresError, OSError):
                await poller.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.poll_interval_seconds)

    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(server.serve()), asyncio.create_task(poll())]
    await stop.wait()
    server.should_exit = True
    await asyncio.wait(tasks, timeout=10)
    await client.aclose()
    codec.close()
    await pool.close()


if __name__ == "__main__":
    setup_logging()
    asyncio.run(main(BillingConnectorSettings()))  # type: ignore[call-arg]
