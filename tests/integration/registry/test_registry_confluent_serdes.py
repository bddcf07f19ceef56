"""confluent-kafka's own SchemaRegistryClient, AvroSerializer and AvroDeserializer against accord's registry."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.registry.registry_procs import RegistryCluster

pytestmark = pytest.mark.kafka

V1 = {
    "type": "record",
    "name": "InvoiceIssued",
    "namespace": "accord.billing",
    "fields": [{"name": "invoice_id", "type": "string"}, {"name": "amount_minor", "type": "long"}],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "currency", "type": "string", "default": "EUR"}]}  # type: ignore[list-item]


def test_produce_with_auto_registration_consume_with_an_older_reader(
    registry_cluster: RegistryCluster, kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str
) -> None:
    registry = registry_cluster.start()
    with SchemaRegistryClient({"url": registry.url}) as client, SchemaRegistryClient({"url": registry.url}) as other:
        check_serdes(client, other, kafka_bootstrap, topic_factory(partitions=1), group_id)


def check_serdes(
    client: SchemaRegistryClient, other: SchemaRegistryClient, kafka_bootstrap: str, topic: str, group_id: str
) -> None:
    value = SerializationContext(topic, MessageField.VALUE)
    write_v1 = AvroSerializer(client, json.dumps(V1), conf={"auto.register.schemas": True})
    write_v2 = AvroSerializer(client, json.dumps(V2), conf={"auto.register.schemas": True})

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    sent = [{"invoice_id": f"inv-{i}", "amount_minor": 100 * i} for i in range(3)]
    for event in sent:
        producer.produce(topic, value=write_v1(event, value))
    sent_v2 = [{"invoice_id": f"inv-{i}", "amount_minor": 100 * i, "currency": "USD"} for i in range(3, 6)]
    for event in sent_v2:
        producer.produce(topic, value=write_v2(event, value))
    assert producer.flush(30) == 0

    subject = f"{topic}-value"
    assert client.get_subjects().count(subject) == 1
    assert client.get_versions(subject) == [1, 2]
    latest = client.get_latest_version(subject)
    assert latest.version == 2 and json.loads(latest.schema.schema_str) == V2

    # a consumer still on the older schema reads both versions' events as v1
    read_as_v1 = AvroDeserializer(client, json.dumps(V1))
    read_as_written = AvroDeserializer(other)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group_id, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received = []
    try:
        while len(received) < 6:
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(received)} of 6 events arrived"
            assert msg.error() is None, msg.error()
            received.append(msg.value())
    finally:
        consumer.close()
    assert [read_as_v1(raw, value) for raw in received] == sent + [
        {k: v for k, v in e.items() if k != "currency"} for e in sent_v2
    ]
    as_written = [read_as_written(raw, value) for raw in received]
    assert as_written[3:] == sent_v2
    assert as_written[0] == sent[0]  # v1 data read with its own (writer) schema has no currency


def test_client_registry_calls_and_errors(registry_cluster: RegistryCluster) -> None:
    registry = registry_cluster.start()
    with SchemaRegistryClient({"url": registry.url}) as client:
        check_client_calls(client)


def check_client_calls(client: SchemaRegistryClient) -> None:
    schema = Schema(json.dumps(V1), "AVRO")
    schema_id = client.register_schema("c-value", schema)
    assert client.lookup_schema("c-value", schema).schema_id == schema_id
    assert json.loads(client.get_schema(schema_id).schema_str) == V1
    assert client.test_compatibility("c-value", Schema(json.dumps(V2), "AVRO")) is True
    assert client.set_compatibility("c-value", "FULL")["compatibility"] == "FULL"
    assert client.get_compatibility("c-value") == "FULL"
    with pytest.raises(SchemaRegistryError) as exc:
        client.get_version("c-value", 9)
    assert exc.value.http_status_code == 404 and exc.value.error_code == 40402
    with pytest.raises(SchemaRegistryError) as exc:
        client.register_schema("c-value", Schema(json.dumps({**V1, "fields": [{"name": "x", "type": "int"}]}), "AVRO"))
    assert exc.value.error_code == 409
    assert client.delete_subject("c-value") == [1]
    assert client.delete_subject("c-value", permanent=True) == [1]
    assert "c-value" not in client.get_subjects()
