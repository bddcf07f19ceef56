"""The CDC gap/order tracker: duplicates, reordering, possible losses on the push path, overflow."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from accord_crm_connector.cdc import CdcTracker, Refetch, Resync

pytestmark = pytest.mark.unit


def ev(replay: int, commit: int, *, tx: str | None = None, seq: int = 1, change: str = "UPDATE") -> dict[str, Any]:
    header = {
        "entityName": "Account",
        "recordIds": ["001A"],
        "changeType": change,
        "changeOrigin": "",
        "transactionKey": tx or f"tx-{commit}",
        "sequenceNumber": seq,
        "commitTimestamp": 1_764_324_000_000,
        "commitNumber": commit,
    }
    return {"payload": {"ChangeEventHeader": header}, "event": {"replayId": replay}}


def run(tracker: CdcTracker, *events: dict[str, Any], pushed: bool) -> None:
    for event in events:
        tracker.observe(event, pushed=pushed)
        tracker.processed(event)


def test_pull_with_replay_id_and_commit_holes_needs_nothing() -> None:
    tracker = CdcTracker("crm")
    run(tracker, ev(10, 1), pushed=False)
    seen = tracker.observe(ev(57, 9), pushed=False)  # other systems' events and silent commits in between
    assert seen.action is None and not seen.duplicate


def test_push_with_a_commit_hole_asks_for_a_refetch_from_the_cursor() -> None:
    tracker = CdcTracker("crm")
    run(tracker, ev(10, 1), ev(12, 2), pushed=True)
    seen = tracker.observe(ev(30, 5), pushed=True)
    assert seen.action == Refetch(12, "commit numbers 3..4 not seen on crm")


def test_push_of_the_next_commit_needs_nothing() -> None:
    tracker = CdcTracker("crm")
    run(tracker, ev(10, 1), pushed=True)
    assert tracker.observe(ev(99, 2), pushed=True).action is None


def test_first_event_ever_cannot_know_a_hole() -> None:
    assert CdcTracker("crm").observe(ev(10, 7), pushed=True).action is None


DUPLICATES = {
    "same transaction and sequence": (ev(10, 1), ev(11, 1, tx="tx-1"), True),
    "push at or below the cursor": (ev(10, 1), ev(9, 3), True),
    "pull of one already processed": (ev(10, 1), ev(10, 1), False),
}


@pytest.mark.parametrize("first, second, pushed", DUPLICATES.values(), ids=DUPLICATES.keys())
def test_duplicates(first: dict[str, Any], second: dict[str, Any], pushed: bool) -> None:
    tracker = CdcTracker("crm")
    run(tracker, first, pushed=pushed)
    assert tracker.observe(second, pushed=pushed).duplicate


def test_observed_but_not_processed_is_not_a_duplicate() -> None:
    tracker = CdcTracker("crm")
    tracker.observe(ev(10, 1), pushed=True)  # mapping failed, to be retried
    assert not tracker.observe(ev(10, 1), pushed=True).duplicate


def test_reordering_within_a_transaction_and_holes_are_recorded() -> None:
    tracker = CdcTracker("crm")
    run(tracker, ev(10, 1, tx="t", seq=4), pushed=True)
    assert tracker.observe(ev(9, 1, tx="t", seq=2), pushed=True).reordered
    run(tracker, ev(9, 1, tx="t", seq=2), pushed=True)
    assert tracker.holes("t") == [1, 3]
    tracker.forget("t")
    assert tracker.holes("t") == []


def test_gap_overflow_asks_for_a_resync_by_query() -> None:
    seen = CdcTracker("crm").observe(ev(10, 1, change="GAP_OVERFLOW"), pushed=False)
    assert isinstance(seen.action, Resync)
    assert seen.action.since == datetime.datetime.fromtimestamp(1_764_324_000, datetime.UTC)


def test_cursor_never_moves_back_and_state_restores() -> None:
    tracker = CdcTracker("crm")
    run(tracker, ev(20, 2), ev(15, 1), pushed=False)
    assert tracker.last_replay_id == 20
    restored = CdcTracker("crm", **tracker.state())
    assert (restored.last_replay_id, restored.highest_commit) == (20, 2)
