-- Commands to SaaS systems, recorded by handlers and executed by accord.commands.CommandWorker.
-- Numbered 1001+ so this folder shares a schema (and its schema_migrations table) with the runtime's 0001+.

CREATE TABLE commands (
    id               bigserial   PRIMARY KEY,
    system           text        NOT NULL,                 -- 'billing', 'crm', 'erp': the rate-limit scope
    kind             text        NOT NULL,                 -- what to do there: 'create_customer', ...
    -- The guarantee: one command per key, sent to the system as its Idempotency-Key.
    idempotency_key  text        NOT NULL UNIQUE,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'in_doubt')),
    attempts         integer     NOT NULL DEFAULT 0,       -- calls started (claims), read-backs included
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- While 'running': when the claim lapses. A worker that died mid-call leaves the row running; once
    -- the lease is over another worker takes it as in doubt and reads back before calling again.
    lease_until      timestamptz,
    last_error       text,
    result           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- What the claim query scans: commands not finished, by when they are due.
CREATE INDEX commands_due ON commands (next_attempt_at) WHERE status IN ('pending', 'in_doubt');
CREATE INDEX commands_running ON commands (lease_until) WHERE status = 'running';
