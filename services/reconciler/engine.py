"""The reconciler's I/O around its pure layer: observations in, states and findings in PostgreSQL, divergences out.

    engine = Reconciler(schema="reconciler", policy=Policy(), encode=codec.encode)
    async with conn.transaction():
        report = await engine.observe(conn, observations, now)    # the consumer's batch, in its transaction
    async with conn.transaction():
        report = await engine.sweep(conn, now, limit=500)         # the keys whose deadline has passed

Both end in `_evaluate`: the rules run on each touched key (`rules.assess`), the finding records follow
(`lifecycle.track`), a new finding is triaged (a safe repair → REPAIRING, otherwise → ESCALATED with a case in the
exception queue), `recon.divergences` events go to the outbox, and the key's state is written back with its next
deadline: one durable timer per key, in the same transaction as everything else. Nothing here keeps state in
memory between calls, so a restarted reconciler resumes from its tables with no pending deadline lost.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from accord.casework import CaseClosed, Verdict, decide_case, raise_case, write_outbox
from accord.casework import Severity as CaseSeverity
from accord.events import (
    DivergenceDetected,
    Event,
    ExceptionChanged,
    ExceptionStatus,
    PeriodStatus,
    RepairAction,
    RepairRequested,
    Resolution,
    Severity,
    SourceSystem,
    new_meta,
)

from . import metrics
from .lifecycle import (
    ACTIVE,
    ChangeKind,
    FindingRecord,
    FindingStatus,
    detected_event,
    repair_failed,
    resolved_event,
    severity,
    track,
    triage,
)
from .lifecycle import resolve as resolve_finding
from .model import MatchState, Observation, PeriodBook, RecordKind, Status, aliases_of, resolve
from .rules import Policy, Repair, assess
from .snapshots import align_versions
from .views import summarize, write_views

Encode = Callable[[str, Event], bytes]
TOPIC = DivergenceDetected.TOPIC  # recon.divergences

_CASE_SEVERITY = {
    Severity.LOW: CaseSeverity.LOW,
    Severity.MEDIUM: CaseSeverity.MEDIUM,
    Severity.HIGH: CaseSeverity.HIGH,
    Severity.CRITICAL: CaseSeverity.CRITICAL,
}


@dataclass
class Report:
    """What one call did: for progress lines, metrics and tests."""

    keys: int = 0
    opened: Counter[str] = field(default_factory=Counter)  # finding class → opened or reopened
    closed: int = 0
    escalated: int = 0
    repairs: Counter[str] = field(default_factory=Counter)  # repair → decided (or, in dry run, that would be)
    findings: list[FindingRecord] = field(default_factory=list)  # opened or reopened, after triage

    def merge(self, other: Report) -> None:
        self.keys += other.keys
        self.opened.update(other.opened)
        self.closed += other.closed
        self.escalated += other.escalated
        self.repairs.update(other.repairs)
        self.findings.extend(other.findings)


class Reconciler:
    """Applies observations and deadlines to the tables of `schema` (migrations 6001+, casework, the outbox)."""

    def __init__(
        self,
        *,
        schema: str,
        policy: Policy,
        encode: Encode,
        dry_run: bool = False,
        topics: Mapping[str, str] | None = None,
    ) -> None:
        self.s = schema
        self.policy = policy
        self.encode = encode
        self.dry_run = dry_run
        #: catalogue topic → the topic in use (tests and multi-tenant clusters rename them)
        self.topics = dict(topics or {})

    def topic(self, catalogue: str) -> str:
        return self.topics.get(catalogue, catalogue)

    # -- entry points ----------------------------------------------------------------------------------------

    async def observe(
        self, conn: asyncpg.Connection, observations: Iterable[Observation], now: datetime.datetime
    ) -> Report:
        """Add `observations` to their keys' states (through the alias table) and evaluate the touched keys."""
        observations = list(observations)
        if not observations:
            return Report()
        declared = aliases_of(observations)
        if declared:
            await conn.executemany(
                f"INSERT INTO {self.s}.aliases (alias, key) VALUES ($1, $2) ON CONFLICT (alias) DO NOTHING",
                list(declared.items()),
            )
        wanted = {o.key for o in observations} - set(declared)
        known = await conn.fetch(f"SELECT alias, key FROM {self.s}.aliases WHERE alias = ANY($1::text[])", wanted)
        table = {**{r["alias"]: r["key"] for r in known}, **declared}
        routed: dict[str, list[Observation]] = {}
        for o in observations:
            r = resolve(o, table)
            routed.setdefault(r.key, []).append(r)
        states = await self._load(conn, set(routed) | set(declared))
        # An alias learned now: what was kept under it (a status change seen before the provisioning) moves over.
        for alias, target in declared.items():
            held = states.pop(alias, None)
            if held is not None and alias != target:
                states[target] = (states.get(target) or MatchState.empty(target)).absorb(held)
                routed.setdefault(target, [])
                await conn.execute(f"DELETE FROM {self.s}.match_states WHERE key = $1", alias)
        touched: dict[str, MatchState] = {}
        for key, obs in routed.items():
            touched[key] = (states.get(key) or MatchState.empty(key)).add(*obs).compact()
        return await self._evaluate(conn, touched, now)

    async def observe_snapshot(
        self, conn: asyncpg.Connection, by_key: Mapping[str, list[Observation]], now: datetime.datetime
    ) -> Report:
        """A state run's observations of its candidate keys, added to what the stream said and evaluated.

        A record read from an API has no event version; `snapshots.align_versions` gives it the stream's, so a
        person's later edit outranks the stream's older statement of the same record (and an unchanged re-read is
        the same statement, not added twice)."""
        states = await self._load(conn, set(by_key))
        touched: dict[str, MatchState] = {}
        for key, observations in by_key.items():
            state = states.get(key) or MatchState.empty(key)
            touched[key] = state.add(*align_versions(state, observations)).compact()
        return await self._evaluate(conn, touched, now)

    async def sweep(self, conn: asyncpg.Connection, now: datetime.datetime, *, limit: int = 500) -> Report:
        """Evaluate the keys whose deadline has passed, oldest first; concurrent sweepers take disjoint keys."""
        rows = await conn.fetch(
            f"""SELECT key, state::text AS state FROM {self.s}.match_states
                WHERE next_deadline <= $1 ORDER BY next_deadline LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        states = {r["key"]: MatchState.from_json_text(r["state"]) for r in rows}
        return await self._evaluate(conn, states, now)

    async def evaluate_keys(self, conn: asyncpg.Connection, keys: Iterable[str], now: datetime.datetime) -> Report:
        """Evaluate `keys` now (an operator's `accord reconcile run`, or a state run's candidates)."""
        return await self._evaluate(conn, await self._load(conn, set(keys)), now)

    async def set_period(
        self, conn: asyncpg.Connection, legal_entity: str, period: str, status: PeriodStatus, at: datetime.datetime
    ) -> None:
        if status is PeriodStatus.UNKNOWN:
            return
        await conn.execute(
            f"""INSERT INTO {self.s}.periods (legal_entity, period, status, changed_at) VALUES ($1, $2, $3, $4)
                ON CONFLICT (legal_entity, period)
                DO UPDATE SET status = EXCLUDED.status, changed_at = EXCLUDED.changed_at
                WHERE {self.s}.periods.changed_at <= EXCLUDED.changed_at""",
            legal_entity,
            period,
            status.value,
            at,
        )

    async def case_changed(self, conn: asyncpg.Connection, event: ExceptionChanged, now: datetime.datetime) -> None:
        """A person's verdict on a reconciler case resolves its finding: approved = repaired by hand, dismissed =
        the difference is accepted. If the systems still disagree, the next check of the key opens it again."""
        if not event.kind.startswith("recon-"):
            return
        resolution = {
            ExceptionStatus.RESOLVED: Resolution.REPAIRED_MANUALLY,
            ExceptionStatus.DISMISSED: Resolution.ACCEPTED,
        }.get(event.status)
        if resolution is None:
            return
        row = await conn.fetchrow(
            f"SELECT record::text AS record FROM {self.s}.findings WHERE case_id = $1 FOR UPDATE",
            uuid.UUID(event.exception_id),
        )
        if row is None:
            return
        record = FindingRecord.model_validate_json(row["record"])
        if record.status not in ACTIVE:
            return  # closed by the reconciler itself (the systems agreed again) before the person decided
        by = event.assignee or "operator"
        record = resolve_finding(record, now, resolution=resolution, by=by, note=f"case {event.exception_id}")
        await self._write_findings(conn, [record], now)
        await write_outbox(conn, self.s, [self._event(resolved_event(record, now))])
        metrics.resolved(record)

    # -- the tables ------------------------------------------------------------------------------------------

    async def _load(self, conn: asyncpg.Connection, keys: set[str]) -> dict[str, MatchState]:
        if not keys:
            return {}
        rows = await conn.fetch(
            f"""SELECT key, state::text AS state FROM {self.s}.match_states WHERE key = ANY($1::text[])
                ORDER BY key FOR UPDATE""",
            list(keys),
        )
        return {r["key"]: MatchState.from_json_text(r["state"]) for r in rows}

    async def _periods(self, conn: asyncpg.Connection) -> PeriodBook:
        rows = await conn.fetch(f"SELECT legal_entity, period, status FROM {self.s}.periods")
        return PeriodBook(states={f"{r['legal_entity']}/{r['period']}": PeriodStatus(r["status"]) for r in rows})

    async def _records(self, conn: asyncpg.Connection, keys: list[str]) -> dict[str, dict[uuid.UUID, FindingRecord]]:
        rows = await conn.fetch(
            f"SELECT key, record::text AS record FROM {self.s}.findings WHERE key = ANY($1::text[])", keys
        )
        out: dict[str, dict[uuid.UUID, FindingRecord]] = {}
        for r in rows:
            record = FindingRecord.model_validate_json(r["record"])
            out.setdefault(r["key"], {})[record.finding_id] = record
        return out

    # -- evaluation ------------------------------------------------------------------------------------------

    async def _evaluate(
        self, conn: asyncpg.Connection, states: Mapping[str, MatchState], now: datetime.datetime
    ) -> Report:
        report = Report(keys=len(states))
        if not states:
            return report
        periods = await self._periods(conn)
        records = await self._records(conn, list(states))
        state_rows: list[tuple[Any, ...]] = []
        finding_rows: list[FindingRecord] = []
        outbox: list[tuple[str, str, bytes]] = []
        for key, state in states.items():
            assessment = assess(state, now, self.policy, periods=periods)
            repair_deadlines: list[datetime.datetime] = []
            for change in track(records.get(key, {}), assessment.findings, now, key=key):
                record = change.record
                if change.kind in (ChangeKind.OPENED, ChangeKind.REOPENED):
                    outbox.append(self._event(detected_event(record, now)))
                    record = await self._triage(conn, record, now, report, outbox)
                    if record.status is FindingStatus.REPAIRING:
                        repair_deadlines.append(now + self.policy.repair_timeout)
                    report.opened[record.finding.finding_class.value] += 1
                    report.findings.append(record)
                    metrics.detected(record, now)
                elif change.kind is ChangeKind.UPDATED and record.status is FindingStatus.REPAIRING:
                    record, due = await self._follow_repair(conn, record, now, report, outbox)
                    if due is not None:
                        repair_deadlines.append(due)
                elif change.kind is ChangeKind.AUTO_CLOSED:
                    await self._close_case(conn, record)
                    outbox.append(self._event(resolved_event(record, now)))
                    report.closed += 1
                    metrics.resolved(record)
                finding_rows.append(record)
            deadline = min((d for d in (assessment.next_deadline, *repair_deadlines) if d is not None), default=None)
            state_rows.append(
                (
                    key,
                    state.relation.value,
                    state.account_id,
                    _legal_entity(state),
                    state.to_json_text(),
                    deadline,
                    len(state.observations),
                    state.first_seen or now,
                    now,
                )
            )
        await conn.executemany(
            f"""INSERT INTO {self.s}.match_states
                    (key, relation, account_id, legal_entity, state, next_deadline, observations, first_seen,
                     updated_at)
                VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
                ON CONFLICT (key) DO UPDATE SET account_id = EXCLUDED.account_id,
                    legal_entity = EXCLUDED.legal_entity,
                    state = EXCLUDED.state, next_deadline = EXCLUDED.next_deadline,
                    observations = EXCLUDED.observations, updated_at = EXCLUDED.updated_at""",
            state_rows,
        )
        # accord's view of each system, beside the states: what a state run's snapshot is compared with
        await write_views(conn, self.s, summarize(states.values()), keys=list(states))
        if finding_rows:
            await self._write_findings(conn, finding_rows, now)
        if outbox:
            await write_outbox(conn, self.s, outbox)
        return report

    async def _triage(
        self,
        conn: asyncpg.Connection,
        record: FindingRecord,
        now: datetime.datetime,
        report: Report,
        outbox: list[tuple[str, str, bytes]],
    ) -> FindingRecord:
        record, repair = triage(record, now, dry_run=self.dry_run)
        f = record.finding
        if repair is Repair.EXCEPTION:
            if not self.dry_run:
                record = await self._raise_case(conn, record)
                report.escalated += 1
            return record
        report.repairs[repair.value] += 1
        metrics.REPAIRS.labels(repair.value, str(self.dry_run).lower()).inc()
        attempt = max(record.repair_attempts, 1)
        request = None if self.dry_run else repair_request(record, now)
        await conn.execute(
            f"""INSERT INTO {self.s}.repairs (finding_id, occurrence, repair, attempt, repair_id, dry_run, detail)
                VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
            f.finding_id,
            record.occurrence,
            repair.value,
            attempt,
            None if request is None else request.repair_id,
            self.dry_run,
            f"{'would ' if self.dry_run else ''}{repair.value} (attempt {attempt}): {f.detail}"[:2000],
        )
        if request is not None:
            topic = self.topic(RepairRequested.TOPIC)
            outbox.append((topic, request.key(), self.encode(topic, request)))
        return record

    async def _follow_repair(
        self,
        conn: asyncpg.Connection,
        record: FindingRecord,
        now: datetime.datetime,
        report: Report,
        outbox: list[tuple[str, str, bytes]],
    ) -> tuple[FindingRecord, datetime.datetime | None]:
        """A repair still not converged after its timeout is tried again, or, attempts spent, goes to a person.
        Returns the record and when to look again."""
        if record.status is not FindingStatus.REPAIRING:
            return record, None
        started = max((t.at for t in record.history if t.status is FindingStatus.REPAIRING), default=now)
        due = started + self.policy.repair_timeout
        if now < due:
            return record, due
        record = repair_failed(
            record,
            now,
            f"the systems still disagree {self.policy.repair_timeout} after {record.finding.repair.value}",
            retryable=True,
            max_attempts=self.policy.repair_attempts,
        )
        if record.status is FindingStatus.ESCALATED:
            record = await self._raise_case(conn, record)
            report.escalated += 1
            return record, None
        record = await self._triage(conn, record, now, report, outbox)
        return record, now + self.policy.repair_timeout

    async def _raise_case(self, conn: asyncpg.Connection, record: FindingRecord) -> FindingRecord:
        f = record.finding
        subject = {
            "divergence_key": f.divergence_key,
            **({"account_id": f.account_id} if f.account_id else {}),
            **({"invoice_id": f.entity_id} if f.entity_type == "invoice" else {}),
        }
        raised = await raise_case(
            conn,
            schema=self.s,
            encode=self.encode,
            kind=f"recon-{f.finding_class.value.replace('_', '-')}",
            reason=f.detail[:500],
            subject=subject,
            evidence={
                "finding_id": str(f.finding_id),
                "class": f.finding_class.value,
                "sub_cause": None if f.sub_cause is None else f.sub_cause.value,
                "amount_at_risk": None if f.amount_at_risk is None else f"{f.amount_at_risk} {f.currency}",
                "observations": [o.model_dump(mode="json") for o in f.evidence],
            },
            severity=_CASE_SEVERITY.get(severity(f), CaseSeverity.MEDIUM),
            legal_entity=f.legal_entity,
            actor="reconciler",
        )
        await self._casework_written(conn)
        return record.model_copy(update={"note": f"case {raised.case.id}"})

    async def _close_case(self, conn: asyncpg.Connection, record: FindingRecord) -> None:
        case_id = await conn.fetchval(f"SELECT case_id FROM {self.s}.findings WHERE finding_id = $1", record.finding_id)
        if case_id is None:
            return
        with contextlib.suppress(CaseClosed):  # a person closed it first
            await decide_case(
                conn,
                schema=self.s,
                encode=self.encode,
                case_id=str(case_id),
                verdict=Verdict.APPROVE,
                actor="reconciler",
                note="the systems agree again: closed by the reconciler",
            )
        await self._casework_written(conn)

    async def _write_findings(
        self, conn: asyncpg.Connection, records: list[FindingRecord], now: datetime.datetime
    ) -> None:
        rows = []
        for r in records:
            f = r.finding
            case_id = None
            if r.note and r.note.startswith("case ") and r.status is FindingStatus.ESCALATED:
                case_id = uuid.UUID(r.note.removeprefix("case "))
            rows.append(
                (
                    f.finding_id,
                    f.key,
                    f.finding_class.value,
                    None if f.sub_cause is None else f.sub_cause.value,
                    r.status.value,
                    f.repair.value,
                    f.relation.value,
                    f.legal_entity,
                    f.account_id,
                    f.amount_at_risk,
                    f.currency,
                    r.occurrence,
                    r.first_seen,
                    now,
                    r.last_seen,
                    now if r.status is FindingStatus.RESOLVED else None,
                    case_id,
                    r.model_dump_json(),
                )
            )
        await conn.executemany(
            f"""INSERT INTO {self.s}.findings (finding_id, key, finding_class, sub_cause, status, repair, relation,
                    legal_entity, account_id, amount_at_risk, currency, occurrence, first_seen, detected_at,
                    last_seen, resolved_at, case_id, record)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::jsonb)
                ON CONFLICT (finding_id) DO UPDATE SET sub_cause = EXCLUDED.sub_cause, status = EXCLUDED.status,
                    repair = EXCLUDED.repair, legal_entity = EXCLUDED.legal_entity, account_id = EXCLUDED.account_id,
                    amount_at_risk = EXCLUDED.amount_at_risk, currency = EXCLUDED.currency,
                    first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
                    detected_at = CASE WHEN EXCLUDED.occurrence <> {self.s}.findings.occurrence
                                       THEN EXCLUDED.detected_at ELSE {self.s}.findings.detected_at END,
                    occurrence = EXCLUDED.occurrence, resolved_at = EXCLUDED.resolved_at,
                    case_id = coalesce(EXCLUDED.case_id, {self.s}.findings.case_id), record = EXCLUDED.record""",
            rows,
        )

    def _event(self, event: Event) -> tuple[str, str, bytes]:
        key = event.divergence_key  # type: ignore[attr-defined]
        topic = self.topic(TOPIC)
        return (topic, key, self.encode(topic, event))

    async def _casework_written(self, conn: asyncpg.Connection) -> None:
        """accord.casework writes `ExceptionChanged` under its catalogue topic: move this transaction's rows to the
        topic in use (no committed row can carry the catalogue name when a mapping is set)."""
        target = self.topic(ExceptionChanged.TOPIC)
        if target != ExceptionChanged.TOPIC:
            await conn.execute(
                f"UPDATE {self.s}.outbox SET topic = $2 WHERE topic = $1", ExceptionChanged.TOPIC, target
            )


