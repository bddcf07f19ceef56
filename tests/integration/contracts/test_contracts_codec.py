"""The codec over real Kafka and the real registry: Confluent wire format, HTTP calls only at warm-up."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from accord.events import Event, InvoiceIssued, InvoiceVoided, PaymentCollected, PaymentFailed
from accord.events.samples import sample_datum, sample_event
from accord.schema_review import RegistryClient
from accord.serde import (
    Decoded,
    DecodeError,
    DecodeFailure,
    EncodeError,
    EventCodec,
    RegistryUnavailable,
)

pytestmark = pytest.mark.kafka

TYPES: list[type[Event]] = [InvoiceIssued, InvoiceVoided, PaymentCollected, PaymentFailed]


def register(registry_url: str, topic: str, types: list[type[Event]]) -> dict[type[Event], int]:
    with RegistryClient(registry_url) as client:
        return {t: client.register(t.subject(topic), t.SCHEMA) for t in types}


def consume_values(bootstrap: str, topic: str, group: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    idle = 0
    try:
        while len(values) < expected and idle < 20:
            batch = consumer.consume(num_messages=500, timeout=1.0)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error():
                    assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                    continue
                values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_events_travel_over_kafka_and_the_hot_path_makes_no_http_call(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    group_id: str,
    registry_url: str,
    counting_registry: Any,
    request: pytest.FixtureRequest,
) -> None:
    topic = topic_factory(partitions=3)
    ids = register(registry_url, topic, TYPES)
    events = [sample_event(TYPES[i % len(TYPES)], seed=i, minimal=i % 3 == 0) for i in range(400)]

    producer_codec = EventCodec.connect(counting_registry.url)
    request.addfinalizer(producer_codec.close)
    producer_codec.warm_up((topic, t) for t in TYPES)
    assert counting_registry.count == len(TYPES)  # one lookup per subject, then cached
    counting_registry.requests.clear()

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for value, event in zip(producer_codec.encode_batch(topic, events), events, strict=True):
        producer.produce(topic, key=event.key(), value=value)
    assert producer.flush(30) == 0
    assert counting_registry.requests == []  # encoding 400 events: no HTTP at all

    values = consume_values(kafka_bootstrap, topic, group_id, len(events))
    assert len(values) == len(events)
    for value in values:
        assert value[0] == 0 and int.from_bytes(value[1:5], "big") in ids.values()

    consumer_codec = EventCodec.connect(counting_registry.url)  # a fresh process would start like this
    request.addfinalizer(consumer_codec.close)
    decoded = [consumer_codec.decode(topic, v) for v in values]
    # one GET /schemas/ids/{id} per schema id, the first time it is seen; never again
    assert sorted(counting_registry.requests) == sorted(f"GET /schemas/ids/{i}" for i in ids.values())
    sent = {e.meta.event_id: e for e in events}
    assert {d.event.meta.event_id: d.event for d in decoded} == sent
    assert {d.schema_id for d in decoded} == set(ids.values())
    for d in decoded:
        assert d.schema_id == ids[type(d.event)]

    counting_registry.requests.clear()
    again = consumer_codec.decode_batch(topic, values)
    assert counting_registry.requests == []
    assert all(isinstance(d, Decoded) for d in again)


def test_a_confluent_deserializer_reads_what_we_write_and_we_read_what_its_serializer_writes(
    topic_factory: Callable[..., str], registry_url: str, request: pytest.FixtureRequest
) -> None:
    topic = topic_factory(partitions=1)
    register(registry_url, topic, [InvoiceIssued])
    event = sample_event(InvoiceIssued, seed=5)
    codec = EventCodec.connect(registry_url)
    client = SchemaRegistryClient({"url": registry_url})
    request.addfinalizer(codec.close)
    request.addfinalizer(client.close)
    ctx = SerializationContext(topic, MessageField.VALUE)

    ours = codec.encode(topic, event)
    theirs_read = AvroDeserializer(client)(ours, ctx)
    assert InvoiceIssued.from_avro(theirs_read) == event

    serializer = AvroSerializer(
        client,
        InvoiceIssued.SCHEMA,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": False,
            "subject.name.strategy": lambda ctx, record_name: f"{ctx.topic}-{record_name}",
        },
    )
    theirs = serializer(event.to_avro(), ctx)
    assert theirs == ours  # byte for byte: same framing, same id, same Avro body
    assert codec.decode(topic, theirs) == Decoded(event, int.from_bytes(ours[1:5], "big"))


def test_an_event_written_with_an_older_schema_reads_as_todays_class(
    topic_factory: Callable[..., str], registry_url: str
) -> None:
    topic = topic_factory(partitions=1)
    old = json.loads(InvoiceIssued.SCHEMA)
    old["fields"] = [f for f in old["fields"] if f["name"] != "contract_id"]  # optional: added "later"
    with RegistryClient(registry_url) as client:
        old_id = client.register(InvoiceIssued.subject(topic), json.dumps(old))
    datum = sample_datum(InvoiceIssued, seed=2)
    del datum["contract_id"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(old), datum)
    value = b"\x00" + old_id.to_bytes(4, "big") + body.getvalue()

    with EventCodec.connect(registry_url) as codec:
        event, schema_id = codec.decode(topic, value)

    assert schema_id == old_id
    assert isinstance(event, InvoiceIssued)
    assert event.contract_id is None
    assert event.invoice_id == datum["invoice_id"]


def _framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


@pytest.fixture
def registered(topic_factory: Callable[..., str], registry_url: str) -> tuple[str, int, bytes]:
    """(topic, schema id of PaymentCollected on it, a valid value)."""
    topic = topic_factory(partitions=1)
    schema_id = register(registry_url, topic, [PaymentCollected])[PaymentCollected]
    with EventCodec.connect(registry_url) as codec:
        value = codec.encode(topic, sample_event(PaymentCollected))
    return topic, schema_id, value


def _other_record(registry_url: str, topic: str) -> int:
    schema = {"type": "record", "name": "Thing", "namespace": "com.example", "fields": [{"name": "a", "type": "int"}]}
    with RegistryClient(registry_url) as client:
        return client.register(f"{topic}-com.example.Thing", json.dumps(schema))


def _bad_currency(registry_url: str, topic: str, schema_id: int) -> bytes:
    datum = sample_datum(PaymentCollected)
    datum["amount"]["currency"] = "euro"  # fits Avro's string, breaks the event's ISO 4217 rule
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(PaymentCollected.SCHEMA)), datum)
    return _framed(schema_id, body.getvalue())


CASES = [
    pytest.param(lambda url, t, i, v: None, DecodeFailure.BAD_MAGIC_BYTE, "tombstone", id="tombstone"),
    pytest.param(lambda url, t, i, v: b"", DecodeFailure.BAD_MAGIC_BYTE, "shorter than", id="empty"),
    pytest.param(lambda url, t, i, v: b"\x01" + v[1:], DecodeFailure.BAD_MAGIC_BYTE, "first byte is 1", id="magic-1"),
    pytest.param(lambda url, t, i, v: b'{"json": 1}', DecodeFailure.BAD_MAGIC_BYTE, "first byte is 123", id="json"),
    pytest.param(
        lambda url, t, i, v: _framed(2_000_000_000, v[5:]), DecodeFailure.UNKNOWN_SCHEMA_ID, "40403", id="unknown-id"
    ),
    pytest.param(
        lambda url, t, i, v: _framed(_other_record(url, t), b"\x02"),
        DecodeFailure.UNKNOWN_EVENT_TYPE,
        "record com.example.Thing is not an accord event",
        id="foreign-record",
    ),
    pytest.param(lambda url, t, i, v: v[:12], DecodeFailure.UNDECODABLE_BODY, "", id="truncated"),
    pytest.param(lambda url, t, i, v: v + b"\x00\x00", DecodeFailure.UNDECODABLE_BODY, "left after", id="trailing"),
    pytest.param(
        lambda url, t, i, v: _bad_currency(url, t, i), DecodeFailure.INVALID_EVENT, "currency", id="invalid-currency"
    ),
]


@pytest.mark.parametrize(("make", "reason", "detail"), CASES)
def test_decode_failures_are_typed_and_permanent(
    registry_url: str,
    registered: tuple[str, int, bytes],
    make: Callable[[str, str, int, bytes], bytes | None],
    reason: DecodeFailure,
    detail: str,
    request: pytest.FixtureRequest,
) -> None:
    topic, schema_id, value = registered
    codec = EventCodec.connect(registry_url)
    request.addfinalizer(codec.close)
    bad = make(registry_url, topic, schema_id, value)

    with pytest.raises(DecodeError) as caught:
        codec.decode(topic, bad)

    assert caught.value.reason is reason
    assert caught.value.retryable is False
    assert caught.value.topic == topic
    assert detail in caught.value.detail
    # in a batch, the bad record is returned in place and the good ones still decode
    results = codec.decode_batch(topic, [value, bad, value])
    assert [type(r) for r in results] == [Decoded, DecodeError, Decoded]


def test_encoding_an_unregistered_schema_says_how_to_fix_it(
    topic_factory: Callable[..., str], registry_url: str, request: pytest.FixtureRequest
) -> None:
    topic = topic_factory(partitions=1)
    codec = EventCodec.connect(registry_url)
    request.addfinalizer(codec.close)
    with pytest.raises(
        EncodeError, match=r"not registered under subject '.*-accord\.billing\.InvoiceVoided'.*accord schemas register"
    ):
        codec.encode(topic, sample_event(InvoiceVoided))

    auto = EventCodec.connect(registry_url, auto_register=True)
    request.addfinalizer(auto.close)
    value = auto.encode(topic, sample_event(InvoiceVoided))
    assert auto.decode(topic, value).event == sample_event(InvoiceVoided)


def test_a_registry_that_does_not_answer_is_retryable_not_a_poison_record(request: pytest.FixtureRequest) -> None:
    codec = EventCodec.connect("http://127.0.0.1:9")
    request.addfinalizer(codec.close)
    value = b"\x00\x00\x00\x00\x07" + b"\x00"
    with pytest.raises(RegistryUnavailable) as caught:
        codec.decode("any-topic", value)
    assert caught.value.retryable is True
    with pytest.raises(RegistryUnavailable):
        codec.encode("any-topic", sample_event(InvoiceVoided))
    with pytest.raises(RegistryUnavailable):
        codec.decode_batch("any-topic", [value])  # a batch is retried whole, never dead-lettered
