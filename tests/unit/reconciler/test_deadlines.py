"""`next_deadline`: the one durable timer per key. It is exactly when the answer changes by the passing of time
alone, it is recomputed identically from the stored state (a restart loses no pending deadline), and it is None
when only a new observation can change the answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from accord.events import Event
from accord_reconciler.model import MatchState, Observation, crm_account_status
from accord_reconciler.rules import FindingClass, Policy, evaluate, next_deadline

from .builders import activated, at, cancelled, in_doubt, invoice, payment, posted, provisioned, requested, states

pytestmark = pytest.mark.unit

POLICY = Policy()
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Pending:
    name: str
    items: tuple[Event | Observation, ...]
    key: str
    now: datetime
    deadline: datetime | None
    fires: FindingClass | None = None  # what is found once the deadline has passed


PENDING = [
    Pending(
        "an invoice waits for its posting until the journal SLA",
        (invoice(),),
        "journal:EU/in_1",
        at(minutes=5),
        at(minutes=10),
        FindingClass.MISSING,
    ),
    Pending(
        "an in-doubt write gets the read-back grace",
        (invoice(), requested(), in_doubt()),
        "journal:EU/in_1",
        at(30),
        at(2) + POLICY.in_doubt_grace,
        FindingClass.IN_DOUBT,
    ),
    Pending(
        "a second posting waits to settle",
        (invoice(), requested(), posted(), posted(erp_id="je_2", when=at(minutes=20))),
        "journal:EU/in_1",
        at(minutes=20, seconds=10),
        at(minutes=21),
        FindingClass.DUPLICATE,
    ),
    Pending(
        "an activated contract waits for its subscription",
        (activated(),),
        "contract:ctr_1",
        at(minutes=1),
        at(minutes=15),
        FindingClass.STATUS_MISMATCH,
    ),
    Pending(
        "a cancellation waits for its last day of service",
        (activated(), provisioned(), cancelled(effective=date(2026, 11, 20))),
        "contract:ctr_1",
        at(minutes=30),
        datetime(2026, 11, 21, tzinfo=UTC) + timedelta(minutes=15),
        FindingClass.STATUS_MISMATCH,
    ),
    Pending(
        "nothing to wait for when the systems agree",
        (invoice(), requested(), posted()),
        "journal:EU/in_1",
        at(minutes=1),
        None,
    ),
    Pending("nothing more to wait for once the finding is due", (invoice(),), "journal:EU/in_1", at(hours=1), None),
    Pending(
        "the account relation waits for a new CRM read, not for time",
        (payment(), crm_account_status("acc-1", "Failed", observed_at=at(minutes=1))),
        "account:acc-1",
        at(minutes=2),
        None,
    ),
]


@pytest.mark.parametrize("p", PENDING, ids=[p.name for p in PENDING])
def test_next_deadline(p: Pending) -> None:
    state = states(*p.items)[p.key]
    assert next_deadline(state, POLICY, after=p.now) == p.deadline
    if p.deadline is not None:
        # The timer is exact: nothing of that class a tick before, the finding at the deadline.
        assert [f.finding_class for f in evaluate(state, p.deadline - TICK, POLICY)] == []
        assert [f.finding_class for f in evaluate(state, p.deadline, POLICY)] == [p.fires]
        assert next_deadline(state, POLICY, after=p.deadline) is None


def test_a_restarted_consumer_recomputes_every_pending_deadline_from_the_stored_states() -> None:
    stored = {p.name: states(*p.items)[p.key].to_json() for p in PENDING}
    text = json.dumps(stored)  # what the jsonb column holds across the restart
    for p in PENDING:
        restored = MatchState.from_json(json.loads(text)[p.name])
        assert next_deadline(restored, POLICY, after=p.now) == p.deadline, p.name


def test_a_new_observation_moves_the_deadline() -> None:
    state = states(invoice())["journal:EU/in_1"]
    assert next_deadline(state, POLICY, after=at(minutes=1)) == at(minutes=10)
    answered = states(invoice(), requested(), in_doubt(when=at(minutes=1)))["journal:EU/in_1"]
    # the write is in doubt now: the read-back grace replaces the SLA as the next moment to look
    assert next_deadline(answered, POLICY, after=at(minutes=1)) == at(minutes=1) + POLICY.in_doubt_grace
    posted_state = states(invoice(), requested(), posted(when=at(minutes=2)))["journal:EU/in_1"]
    assert next_deadline(posted_state, POLICY, after=at(minutes=2)) is None
