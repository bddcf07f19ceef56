"""Wiring only: one process running the CRM webhook endpoint, the catch-up poller, the outbox relay, the billing
status consumer (with the reconciler's status re-syncs) and the write-back command worker, until SIGTERM (or SIGINT).

    python -m accord_crm_connector        # settings: app.CrmConnectorSettings (DATABASE_URL, ACCORD_CRM_…)
"""

from __future__ import annotations

import asyncio
import logging
import signal

import asyncpg
import httpx
import uvicorn
from confluent_kafka import Consumer, Producer

from accord.commands import CommandWorker, RetryPolicy, TokenBucket
from accord.events import EVENTS
from accord.ingest import migrate_ingest
from accord.runtime import (
    OutboxRelay,
    PostgresStore,
    Runtime,
    consumer_config,
    dlq_topic,
    ensure_topic,
    every,
    load_settings,
    producer_config,
    setup_logging,
    setup_tracing,
)
from accord.serde import EventCodec

from .app import SCHEMA, CrmConnectorSettings, create_app
from .crm_client import CrmClient
from .inbound import CrmInbound
from .repairs import service
from .status import KIND, SYSTEM
from .writeback import AccountStatusWriter

log = logging.getLogger("accord_crm_connector")


async def main(settings: CrmConnectorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    pool = await asyncpg.create_pool(settings.database_url, min_size=2, max_size=12)
    assert pool is not None
    store = PostgresStore(pool, SCHEMA)
    await store.migrate()  # the runtime's tables and the commands table
    async with pool.acquire() as conn:
        await migrate_ingest(conn, schema=SCHEMA)
    codec = EventCodec.connect(settings.schema_registry_url)
    topics = settings.topics
    # Schema ids looked up now: encoding inside an ingest transaction never waits on HTTP.
    codec.warm_up((topics.get(cls.TOPIC, cls.TOPIC), cls) for cls in EVENTS.values() if cls.OWNER == "crm")
    http = httpx.AsyncClient(base_url=settings.api_url, timeout=30)
    client = CrmClient(http, client_id=settings.client_id, client_secret=settings.client_secret.get_secret_value())
    inbound = CrmInbound(
        pool=pool,
        schema=SCHEMA,
        codec=codec,
        client=client,
        secrets=[s.get_secret_value() for s in settings.webhook_secrets],
        topics=topics,
        tolerance=settings.webhook_tolerance_seconds,
        start_replay_id=settings.start_replay_id,
    )
    status = service(settings.group, topics)
    await asyncio.to_thread(
        ensure_topic, settings.kafka_bootstrap_servers, settings.kafka_config, dlq_topic(status.group)
    )
    dlq_producer = Producer(producer_config(settings.kafka_bootstrap_servers, settings.kafka_config))
    relay_producer = Producer(producer_config(settings.kafka_bootstrap_servers, settings.kafka_config))
    consumer = Consumer(consumer_config(settings.kafka_bootstrap_servers, status.group, settings.kafka_config))
    consumer.subscribe(list(status.topics))
    runtime = Runtime(status, store=store, codec=codec, producer=dlq_producer)
    relay = OutboxRelay(pool, SCHEMA, relay_producer, service=status.name)
    worker = CommandWorker(
        pool,
        SCHEMA,
        executors={f"{SYSTEM}/{KIND}": AccountStatusWriter(client, pool, schema=SCHEMA)},
        rate_limits={SYSTEM: TokenBucket(rate=settings.write_rate, burst=max(1.0, settings.write_rate))},
        retry=RetryPolicy(max_attempts=settings.write_attempts, base=1.0, cap=60.0),
        concurrency=settings.write_concurrency,
    )
    ready = False
    app = create_app(inbound, ready=lambda: ready)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning", lifespan="off")
    )
    tasks = [
        asyncio.create_task(runtime.run(consumer, stop, batch_size=settings.batch_size), name="status-consumer"),
        asyncio.create_task(relay.run(stop), name="relay"),
        asyncio.create_task(inbound.run(stop, interval=settings.poll_interval_seconds), name="catch-up"),
        asyncio.create_task(worker.run(), name="write-back"),
        asyncio.create_task(every(stop, 1.0, runtime.retry_parked), name="parked"),
        asyncio.create_task(server.serve(), name="http"),
    ]
    ready = True
    log.info("crm connector running (schema %s, consuming %s)", SCHEMA, ",".join(status.topics))
    try:
        # A task that ends takes the process down: a half-running connector is worse than a restart.
        done, _ = await asyncio.wait([*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        ready = False
        stop.set()
        worker.stop()
        server.should_exit = True
        # SIGTERM: the consumer finishes the batch in hand and commits, calls in flight finish; then all closes.
        _, pending = await asyncio.wait(tasks, timeout=settings.shutdown_timeout)
        for task in pending:
            task.cancel()
        await asyncio.to_thread(consumer.close)
        await asyncio.to_thread(dlq_producer.flush, 5)
        await asyncio.to_thread(relay_producer.flush, 5)
        await http.aclose()
        codec.close()
        await pool.close()
        log.info("crm connector stopped")


def run() -> None:
    setup_logging()
    settings = load_settings(CrmConnectorSettings, service="crm connector", env="ACCORD_CRM_<NAME>")
    setup_tracing("crm_connector")
    asyncio.run(main(settings))


if __name__ == "__main__":
    run()
