-- Durable workflows. Numbered 2001+ so this folder shares a schema with the runtime's 0001+ (outbox,
-- processed_events), commands' 1001+ and casework's 3001+: one transaction covers all of them.

CREATE TABLE workflow_instances (
    id              uuid        PRIMARY KEY,
    workflow        text        NOT NULL,
    correlation_key text        NOT NULL,
    step            text        NOT NULL,
    status          text        NOT NULL CHECK (status IN
                    ('running', 'waiting', 'completed', 'failed', 'compensating', 'compensated')),
    state           jsonb       NOT NULL DEFAULT '{}',
    -- Steps done so far with their compensating commands, in completion order (undone in reverse).
    completed_steps jsonb       NOT NULL DEFAULT '[]',
    last_error      text,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- One instance per business key: starting it twice (a redelivered start event) is a no-op.
    UNIQUE (workflow, correlation_key)
);
CREATE INDEX workflow_instances_status ON workflow_instances (status, updated_at);

-- What each instance waits for: an event type with a correlation key. Replaced at every transition.
CREATE TABLE workflow_waits (
    instance_id     uuid        NOT NULL REFERENCES workflow_instances (id) ON DELETE CASCADE,
    event_type      text        NOT NULL,
    correlation_key text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, event_type, correlation_key)
);
CREATE INDEX workflow_waits_route ON workflow_waits (event_type, correlation_key);

-- Durable timers. A row exists while the timer is pending; firing deletes it in the transaction that applies
-- it, so it fires once, and a timer whose wait was satisfied (no longer declared) is gone before it is due.
CREATE TABLE workflow_timers (
    instance_id     uuid        NOT NULL REFERENCES workflow_instances (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    due_at          timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, name)
);
CREATE INDEX workflow_timers_due ON workflow_timers (due_at);

-- Append-only history: one row per transition (and per compensation step), never updated.
CREATE TABLE workflow_history (
    id              bigserial   PRIMARY KEY,
    instance_id     uuid        NOT NULL REFERENCES workflow_instances (id) ON DELETE CASCADE,
    version         bigint      NOT NULL,
    cause           text        NOT NULL,        -- started, event, timer, decision, compensation, error
    cause_ref       text,                        -- event id, timer name, case id, step name
    step            text        NOT NULL,
    status          text        NOT NULL,
    effects         jsonb       NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_history_instance ON workflow_history (instance_id, id);
