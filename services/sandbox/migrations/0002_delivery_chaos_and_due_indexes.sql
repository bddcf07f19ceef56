-- Webhook chaos (drop, delay, reorder) is rolled once per delivery row: remember that it was.
ALTER TABLE outbox ADD COLUMN chaos_done boolean NOT NULL DEFAULT false;

-- The simulated systems look records up by their fields (the customer of an invoice, the contract of a line).
CREATE INDEX records_data ON records USING gin (data jsonb_path_ops);

-- Billing's clock finds what falls due next without reading every invoice and subscription.
CREATE INDEX billing_drafts ON records (((data->>'created')::bigint), id)
    WHERE system = 'billing' AND kind = 'invoice' AND data->>'status' = 'draft';
CREATE INDEX billing_retries ON records (((data->>'next_payment_attempt')::bigint), id)
    WHERE system = 'billing' AND kind = 'invoice' AND data->>'status' = 'open';
CREATE INDEX billing_incomplete ON records (((data->>'created')::bigint), id)
    WHERE system = 'billing' AND kind = 'subscription' AND data->>'status' = 'incomplete';
CREATE INDEX billing_renewals ON records (((data->>'current_period_end')::bigint), id)
    WHERE system = 'billing' AND kind = 'subscription' AND data->>'status' IN ('active', 'past_due', 'unpaid');
