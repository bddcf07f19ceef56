-- accord.ingest: inbound deliveries (webhooks and catch-up polls) of an outside system, in the service's schema.

-- Every verified delivery, raw body kept for audit. The unique (source_system, source_event_id) is the
-- idempotency: a re-delivered webhook, or a polled event already received by webhook, inserts nothing.
CREATE TABLE ingest_inbox (
    id               bigserial   PRIMARY KEY,
    source_system    text        NOT NULL,
    source_event_id  text        NOT NULL,
    event_type       text        NOT NULL,
    via              text        NOT NULL,             -- webhook | poll
    raw_body         bytea       NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    status           text        NOT NULL DEFAULT 'received',  -- processed | ignored | stale | failed
    reason           text,                             -- why ignored / stale / failed
    emitted          integer     NOT NULL DEFAULT 0,   -- canonical events written to the outbox
    UNIQUE (source_system, source_event_id)
);
CREATE INDEX ingest_inbox_failed ON ingest_inbox (source_system, received_at) WHERE status = 'failed';

-- Requests refused before anything of their body was trusted (bad signature, unreadable body).
CREATE TABLE ingest_rejects (
    id             bigserial   PRIMARY KEY,
    source_system  text        NOT NULL,
    reason         text        NOT NULL,   -- missing | malformed | stale | future | mismatch | payload ...
    detail         text        NOT NULL,
    headers        jsonb       NOT NULL,   -- request headers, secrets and signatures redacted
    body_sha256    text        NOT NULL,
    body_size      integer     NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- Last writer wins: the highest source version seen per entity; an older one is stale and emits nothing.
CREATE TABLE ingest_versions (
    source_system    text        NOT NULL,
    entity_type      text        NOT NULL,
    entity_id        text        NOT NULL,
    version          bigint      NOT NULL,
    source_event_id  text        NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_system, entity_type, entity_id)
);

-- Where a catch-up poller of a source stopped (e.g. the id of the last event listed).
CREATE TABLE ingest_cursors (
    source_system  text        PRIMARY KEY,
    position       text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
