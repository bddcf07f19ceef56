"""accord's ERP connector: billing documents → journal entries in the ERP, and the ERP's customer master.

- `posting`: the pure posting rules (chart of accounts, periods and the closed-period policy, currencies and
  rounding, summarization, deterministic external ids);
- `erp_client`: the ERP's REST API as executors of `accord.commands.CommandWorker` (journals, customers);
- `handlers`: the decider (billing events in, `JournalRequested` + an ERP command out; customer requests in,
  an `upsert_customer` command out; command results → events);
- `results`: what each finished command becomes, in the transaction that closes it;
- `holds`: the ERP refusing a period at post time (reroute or hold), held entries as cases, their release;
- `periods`: the ERP's period calendar polled into `PeriodStatusChanged` and the decider's calendar;
- `summaries`: SUMMARIZED mode's staging and the period job posting one summary per closed batch;
- `settings`, `store`, `__main__`: the process (`python -m accord_erp_connector`).
"""
