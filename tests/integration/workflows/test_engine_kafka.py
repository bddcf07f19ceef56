"""The engine as a runtime on a real Kafka topic (`WorkflowRuntime`, what the service host runs): a
redelivered record is one transition, an undecodable one goes to the dead-letter topic instead of stalling
the workflow, offsets are committed after the transaction, and timers fire on the host's periodic tick."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from accord.runtime import Service, consumer_config, dlq_topic, producer_config
from accord.serde import EventCodec
from accord.workflows import WorkflowEngine, workflow_runtime, workflow_topics
from tests.unit.workflows.activation import ACTIVATION

from .conftest import activated, customer, rows

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_events_from_kafka_drive_an_instance_once(
    engine: WorkflowEngine,
    pool: asyncpg.Pool,
    codec: EventCodec,
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    group_id: str,
) -> None:
    contracts = topic_factory(partitions=1, prefix="contracts")
    accounts = topic_factory(partitions=1, prefix="accounts")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # kept alive until the topic exists
    admin.create_topics([NewTopic(dlq_topic(group_id), num_partitions=1, replication_factor=1)])[
        dlq_topic(group_id)
    ].result(timeout=30)
    producer = Producer(producer_config(kafka_bootstrap))
    start, ready = activated("ctr-1", "acc-1"), customer("acc-1")
    producer.produce(contracts, key=start.key(), value=codec.encode(contracts, start))
    producer.produce(accounts, key=b"acc-1", value=b"not avro")  # poison: dead-lettered, never blocks
    assert producer.flush(30) == 0

    runtime = workflow_runtime([ACTIVATION])(
        Service(name=group_id, topics=[contracts, accounts], handlers={}),
        store=engine.store,
        codec=codec,
        producer=producer,
    )
    consumer = Consumer(consumer_config(kafka_bootstrap, group_id))
    consumer.subscribe([contracts, accounts])
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(consumer, stop, poll_timeout=0.2))

    async def step_is(step: str) -> bool:
        for _ in range(300):
            found = await rows(pool, "SELECT step FROM {s}.workflow_instances")
            if found and found[0]["step"] == step:
                return True
            await asyncio.sleep(0.1)
        return False

    try:
        # No order holds across topics: the customer is produced once the instance waits for it.
        assert await step_is("await-customer")
        ready_bytes = codec.encode(accounts, ready)
        producer.produce(accounts, key=ready.key(), value=ready_bytes)
        producer.produce(accounts, key=ready.key(), value=ready_bytes)  # the producer retried: a duplicate
        assert producer.flush(30) == 0
        assert await step_is("await-invoice")
    finally:
        stop.set()
        await task
        await asyncio.to_thread(consumer.close)
    instances = await rows(pool, "SELECT step, version FROM {s}.workflow_instances")
    history = await rows(pool, "SELECT cause FROM {s}.workflow_history ORDER BY id")
    assert instances == [{"step": "await-invoice", "version": 2}]
    assert [h["cause"] for h in history] == ["started", "event"]
    processed = await rows(pool, "SELECT topic FROM {s}.processed_events ORDER BY topic")
    assert sorted(p["topic"] for p in processed) == sorted([contracts, accounts])

    dlq = Consumer(consumer_config(kafka_bootstrap, f"{group_id}-dlq", {"auto.offset.reset": "earliest"}))
    dlq.subscribe([dlq_topic(group_id)])
    try:
        letters = [m for m in await asyncio.to_thread(dlq.consume, 10, 10) if m.error() is None]
    finally:
        await asyncio.to_thread(dlq.close)
    assert [m.value() for m in letters] == [b"not avro"]

    committed = await asyncio.to_thread(
        Consumer(consumer_config(kafka_bootstrap, group_id)).committed,
        [TopicPartition(contracts, 0), TopicPartition(accounts, 0)],
        10,
    )
    assert [tp.offset for tp in committed] == [1, 3]  # everything read was committed, after its transaction

    # The host's one-second tick (parked retries) also fires the engine's due timers.
    await pool.execute("UPDATE orchestrator.workflow_timers SET due_at = now() - interval '1 second'")
    assert await runtime.retry_parked() == 1
    assert [c["kind"] for c in await rows(pool, "SELECT kind FROM {s}.cases")] == ["invoice-sla-breached"]


def test_the_topics_to_subscribe_come_from_the_workflows() -> None:
    assert workflow_topics([ACTIVATION]) == ["billing.invoices", "crm.accounts", "crm.contracts", "q2c.exceptions"]
