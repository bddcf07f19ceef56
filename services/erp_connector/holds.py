"""Closed periods at post time, and held entries: kept, raised as cases, released.

Every function here works on the caller's connection inside its transaction (the worker's closing transaction,
the period poller's, the sweeper's), so an entry is held, rerouted or released together with the events and
commands that say so, or not at all.

- `after_refusal`: the ERP refused a journal's period (PERIOD_CLOSED / PERIOD_LOCKED) even if the calendar said
  open: the closed-period policy applies now — a new `post_journal` command in the next open period (the original
  date in the memo) and a `JournalRequested` saying so, or a hold;
- `hold`: the entry is kept in `held_entries` and a case `journal-held` is opened in the exception queue
  (`accord.casework`; its `ExceptionChanged` goes out through the outbox);
- `release_period`: the period reopened in the ERP: its held entries are posted as they were, their cases resolved;
- `sweep`: a person decided a case (`accord exceptions approve|reject|retry ID --schema erp_connector`): approved
  → posted (rerouted to the next open period if its own is still closed); retry → posted under the configured
  policy; rejected → dismissed (nothing posts; the JournalRejected already said so).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from accord.casework import CaseClosed, Severity, Verdict, decide_case, raise_case, write_outbox
from accord.commands import Command, Outcome, enqueue
from accord.events import (
    Event,
    ExceptionChanged,
    JournalRejected,
    JournalRejectionReason,
    JournalRequested,
    Meta,
    SourceDocumentType,
    SourceSystem,
)

from .erp_client import rejection_code
from .handlers import KIND, SYSTEM, derived_id, journal_lines
from .posting import (
    ClosedPeriodPolicy,
    LegalEntity,
    PeriodCalendar,
    PeriodId,
    PeriodState,
    Post,
    from_payload,
    replace_after_refusal,
    to_payload,
)

log = logging.getLogger("accord.erp_connector")

CASE_KIND = "journal-held"
ACTOR = "erp_connector"
_REFUSED = {"PERIOD_CLOSED": PeriodState.CLOSED, "PERIOD_LOCKED": PeriodState.AR_LOCKED}
#: what a held entry's payload carries beside the post payload, dropped when it is posted
_HOLD_ONLY = ("reason",)


class Calendar:
    """The period calendar as this process knows it: loaded from the ERP at start, kept current by the period
    poller, and told at once when the ERP refuses a period (the poller confirms it at its next poll)."""

    def __init__(self, calendar: PeriodCalendar | None = None) -> None:
        self.current = calendar or PeriodCalendar()

    def __call__(self) -> PeriodCalendar:
        return self.current

    def set(self, entity: str, period: str, state: PeriodState) -> None:
        self.current = self.current.with_state(LegalEntity(entity), PeriodId(period), state)


@dataclass(frozen=True)
class Outbox:
    """Encodes and writes events for this service's schema, under the topics it was told to use instead."""

    schema: str
    encode_for: Callable[[str, Any], bytes]
    topics: Mapping[str, str] = field(default_factory=dict)

    def topic(self, catalogue: str) -> str:
        return self.topics.get(catalogue, catalogue)

    def encode(self, topic: str, event: Any) -> bytes:
        return self.encode_for(self.topic(topic), event)

    async def write(self, conn: asyncpg.Connection, *events: Event) -> None:
        rows = [(self.topic(e.TOPIC), e.key(), self.encode(e.TOPIC, e)) for e in events]
        await write_outbox(conn, self.schema, rows)

    async def casework_written(self, conn: asyncpg.Connection) -> None:
        """accord.casework writes `ExceptionChanged` under its catalogue topic; move this transaction's rows to
        the topic in use (no committed row can still carry the catalogue name when a mapping is set)."""
        target = self.topic(ExceptionChanged.TOPIC)
        if target != ExceptionChanged.TOPIC:
            await conn.execute(
                f"UPDATE {self.schema}.outbox SET topic = $2 WHERE topic = $1", ExceptionChanged.TOPIC, target
            )


