-- Billing customers as accord knows them from customer.* events: the key to the canonical account id.
CREATE TABLE billing_customers (
    customer_id   text        PRIMARY KEY,
    account_id    text,                    -- metadata.crm_account_id
    legal_entity  text,                    -- metadata.legal_entity
    country       text,
    tax_exempt    text,
    version       bigint      NOT NULL,    -- entity version of the event that wrote the row (last writer wins)
    updated_at    timestamptz NOT NULL DEFAULT now()
);
