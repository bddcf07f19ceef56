"""A finding's life: open → repairing → resolved, or → escalated to a person; auto-closed when systems converge.

    changes = track(records_of_key, evaluate(state, now, policy), now, key=state.key)
    for change in changes:                      # OPENED / REOPENED / UPDATED / AUTO_CLOSED
        record, repair = triage(change.record, now, dry_run=settings.dry_run)   # safe → REPAIRING, else ESCALATED

Pure transitions over immutable `FindingRecord`s (JSON both ways, one row per finding id). A transition not allowed
from the record's status raises `LifecycleError` naming both, never a silent no-op:

    OPEN ──start_repair──▶ REPAIRING ──repair_failed (retryable, attempts left)──▶ OPEN
     │                        │  └──repair_failed (otherwise)──▶ ESCALATED
     ├──escalate──────────────┴──escalate──▶ ESCALATED
     └── resolve / auto-close (from OPEN, REPAIRING or ESCALATED) ──▶ RESOLVED ──found again──▶ OPEN (a new occurrence)

Each occurrence has its own `divergence_id` (uuid5 of the finding id and the occurrence number), so the compacted
`recon.divergences` topic, keyed by divergence key, shows the latest occurrence of each finding.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict

from accord.events import (
    DivergenceDetected,
    DivergenceResolved,
    Meta,
    Money,
    Resolution,
    Severity,
    SourceSystem,
    UtcDatetime,
)
from accord.events import Observation as ObservationRecord

from .model import Observation
from .rules import Finding, FindingClass, Repair, SubCause


class LifecycleError(ValueError):
    """A transition that the finding's status does not allow."""

    def __init__(self, message: str, *, finding_id: uuid.UUID, status: FindingStatus) -> None:
        super().__init__(f"finding {finding_id} is {status.value}: {message}")
        self.finding_id = finding_id
        self.status = status


class FindingStatus(StrEnum):
    OPEN = "OPEN"
    REPAIRING = "REPAIRING"
    RESOLVED = "RESOLVED"
    ESCALATED = "ESCALATED"


ACTIVE = frozenset({FindingStatus.OPEN, FindingStatus.REPAIRING, FindingStatus.ESCALATED})


class Transition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: UtcDatetime
    status: FindingStatus  # the status entered
    by: str
    note: str | None = None


class FindingRecord(BaseModel):
    """What accord keeps about one finding (one key and class) across evaluations and occurrences."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    finding: Finding  # as last evaluated
    status: FindingStatus
    occurrence: int = 1
    first_seen: UtcDatetime  # of this occurrence
    last_seen: UtcDatetime
    repair_attempts: int = 0
    last_repair_error: str | None = None
    resolution: Resolution | None = None
    resolved_by: str | None = None
    note: str | None = None
    history: tuple[Transition, ...] = ()

    @property
    def finding_id(self) -> uuid.UUID:
        return self.finding.finding_id

    @property
    def divergence_id(self) -> str:
        return str(uuid.uuid5(self.finding.finding_id, f"occurrence/{self.occurrence}"))

    def _to(self, status: FindingStatus, now: datetime.datetime, by: str, why: str | None, **changes: object) -> Self:
        step = Transition(at=now, status=status, by=by, note=why)
        return self.model_copy(update={"status": status, "history": (*self.history, step), **changes})

    def _require(self, allowed: Iterable[FindingStatus], doing: str) -> None:
        allowed = frozenset(allowed)
        if self.status not in allowed:
            raise LifecycleError(
                f"cannot {doing} (only from {', '.join(sorted(s.value for s in allowed))})",
                finding_id=self.finding_id,
                status=self.status,
            )


RECONCILER = "reconciler"


def open_finding(finding: Finding, now: datetime.datetime) -> FindingRecord:
    return FindingRecord(
        finding=finding,
        status=FindingStatus.OPEN,
        first_seen=finding.first_seen,
        last_seen=now,
        history=(Transition(at=now, status=FindingStatus.OPEN, by=RECONCILER, note=finding.detail[:500]),),
    )


def start_repair(record: FindingRecord, now: datetime.datetime, *, by: str = RECONCILER) -> FindingRecord:
    """OPEN → REPAIRING, for a finding whose repair is safe; an unsafe one goes to a person (`escalate`)."""
    record._require({FindingStatus.OPEN}, "start a repair")
    if not record.finding.safe:
        raise LifecycleError(
            f"{record.finding.finding_class.value} is not safe to repair automatically: escalate it to a person",
            finding_id=record.finding_id,
            status=record.status,
        )
    return record._to(
        FindingStatus.REPAIRING,
        now,
        by,
        record.finding.repair.value,
        repair_attempts=record.repair_attempts + 1,
    )


def repair_failed(
    record: FindingRecord, now: datetime.datetime, error: str, *, retryable: bool, max_attempts: int = 3
) -> FindingRecord:
    """REPAIRING → OPEN to try again later, or → ESCALATED when the error is permanent or attempts are spent."""
    record._require({FindingStatus.REPAIRING}, "record a failed repair")
    if retryable and record.repair_attempts < max_attempts:
        note = f"repair failed, will retry: {error}"[:500]
        return record._to(FindingStatus.OPEN, now, RECONCILER, note, last_repair_error=error)
    why = "permanent error" if not retryable else f"{record.repair_attempts} attempts spent"
    return record._to(
        FindingStatus.ESCALATED, now, RECONCILER, f"repair failed ({why}): {error}"[:500], last_repair_error=error
    )


def escalate(record: FindingRecord, now: datetime.datetime, reason: str, *, by: str = RECONCILER) -> FindingRecord:
    """OPEN or REPAIRING → ESCALATED: an exception for a person, with the finding's evidence."""
    record._require({FindingStatus.OPEN, FindingStatus.REPAIRING}, "escalate")
    return record._to(FindingStatus.ESCALATED, now, by, reason[:500])


