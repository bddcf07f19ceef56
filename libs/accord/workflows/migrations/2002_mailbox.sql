-- Events that arrived before anyone waited for them. Order across topics is never assumed, so an invoice may
-- be consumed before the step that waits for it is reached: the engine keeps such an event here (as JSON, under
-- each correlation key a workflow gives it) and hands it over the moment a transition declares the wait.
-- Consumed rows are deleted in the transition's transaction; unclaimed ones are pruned after a retention.
CREATE TABLE workflow_mailbox (
    event_type      text        NOT NULL,
    correlation_key text        NOT NULL,
    event_id        text        NOT NULL,
    event           jsonb       NOT NULL,
    arrived_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_type, correlation_key, event_id)
);
CREATE INDEX workflow_mailbox_age ON workflow_mailbox (arrived_at);
