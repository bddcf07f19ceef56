-- The reconciler's tables, beside the runtime's (0001+), commands' (1001+) and casework's (3001+).

-- What each system has said per match key (model.MatchState as JSON), and the one durable timer of the key: when
-- the rules' answer changes by the passing of time alone (rules.next_deadline). A restarted reconciler finds its
-- pending deadlines here; the sweeper takes the due ones in deadline order.
CREATE TABLE match_states (
    key            text        PRIMARY KEY,
    relation       text        NOT NULL,
    account_id     text,
    legal_entity   text,
    state          jsonb       NOT NULL,
    next_deadline  timestamptz,
    observations   integer     NOT NULL,
    first_seen     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX match_states_due ON match_states (next_deadline) WHERE next_deadline IS NOT NULL;

-- Keys that point at another key (a subscription id at its contract's key), learned from observations.
CREATE TABLE aliases (
    alias  text PRIMARY KEY,
    key    text NOT NULL
);

-- The ERP's accounting periods as erp.periods said them (the timing rule's period book).
CREATE TABLE periods (
    legal_entity  text        NOT NULL,
    period        text        NOT NULL,
    status        text        NOT NULL,
    changed_at    timestamptz NOT NULL,
    PRIMARY KEY (legal_entity, period)
);

-- One row per finding (match key × class) across its occurrences: lifecycle.FindingRecord as JSON, and the
-- columns the report and the metrics group by.
CREATE TABLE findings (
    finding_id      uuid        PRIMARY KEY,
    key             text        NOT NULL,
    finding_class   text        NOT NULL,
    sub_cause       text,
    status          text        NOT NULL CHECK (status IN ('OPEN', 'REPAIRING', 'RESOLVED', 'ESCALATED')),
    repair          text        NOT NULL,
    relation        text        NOT NULL,
    legal_entity    text,
    account_id      text,
    amount_at_risk  numeric,
    currency        text,
    occurrence      integer     NOT NULL,
    first_seen      timestamptz NOT NULL,   -- of this occurrence: the deadline that passed, or the contradiction
    detected_at     timestamptz NOT NULL,   -- when this occurrence was found and published
    last_seen       timestamptz NOT NULL,
    resolved_at     timestamptz,
    case_id         uuid,                   -- its case in the exception queue, once escalated
    record          jsonb       NOT NULL
);
CREATE INDEX findings_active ON findings (finding_class, legal_entity) WHERE status <> 'RESOLVED';
CREATE INDEX findings_key ON findings (key);

-- Every repair decided (or, in dry run, that would have been): the audit of what the reconciler did.
CREATE TABLE repairs (
    id             bigserial   PRIMARY KEY,
    finding_id     uuid        NOT NULL,
    occurrence     integer     NOT NULL,
    repair         text        NOT NULL,
    attempt        integer     NOT NULL,
    repair_id      text,                    -- the RepairRequested's id (none in dry run)
    dry_run        boolean     NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now(),
    detail         text        NOT NULL,
    UNIQUE (finding_id, occurrence, repair, attempt, dry_run)
);

-- State reconciliation runs (`accord reconcile run`): what was read and what was found.
CREATE TABLE runs (
    run_id       uuid        PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    since        timestamptz,
    dry_run      boolean     NOT NULL,
    summary      jsonb       NOT NULL DEFAULT '{}'
);