def resolve(
    record: FindingRecord, now: datetime.datetime, *, resolution: Resolution, by: str, note: str | None = None
) -> FindingRecord:
    """An active finding → RESOLVED (a person accepted the difference, or fixed it)."""
    record._require(ACTIVE, "resolve")
    if resolution is Resolution.UNKNOWN:
        raise LifecycleError(
            "say how it was resolved (UNKNOWN is not a resolution)", finding_id=record.finding_id, status=record.status
        )
    return record._to(FindingStatus.RESOLVED, now, by, note, resolution=resolution, resolved_by=by, note=note)


def _auto_close(record: FindingRecord, now: datetime.datetime) -> FindingRecord:
    resolution = {
        FindingStatus.REPAIRING: Resolution.REPAIRED_AUTOMATICALLY,
        FindingStatus.ESCALATED: Resolution.REPAIRED_MANUALLY,  # a person had it, and the systems now agree
    }.get(record.status, Resolution.SELF_HEALED)
    note = (
        f"auto-closed: at {now.isoformat()} the systems agree again "
        f"({record.finding.finding_class.value} no longer found; was {record.status.value})"
    )
    return record._to(
        FindingStatus.RESOLVED, now, RECONCILER, note, resolution=resolution, resolved_by=RECONCILER, note=note
    )


class ChangeKind(StrEnum):
    OPENED = "OPENED"
    REOPENED = "REOPENED"
    UPDATED = "UPDATED"
    AUTO_CLOSED = "AUTO_CLOSED"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    record: FindingRecord


def track(
    records: Mapping[uuid.UUID, FindingRecord], findings: Iterable[Finding], now: datetime.datetime, *, key: str
) -> list[Change]:
    """One evaluation of `key` applied to its records: new findings open, found-again resolved ones reopen, the
    still-found are refreshed, and active ones no longer found are auto-closed with a note."""
    changes: list[Change] = []
    found: set[uuid.UUID] = set()
    for finding in findings:
        if finding.key != key:
            raise ValueError(f"finding of {finding.key!r} tracked under {key!r}")
        found.add(finding.finding_id)
        record = records.get(finding.finding_id)
        if record is None:
            changes.append(Change(ChangeKind.OPENED, open_finding(finding, now)))
        elif record.status is FindingStatus.RESOLVED:
            fresh = open_finding(finding, now)
            history = (*record.history, *fresh.history)
            reopened = fresh.model_copy(update={"occurrence": record.occurrence + 1, "history": history})
            changes.append(Change(ChangeKind.REOPENED, reopened))
        else:
            changes.append(Change(ChangeKind.UPDATED, record.model_copy(update={"finding": finding, "last_seen": now})))
    for fid, record in sorted(records.items()):
        if fid not in found and record.finding.key == key and record.status in ACTIVE:
            changes.append(Change(ChangeKind.AUTO_CLOSED, _auto_close(record, now)))
    return changes


def triage(record: FindingRecord, now: datetime.datetime, *, dry_run: bool = False) -> tuple[FindingRecord, Repair]:
    """What to do with an OPEN finding: its safe repair (→ REPAIRING) or a person (→ ESCALATED). In dry run the
    record is returned unchanged with what would be done."""
    record._require({FindingStatus.OPEN}, "triage")
    repair = record.finding.repair
    if dry_run:
        return record, repair
    if repair is Repair.EXCEPTION:
        return escalate(record, now, f"needs a person: {record.finding.detail}"), repair
    return start_repair(record, now), repair


# -- the recon.divergences contract ----------------------------------------------------------------------------

_MONEY = frozenset(
    {
        FindingClass.MISSING,
        FindingClass.DUPLICATE,
        FindingClass.AMOUNT_MISMATCH,
        FindingClass.CURRENCY_MISMATCH,
        FindingClass.ORPHAN,
    }
)
#: namespace of the ids of the events this module builds
EVENTS = uuid.UUID("9a4e2c71-3b5d-5f08-8e6a-1d7c0b2f4a95")


