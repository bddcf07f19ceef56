"""Inbound ingestion of an outside system's events: webhooks and catch-up polls, into canonical events.

    source = Source(name="billing", mapper=map_event, context=load_customer)
    receiver = WebhookReceiver(pool=pool, schema="billing_connector", source=source, codec=codec,
                               secrets=["whsec_…"], signature_header=BILLING_SIGNATURE_HEADER)
    app = Starlette(routes=[receiver.route("/webhooks/billing")])

A verified delivery is stored raw in `ingest_inbox` (unique per source event id: a re-delivery is a no-op),
mapped by a pure function, checked against the entity's last version (last writer wins), and its canonical
events written to the runtime's `outbox`, all in one transaction (see `_store.py` for the order); the
runtime's `OutboxRelay` publishes them. Canonical event ids are uuid5 of (source system, source event id,
event type), so a re-delivered or re-polled event is the same event. Refused requests go to `ingest_rejects`.
"""

from ._model import (
    EVENT_ID_NAMESPACE,
    ContextLoader,
    Delivery,
    EntityVersion,
    Ignored,
    Mapped,
    Mapper,
    MappingError,
    MapResult,
    Outcome,
    Source,
    Via,
    meta_of,
    stable_event_id,
)
from ._receiver import WebhookReceiver, json_body
from ._store import MIGRATIONS, Result, ingest, load_cursor, migrate_ingest, record_reject, redact_headers, save_cursor

__all__ = [
    "EVENT_ID_NAMESPACE",
    "MIGRATIONS",
    "ContextLoader",
    "Delivery",
    "EntityVersion",
    "Ignored",
    "MapResult",
    "Mapped",
    "Mapper",
    "MappingError",
    "Outcome",
    "Result",
    "Source",
    "Via",
    "WebhookReceiver",
    "ingest",
    "json_body",
    "load_cursor",
    "meta_of",
    "migrate_ingest",
    "record_reject",
    "redact_headers",
    "save_cursor",
    "stable_event_id",
]
