"""Small Kafka helpers the operator commands share: read a topic to its end, make sure a topic exists."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from accord.errors import AccordError


class OpsError(AccordError):
    """An operator command cannot do what it was asked; the message says what to change."""


def partitions_of(admin: AdminClient, topic: str, *, timeout: float = 15.0) -> list[int]:
    """The partition ids of `topic`; OpsError naming the topic when it does not exist."""
    metadata = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise OpsError(f"topic {topic!r} does not exist on this cluster (check the name, or `accord topics list`)")
    return sorted(metadata.partitions)


def topic_exists(admin: AdminClient, topic: str, *, timeout: float = 15.0) -> bool:
    metadata = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
    return metadata is not None and metadata.error is None and bool(metadata.partitions)


def ensure_topic(
    admin: AdminClient, topic: str, *, partitions: int = 1, config: Mapping[str, str] | None = None
) -> bool:
    """Create `topic` if it is missing; True when this call created it."""
    if topic_exists(admin, topic):
        return False
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=-1, config=dict(config or {}))]
    )[topic]
    try:
        future.result(timeout=30)
    except KafkaException as exc:
        # Another operator may have created it since we looked: that is the outcome we wanted.
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        return False
    # Created is not yet usable: wait (bounded) until every partition has a leader in the metadata.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metadata = admin.list_topics(topic=topic, timeout=15).topics.get(topic)
        if metadata is not None and metadata.partitions and all(p.leader >= 0 for p in metadata.partitions.values()):
            break
        time.sleep(0.1)
    return True


def read_to_end(
    config: Mapping[str, Any],
    topic: str,
    *,
    start: Mapping[int, int] | None = None,
    timeout: float = 30.0,
) -> list[Message]:
    """Every committed record of `topic` from `start` (partition → offset; default the beginning) to its end.

    A throw-away consumer with no group commits: reading never moves anyone's offsets. The end is the
    end when reading began (partition EOF), so records arriving meanwhile may or may not be included.
    """
    consumer = Consumer(
        {
            **config,
            "group.id": f"accord-ops-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(topic=topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise OpsError(f"topic {topic!r} does not exist on this cluster")
        wanted = sorted(metadata.partitions) if start is None else sorted(start)
        assignment = []
        for partition in wanted:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
            offset = OFFSET_BEGINNING if start is None else max(start[partition], low)
            if high <= (low if start is None else offset):
                continue  # nothing to read there
            assignment.append(TopicPartition(topic, partition, offset))
        if not assignment:
            return []
        consumer.assign(assignment)
        pending = {tp.partition for tp in assignment}
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise OpsError(
                    f"reading {topic!r} did not reach its end within {timeout:g} s "
                    f"(partitions {sorted(pending)} still behind); is the broker reachable?"
                )
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition() or 0)
                    continue
                raise OpsError(f"reading {topic!r} failed: {error.str()}")
            records.append(message)
        return records
    finally:
        consumer.close()


def read_one(
    config: Mapping[str, Any], topic: str, partition: int, offset: int, *, timeout: float = 30.0
) -> Message | None:
    """The record at `topic`[`partition`]@`offset`, or None when there is none (past the end, or removed)."""
    consumer = Consumer(
        {
            **config,
            "group.id": f"accord-ops-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "latest",  # an offset removed by retention is not silently replaced
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        if not low <= offset < high:
            return None
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return None
                raise OpsError(f"reading {topic}[{partition}]@{offset} failed: {error.str()}")
            return message if message.offset() == offset else None
        raise OpsError(f"reading {topic}[{partition}]@{offset} got no answer within {timeout:g} s")
    finally:
        consumer.close()
