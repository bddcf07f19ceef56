-- The runtime's tables, created in each service's own schema (search_path is set by accord.migrations).

-- Idempotency: one row per event a consumer has applied. The primary key is the guarantee: a second
-- insert of the same (consumer, event_id) fails the transaction that would have applied it twice.
CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    topic         text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_age ON processed_events (consumer, processed_at);

-- Aggregate state for deciders: one JSON document per (aggregate, key), versioned.
CREATE TABLE aggregate_state (
    aggregate   text        NOT NULL,
    key         text        NOT NULL,
    version     bigint      NOT NULL,
    data        jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate, key)
);

-- Transactional outbox: rows written in the handler's transaction, published by the relay in id order
-- (so in order per key), deleted once the broker acknowledged them (the table stays bounded).
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    key          bytea,
    value        bytea       NOT NULL,          -- Confluent wire format, encoded when written
    headers      jsonb       NOT NULL DEFAULT '[]',  -- [[name, value-as-text], ...]
    traceparent  text,                          -- W3C trace context of the span that wrote the row
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Parked events: retries spent on a transient error. Later events of the same key queue here behind
-- the first one, so order per key is never broken while other keys keep flowing.
CREATE TABLE parked_events (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    key             text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    kafka_timestamp bigint,
    record_key      bytea,
    record_value    bytea,
    headers         jsonb       NOT NULL DEFAULT '[]',
    error_class     text        NOT NULL,
    error_message   text        NOT NULL,
    attempts        integer     NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_events_key ON parked_events (consumer, key, id);
