"""The status decider: billing facts per account → the Account's write-back fields, versioned commands."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from accord.events import (
    DeclineType,
    Event,
    InvoiceIssued,
    InvoiceMarkedUncollectible,
    InvoiceVoided,
    Money,
    PaymentCollected,
    PaymentFailed,
    PaymentRefunded,
)
from accord.events.samples import sample_event
from accord_crm_connector.status import command_key, decide

pytestmark = pytest.mark.unit

ACCOUNT = "001ACME"
T0 = datetime.datetime(2026, 11, 1, 9, 0, tzinfo=datetime.UTC)


def at(minutes: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def _meta(event: Event, minutes: int) -> Any:
    return event.meta.model_copy(update={"occurred_at": at(minutes)})  # type: ignore[attr-defined]


def issued(invoice: str, amount: str, *, minute: int = 0) -> InvoiceIssued:
    e = sample_event(InvoiceIssued)
    due = Money(amount=Decimal(amount), currency="EUR")
    return e.model_copy(
        update={"meta": _meta(e, minute), "account_id": ACCOUNT, "invoice_id": invoice, "amount_due": due}
    )


def collected(invoice: str | None, amount: str, *, minute: int = 0, payment: str = "py_1") -> PaymentCollected:
    e = sample_event(PaymentCollected)
    return e.model_copy(
        update={
            "meta": _meta(e, minute),
            "account_id": ACCOUNT,
            "payment_id": payment,
            "invoice_id": invoice,
            "amount": Money(amount=Decimal(amount), currency="EUR"),
            "collected_at": at(minute),
        }
    )


def failed(invoice: str | None, decline: DeclineType, *, minute: int = 0, payment: str = "py_f") -> PaymentFailed:
    e = sample_event(PaymentFailed)
    return e.model_copy(
        update={
            "meta": _meta(e, minute),
            "account_id": ACCOUNT,
            "payment_id": payment,
            "invoice_id": invoice,
            "decline_type": decline,
        }
    )


def voided(invoice: str, *, minute: int = 0) -> InvoiceVoided:
    e = sample_event(InvoiceVoided)
    return e.model_copy(update={"meta": _meta(e, minute), "account_id": ACCOUNT, "invoice_id": invoice})


def uncollectible(invoice: str, amount: str = "100", *, minute: int = 0) -> InvoiceMarkedUncollectible:
    e = sample_event(InvoiceMarkedUncollectible)
    written_off = Money(amount=Decimal(amount), currency="EUR")
    return e.model_copy(
        update={
            "meta": _meta(e, minute),
            "account_id": ACCOUNT,
            "invoice_id": invoice,
            "uncollectible_amount": written_off,
        }
    )


def refunded(*, minute: int = 0) -> PaymentRefunded:
    e = sample_event(PaymentRefunded)
    return e.model_copy(update={"meta": _meta(e, minute), "account_id": ACCOUNT, "refunded_at": at(minute)})


def run(*events: Event) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The final state and every command recorded, in order."""
    state: dict[str, Any] | None = None
    commands: list[dict[str, Any]] = []
    for event in events:
        decision = decide(state, event)
        state = decision.state if decision.state is not None else state
        commands += [{"key": c.key, **c.payload} for c in decision.commands]
    assert state is not None
    return state, commands


HARD, SOFT = DeclineType.HARD, DeclineType.SOFT

