"""The broker the stack starts is a real Apache Kafka: ordering per key, consumer groups, transactions."""

from __future__ import annotations

import asyncio
import collections
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

pytestmark = pytest.mark.kafka

RECORDS = 10_000
KEYS = 50


def consume_all(bootstrap: str, topic: str, group: str, expected: int, **config: str) -> list[tuple[str, int, int]]:
    """(key, value, partition) for every record, in the order the consumer group delivered them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe([topic])
    seen: list[tuple[str, int, int]] = []
    idle = 0
    try:
        while len(seen) < expected and idle < 20:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error():
                    assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                    continue
                seen.append((msg.key().decode(), int(msg.value()), msg.partition()))
            if batch:
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return seen


def test_ten_thousand_records_come_back_in_order_per_key(kafka_bootstrap: str, topic_factory, group_id: str) -> None:
    topic = topic_factory(partitions=6)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(topic, key=f"customer-{i % KEYS}", value=str(i))
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0

    seen = consume_all(kafka_bootstrap, topic, group_id, RECORDS)

    assert len(seen) == RECORDS
    per_key: dict[str, list[int]] = collections.defaultdict(list)
    partitions_of_key: dict[str, set[int]] = collections.defaultdict(set)
    for key, value, partition in seen:
        per_key[key].append(value)
        partitions_of_key[key].add(partition)
    assert len(per_key) == KEYS
    for key, values in per_key.items():
        assert values == sorted(values), f"{key} delivered out of order"
        assert len(partitions_of_key[key]) == 1, f"{key} spread over partitions {partitions_of_key[key]}"
    assert len({p for _, _, p in seen}) > 1, "keys should spread over several partitions"

    # The group committed its position: a second consumer in the same group has nothing left to read.
    assert consume_all(kafka_bootstrap, topic, group_id, 1) == []

    # A second, independent client library sees exactly the same records per partition.
    async def read_with_aiokafka() -> list[tuple[str, int, int]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"{group_id}-aiokafka",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out: list[tuple[str, int, int]] = []
        try:
            while len(out) < RECORDS:
                batches = await consumer.getmany(timeout_ms=2000, max_records=2000)
                if not batches:
                    break
                for tp, messages in batches.items():
                    out.extend((m.key.decode(), int(m.value), tp.partition) for m in messages)
        finally:
            await consumer.stop()
        return out

    other = asyncio.run(read_with_aiokafka())
    assert sorted(other) == sorted(seen)
    for partition in {p for _, _, p in seen}:
        assert [r for r in other if r[2] == partition] == [r for r in seen if r[2] == partition]


def test_transactions_show_committed_records_and_hide_aborted_ones(kafka_bootstrap: str, topic_factory) -> None:
    topic = topic_factory(partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"test-{uuid.uuid4()}"})
    producer.init_transactions(30)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key="k", value=f"committed-{i}")
    producer.commit_transaction(30)

    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, key="k", value=f"aborted-{i}")
    # Flush first so the aborted records really reach the log (abort alone purges what is still queued).
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    producer.produce(topic, key="k", value="committed-last")
    producer.commit_transaction(30)

    def read(isolation: str) -> list[str]:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"g-{uuid.uuid4()}",
                "auto.offset.reset": "earliest",
                "isolation.level": isolation,
                "enable.partition.eof": True,
            }
        )
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[str] = []
        try:
            while True:
                msg = consumer.poll(10)
                assert msg is not None, "no end of partition within 10 s"
                if msg.error():
                    assert msg.error().code() == KafkaError._PARTITION_EOF
                    break
                values.append(msg.value().decode())
        finally:
            consumer.close()
        return values

    committed = [f"committed-{i}" for i in range(5)] + ["committed-last"]
    assert read("read_committed") == committed
    uncommitted = read("read_uncommitted")
    assert [v for v in uncommitted if v.startswith("aborted")] == [f"aborted-{i}" for i in range(5)]