def _meta(p: Mapping[str, Any], event_type: type[Event], *, key: str, now: datetime) -> Meta:
    return Meta(
        event_id=derived_id(key, event_type.AVRO_NAME),
        event_type=event_type.AVRO_NAME,
        occurred_at=now,
        source_system=SourceSystem.ACCORD,
        source_id=str(p["external_id"]),
        correlation_id=str(p.get("correlation_id") or p["external_id"]),
        causation_id=str(p.get("causation_id") or "") or None,
        legal_entity=str(p["legal_entity"]),
        entity_version=int(p.get("entity_version") or 1),
    )


async def hold(
    conn: asyncpg.Connection,
    outbox: Outbox,
    payload: Mapping[str, Any],
    *,
    reason: str,
    key: str,
    now: datetime,
    emit_rejected: bool,
) -> str:
    """Keep the entry and open (or update) its case; returns the case id."""
    p = {k: v for k, v in payload.items() if k not in _HOLD_ONLY}
    external_id = str(p["external_id"])
    subject = {"journal_external_id": external_id}
    if p.get("account_id"):
        subject["account_id"] = str(p["account_id"])
    raised = await raise_case(
        conn,
        schema=outbox.schema,
        encode=outbox.encode,
        kind=CASE_KIND,
        reason=f"journal {external_id} held: {reason}"[:500],
        subject=subject,
        evidence={
            "memo": p.get("memo"),
            "period": p.get("period"),
            "tran_date": p.get("tran_date"),
            "currency": p.get("currency"),
            "lines": p.get("lines"),
            "source_document_id": p.get("source_document_id"),
            "how_to_release": "approve: posted (in the next open period if its own is still closed); "
            "reject: never posted; the period reopening in the ERP posts it as it is",
        },
        severity=Severity.HIGH,
        legal_entity=str(p["legal_entity"]),
        actor=ACTOR,
        related_event_id=str(p.get("causation_id") or "") or None,
    )
    await outbox.casework_written(conn)
    await conn.execute(
        f"""INSERT INTO {outbox.schema}.held_entries
                (external_id, legal_entity, period, account_id, payload, reason, case_id)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
            ON CONFLICT (external_id) DO UPDATE SET state = 'held', payload = excluded.payload,
                reason = excluded.reason, case_id = excluded.case_id, period = excluded.period, held_at = now()""",
        external_id,
        str(p["legal_entity"]),
        str(p["period"]),
        p.get("account_id"),
        json.dumps(p, sort_keys=True, default=str),
        reason,
        raised.case.id,
    )
    if emit_rejected:
        rejected = JournalRejected(
            meta=_meta(p, JournalRejected, key=f"{key}/held", now=now),
            legal_entity=str(p["legal_entity"]),
            source_document_id=str(p.get("source_document_id") or external_id),
            journal_request_id=external_id,
            reason=JournalRejectionReason.PERIOD_CLOSED,
            detail=f"held for approval (case {raised.case.id}): {reason}"[:2000],
        )
        await outbox.write(conn, rejected)
    log.info("journal %s held (case %s): %s", external_id, raised.case.id, reason)
    return raised.case.id


async def after_refusal(
    conn: asyncpg.Connection,
    outbox: Outbox,
    command: Command,
    outcome: Outcome,
    *,
    calendar: Calendar,
    policy: ClosedPeriodPolicy,
    now: datetime,
) -> bool:
    """The closed-period policy for a `post_journal` the ERP refused for its period; False if it was not that."""
    code = rejection_code(outcome.error)
    refused = _REFUSED.get(code or "")
    if refused is None:
        return False
    p = command.payload
    calendar.set(str(p["legal_entity"]), str(p["period"]), refused)
    chosen = ClosedPeriodPolicy(str(p.get("closed_policy") or policy.value))
    decision = replace_after_refusal(from_payload(p), calendar(), refused, chosen)
    why = f"the ERP refused period {p['period']} of {p['legal_entity']} ({code})"
    if not isinstance(decision, Post):
        await hold(conn, outbox, p, reason=f"{why}; {decision.reason}", key=command.key, now=now, emit_rejected=True)
        return True
    moved = decision.entry
    payload = {**p, **to_payload(moved)}
    key = f"{command.key}>{moved.period}"
    await enqueue(conn, schema=outbox.schema, system=SYSTEM, kind=KIND, key=key, payload=payload)
    requested = JournalRequested(
        meta=_meta(p, JournalRequested, key=key, now=now),
        legal_entity=moved.legal_entity,
        source_document_id=str(p.get("source_document_id") or moved.external_id),
        journal_request_id=moved.external_id,
        source_document_type=SourceDocumentType(str(p.get("source_document_type") or "INVOICE")),
        account_id=None if p.get("account_id") is None else str(p["account_id"]),
        accounting_date=moved.accounting_date,
        lines=journal_lines(moved),
    )
    await outbox.write(conn, requested)
    log.info("journal %s rerouted to %s: %s", moved.external_id, moved.period, why)
    return True