def _legal_entity(state: MatchState) -> str | None:
    return next((o.legal_entity for o in state.observations if o.legal_entity), None)


_ACTIONS = {
    Repair.REDRIVE_POSTING: (RepairAction.REDRIVE_POSTING, SourceSystem.BILLING),
    Repair.RESYNC_CRM_STATUS: (RepairAction.RESYNC_CRM_STATUS, SourceSystem.CRM),
    Repair.READ_BACK: (RepairAction.READ_BACK, SourceSystem.ERP),
}


def repair_request(record: FindingRecord, now: datetime.datetime) -> RepairRequested:
    """What the connector of the system to repair is asked to do (its id is stable per finding, occurrence and
    attempt: a re-publication is the same request)."""
    f = record.finding
    action, target = _ACTIONS[f.repair]
    repair_id = str(uuid.uuid5(f.finding_id, f"repair/{record.occurrence}/{record.repair_attempts}"))
    in_doubt = [o for o in f.evidence if o.kind is RecordKind.JOURNAL_REQUEST and o.status == Status.IN_DOUBT]
    meta = new_meta(
        RepairRequested,
        source_system=SourceSystem.ACCORD,
        source_id=repair_id,
        correlation_id=str(f.finding_id),
        entity_version=record.repair_attempts,
        legal_entity=f.legal_entity,
        occurred_at=now,
        event_id=uuid.UUID(repair_id),
    )
    return RepairRequested(
        meta=meta,
        repair_id=repair_id,
        divergence_key=f.divergence_key,
        divergence_id=record.divergence_id,
        action=action,
        target_system=target,
        entity_type=f.entity_type,
        entity_id=f.entity_id,
        account_id=f.account_id,
        journal_request_id=in_doubt[-1].record_id if in_doubt else None,
        detail=f.detail[:2000],
    )