CASES: dict[str, tuple[list[Event], dict[str, Any]]] = {
    "one invoice issued": (
        [issued("in_1", "100")],
        {"Invoice_Status__c": "Open", "Credit_Hold__c": False},
    ),
    "issued then paid in full": (
        [issued("in_1", "100"), collected("in_1", "100", minute=5)],
        {"Invoice_Status__c": "Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "paid in part": (
        [issued("in_1", "100"), collected("in_1", "40", minute=5)],
        {"Invoice_Status__c": "Partially Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "an unpaid invoice beside a paid one is open": (
        [issued("in_1", "100"), collected("in_1", "100", minute=5), issued("in_2", "50", minute=6)],
        {"Invoice_Status__c": "Open", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "soft decline: failed, no hold": (
        [issued("in_1", "100"), failed("in_1", SOFT, minute=5)],
        {"Invoice_Status__c": "Open", "Payment_Status__c": "Failed", "Credit_Hold__c": False},
    ),
    "hard decline: hold": (
        [issued("in_1", "100"), failed("in_1", HARD, minute=5)],
        {"Invoice_Status__c": "Open", "Payment_Status__c": "Failed", "Credit_Hold__c": True},
    ),
    "hard decline, then paid: hold released": (
        [issued("in_1", "100"), failed("in_1", HARD, minute=5), collected("in_1", "100", minute=9)],
        {"Invoice_Status__c": "Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "hard decline, then voided: hold released": (
        [issued("in_1", "100"), failed("in_1", HARD, minute=5), voided("in_1", minute=9)],
        {"Invoice_Status__c": "Void", "Payment_Status__c": "Failed", "Credit_Hold__c": False},
    ),
    "hard decline on one invoice, another paid: hold stays": (
        [
            issued("in_1", "100"),
            issued("in_2", "100"),
            failed("in_1", HARD, minute=5),
            collected("in_2", "100", minute=9),
        ],
        {"Invoice_Status__c": "Open", "Payment_Status__c": "Succeeded", "Credit_Hold__c": True},
    ),
    "uncollectible: hold": (
        [issued("in_1", "100"), uncollectible("in_1", minute=5)],
        {"Invoice_Status__c": "Uncollectible", "Credit_Hold__c": True},
    ),
    "uncollectible, then paid after all: released": (
        [issued("in_1", "100"), uncollectible("in_1", minute=5), collected("in_1", "100", minute=9)],
        {"Invoice_Status__c": "Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "hard decline without invoice, then a later collection: released": (
        [failed(None, HARD, minute=5), collected(None, "10", minute=9)],
        {"Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "hard decline without invoice, an older collection arriving late: hold stays": (
        [failed(None, HARD, minute=5), collected(None, "10", minute=1)],
        {"Payment_Status__c": "Failed", "Credit_Hold__c": True},
    ),
    "payment before its invoice (two topics): paid once the invoice is known": (
        [collected("in_1", "100", minute=5), issued("in_1", "100", minute=0)],
        {"Invoice_Status__c": "Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
    "refund is the latest outcome": (
        [issued("in_1", "100"), collected("in_1", "100", minute=5), refunded(minute=20)],
        {"Invoice_Status__c": "Paid", "Payment_Status__c": "Refunded", "Credit_Hold__c": False},
    ),
    "an older failure arriving late does not replace a newer success": (
        [issued("in_1", "100"), collected("in_1", "100", minute=9), failed("in_1", SOFT, minute=5)],
        {"Invoice_Status__c": "Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False},
    ),
}


@pytest.mark.parametrize("events, expected", list(CASES.values()), ids=list(CASES))
def test_write_back_fields(events: list[Event], expected: dict[str, Any]) -> None:
    state, commands = run(*events)
    assert state["written"] == expected
    assert commands[-1]["fields"] == expected  # the last command carries the state's fields


def test_each_change_is_one_versioned_command_and_no_change_is_none() -> None:
    state, commands = run(
        issued("in_1", "100"),
        issued("in_1", "100"),  # the same again: nothing new to write
        failed("in_1", HARD, minute=5),
        collected("in_1", "100", minute=9),
    )
    assert [(c["key"], c["version"], c["fields"]["Credit_Hold__c"]) for c in commands] == [
        (command_key(ACCOUNT, 1), 1, False),
        (command_key(ACCOUNT, 2), 2, True),
        (command_key(ACCOUNT, 3), 3, False),
    ]
    assert state["version"] == 3


def test_the_decider_is_pure() -> None:
    state, _ = run(issued("in_1", "100"))
    before = repr(state)
    decision = decide(state, collected("in_1", "100", minute=5))
    assert repr(state) == before  # the input state is not touched
    assert decision.state is not None and decision.state["written"]["Invoice_Status__c"] == "Paid"
    again = decide(state, collected("in_1", "100", minute=5))
    assert again == decision  # deterministic: a redelivered event decides the same


def test_settled_invoices_are_forgotten_beyond_the_bound() -> None:
    events: list[Event] = []
    for n in range(230):
        events += [issued(f"in_{n}", "1", minute=n), collected(f"in_{n}", "1", minute=n)]
    state, _ = run(*events)
    assert len(state["invoices"]) == 200
    assert "in_229" in state["invoices"] and "in_0" not in state["invoices"]
