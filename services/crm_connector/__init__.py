"""accord's CRM connector, inbound core: CRM change-data-capture events → canonical events.

- `mapping`: the pure mapper `map_change(cdc_event, lookups) -> list[Event] | Ignore(reason)` (field mapping,
  merges, contracts and amendments, own write-backs ignored, stable event ids, entity versions);
- `cdc`: the pure gap/order tracker of the change stream (duplicates, possible losses → refetch since a replay
  id, GAP_OVERFLOW → resync by query) and the cursor (last processed replay id);
- `crm_client`: the CRM's REST API (OAuth client credentials, CDC replay, record reads, SOQL re-sync, write-back
  with `Sforce-Call-Options: client=<id>`), errors as TransientError / CrmRejected;
- `sync`: the async edge: lookups filled from the CRM, catch-up by replay, re-sync by query.

To plug the mapper into `accord.ingest` (whose mapper returns `Mapped | Ignored`), wrap it:
`Mapped(events) if isinstance(r, list) else Ignored(r.reason)`.
"""
