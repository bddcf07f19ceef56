"""Observations from canonical events, the match state (deduplication, JSON round trip) and alias routing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

import accord.events as ev
from accord.events import EVENTS, Event, JournalRejectionReason, PeriodStatus
from accord.events.samples import sample_event
from accord_reconciler.model import (
    MatchState,
    Observation,
    PeriodBook,
    RecordKind,
    Relation,
    Status,
    System,
    crm_account_status,
    observe,
    relation_of,
)
from accord_reconciler.rules import Policy, evaluate

from .builders import at, in_doubt, invoice, payment, period_closed, posted, rejected, requested, states

pytestmark = pytest.mark.unit

#: event → the (relation, system, kind) of each observation it yields; every other event yields none
EXPECTED: dict[str, list[tuple[Relation, System, RecordKind]]] = {
    "accord.crm.ContractActivated": [(Relation.CONTRACT, System.CRM, RecordKind.CONTRACT)],
    "accord.crm.ContractRenewed": [(Relation.CONTRACT, System.CRM, RecordKind.CONTRACT)],
    "accord.crm.ContractAmended": [
        (Relation.CONTRACT, System.CRM, RecordKind.CONTRACT),
        (Relation.AMENDMENT, System.CRM, RecordKind.AMENDMENT),
    ],
    "accord.crm.ContractCancelled": [(Relation.CONTRACT, System.CRM, RecordKind.CONTRACT)],
    "accord.billing.SubscriptionProvisioned": [(Relation.CONTRACT, System.BILLING, RecordKind.SUBSCRIPTION)],
    "accord.billing.SubscriptionStatusChanged": [(Relation.SUBSCRIPTION, System.BILLING, RecordKind.SUBSCRIPTION)],
    "accord.billing.SubscriptionChanged": [(Relation.AMENDMENT, System.BILLING, RecordKind.SUBSCRIPTION)],
    "accord.billing.InvoiceIssued": [(Relation.JOURNAL, System.BILLING, RecordKind.INVOICE)],
    "accord.billing.InvoiceVoided": [(Relation.JOURNAL, System.BILLING, RecordKind.INVOICE)],
    "accord.billing.InvoiceMarkedUncollectible": [(Relation.JOURNAL, System.BILLING, RecordKind.INVOICE)],
    "accord.billing.CreditNoteIssued": [(Relation.JOURNAL, System.BILLING, RecordKind.CREDIT_NOTE)],
    "accord.billing.PaymentCollected": [
        (Relation.JOURNAL, System.BILLING, RecordKind.PAYMENT),
        (Relation.ACCOUNT, System.BILLING, RecordKind.PAYMENT),
    ],
    "accord.billing.PaymentFailed": [(Relation.ACCOUNT, System.BILLING, RecordKind.PAYMENT)],
    "accord.billing.PaymentRefunded": [
        (Relation.JOURNAL, System.BILLING, RecordKind.REFUND),
        (Relation.ACCOUNT, System.BILLING, RecordKind.PAYMENT),
    ],
    "accord.erp.JournalRequested": [(Relation.JOURNAL, System.ACCORD, RecordKind.JOURNAL_REQUEST)],
    "accord.erp.JournalRejected": [(Relation.JOURNAL, System.ACCORD, RecordKind.JOURNAL_REQUEST)],
    "accord.erp.JournalPosted": [(Relation.JOURNAL, System.ERP, RecordKind.JOURNAL_ENTRY)],
}


@pytest.mark.parametrize("minimal", [False, True], ids=["full", "minimal"])
@pytest.mark.parametrize("name", sorted(EVENTS))
def test_observe_maps_every_catalogue_event(name: str, minimal: bool) -> None:
    event = sample_event(EVENTS[name], minimal=minimal)
    observations = observe(event)
    expected = EXPECTED.get(name, [])
    if minimal and name == "accord.billing.SubscriptionProvisioned":
        expected = []  # no contract id: a subscription sold outside the CRM
    if minimal and name == "accord.billing.SubscriptionChanged":
        expected = []  # no amendment id: nothing to compare with the CRM
    assert [(relation_of(o.key), o.system, o.kind) for o in observations] == expected
    for o in observations:
        assert o.source_event_ids == (str(event.meta.event_id),)  # type: ignore[attr-defined]
        assert o.version == event.meta.entity_version  # type: ignore[attr-defined]
        # each observation starts (or joins) a state, which survives its JSON round trip
        state = MatchState.empty(o.key).add(o)
        assert MatchState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_an_invoice_is_observed_with_its_amount_tax_proration_and_period() -> None:
    from .builders import line

    event = invoice(lines=[line("100.00", tax="20.00"), line("30.00", proration=True, tax="6.00")], tax="26.00")
    (o,) = observe(event)
    assert o.key == "journal:EU/in_1"
    assert (o.amount, o.currency, o.status, o.period, o.legal_entity) == (
        Decimal("156"),
        "EUR",
        "ISSUED",
        "2026-11",
        "EU",
    )
    assert (o.decimal("tax"), o.decimal("proration"), o.decimal("proration_tax")) == (
        Decimal("26"),
        Decimal("30"),
        Decimal("6"),
    )
    assert o.extra["lines"] == "2"


def test_a_journal_request_carries_the_source_amount_currency_and_rate_from_its_lines() -> None:
    event = requested(amount="92.00", source_currency="USD", source_amount="100.00", rate="0.92")
    (o,) = observe(event)
    assert (o.amount, o.currency, o.period) == (Decimal("92.00"), "EUR", "2026-11")
    assert (o.decimal("source_amount"), o.extra["source_currency"], o.decimal("rate")) == (
        Decimal("100.00"),
        "USD",
        Decimal("0.92"),
    )


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (rejected(), Status.REJECTED),
        (in_doubt(), Status.IN_DOUBT),
        (
            rejected(
                reason=JournalRejectionReason.PERIOD_CLOSED, detail="period 2026-11 of EU is closed; held for approval"
            ),
            Status.HELD,
        ),
        (rejected(reason=JournalRejectionReason.PERIOD_CLOSED, detail="PERIOD_CLOSED: 2026-11"), Status.REJECTED),
    ],
    ids=["rejected", "in doubt", "held", "period closed, not held"],
)
def test_a_journal_rejection_tells_rejected_held_and_in_doubt_apart(event: Event, status: Status) -> None:
    (o,) = observe(event)
    assert o.status == status
    assert o.extra["error"]


def test_a_payment_is_observed_for_its_posting_and_for_the_accounts_status() -> None:
    journal, account = observe(payment())
    assert (journal.key, journal.status, journal.extra["invoice_id"]) == ("journal:EU/py_1", "COLLECTED", "in_1")
    assert (account.key, account.status) == ("account:acc-1", "Succeeded")


def test_observed_at_is_when_accord_received_it_when_given() -> None:
    received = datetime(2026, 11, 10, 9, 5, tzinfo=UTC)
    (o,) = observe(invoice(), observed_at=received)
    assert (o.observed_at, o.occurred_at) == (received, at())


def test_a_redelivered_event_is_held_once_and_a_new_statement_is_added() -> None:
    event = posted()
    state = states(event, event, posted(event_id=event.meta.event_id))["journal:EU/in_1"]
    assert len(state.observations) == 1
    assert state.add(*observe(event)) is state  # nothing new: the very same state
    again = state.add(*observe(posted(when=at(minutes=3))))  # the same ERP entry announced by another event
    assert len(again.observations) == 2
    assert list(again.latest_per_record(System.ERP)) == ["je_1"]


def test_a_snapshot_read_twice_unchanged_is_one_observation() -> None:
    read = crm_account_status("acc-1", "Succeeded", observed_at=at())
    state = MatchState.empty(read.key).add(read, read.model_copy(update={"observed_at": at(60)}))
    assert len(state.observations) == 1


def test_the_state_round_trips_through_json_exactly() -> None:
    state = states(invoice(), requested(), posted(total="100.00"), in_doubt())["journal:EU/in_1"]
    text = json.dumps(state.to_json())
    back = MatchState.from_json(json.loads(text))
    assert back == state
    assert back.observations[0].amount == Decimal("120.0000")  # exact: a Decimal as text, not a float
    assert evaluate(back, at(hours=1), Policy()) == evaluate(state, at(hours=1), Policy())
    assert MatchState.from_json_text(state.to_json_text()) == state
    assert json.loads(state.to_json_text()) == state.to_json()  # one JSON, whichever way it is written


@pytest.mark.parametrize(
    ("key", "message"),
    [("in_1", "has no '<relation>:' prefix"), ("ledger:EU/in_1", "unknown relation 'ledger'")],
    ids=["no prefix", "unknown relation"],
)
def test_a_malformed_key_is_refused_with_a_diagnosis(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MatchState.empty(key)


def test_an_observation_of_another_key_is_refused() -> None:
    (o,) = observe(invoice())
    with pytest.raises(ValueError, match="route it first"):
        MatchState.empty("journal:EU/in_2").add(o)


def test_an_observation_refuses_a_malformed_period() -> None:
    with pytest.raises(ValidationError, match="period"):
        Observation(
            key="journal:EU/x",
            system=System.ERP,
            kind=RecordKind.JOURNAL_ENTRY,
            record_id="x",
            period="2026-13",
            observed_at=at(),
        )


def test_the_period_book_follows_period_status_changes() -> None:
    book = PeriodBook().apply(period_closed("2026-10"))
    assert book.closed("EU", "2026-10") and not book.closed("EU", "2026-11") and not book.closed("US", "2026-10")
    reopened = book.apply(period_closed("2026-10").model_copy(update={"status": PeriodStatus.OPEN}))
    assert not reopened.closed("EU", "2026-10")
    unknown = book.apply(period_closed("2026-10").model_copy(update={"status": PeriodStatus.UNKNOWN}))
    assert unknown == book
    assert PeriodBook.model_validate(json.loads(book.model_dump_json())) == book


def test_period_status_changed_is_no_observation() -> None:
    assert observe(sample_event(ev.PeriodStatusChanged)) == []


def test_observations_kept_under_an_alias_move_into_the_contract_once_the_alias_is_known() -> None:
    from .builders import provisioned, status_changed

    early = states(status_changed())["subscription:sub_1"]  # the status change was seen first
    contract = states(provisioned())["contract:ctr_1"]
    merged = contract.absorb(early)
    assert merged.key == "contract:ctr_1"
    assert [o.status for o in merged.observations] == ["ACTIVE", "CANCELLED"]
    assert all(o.key == merged.key for o in merged.observations)
    assert merged.absorb(early) == merged  # absorbing twice adds nothing


def test_an_account_key_is_compacted_to_what_its_rule_reads() -> None:
    from .builders import payment_failed

    items = [payment(f"py_{n}", when=at(minutes=n)) for n in range(5)]
    reads = [crm_account_status("acc-1", "Succeeded", observed_at=at(minutes=15 * n), version=n) for n in range(3)]
    state = states(*items, payment_failed("py_9", when=at(minutes=10)), *reads)["account:acc-1"]
    small = state.compact()
    assert [(o.system, o.record_id) for o in small.observations] == [(System.BILLING, "py_9"), (System.CRM, "acc-1")]
    assert small.observations[1].version == 2
    now = at(hours=1)
    (finding,) = evaluate(state, now, Policy())  # billing's latest is the failure; the CRM still says Succeeded
    assert evaluate(small, now, Policy()) == [finding]
    journal = states(invoice(), requested(), in_doubt())["journal:EU/in_1"]
    assert journal.compact() is journal  # documents keep their whole history (evidence)
