-- The exception queue: business exceptions that need a person. Numbered 3001+ so this folder shares a
-- schema (and its schema_migrations table) with the runtime's 0001+, commands' 1001+ and workflows' 2001+.

CREATE TABLE cases (
    id            uuid        PRIMARY KEY,
    kind          text        NOT NULL,                  -- tax-mismatch, customer-master-invalid, ...
    reason        text        NOT NULL,                  -- one line for a person
    severity      text        NOT NULL DEFAULT 'medium' CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    -- The subject: ids only (account, contract, invoice, ...), never names or addresses.
    subject       jsonb       NOT NULL DEFAULT '{}',
    subject_key   text        NOT NULL,                  -- canonical text of `subject`, for idempotency
    account_id    text,
    contract_id   text,
    invoice_id    text,
    legal_entity  text,
    workflow_id   uuid,                                  -- the workflow instance waiting on it, if any
    evidence      jsonb       NOT NULL DEFAULT '{}',     -- both sides' data (ids and values) and the last error
    -- open → resolved | rejected, or → retrying (the workflow re-runs its step: raised again → open, the
    -- workflow finishes → resolved). assigned and escalated are room for the human workflow of a later issue.
    state         text        NOT NULL DEFAULT 'open'
                  CHECK (state IN ('open', 'retrying', 'assigned', 'escalated', 'resolved', 'rejected')),
    owner         text,
    due_at        timestamptz,                           -- SLA
    escalation_level integer  NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       bigint      NOT NULL DEFAULT 1
);

-- The guarantee behind "raising the same exception twice is one case": at most one unfinished case per
-- (kind, subject). A closed case does not block a new one for the same subject.
CREATE UNIQUE INDEX cases_one_open ON cases (kind, subject_key) WHERE state NOT IN ('resolved', 'rejected');
CREATE INDEX cases_state ON cases (state, created_at);
CREATE INDEX cases_account ON cases (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX cases_due ON cases (due_at) WHERE state NOT IN ('resolved', 'rejected');

-- Append-only history of every action on a case: who did what, when, with which note.
CREATE TABLE case_actions (
    id        bigserial   PRIMARY KEY,
    case_id   uuid        NOT NULL REFERENCES cases (id),
    action    text        NOT NULL,     -- raised, raised-again, approved, rejected, retried, (assigned, escalated, ...)
    actor     text        NOT NULL,     -- operator identity, or the service that raised it
    note      text,
    from_state text,
    to_state  text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_actions_case ON case_actions (case_id, id);