async def release(
    conn: asyncpg.Connection, outbox: Outbox, external_id: str, *, actor: str, policy: ClosedPeriodPolicy | None
) -> bool:
    """Post a held entry now (a new `post_journal` command); False if it is not held (any more)."""
    row = await conn.fetchrow(
        f"""SELECT payload::text AS payload, releases FROM {outbox.schema}.held_entries
            WHERE external_id = $1 AND state = 'held' FOR UPDATE""",
        external_id,
    )
    if row is None:
        return False
    payload = json.loads(row["payload"])
    if policy is not None:
        payload["closed_policy"] = policy.value
    n = row["releases"] + 1
    await enqueue(
        conn, schema=outbox.schema, system=SYSTEM, kind=KIND, key=f"{external_id}@release-{n}", payload=payload
    )
    await conn.execute(
        f"""UPDATE {outbox.schema}.held_entries SET state = 'released', releases = $2, released_at = now(),
                released_by = $3 WHERE external_id = $1""",
        external_id,
        n,
        actor,
    )
    log.info("held journal %s released by %s", external_id, actor)
    return True


async def release_period(conn: asyncpg.Connection, outbox: Outbox, entity: str, period: str) -> int:
    """The period reopened in the ERP: post what was held in it, as it was, and resolve the cases."""
    rows = await conn.fetch(
        f"""SELECT external_id, case_id FROM {outbox.schema}.held_entries
            WHERE legal_entity = $1 AND period = $2 AND state = 'held' ORDER BY held_at FOR UPDATE""",
        entity,
        period,
    )
    for row in rows:
        await release(conn, outbox, row["external_id"], actor=f"{ACTOR} (period reopened)", policy=None)
        if row["case_id"] is not None:
            # Decided by a person meanwhile (CaseClosed): the entry is released either way.
            with contextlib.suppress(CaseClosed):
                await decide_case(
                    conn,
                    schema=outbox.schema,
                    encode=outbox.encode,
                    case_id=str(row["case_id"]),
                    verdict=Verdict.APPROVE,
                    actor=ACTOR,
                    note=f"period {period} of {entity} reopened in the ERP: the entry is posted in it",
                )
    if rows:
        await outbox.casework_written(conn)
    return len(rows)


async def sweep(conn: asyncpg.Connection, outbox: Outbox) -> int:
    """Act on the cases people decided: approve → post (rerouted if its period is still closed), retry → post
    under the configured policy, reject → dismissed. Returns how many held entries it settled."""
    s = outbox.schema
    rows = await conn.fetch(
        f"""SELECT h.external_id, c.state,
                   (SELECT a.actor FROM {s}.case_actions a WHERE a.case_id = c.id ORDER BY a.id DESC LIMIT 1) AS actor
            FROM {s}.held_entries h JOIN {s}.cases c ON c.id = h.case_id
            WHERE h.state = 'held' AND c.state IN ('resolved', 'rejected', 'retrying')
            ORDER BY h.held_at FOR UPDATE OF h SKIP LOCKED""",
    )
    for row in rows:
        actor = str(row["actor"] or "operator")
        if row["state"] == "rejected":
            await conn.execute(
                f"""UPDATE {s}.held_entries SET state = 'dismissed', released_at = now(), released_by = $2
                    WHERE external_id = $1""",
                row["external_id"],
                actor,
            )
            log.info("held journal %s dismissed by %s", row["external_id"], actor)
            continue
        policy = ClosedPeriodPolicy.REROUTE if row["state"] == "resolved" else None
        await release(conn, outbox, row["external_id"], actor=actor, policy=policy)
    return len(rows)
