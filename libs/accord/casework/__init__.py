"""The exception queue: business exceptions that need a person, with evidence and a history of every action.

    async with conn.transaction():      # e.g. a workflow's transition
        raised = await raise_case(conn, schema="orchestrator", encode=codec.encode, kind="tax-mismatch",
                                  reason="tax differs between billing and ERP", subject={"invoice_id": "in_1"},
                                  evidence={"billing": {...}, "erp": {...}, "last_error": "..."})
    async with conn.transaction():      # an operator's decision (`accord exceptions approve ID`)
        await decide_case(conn, schema="orchestrator", encode=codec.encode, case_id=raised.case.id,
                          verdict=Verdict.APPROVE, actor=operator(), note="checked with tax team")

Raising the same (kind, subject) twice gives one open case (the evidence is updated, history says so).
Each new case and each decision emits `accord.q2c.ExceptionChanged` through the outbox in the same
transaction, which is how the workflow waiting on the case resumes. Tables: `migrate_casework` (3001+).
"""

from ._store import (
    MIGRATIONS,
    Case,
    CaseAction,
    CaseClosed,
    CaseNotFound,
    CaseState,
    CaseworkError,
    Encode,
    Raised,
    Severity,
    Verdict,
    close_retried,
    decide_case,
    get_case,
    list_cases,
    migrate_casework,
    raise_case,
    redact,
    write_outbox,
)

__all__ = [
    "MIGRATIONS",
    "Case",
    "CaseAction",
    "CaseClosed",
    "CaseNotFound",
    "CaseState",
    "CaseworkError",
    "Encode",
    "Raised",
    "Severity",
    "Verdict",
    "close_retried",
    "decide_case",
    "get_case",
    "list_cases",
    "migrate_casework",
    "raise_case",
    "redact",
    "write_outbox",
]
