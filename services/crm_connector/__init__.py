"""accord's CRM connector: CRM change events in as canonical events, billing status out onto the CRM Account.

    python -m accord_crm_connector

One process (`__main__.py`, wiring only) runs: the webhook endpoint `POST /webhooks/crm` (+ `/healthz`, `/readyz`,
`/metrics`), the catch-up poller of the change replay, the outbox relay, the billing status consumer and the
write-back command worker. SIGTERM drains and exits 0. Settings (`app.CrmConnectorSettings`): `DATABASE_URL`,
`KAFKA_BOOTSTRAP_SERVERS`, `SCHEMA_REGISTRY_URL`, `ACCORD_SANDBOX_URL` (or `ACCORD_CRM_API_URL`),
`ACCORD_CRM_CLIENT_SECRET` and `ACCORD_CRM_WEBHOOK_SECRETS` (required), `ACCORD_CRM_CLIENT_ID`,
`ACCORD_CRM_HTTP_PORT`, `ACCORD_CRM_TOPICS` (JSON), `ACCORD_CRM_GROUP`, `ACCORD_CRM_POLL_INTERVAL_SECONDS`,
`ACCORD_CRM_START_REPLAY_ID`, `ACCORD_CRM_WRITE_RATE`, `ACCORD_CRM_WRITE_CONCURRENCY`, `ACCORD_CRM_WRITE_ATTEMPTS`.
Tables live in the PostgreSQL schema `crm_connector` (runtime, commands and ingest migrations, run at start).

- `mapping`: the pure mapper `map_change(cdc_event, lookups) -> list[Event] | Ignore(reason)` (field mapping,
  merges, contracts and amendments, own write-backs ignored, stable event ids, entity versions);
- `cdc`: the pure gap/order tracker of the change stream (duplicates, possible losses → refetch since a replay
  id, GAP_OVERFLOW → resync by query) and the cursor (last processed replay id);
- `crm_client`: the CRM's REST API (OAuth client credentials, CDC replay, record reads, SOQL re-sync, write-back
  with `Sforce-Call-Options: client=<id>`), errors as TransientError / CrmRejected;
- `sync`: the async edge: lookups filled from the CRM, catch-up by replay, re-sync by query;
- `inbound`: the CRM as an `accord.ingest` source — webhook endpoint, catch-up poller, re-sync, one ingest path;
- `status`: the pure decider of the Account's write-back fields from billing's invoice and payment events;
- `writeback`: the executor of write-back commands (versioned, serialised per account, read back when in doubt);
- `repairs`: the reconciler's RESYNC_CRM_STATUS → the account's last decided fields written again (same command);
- `app`: settings and the HTTP surface.
"""
