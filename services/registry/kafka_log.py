"""The `_schemas` topic as the registry's log: a reader thread that applies records, a producer for writes.

The reader assigns itself the topic's single partition from the beginning (no consumer group: every
instance reads everything) and hands each batch to the event loop, which applies it to `State`; so state
is only ever changed on the loop's thread and request handlers never see half a record.

Poison-record policy: a record that is not in the format of `records` is logged with its offset and
skipped; the offset still moves, so the registry makes progress (as Karapace does).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from . import records
from .errors import RegistryError
from .state import State

log = logging.getLogger("accord_registry.log")


def ensure_topic(bootstrap: str, topic: str, replication_factor: int, *, timeout: float = 30.0) -> None:
    """Create the topic (one partition, compacted) unless it exists."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=timeout)
    if topic in metadata.topics and not metadata.topics[topic].error:
        return
    futures = admin.create_topics(
        [
            NewTopic(
                topic,
                num_partitions=1,
                replication_factor=replication_factor,
                config={"cleanup.policy": "compact"},
            )
        ]
    )
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


class KafkaLog:
    """Implements `registry.Log` over a Kafka topic."""

    def __init__(self, state: State, bootstrap: str, topic: str, *, write_timeout: float) -> None:
        self.state = state
        self.bootstrap = bootstrap
        self.topic = topic
        self.write_timeout = write_timeout
        #: offset of the last record applied to `state` (-1: none yet)
        self.applied = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "accord-registry-reader-unused",  # assign() only: no group is joined
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "fetch.wait.max.ms": 50,
            }
        )
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._watermarks = Consumer({"bootstrap.servers": bootstrap, "group.id": "accord-registry-watermarks"})
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 0,
            }
        )

    # -- start-up -----------------------------------------------------------------------------

    def end_offset(self, timeout: float = 10.0) -> int:
        """The offset the next record will get (the high watermark), asked of the broker now."""
        _, high = self._watermarks.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=timeout, cached=False)
        return int(high)

    def replay(self, timeout: float) -> int:
        """Read and apply everything up to the current end of the topic, before serving; return the count."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                end = self.end_offset()
                break
            except KafkaException as exc:  # a topic created a moment ago may not be in the metadata yet
                if time.monotonic() > deadline:
                    raise RegistryError(500, 50002, f"cannot read the end of {self.topic}: {exc}") from exc
                time.sleep(0.2)
        count = 0
        while self.applied < end - 1:
            if time.monotonic() > deadline:
                raise RegistryError(
                    500, 50002, f"replaying {self.topic} timed out at offset {self.applied} of {end - 1}"
                )
            batch = self._consumer.consume(num_messages=1000, timeout=0.2)
            self._apply_batch(batch)
            count += len(batch)
        return count

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow the topic in a thread from here on, applying batches on `loop`."""
        self._loop = loop
        self._thread = threading.Thread(target=self._follow, name="registry-log-reader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._producer.flush(5)
        self._consumer.close()
        self._watermarks.close()

    # -- reading ------------------------------------------------------------------------------

    def _follow(self) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            try:
                # poll returns on the first record (consume would wait out its timeout for a full batch),
                # then whatever else is already fetched comes along without waiting
                first = self._consumer.poll(0.2)
                batch = [first, *self._consumer.consume(num_messages=500, timeout=0)] if first is not None else []
            except KafkaException as exc:
                log.warning("reading %s failed, retrying: %s", self.topic, exc)
                time.sleep(0.5)
                continue
            if batch:
                try:
                    self._loop.call_soon_threadsafe(self._apply_batch, batch)
                except RuntimeError:  # the loop is closed: we are shutting down
                    return

    def _apply_batch(self, batch: list[Message]) -> None:
        for msg in batch:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("error reading %s: %s", self.topic, error)
                continue
            offset = msg.offset()
            assert offset is not None
            try:
                key, value = records.decode(msg.key(), msg.value())
                self.state.apply(key, value)
            except records.BadRecord as exc:
                log.warning("skipping record at %s[0]@%d: %s", self.topic, offset, exc)
            self.applied = offset
        self._wake()

    def _wake(self) -> None:
        still = []
        for offset, future in self._waiters:
            if self.applied >= offset:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((offset, future))
        self._waiters = still

    async def wait_applied(self, offset: int) -> None:
        if self.applied >= offset:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((offset, future))
        try:
            await asyncio.wait_for(future, self.write_timeout)
        except TimeoutError:
            raise RegistryError(
                500,
                50002,
                f"the registry did not read offset {offset} of {self.topic} back within {self.write_timeout:.0f}s",
            ) from None

    # -- registry.Log -------------------------------------------------------------------------

    async def sync(self) -> None:
        end = await asyncio.to_thread(self.end_offset)
        await self.wait_applied(end - 1)

    async def append(self, key: bytes, value: bytes | None) -> None:
        offset = await asyncio.to_thread(self._produce, key, value)
        await self.wait_applied(offset)

    def _produce(self, key: bytes, value: bytes | None) -> int:
        delivered: list[Message] = []
        failures: list[KafkaError] = []

        def done(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(err)
            else:
                delivered.append(msg)

        callback: Callable[[KafkaError | None, Message], None] = done
        self._producer.produce(self.topic, key=key, value=value, on_delivery=callback)
        self._producer.flush(self.write_timeout)
        if failures:
            raise RegistryError(500, 50001, f"writing to {self.topic} failed: {failures[0]}")
        if not delivered:
            raise RegistryError(500, 50002, f"writing to {self.topic} timed out after {self.write_timeout:.0f}s")
        offset = delivered[0].offset()
        assert offset is not None
        return offset
