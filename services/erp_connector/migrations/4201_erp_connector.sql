-- The ERP connector's own tables, beside the runtime's (0001+), commands' (1001+) and casework's (3001+).

-- The ERP's period calendar as last seen, per legal entity (subsidiary externalId) and period (YYYY-MM): what
-- the poller compares with to publish PeriodStatusChanged once per change, and the cursor of its next poll.
CREATE TABLE periods (
    legal_entity   text        NOT NULL,
    period         text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('open', 'ar_locked', 'closed')),
    erp_id         text        NOT NULL,
    last_modified  timestamptz NOT NULL,
    version        bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (legal_entity, period)
);

-- Journal entries held under the HOLD policy (or with no open period to reroute to): released when their
-- period reopens or when a person approves the case (`accord exceptions approve ID --schema erp_connector`).
CREATE TABLE held_entries (
    external_id   text        PRIMARY KEY,
    legal_entity  text        NOT NULL,
    period        text        NOT NULL,
    account_id    text,
    payload       jsonb       NOT NULL,             -- the post_journal payload to send on release
    reason        text        NOT NULL,
    case_id       uuid,                              -- its case in the exception queue (cases)
    state         text        NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'released', 'dismissed')),
    releases      integer     NOT NULL DEFAULT 0,
    held_at       timestamptz NOT NULL DEFAULT now(),
    released_at   timestamptz,
    released_by   text
);
CREATE INDEX held_entries_period ON held_entries (legal_entity, period) WHERE state = 'held';

-- SUMMARIZED mode: each document's entry staged here (once per entry, whatever re-sends it), then posted as part
-- of one summary per legal entity x period x currency when the period's batch closes; `batch` names the summary
-- (its externalId in the ERP), so an entry is in exactly one posted summary.
CREATE TABLE summary_entries (
    external_id   text        PRIMARY KEY,          -- the document's own entry id (lineage)
    legal_entity  text        NOT NULL,
    period        text        NOT NULL,
    currency      text        NOT NULL,
    payload       jsonb       NOT NULL,
    batch         text,
    staged_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX summary_entries_open ON summary_entries (legal_entity, period) WHERE batch IS NULL;
