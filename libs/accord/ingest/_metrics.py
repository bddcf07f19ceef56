"""Prometheus counters of accord.ingest, one series per source system."""

from __future__ import annotations

from prometheus_client import Counter

RECEIVED = Counter("accord_ingest_received", "Deliveries received (before verification)", ["source", "via"])
REJECTED = Counter("accord_ingest_rejected", "Deliveries refused (signature, unreadable body)", ["source", "reason"])
DUPLICATE = Counter("accord_ingest_duplicate", "Deliveries already in the inbox (no-op)", ["source"])
STALE = Counter("accord_ingest_stale", "Deliveries older than the entity's newest version seen", ["source"])
FAILED = Counter("accord_ingest_failed", "Deliveries the mapper could not map (kept as failed)", ["source"])
IGNORED = Counter("accord_ingest_ignored", "Deliveries mapped to no event on purpose", ["source"])
PROCESSED = Counter("accord_ingest_processed", "Deliveries that emitted canonical events", ["source"])
EMITTED = Counter("accord_ingest_events_emitted", "Canonical events written to the outbox", ["source", "topic"])
