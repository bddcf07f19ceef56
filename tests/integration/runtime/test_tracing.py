"""One trace follows a deal across hops: producer → consumer → outbox relay → next consumer, as parent-child
spans (not links), through W3C traceparent headers on real Kafka records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from accord.events import UsageRecorded
from accord.runtime import traceparent_of
from accord.serde import EventCodec
from tests.support import ledger
from tests.support.harness import Harness

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return found[0]


async def test_one_trace_from_producer_through_relay_to_the_next_consumer(
    spans: InMemorySpanExporter, kafka_bootstrap: str, db_url: str, registry_url: str, topic_factory, group_id: str
) -> None:
    ledger.FLAKY_BROKEN["value"] = ledger.POISON_REJECTED["value"] = True
    codec = EventCodec.connect(registry_url, auto_register=True)
    usage, rated, billed = (topic_factory(partitions=1, prefix=p) for p in ("usage", "rated", "billed"))
    codec.schema_id(rated, UsageRecorded)
    codec.schema_id(billed, UsageRecorded)
    first = Harness(kafka_bootstrap, db_url, codec, usage, rated, f"{group_id}-a", schema="first")
    second = Harness(kafka_bootstrap, db_url, codec, rated, billed, f"{group_id}-b", schema="second")
    await first.start()
    await second.start()
    try:
        with trace.get_tracer("test").start_as_current_span(
            "crm webhook received", kind=trace.SpanKind.PRODUCER
        ) as root:
            traceparent = traceparent_of(root)
            assert traceparent is not None
            first.produce([ledger.usage("acc-1", 0)], headers=[("traceparent", traceparent.encode())])

        async def first_done() -> bool:
            return await first.count("processed_events") == 1 and await first.count("outbox") == 0

        async def second_done() -> bool:
            return await second.count("processed_events") == 1

        await first.run_until(first_done)
        await second.run_until(second_done)
    finally:
        await first.close()
        await second.close()
        codec.registry.close()

    finished = [s for s in spans.get_finished_spans() if s.context.trace_id == root.get_span_context().trace_id]
    received = one(finished, "crm webhook received")
    processed = one(finished, f"process {usage}")
    published = one(finished, f"publish {rated}")
    processed_next = one(finished, f"process {rated}")
    assert processed.parent is not None and processed.parent.span_id == received.context.span_id
    assert published.parent is not None and published.parent.span_id == processed.context.span_id
    assert processed_next.parent is not None and processed_next.parent.span_id == published.context.span_id
    commits = [s for s in finished if s.name == "commit batch"]
    assert {c.parent.span_id for c in commits if c.parent} == {
        processed.context.span_id,
        processed_next.context.span_id,
    }
    assert processed.kind == trace.SpanKind.CONSUMER and published.kind == trace.SpanKind.PRODUCER
    assert processed.attributes is not None and processed.attributes["messaging.destination.name"] == usage
