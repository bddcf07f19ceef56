"""The state reconciliation benchmark: the candidate query against a plain SQL full outer join."""
