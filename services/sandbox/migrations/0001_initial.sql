-- The sandbox's whole state: records of the three simulated systems as JSON documents, the events they
-- emitted, the webhook outbox, stored idempotent responses and the operator's knobs.
CREATE TABLE records (
    system      text        NOT NULL,          -- crm | billing | erp
    kind        text        NOT NULL,          -- Account, customer, invoice, journalEntry, ...
    id          text        NOT NULL,
    external_id text,
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted     boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (system, kind, id)
);
CREATE UNIQUE INDEX records_external_id ON records (system, kind, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX records_updated ON records (system, kind, updated_at, id);

CREATE TABLE counters (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);

-- Stripe-like Idempotency-Key store: the first response is kept and replayed for the same key.
CREATE TABLE idempotency (
    system      text        NOT NULL,
    key         text        NOT NULL,
    method      text        NOT NULL,
    path        text        NOT NULL,
    body_sha256 text        NOT NULL,
    status      integer,                        -- NULL while the first request is still running
    response    bytea,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (system, key)
);

-- Every event a system emitted: billing events (listed by the events API) and CRM change events
-- (seq is the replay id).
CREATE TABLE events (
    seq        bigserial   PRIMARY KEY,
    system     text        NOT NULL,
    id         text        NOT NULL UNIQUE,
    type       text        NOT NULL,
    created_at timestamptz NOT NULL,
    payload    jsonb       NOT NULL
);
CREATE INDEX events_system_seq ON events (system, seq);

CREATE TABLE subscribers (
    id         text        PRIMARY KEY,
    system     text        NOT NULL,
    url        text        NOT NULL,
    secrets    jsonb       NOT NULL,            -- every active secret; two during a rotation
    active     boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL
);

-- One row per (subscriber, event) delivery; the dispatcher reads due rows, so deliveries survive restarts.
CREATE TABLE outbox (
    id              bigserial   PRIMARY KEY,
    subscriber_id   text        NOT NULL REFERENCES subscribers (id),
    event_seq       bigint      NOT NULL REFERENCES events (seq),
    status          text        NOT NULL DEFAULT 'pending',  -- pending | delivered | dropped | failed
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- Operator knobs and the clock offset, each a JSON value under a key.
CREATE TABLE settings (
    key   text  PRIMARY KEY,
    value jsonb NOT NULL
);
