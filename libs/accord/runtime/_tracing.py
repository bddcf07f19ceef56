"""Trace context across Kafka: W3C `traceparent` in record headers, consumer spans as CHILDREN of producers.

confluent-kafka's contrib instrumentation only links consumer spans to producers, and its asyncio producer
rejects headers, so accord owns this propagation: the outbox row stores the writing span's traceparent,
the relay publishes as a child of it, and the next consumer continues the same trace.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()

tracer = trace.get_tracer("accord.runtime")


def context_from_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> otel_context.Context:
    carrier = {
        name: value.decode(errors="replace")
        for name, value in headers or ()
        if value is not None and name in (TRACEPARENT, "tracestate")
    }
    return _propagator.extract(carrier)


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    return _propagator.extract({TRACEPARENT: traceparent} if traceparent else {})


def traceparent_of(span: Span) -> str | None:
    """The W3C traceparent naming `span`, or None when it is not being recorded."""
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT)


def setup_tracing(service_name: str) -> None:
    """Export spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise tracing stays a no-op."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
