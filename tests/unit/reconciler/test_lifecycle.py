"""Findings' lifecycle: open → repairing → resolved | escalated, auto-close on convergence, reopening, and the
`recon.divergences` events a record becomes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import fastavro
import pytest

from accord.events import DivergenceDetected, DivergenceResolved, Resolution, Severity, SourceSystem
from accord_reconciler.lifecycle import (
    ChangeKind,
    FindingRecord,
    FindingStatus,
    LifecycleError,
    detected_event,
    escalate,
    open_finding,
    repair_failed,
    resolve,
    resolved_event,
    start_repair,
    track,
    triage,
)
from accord_reconciler.rules import Finding, Policy, Repair, evaluate

from .builders import at, invoice, posted, requested, states

pytestmark = pytest.mark.unit

KEY = "journal:EU/in_1"
NOW = at(hours=1)


def missing() -> Finding:
    (finding,) = evaluate(states(invoice())[KEY], NOW, Policy())  # safe: re-drive the posting
    return finding


def mismatch() -> Finding:
    (finding,) = evaluate(states(invoice(), requested(), posted(total="100.00"))[KEY], NOW, Policy())  # unsafe
    return finding


def opened(finding: Finding | None = None) -> FindingRecord:
    return open_finding(finding or missing(), NOW)


Step = Callable[[FindingRecord], FindingRecord]
T1 = at(hours=2)

TRANSITIONS: list[tuple[str, Callable[[], FindingRecord], Step, FindingStatus]] = [
    ("a safe finding goes to repair", opened, lambda r: start_repair(r, T1), FindingStatus.REPAIRING),
    (
        "a failed repair that may succeed later is open again",
        lambda: start_repair(opened(), T1),
        lambda r: repair_failed(r, T1, "HTTP 503", retryable=True),
        FindingStatus.OPEN,
    ),
    (
        "a permanently failed repair goes to a person",
        lambda: start_repair(opened(), T1),
        lambda r: repair_failed(r, T1, "account closed", retryable=False),
        FindingStatus.ESCALATED,
    ),
    (
        "spent repair attempts go to a person",
        lambda: start_repair(opened(), T1),
        lambda r: repair_failed(r, T1, "HTTP 503", retryable=True, max_attempts=1),
        FindingStatus.ESCALATED,
    ),
    (
        "an open finding is escalated",
        opened,
        lambda r: escalate(r, T1, "the amounts need a person"),
        FindingStatus.ESCALATED,
    ),
    (
        "a person resolves an escalated finding",
        lambda: escalate(opened(mismatch()), T1, "needs a person"),
        lambda r: resolve(r, T1, resolution=Resolution.ACCEPTED, by="ana@finance", note="discount agreed"),
        FindingStatus.RESOLVED,
    ),
]


@pytest.mark.parametrize(("name", "start", "step", "status"), TRANSITIONS, ids=[t[0] for t in TRANSITIONS])
def test_transition(name: str, start: Callable[[], FindingRecord], step: Step, status: FindingStatus) -> None:
    before = start()
    after = step(before)
    assert after.status is status
    assert after.history[-1].status is status and after.history[-1].at == T1
    assert len(after.history) == len(before.history) + 1
    assert before.status is not status  # records are immutable: the old one is untouched


REFUSED: list[tuple[str, Callable[[], FindingRecord], Step, str]] = [
    (
        "an unsafe finding is not repaired automatically",
        lambda: opened(mismatch()),
        lambda r: start_repair(r, T1),
        "not safe to repair automatically",
    ),
    (
        "a repair cannot start twice",
        lambda: start_repair(opened(), T1),
        lambda r: start_repair(r, T1),
        "cannot start a repair",
    ),
    (
        "a resolved finding cannot be escalated",
        lambda: resolve(opened(), T1, resolution=Resolution.ACCEPTED, by="ana"),
        lambda r: escalate(r, T1, "late"),
        "cannot escalate",
    ),
    (
        "a failure is only recorded for a repair in progress",
        opened,
        lambda r: repair_failed(r, T1, "x", retryable=True),
        "cannot record a failed repair",
    ),
    (
        "a resolution must say how",
        opened,
        lambda r: resolve(r, T1, resolution=Resolution.UNKNOWN, by="ana"),
        "say how it was resolved",
    ),
]


@pytest.mark.parametrize(("name", "start", "step", "message"), REFUSED, ids=[t[0] for t in REFUSED])
def test_a_transition_not_allowed_is_refused_with_the_status(
    name: str, start: Callable[[], FindingRecord], step: Step, message: str
) -> None:
    record = start()
    with pytest.raises(LifecycleError, match=message) as info:
        step(record)
    assert info.value.finding_id == record.finding_id and info.value.status is record.status
    assert str(record.finding_id) in str(info.value)


def test_track_opens_updates_and_auto_closes_when_the_systems_converge() -> None:
    (change,) = track({}, [missing()], NOW, key=KEY)
    assert change.kind is ChangeKind.OPENED
    record = change.record
    later = at(hours=3)
    (update,) = track(
        {record.finding_id: record}, evaluate(states(invoice(), requested())[KEY], later, Policy()), later, key=KEY
    )
    assert update.kind is ChangeKind.UPDATED
    assert (update.record.first_seen, update.record.last_seen) == (record.first_seen, later)
    assert update.record.finding.sub_cause is not None and update.record.finding.sub_cause.value == "no_answer"
    converged = evaluate(states(invoice(), requested(), posted())[KEY], at(hours=4), Policy())
    assert converged == []
    (closed,) = track({record.finding_id: update.record}, converged, at(hours=4), key=KEY)
    assert closed.kind is ChangeKind.AUTO_CLOSED
    assert closed.record.status is FindingStatus.RESOLVED
    assert closed.record.resolution is Resolution.SELF_HEALED
    assert closed.record.note is not None and "systems agree again" in closed.record.note


@pytest.mark.parametrize(
    ("status_of", "resolution"),
    [
        (lambda r: r, Resolution.SELF_HEALED),
        (lambda r: start_repair(r, T1), Resolution.REPAIRED_AUTOMATICALLY),
        (lambda r: escalate(r, T1, "a person looks"), Resolution.REPAIRED_MANUALLY),
    ],
    ids=["open → self-healed", "repairing → repaired automatically", "escalated → repaired manually"],
)
def test_auto_close_says_how_it_converged(status_of: Step, resolution: Resolution) -> None:
    record = status_of(opened())
    (closed,) = track({record.finding_id: record}, [], at(hours=5), key=KEY)
    assert (closed.kind, closed.record.resolution, closed.record.resolved_by) == (
        ChangeKind.AUTO_CLOSED,
        resolution,
        "reconciler",
    )


def test_track_leaves_resolved_findings_and_other_keys_alone() -> None:
    resolved = resolve(opened(), T1, resolution=Resolution.ACCEPTED, by="ana")
    other = opened(evaluate(states(invoice("in_2"))["journal:EU/in_2"], NOW, Policy())[0])
    assert track({resolved.finding_id: resolved, other.finding_id: other}, [], T1, key=KEY) == []


def test_a_divergence_found_again_after_resolution_is_a_new_occurrence() -> None:
    resolved = resolve(opened(), T1, resolution=Resolution.ACCEPTED, by="ana")
    (change,) = track({resolved.finding_id: resolved}, [missing()], at(hours=6), key=KEY)
    assert change.kind is ChangeKind.REOPENED
    assert (change.record.status, change.record.occurrence) == (FindingStatus.OPEN, 2)
    assert change.record.finding_id == resolved.finding_id
    assert change.record.divergence_id != resolved.divergence_id
    assert len(change.record.history) == len(resolved.history) + 1


@pytest.mark.parametrize(
    ("finding", "dry_run", "status", "repair"),
    [
        (missing, False, FindingStatus.REPAIRING, Repair.REDRIVE_POSTING),
        (mismatch, False, FindingStatus.ESCALATED, Repair.EXCEPTION),
        (missing, True, FindingStatus.OPEN, Repair.REDRIVE_POSTING),
        (mismatch, True, FindingStatus.OPEN, Repair.EXCEPTION),
    ],
    ids=["safe → repairing", "unsafe → a person", "dry run, safe: says what it would do", "dry run, unsafe"],
)
def test_triage(finding: Callable[[], Finding], dry_run: bool, status: FindingStatus, repair: Repair) -> None:
    record, action = triage(opened(finding()), T1, dry_run=dry_run)
    assert (record.status, action) == (status, repair)


def test_a_record_round_trips_through_json() -> None:
    record = escalate(start_repair(opened(), T1), T1, "stuck")
    back = FindingRecord.model_validate(json.loads(record.model_dump_json()))
    assert back == record


def _valid(event: DivergenceDetected | DivergenceResolved) -> bool:
    schema = fastavro.parse_schema(json.loads(event.SCHEMA))
    return bool(fastavro.validation.validate(event.to_avro(), schema, raise_errors=True))


def test_a_record_becomes_the_recon_divergences_events() -> None:
    record = opened(mismatch())
    detected = detected_event(record, NOW)
    assert _valid(detected)
    assert (detected.divergence_key, detected.field, detected.entity_type, detected.entity_id) == (
        "journal:EU/in_1:amount_mismatch",
        "total",
        "invoice",
        "in_1",
    )
    assert detected.key() == detected.divergence_key
    assert (detected.severity, detected.auto_repairable) == (Severity.HIGH, False)
    sides = {(o.system, o.value_text) for o in detected.observations}
    assert {(SourceSystem.BILLING, "120 EUR"), (SourceSystem.ERP, "100 EUR")} <= sides
    assert detected_event(record, at(hours=9)).meta.event_id == detected.meta.event_id  # re-published: deduped
    closed = resolve(record, T1, resolution=Resolution.ACCEPTED, by="ana@finance", note="agreed discount")
    resolved = resolved_event(closed, T1)
    assert _valid(resolved)
    assert (resolved.divergence_id, resolved.resolution, resolved.resolved_by) == (
        detected.divergence_id,
        Resolution.ACCEPTED,
        "ana@finance",
    )
    with pytest.raises(LifecycleError, match="cannot publish a resolution"):
        resolved_event(record, T1)


def test_first_seen_is_when_it_became_a_finding_not_when_it_was_evaluated() -> None:
    record = opened()
    assert record.first_seen == at(minutes=10) < record.last_seen == NOW
    assert isinstance(record.first_seen, datetime)


def test_a_missing_record_shows_as_the_side_that_holds_nothing() -> None:
    detected = detected_event(opened(), NOW)
    assert (SourceSystem.ERP, None) in {(o.system, o.value_text) for o in detected.observations}
    assert (SourceSystem.BILLING, "ISSUED") in {(o.system, o.value_text) for o in detected.observations}
    assert _valid(detected)
