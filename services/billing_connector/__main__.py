"""Wiring only: one process for both directions of billing, until SIGTERM.

Inbound: the webhook endpoint and the catch-up poller (billing events → canonical events in the outbox).
Outbound: the provisioning consumer (requests, and the reconciler's repair requests → commands, accord.runtime)
and the command worker (commands → billing calls → answers in the outbox, accord.commands). The outbox relay
publishes both directions' events.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

import asyncpg
import httpx
import uvicorn
from confluent_kafka import Consumer, Producer

from accord.commands import CommandWorker, RetryPolicy, TokenBucket, migrate_commands
from accord.events import EVENTS, ProvisioningCompleted, ProvisioningFailed
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

from .app import BillingConnectorSettings, billing_source, create_app
from .executor import BillingApi, ProvisioningExecutor
from .handlers import on_result, service
from .poller import CatchUpPoller
from .provisioning import REQUEST_TOPIC
from .repairs import REDRIVE_KIND, RedriveExecutor, with_repairs
from .repairs import on_result as with_redrives
from .store import SCHEMA, migrate_all

log = logging.getLogger("accord_billing_connector")


async def main(settings: BillingConnectorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await asyncpg.create_pool(settings.database_url, min_size=2, max_size=settings.command_concurrency * 2 + 8)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate_all(conn, schema=SCHEMA)
        await migrate_commands(conn, schema=SCHEMA)
    reply_topic = settings.topic(REQUEST_TOPIC)
    codec = EventCodec.connect(settings.schema_registry_url)
    # Schema ids looked up now: encoding inside a transaction never waits on HTTP.
    codec.warm_up(
        [(settings.topic(cls.TOPIC), cls) for cls in EVENTS.values() if cls.OWNER == "billing"]
        + [(reply_topic, ProvisioningCompleted), (reply_topic, ProvisioningFailed)]
    )
    kafka = settings.kafka_config

    # Inbound: webhooks and catch-up.
    secrets = settings.secrets
    app = create_app(
        pool=pool, codec=codec, secrets=secrets, tolerance=settings.webhook_tolerance_seconds, topics=settings.topics
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning", lifespan="off")
    )
    client = httpx.AsyncClient(
        base_url=settings.api_url,
        headers={"Authorization": f"Bearer {settings.api_key.get_secret_value()}"},
        timeout=settings.http_timeout_seconds,
    )
    poller = CatchUpPoller(
        pool=pool, schema=SCHEMA, source=billing_source(SCHEMA, settings.topics), codec=codec, client=client
    )

    # Outbound: requests → commands (one transaction per batch), commands → billing → answers; the reconciler's
    # repair requests → re-drive commands → the documents read back into the outbox (repairs.py).
    consumed = with_repairs(service(name=settings.consumer_group, topics=settings.topics), topics=settings.topics)
    ensure_topic(settings.kafka_bootstrap_servers, settings.kafka_config, dlq_topic(consumed.group))
    dlq_producer = Producer(producer_config(settings.kafka_bootstrap_servers, kafka))
    relay_producer = Producer(producer_config(settings.kafka_bootstrap_servers, kafka))
    consumer = Consumer(consumer_config(settings.kafka_bootstrap_servers, consumed.group, kafka))
    consumer.subscribe(list(consumed.topics))
    runtime = Runtime(consumed, store=PostgresStore(pool, SCHEMA), codec=codec, producer=dlq_producer)
    bucket = TokenBucket(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
    api = BillingApi(client, bucket=bucket)
    answers = on_result(SCHEMA, codec.encode, reply_topic=reply_topic, clock=lambda: datetime.now(UTC))
    worker = CommandWorker(
        pool,
        SCHEMA,
        executors={"billing": ProvisioningExecutor(api, pool=pool), f"billing/{REDRIVE_KIND}": RedriveExecutor(api)},
        on_result=with_redrives(SCHEMA, codec, topics=settings.topics, otherwise=answers),
        retry=RetryPolicy(max_attempts=settings.command_max_attempts, base=settings.command_retry_base_seconds),
        concurrency=settings.command_concurrency,
        call_timeout=settings.command_timeout_seconds,
    )
    relay = OutboxRelay(pool, SCHEMA, relay_producer, service="billing")

    tasks = [
        asyncio.create_task(server.serve(), name="http"),
        asyncio.create_task(every(stop, settings.poll_interval_seconds, poller.run_once), name="catch-up"),
        asyncio.create_task(runtime.run(consumer, stop, batch_size=settings.batch_size), name="consumer"),
        asyncio.create_task(every(stop, 1.0, runtime.retry_parked), name="parked"),
        asyncio.create_task(worker.run(), name="commands"),
        asyncio.create_task(relay.run(stop), name="relay"),
    ]
    log.info("billing connector running (consuming %s as %s)", ",".join(consumed.topics), consumed.group)
    try:
        # A task that dies takes the process down with it: a half-running connector is worse than a restart.
        done, _ = await asyncio.wait([*tasks, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        # SIGTERM: the consumer finishes its batch and commits, calls in flight finish, nothing new starts.
        stop.set()
        server.should_exit = True
        worker.stop()
        _, pending = await asyncio.wait(tasks, timeout=settings.shutdown_timeout_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.to_thread(consumer.close)
        await asyncio.to_thread(dlq_producer.flush, 5)
        await asyncio.to_thread(relay_producer.flush, 5)
        await client.aclose()
        codec.close()
        await pool.close()
        log.info("billing connector stopped")


def run() -> None:
    setup_logging()
    settings = load_settings(BillingConnectorSettings, service="billing connector", env="ACCORD_BILLING_<NAME>")
    setup_tracing("billing_connector")
    asyncio.run(main(settings))


if __name__ == "__main__":
    run()
