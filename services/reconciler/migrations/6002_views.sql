-- The state reconciliation's tables (accord_reconciler.views), apart from the consumer's (6001): what accord's
-- events say each system holds, and what each system's read API said in a run, summarized alike (one row per match
-- key and system, `views.view_rows`) so that SQL compares the two for a million keys at once and hands only the
-- keys that differ (`views.candidates`) to the Python rules.
--
-- Both tables are partitioned by system: the comparison joins each system's rows by key, and a partition per system
-- lets each side of a join read only its own rows (a system with no rows costs nothing).

-- The event-derived view: written by the streaming consumer in the transaction that stores the key's MatchState.
CREATE TABLE views (
    key         text        NOT NULL,
    system      text        NOT NULL,               -- accord.common.SourceSystem: BILLING, ERP, CRM
    records     integer     NOT NULL,               -- the system's records of the key (postings, live subscriptions)
    amount      numeric,                            -- major units; the ERP's is the sum of its postings
    currency    text,                               -- NULL when the records' currencies differ
    status      text,
    version     bigint,                             -- the newest source version the records reflect
    period      text,                               -- YYYY-MM
    updated_at  timestamptz NOT NULL DEFAULT now(), -- when the row last changed (an unchanged upsert keeps it)
    PRIMARY KEY (key, system)
) PARTITION BY LIST (system);
CREATE TABLE views_billing PARTITION OF views FOR VALUES IN ('BILLING');
CREATE TABLE views_erp PARTITION OF views FOR VALUES IN ('ERP');
CREATE TABLE views_crm PARTITION OF views FOR VALUES IN ('CRM');

-- What a state run read from the systems, one row per key and system of the run (the primary key refuses a key
-- summarized twice: its records must be summarized together). The partitions are UNLOGGED (a partitioned table
-- itself cannot be): a crash loses a run, which is redone.
CREATE TABLE snapshot_rows (
    run_id   uuid    NOT NULL,                      -- runs.run_id (no foreign key: an UNLOGGED table cannot have one)
    key      text    NOT NULL,
    system   text    NOT NULL,
    records  integer NOT NULL,
    amount   numeric,
    currency text,
    status   text,
    version  bigint,
    period   text,
    PRIMARY KEY (run_id, key, system)
) PARTITION BY LIST (system);
CREATE UNLOGGED TABLE snapshot_rows_billing PARTITION OF snapshot_rows FOR VALUES IN ('BILLING');
CREATE UNLOGGED TABLE snapshot_rows_erp PARTITION OF snapshot_rows FOR VALUES IN ('ERP');
CREATE UNLOGGED TABLE snapshot_rows_crm PARTITION OF snapshot_rows FOR VALUES IN ('CRM');
