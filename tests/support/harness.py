"""Running the ledger service's runtime in the test process, on the real Kafka, PostgreSQL and registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from accord.events import Event
from accord.runtime import OutboxRelay, PostgresStore, RetryPolicy, Runtime, consumer_config, dlq_topic, producer_config
from accord.serde import EventCodec
from tests.support import ledger


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


@dataclass
class Harness:
    bootstrap: str
    db_url: str
    codec: EventCodec
    in_topic: str
    out_topic: str
    group: str
    schema: str = "ledger"
    pool: asyncpg.Pool | None = None
    producers: list[Producer] = field(default_factory=list)

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(self.db_url, min_size=1, max_size=6)
        self.store = PostgresStore(self.pool, self.schema)
        await self.store.migrate()
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(dlq_topic(self.group), num_partitions=1, replication_factor=1)])[
            dlq_topic(self.group)
        ].result(timeout=30)
        self.service = ledger.make_service(self.group, self.in_topic, self.out_topic)
        self.runtime = Runtime(
            self.service,
            store=self.store,
            codec=self.codec,
            producer=self.producer(),
            retry=RetryPolicy(attempts=2),
            sleep=no_sleep,
        )

    async def close(self) -> None:
        for p in self.producers:
            p.flush(10)
        self.producers.clear()  # let librdkafka's clients go before the broker does
        if self.pool is not None:
            await self.pool.close()

    def producer(self) -> Producer:
        p = Producer(producer_config(self.bootstrap))
        self.producers.append(p)
        return p

    def produce(
        self,
        events: Sequence[Event],
        *,
        raw: Sequence[tuple[bytes, bytes]] = (),
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        p = self.producer()
        for event in events:
            p.produce(
                self.in_topic,
                key=event.key().encode(),
                value=self.codec.encode(self.in_topic, event),
                headers=list(headers or []),
            )
        for key, value in raw:
            p.produce(self.in_topic, key=key, value=value)
        assert p.flush(30) == 0

    async def run_until(self, done: Callable[[], Awaitable[bool]], *, timeout: float = 60) -> None:
        """Run the consumer loop (and a relay) until `done()` holds; fails the test after `timeout`."""
        consumer = Consumer(consumer_config(self.bootstrap, self.group))
        consumer.subscribe([self.in_topic])
        stop = asyncio.Event()
        assert self.pool is not None
        relay = OutboxRelay(self.pool, self.schema, self.producer(), service=self.group, poll_interval=0.2)
        tasks = [
            asyncio.create_task(self.runtime.run(consumer, stop, poll_timeout=0.2)),
            asyncio.create_task(relay.run(stop)),
        ]
        deadline = time.monotonic() + timeout
        try:
            while not await done():
                for task in tasks:
                    if task.done():
                        task.result()  # surfaces the exception of a task that died
                assert time.monotonic() < deadline, "condition not reached in time"
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await asyncio.to_thread(consumer.close)

    # -- what happened ------------------------------------------------------------------------------

    async def state(self, key: str) -> dict[str, Any] | None:
        assert self.pool is not None
        row = await self.pool.fetchval(
            f"SELECT data FROM {self.schema}.aggregate_state WHERE aggregate = 'usage' AND key = $1", key
        )
        import json

        return json.loads(row) if row is not None else None

    async def count(self, table: str) -> int:
        assert self.pool is not None
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {self.schema}.{table}"))

    def read_topic(self, topic: str, *, min_count: int = 0, timeout: float = 20) -> list[Message]:
        """Every record of `topic` (all partitions), waiting until at least `min_count` are there."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": 3,
            }
        )
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
        out: list[Message] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                        if len(at_end) == len(metadata.partitions) and len(out) >= min_count:
                            break
                    continue
                at_end.discard(msg.partition())
                out.append(msg)
        finally:
            consumer.close()
        return out

    def committed(self) -> dict[int, int]:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "log_level": 3})
        try:
            metadata = consumer.list_topics(self.in_topic, timeout=10).topics[self.in_topic]
            tps = consumer.committed([TopicPartition(self.in_topic, p) for p in metadata.partitions], timeout=10)
        finally:
            consumer.close()
        # A partition the group never committed on (nothing was ever in it) counts as position 0.
        return {tp.partition: max(tp.offset, 0) for tp in tps}

    def end_offsets(self) -> dict[int, int]:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"w-{uuid.uuid4()}", "log_level": 3})
        try:
            metadata = consumer.list_topics(self.in_topic, timeout=10).topics[self.in_topic]
            return {
                p: consumer.get_watermark_offsets(TopicPartition(self.in_topic, p), timeout=10)[1]
                for p in metadata.partitions
            }
        finally:
            consumer.close()


def start_service(
    h: Harness, registry_url: str, log: Path, crash: str = "", **env_extra: str
) -> subprocess.Popen[bytes]:
    """The ledger service as its own process (tests/support/ledger_service.py), logging to `log`."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": h.bootstrap,
        "DATABASE_URL": h.db_url,
        "SCHEMA_REGISTRY_URL": registry_url,
        "ACCORD_TEST_IN": h.in_topic,
        "ACCORD_TEST_OUT": h.out_topic,
        "ACCORD_TEST_GROUP": h.group,
        "ACCORD_TEST_CRASH": crash,
        **env_extra,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.ledger_service"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
