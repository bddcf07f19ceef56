"""The `cases` and `case_actions` tables: raise a case idempotently, act on it, read it back.

Every function works on the caller's connection and inside the caller's transaction, so a workflow raises
a case in the same transaction as its transition, and an operator's action commits together with its
history row and the `ExceptionChanged` event it emits (an outbox row). Tables are qualified with the schema.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg

from accord.errors import AccordError, ConfigurationError
from accord.events import Event, ExceptionChanged, ExceptionStatus, SourceSystem, new_meta
from accord.migrations import Migration, migrate
from accord.runtime._store import outbox_channel

MIGRATIONS = Path(__file__).parent / "migrations"

#: Encodes an event for a topic (Confluent wire format): `accord.serde.EventCodec.encode`.
Encode = Callable[[str, Event], bytes]


class CaseState(StrEnum):
    OPEN = "open"
    RETRYING = "retrying"  # the workflow re-runs the failed step; raised again → open, workflow done → resolved
    ASSIGNED = "assigned"  # room for the human workflow of a later issue
    ESCALATED = "escalated"  # idem
    RESOLVED = "resolved"
    REJECTED = "rejected"

    @property
    def closed(self) -> bool:
        return self in (CaseState.RESOLVED, CaseState.REJECTED)


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Verdict(StrEnum):
    """What an operator decides; the workflow waiting on the case reads it from `ExceptionChanged.status`."""

    APPROVE = "approve"  # → resolved; the workflow continues
    REJECT = "reject"  # → rejected; the workflow compensates or stops
    RETRY = "retry"  # → retrying; the workflow re-runs the failed step


#: Verdict → (case state after it, history action, ExceptionChanged status)
_EFFECT = {
    Verdict.APPROVE: (CaseState.RESOLVED, "approved", ExceptionStatus.RESOLVED),
    Verdict.REJECT: (CaseState.REJECTED, "rejected", ExceptionStatus.DISMISSED),
    Verdict.RETRY: (CaseState.RETRYING, "retried", ExceptionStatus.RETRYING),
}


class CaseworkError(AccordError):
    """A case cannot be found or cannot take the action asked for; the message says which and why."""


class CaseNotFound(CaseworkError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no exception case {case_id!r}; `accord exceptions list` shows the ids")
        self.case_id = case_id


class CaseClosed(CaseworkError):
    def __init__(self, case_id: str, state: str, verdict: str) -> None:
        super().__init__(
            f"exception case {case_id} is already {state}; {verdict} applies only to an unfinished case "
            "(raise a new one if the problem came back)"
        )
        self.case_id = case_id
        self.state = state


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    reason: str
    severity: Severity
    subject: Mapping[str, str]
    legal_entity: str | None
    workflow_id: str | None
    evidence: Mapping[str, Any]
    state: CaseState
    owner: str | None
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Case:
        return cls(
            id=str(row["id"]),
            kind=row["kind"],
            reason=row["reason"],
            severity=Severity(row["severity"]),
            subject=json.loads(row["subject"]),
            legal_entity=row["legal_entity"],
            workflow_id=None if row["workflow_id"] is None else str(row["workflow_id"]),
            evidence=json.loads(row["evidence"]),
            state=CaseState(row["state"]),
            owner=row["owner"],
            due_at=row["due_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=row["version"],
        )


@dataclass(frozen=True)
class CaseAction:
    action: str
    actor: str
    note: str | None
    from_state: str | None
    to_state: str
    at: datetime


@dataclass(frozen=True)
class Raised:
    """What `raise_case` did: the case as it stands, and whether it is new (False: an open one was updated)."""

    case: Case
    created: bool


def checked_schema(schema: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ConfigurationError(f"schema name {schema!r} must be a lower-case SQL identifier")
    return schema


async def migrate_casework(conn: asyncpg.Connection, *, schema: str) -> list[Migration]:
    """Create `cases` and `case_actions` in `schema` (beside the runtime's tables, which hold the outbox)."""
    return await migrate(conn, MIGRATIONS, schema=checked_schema(schema))


# Keys whose values are never kept as evidence: evidence is read by people and shipped to the console.
_SECRET = re.compile(r"pass(word)?|secret|token|api[_-]?key|authori[sz]ation|credential|cookie|signature", re.I)


def redact(evidence: Any) -> Any:
    """Evidence with every value under a secret-looking key replaced, at any depth."""
    if isinstance(evidence, Mapping):
        return {k: "[redacted]" if _SECRET.search(str(k)) else redact(v) for k, v in evidence.items()}
    if isinstance(evidence, list | tuple):
        return [redact(v) for v in evidence]
    return evidence


def subject_key(subject: Mapping[str, str]) -> str:
    if not subject:
        raise CaseworkError("an exception case needs a subject: at least one id (account_id, contract_id, ...)")
    return ";".join(f"{k}={subject[k]}" for k in sorted(subject))


async def raise_case(
    conn: asyncpg.Connection,
    *,
    schema: str,
    encode: Encode,
    kind: str,
    reason: str,
    subject: Mapping[str, str],
    evidence: Mapping[str, Any],
    severity: Severity = Severity.MEDIUM,
    legal_entity: str | None = None,
    workflow_id: str | None = None,
    due_in: timedelta | None = None,
    actor: str = "accord",
    related_event_id: str | None = None,
) -> Raised:
    """Open a case for (kind, subject), or, if one is open already, update its evidence: one case either way.

    History says which ("raised" or "raised-again"). A new case emits `ExceptionChanged(OPEN)`.
    """
    s = checked_schema(schema)
    key = subject_key(subject)
    body = json.dumps(redact(evidence), sort_keys=True, default=str)
    due_at = None if due_in is None else datetime.now(UTC) + due_in
    row = await conn.fetchrow(
        f"""INSERT INTO {s}.cases (id, kind, reason, severity, subject, subject_key, account_id, contract_id,
                invoice_id, legal_entity, workflow_id, evidence, due_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)
            ON CONFLICT (kind, subject_key) WHERE state NOT IN ('resolved', 'rejected') DO NOTHING
            RETURNING *""",
        uuid.uuid4(),
        kind,
        reason,
        severity.value,
        json.dumps(dict(subject), sort_keys=True),
        key,
        subject.get("account_id"),
        subject.get("contract_id"),
        subject.get("invoice_id"),
        legal_entity,
        None if workflow_id is None else uuid.UUID(workflow_id),
        body,
        due_at,
    )
    created = row is not None
    before: CaseState | None = None
    if row is None:
        before_state = await conn.fetchval(
            f"""SELECT state FROM {s}.cases WHERE kind = $1 AND subject_key = $2
                AND state NOT IN ('resolved', 'rejected') FOR UPDATE""",
            kind,
            key,
        )
        before = None if before_state is None else CaseState(before_state)
        # A retried case whose step failed again is open again; any other unfinished state is kept.
        row = await conn.fetchrow(
            f"""UPDATE {s}.cases SET evidence = $3::jsonb, reason = $4, updated_at = now(), version = version + 1,
                    workflow_id = coalesce($5, workflow_id),
                    state = CASE WHEN state = 'retrying' THEN 'open' ELSE state END
                WHERE kind = $1 AND subject_key = $2 AND state NOT IN ('resolved', 'rejected')
                RETURNING *""",
            kind,
            key,
            body,
            reason,
            None if workflow_id is None else uuid.UUID(workflow_id),
        )
        if row is None:  # closed between the insert and the update by a concurrent transaction
            raise CaseworkError(f"exception case {kind} for {key} changed concurrently; raise it again")
    case = Case.from_row(row)
    await _history(conn, s, case.id, "raised" if created else "raised-again", actor, None, before, case.state)
    if created or before is CaseState.RETRYING:
        await _emit(conn, s, encode, case, ExceptionStatus.OPEN, related_event_id)
    return Raised(case, created)


async def close_retried(
    conn: asyncpg.Connection, *, schema: str, encode: Encode, workflow_id: str, actor: str, note: str
) -> list[Case]:
    """Resolve the workflow's cases left `retrying` (its re-run step did not fail again: the workflow moved on
    to its end). Each gets a history row and `ExceptionChanged(RESOLVED)`."""
    s = checked_schema(schema)
    rows = await conn.fetch(
        f"""UPDATE {s}.cases SET state = 'resolved', updated_at = now(), version = version + 1
            WHERE workflow_id = $1 AND state = 'retrying' RETURNING *""",
        uuid.UUID(workflow_id),
    )
    cases = [Case.from_row(r) for r in rows]
    for case in cases:
        await _history(conn, s, case.id, "resolved-by-workflow", actor, note, CaseState.RETRYING, case.state)
        await _emit(conn, s, encode, case, ExceptionStatus.RESOLVED, None)
    return cases


async def decide_case(
    conn: asyncpg.Connection,
    *,
    schema: str,
    encode: Encode,
    case_id: str,
    verdict: Verdict,
    actor: str,
    note: str | None = None,
) -> Case:
    """An operator's decision on an unfinished case: new state, a history row, and `ExceptionChanged`."""
    s = checked_schema(schema)
    ident = _case_uuid(case_id)
    current = await conn.fetchrow(f"SELECT * FROM {s}.cases WHERE id = $1 FOR UPDATE", ident)
    if current is None:
        raise CaseNotFound(case_id)
    before = CaseState(current["state"])
    if before.closed:
        raise CaseClosed(case_id, before.value, verdict.value)
    after, action, status = _EFFECT[verdict]
    row = await conn.fetchrow(
        f"""UPDATE {s}.cases SET state = $2, updated_at = now(), version = version + 1 WHERE id = $1
            RETURNING *""",
        ident,
        after.value,
    )
    assert row is not None  # locked above
    case = Case.from_row(row)
    await _history(conn, s, case.id, action, actor, note, before, after)
    await _emit(conn, s, encode, case, status, None)
    return case


async def get_case(conn: asyncpg.Connection, *, schema: str, case_id: str) -> tuple[Case, list[CaseAction]]:
    s = checked_schema(schema)
    row = await conn.fetchrow(f"SELECT * FROM {s}.cases WHERE id = $1", _case_uuid(case_id))
    if row is None:
        raise CaseNotFound(case_id)
    actions = await conn.fetch(
        f"SELECT action, actor, note, from_state, to_state, at FROM {s}.case_actions WHERE case_id = $1 ORDER BY id",
        row["id"],
    )
    return Case.from_row(row), [CaseAction(**dict(a)) for a in actions]


async def list_cases(
    conn: asyncpg.Connection,
    *,
    schema: str,
    state: CaseState | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Case]:
    """Cases, oldest first (the ones waiting longest are the ones to look at)."""
    s = checked_schema(schema)
    rows = await conn.fetch(
        f"""SELECT * FROM {s}.cases WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
            ORDER BY created_at, id LIMIT $3""",
        None if state is None else state.value,
        kind,
        limit,
    )
    return [Case.from_row(r) for r in rows]


def _case_uuid(case_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(case_id)
    except ValueError:
        raise CaseNotFound(case_id) from None


async def _history(
    conn: asyncpg.Connection,
    s: str,
    case_id: str,
    action: str,
    actor: str,
    note: str | None,
    before: CaseState | None,
    after: CaseState,
) -> None:
    await conn.execute(
        f"""INSERT INTO {s}.case_actions (case_id, action, actor, note, from_state, to_state)
            VALUES ($1, $2, $3, $4, $5, $6)""",
        uuid.UUID(case_id),
        action,
        actor,
        note,
        None if before is None else before.value,
        after.value,
    )


async def _emit(
    conn: asyncpg.Connection,
    s: str,
    encode: Encode,
    case: Case,
    status: ExceptionStatus,
    related_event_id: str | None,
) -> None:
    event = ExceptionChanged(
        meta=new_meta(
            ExceptionChanged,
            source_system=SourceSystem.ACCORD,
            source_id=f"case:{case.id}:v{case.version}",
            correlation_id=case.workflow_id or case.id,
            entity_version=case.version,
            legal_entity=case.legal_entity,
        ),
        exception_id=case.id,
        kind=case.kind,
        status=status,
        summary=case.reason,
        workflow_id=case.workflow_id,
        account_id=case.subject.get("account_id"),
        related_event_id=related_event_id,
        assignee=case.owner,
    )
    await write_outbox(conn, s, [(ExceptionChanged.TOPIC, event.key(), encode(ExceptionChanged.TOPIC, event))])


async def write_outbox(conn: asyncpg.Connection, schema: str, rows: Sequence[tuple[str, str, bytes]]) -> None:
    """Rows (topic, key, encoded value) into the runtime's outbox, in the caller's transaction."""
    if not rows:
        return
    await conn.executemany(
        f"INSERT INTO {schema}.outbox (topic, key, value) VALUES ($1, $2, $3)",
        [(t, k.encode(), v) for t, k, v in rows],
    )
    # Wakes the relay at commit; it also polls, so a lost notification only delays.
    await conn.execute("SELECT pg_notify($1, '')", outbox_channel(schema))