def severity(finding: Finding) -> Severity:
    """HIGH when money or a legal document is at stake (the contract's rule), MEDIUM otherwise."""
    if finding.finding_class in _MONEY and finding.relation.value in ("journal", "contract"):
        return Severity.HIGH
    if finding.finding_class is FindingClass.IN_DOUBT:
        return Severity.HIGH
    return Severity.MEDIUM


def _value_text(o: Observation, field: str) -> str | None:
    match field:
        case "total":
            return None if o.amount is None else f"{o.amount.normalize():f} {o.currency or ''}".strip()
        case "currency":
            return o.currency
        case "period":
            return o.period
        case "version":
            return None if o.version is None else str(o.version)
        case _:
            return o.status if o.status is not None else o.record_id


def _meta(
    record: FindingRecord, event_type: type[DivergenceDetected | DivergenceResolved], now: datetime.datetime, tag: str
) -> Meta:
    return Meta(
        event_id=uuid.uuid5(EVENTS, f"{record.divergence_id}/{tag}"),
        event_type=event_type.AVRO_NAME,
        occurred_at=now,
        source_system=SourceSystem.ACCORD,
        source_id=record.divergence_id,
        correlation_id=str(record.finding_id),
        legal_entity=record.finding.legal_entity,
        entity_version=record.occurrence,
    )


#: the side that holds nothing, per (relation, class, sub-cause): the contract's value_text null ("record missing")
_ABSENT: dict[tuple[str, FindingClass] | tuple[str, FindingClass, SubCause | None], SourceSystem] = {
    ("journal", FindingClass.MISSING): SourceSystem.ERP,
    ("journal", FindingClass.ORPHAN, SubCause.NO_SOURCE): SourceSystem.BILLING,
    ("contract", FindingClass.STATUS_MISMATCH, SubCause.NO_SUBSCRIPTION): SourceSystem.BILLING,
    ("contract", FindingClass.ORPHAN): SourceSystem.CRM,
    ("amendment", FindingClass.STALE): SourceSystem.BILLING,
    ("amendment", FindingClass.ORPHAN): SourceSystem.CRM,
}


def _absent(f: Finding) -> SourceSystem | None:
    relation = f.relation.value
    return _ABSENT.get((relation, f.finding_class, f.sub_cause)) or _ABSENT.get((relation, f.finding_class))


def detected_event(record: FindingRecord, now: datetime.datetime) -> DivergenceDetected:
    """The `DivergenceDetected` of a record's occurrence (its event id is stable: a re-publication dedupes).

    One contract observation per evidence statement, plus, for a missing record, the system that holds none."""
    f = record.finding
    absent = _absent(f)
    missing = [] if absent is None else [ObservationRecord(system=absent, value_text=None, observed_at=f.last_seen)]
    return DivergenceDetected(
        meta=_meta(record, DivergenceDetected, now, "detected"),
        divergence_key=f.divergence_key,
        divergence_id=record.divergence_id,
        account_id=f.account_id,
        entity_type=f.entity_type,
        entity_id=f.entity_id,
        field=f.field,
        observations=[
            ObservationRecord(
                system=o.system,
                value_text=_value_text(o, f.field),
                observed_at=o.observed_at,
                entity_version=o.version,
                record_id=o.record_id,
                source_event_ids=list(o.source_event_ids),
            )
            for o in f.evidence
        ]
        + missing,
        severity=severity(f),
        auto_repairable=f.safe,
        divergence_class=f.finding_class.value,
        sub_cause=None if f.sub_cause is None else f.sub_cause.value,
        amount_at_risk=None
        if f.amount_at_risk is None or f.currency is None
        else Money(amount=f.amount_at_risk.quantize(Decimal("0.0001")), currency=f.currency),
        detail=f.detail[:2000],
        first_seen=record.first_seen,
        repair=f.repair.value,
    )


def resolved_event(record: FindingRecord, now: datetime.datetime) -> DivergenceResolved:
    record._require({FindingStatus.RESOLVED}, "publish a resolution")
    return DivergenceResolved(
        meta=_meta(record, DivergenceResolved, now, "resolved"),
        divergence_key=record.finding.divergence_key,
        divergence_id=record.divergence_id,
        resolution=record.resolution or Resolution.UNKNOWN,
        resolved_by=record.resolved_by,
        note=record.note,
    )


__all__ = [
    "ACTIVE",
    "Change",
    "ChangeKind",
    "FindingRecord",
    "FindingStatus",
    "LifecycleError",
    "Transition",
    "detected_event",
    "escalate",
    "open_finding",
    "repair_failed",
    "resolve",
    "resolved_event",
    "severity",
    "start_repair",
    "track",
    "triage",
]
