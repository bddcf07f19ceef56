"""accord's ERP connector: billing documents → journal entries in the ERP.

- `posting`: the pure posting rules (chart of accounts, periods and the closed-period policy, currencies and
  rounding, summarization, deterministic external ids);
- `erp_client`: the ERP's REST API as an executor of `accord.commands.CommandWorker`;
- `handlers`: the decider (events in, `JournalRequested` + an ERP command out; command results → events).
"""
