-- The cross-system identity map the hub owns: one row per CRM account (the canonical id is the CRM account id),
-- read from the lead-to-customer instances, which keep it current (a view, so it can never disagree with them).
CREATE VIEW identity_map AS
SELECT correlation_key                                 AS account_id,
       correlation_key                                 AS crm_account_id,
       state -> 'targets' -> 'BILLING' ->> 'id'        AS billing_customer_id,
       state -> 'targets' -> 'ERP' ->> 'id'            AS erp_customer_id,
       state -> 'master' ->> 'legal_entity'            AS legal_entity,
       state ->> 'merged_into'                         AS merged_into,
       step                                            AS sync_state,
       (state ->> 'version')::bigint                   AS crm_version,
       updated_at
FROM workflow_instances
WHERE workflow = 'lead-to-customer';
