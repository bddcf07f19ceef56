"""Prometheus metrics of the runtime, one series per service (label `service`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROCESSED = Counter("accord_events_processed", "Events applied by a handler", ["service", "topic"])
DEDUPLICATED = Counter("accord_events_deduplicated", "Events skipped as already processed", ["service"])
IGNORED = Counter("accord_events_ignored", "Events of types this service has no handler for", ["service"])
RETRIED = Counter("accord_events_retried", "Handler attempts retried after a transient error", ["service"])
PARKED = Counter("accord_events_parked", "Events parked (retries spent, or queued behind a parked key)", ["service"])
UNPARKED = Counter("accord_events_unparked", "Parked events applied on a later attempt", ["service"])
DEAD_LETTERED = Counter("accord_events_dead_lettered", "Records sent to the dead-letter topic", ["service"])
BATCH_RETRIES = Counter("accord_batch_retries", "Whole batches retried (database unavailable, races)", ["service"])
HANDLER_SECONDS = Histogram(
    "accord_handler_seconds",
    "Time in a handler, per event",
    ["service"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0),
)
BATCH_SIZE = Histogram(
    "accord_batch_size",
    "Records per polled batch",
    ["service"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
)
CONSUMER_LAG = Gauge(
    "accord_consumer_lag", "Records behind the end of the partition", ["service", "topic", "partition"]
)
OUTBOX_BACKLOG = Gauge("accord_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("accord_outbox_published", "Outbox rows published and acknowledged", ["service"])
