"""The orchestrator: accord's hub. Durable workflows over the CRM, billing and ERP connectors.

- `hub`: the pure domain rules the workflows share (legal entity from the billing country, customer master
  validation, tax attributes, request ids and retry delays, the request events the hub sends);
- `customer`: lead-to-customer, one long-lived instance per account: validate, create or update the customer
  in billing and in the ERP, keep the cross-system identity map, follow merges;
- `activation`: quote-to-cash activation, one instance per contract: credit review, subscription provisioned
  in billing, first invoice (SLA), ERP posting confirmed;
- `amendment`: one instance per amendment or cancellation: the change carried out in billing once the
  contract's subscriptions exist;
- `__main__`: wiring only (the standard service host with the workflow engine as its runtime).
"""
