"""The `_schemas` topic holds Confluent's record format, and records written by others are read (or skipped)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.integration.registry.registry_procs import RegistryCluster

pytestmark = pytest.mark.kafka

SCHEMA = json.dumps(
    {"type": "record", "name": "Paid", "namespace": "accord.fmt", "fields": [{"name": "id", "type": "string"}]}
)


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes, bytes | None]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fmt-{uuid.uuid4().hex[:6]}"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[tuple[bytes, bytes | None]] = []
        while len(out) < high:
            msg = consumer.poll(10)
            assert msg is not None and msg.error() is None
            out.append((msg.key() or b"", msg.value()))
        return out
    finally:
        consumer.close()


def test_records_are_in_confluent_format(registry_cluster: RegistryCluster, kafka_bootstrap: str) -> None:
    registry = registry_cluster.start()
    with httpx.Client(base_url=registry.url, timeout=30) as http:
        assert http.post("/subjects/fmt-value/versions", json={"schema": SCHEMA}).json() == {"id": 1}
        http.put("/config/fmt-value", json={"compatibility": "FULL"})
        http.put("/config", json={"compatibility": "FORWARD"})
        http.delete("/subjects/fmt-value")
        http.delete("/subjects/fmt-value", params={"permanent": "true"})
    records = read_topic(kafka_bootstrap, registry_cluster.topic)
    assert records == [
        (
            b'{"keytype":"SCHEMA","subject":"fmt-value","version":1,"magic":1}',
            json.dumps(
                {
                    "subject": "fmt-value",
                    "version": 1,
                    "id": 1,
                    "schema": SCHEMA.replace(", ", ",").replace(": ", ":"),
                    "deleted": False,
                },
                separators=(",", ":"),
            ).encode(),
        ),
        (b'{"keytype":"CONFIG","subject":"fmt-value","magic":0}', b'{"compatibilityLevel":"FULL"}'),
        (b'{"keytype":"CONFIG","subject":null,"magic":0}', b'{"compatibilityLevel":"FORWARD"}'),
        (b'{"keytype":"DELETE_SUBJECT","subject":"fmt-value","magic":0}', b'{"subject":"fmt-value","version":1}'),
        (b'{"keytype":"SCHEMA","subject":"fmt-value","version":1,"magic":1}', None),
        (b'{"keytype":"CONFIG","subject":"fmt-value","magic":0}', None),
    ]


def test_records_written_by_others_are_read_and_poison_is_skipped(
    registry_cluster: RegistryCluster, kafka_bootstrap: str
) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    topic = registry_cluster.topic
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(timeout=30)
    karapace_key = b'{"subject":"other-value","version":1,"magic":1,"keytype":"SCHEMA"}'  # Karapace's old order
    value = {"subject": "other-value", "version": 1, "id": 7, "schema": '"string"', "deleted": False}
    producer.produce(topic, key=b"not json at all", value=b"{}")
    producer.produce(topic, key=karapace_key, value=json.dumps(value).encode())
    producer.produce(topic, key=b'{"keytype":"SCHEMA","subject":"x","version":1,"magic":1}', value=b"[1,2]")
    producer.produce(topic, key=b'{"keytype":"NOOP","magic":0}', value=None)
    producer.produce(
        topic, key=b'{"keytype":"CONFIG","subject":null,"magic":0}', value=b'{"compatibilityLevel":"FULL"}'
    )
    assert producer.flush(30) == 0

    registry = registry_cluster.start()
    with httpx.Client(base_url=registry.url, timeout=30) as http:
        assert http.get("/subjects").json() == ["other-value"]
        assert http.get("/schemas/ids/7").json() == {"schema": '"string"'}
        assert http.get("/config").json() == {"compatibilityLevel": "FULL"}
        # ids continue after the highest one seen in the topic
        created = http.post("/subjects/next-value/versions", json={"schema": SCHEMA})
        assert created.json() == {"id": 8}
    assert "skipping record" in registry.log.read_text()
