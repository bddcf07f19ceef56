"""The connector's own tables (`migrations/`): the ERP's period calendar as last seen, and held journal entries.
Beside them in the same schema: the runtime's (outbox, state, processed events), the commands table and the
exception queue's cases (accord.casework)."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"
