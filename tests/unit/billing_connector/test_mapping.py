"""The billing mapping as a table of named cases per Stripe event type (pure: no broker, no database)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from accord.events import (
    BillingFrequency,
    CreditNoteIssued,
    CreditNoteReason,
    DeclineType,
    InvoiceIssued,
    InvoiceMarkedUncollectible,
    InvoiceVoided,
    PaymentCollected,
    PaymentFailed,
    PaymentRefunded,
    SubscriptionChanged,
    SubscriptionProvisioned,
    SubscriptionStatus,
    SubscriptionStatusChanged,
    TaxCalculated,
)
from accord.ingest import Delivery, EntityVersion, Ignored, Mapped, MappingError, stable_event_id
from accord_billing_connector.mapping import Customer, entity_version, map_event, money

pytestmark = pytest.mark.unit

T0 = 1_764_000_000  # 2025-11-24T16:00:00Z
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
CUSTOMER = Customer("cus_1", "acc-42", "EU", "DE", "none")


def evt_id(n: int) -> str:
    digits = ""
    while n:
        n, r = divmod(n, 62)
        digits = ALPHABET[r] + digits
    return "evt_" + "Ab3dE6gH9" + digits.rjust(7, "0")


def delivery(kind: str, obj: dict[str, Any], *, n: int = 100, previous: dict[str, Any] | None = None) -> Delivery:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    payload = {"id": evt_id(n), "object": "event", "created": T0 + n, "type": kind, "data": data}
    return Delivery("billing", payload["id"], kind, payload, datetime.datetime.now(datetime.UTC))


def subscription(status: str = "active", quantity: int = 3) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": status,
        "currency": "eur",
        "current_period_start": T0,
        "current_period_end": T0 + 30 * 86400,
        "metadata": {"crm_contract_id": "800A", "legal_entity": "EU"},
        "items": {
            "data": [
                {
                    "id": "si_1",
                    "quantity": quantity,
                    "metadata": {},
                    "price": {
                        "id": "price_1",
                        "product": "SEAT",
                        "unit_amount": 1250,
                        "currency": "eur",
                        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
                    },
                }
            ]
        },
    }


def invoice(**changes: Any) -> dict[str, Any]:
    inv: dict[str, Any] = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "subscription": "sub_1",
        "status": "open",
        "currency": "eur",
        "created": T0,
        "number": "INV-000007",
        "lines": {
            "data": [
                {
                    "id": "il_1",
                    "amount": 3750,
                    "quantity": 3,
                    "description": "3 x SEAT",
                    "period": {"start": T0, "end": T0 + 30 * 86400},
                    "proration": False,
                    "subscription_item": "si_1",
                },
                {
                    "id": "il_2",
                    "amount": 333,
                    "quantity": 1,
                    "description": "Remaining time on 1 x SEAT",
                    "period": {"start": T0 + 86400, "end": T0 + 30 * 86400},
                    "proration": True,
                },
            ]
        },
        "subtotal": 4083,
        "tax": 776,
        "tax_rate": "0.19",
        "total": 4859,
        "amount_due": 4859,
        "amount_paid": 0,
        "amount_remaining": 4859,
        "attempt_count": 0,
        "charge": None,
        "next_payment_attempt": None,
        "status_transitions": {"finalized_at": T0 + 3600, "paid_at": None},
        "metadata": {"crm_contract_id": "800A"},
    }
    inv.update(changes)
    return inv


def eur(value: str) -> tuple[Decimal, str]:
    return Decimal(value), "EUR"


# -- one named case per source event type: (delivery, expected canonical types, checks) --------------------


def _provisioned(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, SubscriptionProvisioned)
    assert (e.account_id, e.contract_id, e.status) == ("acc-42", "800A", SubscriptionStatus.ACTIVE)
    assert e.billing_frequency is BillingFrequency.MONTHLY
    # Stripe's period end is exclusive; DatePeriod includes both ends
    assert (e.current_period.start_date, e.current_period.end_date) == (
        datetime.date(2025, 11, 24),
        datetime.date(2025, 12, 24),
    )
    assert (e.items[0].unit_price.amount, e.items[0].unit_price.currency) == eur("12.50")
    assert e.items[0].quantity == 3 and e.items[0].product_code == "SEAT"
    assert e.meta.legal_entity == "EU" and e.meta.source_id == evt_id(100)


def _status_changed(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, SubscriptionStatusChanged)
    assert (e.previous_status, e.status) == (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def _items_changed(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, SubscriptionChanged)
    assert e.items[0].quantity == 5


def _deleted(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, SubscriptionStatusChanged) and e.status is SubscriptionStatus.CANCELLED


def _issued(events: list[Any]) -> None:
    issued, tax = events
    assert isinstance(issued, InvoiceIssued) and isinstance(tax, TaxCalculated)
    assert issued.invoice_number == "INV-000007" and issued.subscription_id == "sub_1"
    assert (issued.total.amount, issued.total.currency) == eur("48.59")
    assert [line.proration for line in issued.lines] == [False, True]
    line_tax = sum(t.tax_amount.amount for line in issued.lines for t in line.taxes)
    assert line_tax == issued.tax_total.amount == tax.tax_amount.amount == Decimal("7.76")
    assert {t.tax_type for t in tax.lines} == {"VAT"} and tax.lines[0].rate == Decimal("0.19")
    assert issued.issue_date == datetime.date(2025, 11, 24)


def _voided(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, InvoiceVoided) and e.voided_amount.amount == Decimal("48.59")


def _uncollectible(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, InvoiceMarkedUncollectible) and e.reason == "payment retries exhausted"


def _collected(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, PaymentCollected)
    assert (e.payment_id, e.invoice_id, e.attempt, e.amount.amount) == ("ch_1", "in_1", 2, Decimal("48.59"))


def _soft_decline(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, PaymentFailed)
    assert (e.decline_type, e.decline_code, e.attempt) == (DeclineType.SOFT, "insufficient_funds", 1)
    assert e.next_attempt_at == datetime.datetime.fromtimestamp(T0 + 3 * 86400, datetime.UTC)


def _hard_decline(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, PaymentFailed)
    assert (e.decline_type, e.next_attempt_at) == (DeclineType.HARD, None)


def _refunded(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, PaymentRefunded)
    assert (e.refund_id, e.payment_id, e.amount.amount) == ("re_1", "ch_1", Decimal("10.00"))


def _credit_note(events: list[Any]) -> None:
    (e,) = events
    assert isinstance(e, CreditNoteIssued)
    assert (e.reason, e.total.amount, e.invoice_id) == (CreditNoteReason.DUPLICATE, Decimal("5.00"), "in_1")


CHARGE = {"id": "ch_1", "object": "charge", "customer": "cus_1", "invoice": "in_1", "currency": "eur"}
MAPPED_CASES = {
    "subscription created": (delivery("customer.subscription.created", subscription()), None, _provisioned),
    "subscription status change": (
        delivery("customer.subscription.updated", subscription("past_due"), previous={"status": "active"}),
        EntityVersion("subscription", "sub_1", 100),
        _status_changed,
    ),
    "subscription items change": (
        delivery("customer.subscription.updated", subscription(quantity=5), previous={"items": {"data": []}}),
        EntityVersion("subscription", "sub_1", 100),
        _items_changed,
    ),
    "subscription deleted": (
        delivery("customer.subscription.deleted", subscription("canceled")),
        EntityVersion("subscription", "sub_1", 100),
        _deleted,
    ),
    "invoice finalized with VAT and a proration line": (delivery("invoice.finalized", invoice()), None, _issued),
    "invoice voided": (delivery("invoice.voided", invoice(status="void")), None, _voided),
    "invoice uncollectible": (
        delivery("invoice.marked_uncollectible", invoice(status="uncollectible", attempt_count=4)),
        None,
        _uncollectible,
    ),
    "payment succeeded on the second attempt": (
        delivery(
            "invoice.payment_succeeded",
            invoice(status="paid", charge="ch_1", attempt_count=2, amount_paid=4859, amount_remaining=0),
        ),
        None,
        _collected,
    ),
    "soft decline with next attempt": (
        delivery(
            "invoice.payment_failed",
            invoice(
                attempt_count=1,
                next_payment_attempt=T0 + 3 * 86400,
                last_payment_error={
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "decline_type": "soft",
                },
            ),
        ),
        None,
        _soft_decline,
    ),
    "hard decline, no retry": (
        delivery(
            "invoice.payment_failed",
            invoice(
                attempt_count=1,
                last_payment_error={"code": "card_declined", "decline_code": "stolen_card", "decline_type": "hard"},
            ),
        ),
        None,
        _hard_decline,
    ),
    "refund": (
        delivery("charge.refunded", {**CHARGE, "amount": 4859, "amount_refunded": 1000, "refunds": ["re_1"]}),
        None,
        _refunded,
    ),
    "credit note": (
        delivery(
            "credit_note.created",
            {
                "id": "cn_1",
                "object": "credit_note",
                "customer": "cus_1",
                "invoice": "in_1",
                "amount": 500,
                "currency": "eur",
                "reason": "duplicate",
                "number": "INV-000007-CN1",
                "created": T0,
            },
        ),
        None,
        _credit_note,
    ),
}


@pytest.mark.parametrize("name", list(MAPPED_CASES))
def test_mapped(name: str) -> None:
    source, entity, check = MAPPED_CASES[name]
    result = map_event(source, CUSTOMER)
    assert isinstance(result, Mapped), result
    assert result.entity == entity
    for event in result.events:
        assert event.account_id == "acc-42"  # type: ignore[attr-defined]
        assert event.meta.entity_version == 100  # type: ignore[attr-defined]
        assert event.meta.event_id == stable_event_id("billing", evt_id(100), type(event).AVRO_NAME)  # type: ignore[attr-defined]
    check(list(result.events))


IGNORED_CASES = {
    "customer created": (delivery("customer.created", {"id": "cus_1", "object": "customer"}), "account lookup"),
    "draft invoice": (delivery("invoice.created", invoice(status="draft")), "draft"),
    "charge twin of the invoice event": (delivery("charge.succeeded", CHARGE), "invoice.payment_succeeded"),
    "paid by credit, no charge": (
        delivery("invoice.payment_succeeded", invoice(status="paid", charge=None)),
        "without a charge",
    ),
    "metadata-only update": (
        delivery("customer.subscription.updated", subscription(), previous={"metadata": {}}),
        "changed nothing",
    ),
    "unknown type": (delivery("payout.paid", {"id": "po_1"}), "no canonical event"),
}


@pytest.mark.parametrize("name", list(IGNORED_CASES))
def test_ignored(name: str) -> None:
    source, reason = IGNORED_CASES[name]
    result = map_event(source, CUSTOMER)
    assert isinstance(result, Ignored) and reason in result.reason


FAILED_CASES = {
    "customer unknown": (delivery("invoice.finalized", invoice()), None, "unknown to accord"),
    "customer without CRM account": (
        delivery("invoice.finalized", invoice()),
        Customer("cus_1", None, None, None, None),
        "crm_account_id",
    ),
    "several refunds: amount of the latest unknown": (
        delivery("charge.refunded", {**CHARGE, "amount_refunded": 2000, "refunds": ["re_1", "re_2"]}),
        CUSTOMER,
        "2 refunds",
    ),
    "no data.object": (delivery("invoice.finalized", None), CUSTOMER, "data.object"),  # type: ignore[arg-type]
    "unexpected shape": (delivery("invoice.voided", {"id": "in_1", "customer": "cus_1"}), CUSTOMER, "shape"),
}


@pytest.mark.parametrize("name", list(FAILED_CASES))
def test_failed(name: str) -> None:
    source, customer, message = FAILED_CASES[name]
    with pytest.raises(MappingError, match=message):
        map_event(source, customer)


def test_the_same_source_event_maps_to_the_same_ids_and_types_get_distinct_ids() -> None:
    first = map_event(delivery("invoice.finalized", invoice(), n=7), CUSTOMER)
    again = map_event(delivery("invoice.finalized", invoice(), n=7), CUSTOMER)
    other = map_event(delivery("invoice.finalized", invoice(), n=8), CUSTOMER)
    assert isinstance(first, Mapped) and isinstance(again, Mapped) and isinstance(other, Mapped)
    ids = [e.meta.event_id for e in first.events]  # type: ignore[attr-defined]
    assert ids == [e.meta.event_id for e in again.events]  # type: ignore[attr-defined]
    assert len(set(ids)) == 2
    assert not set(ids) & {e.meta.event_id for e in other.events}  # type: ignore[attr-defined]


def test_entity_version_follows_the_sandbox_event_sequence_then_created() -> None:
    assert [entity_version({"id": evt_id(n), "created": T0}) for n in (1, 61, 62, 3844, 10**9)] == [
        1,
        61,
        62,
        3844,
        10**9,
    ]
    assert entity_version({"id": "evt_1NvQ2sLkdIwHu7ix", "created": T0}) != T0  # sandbox-shaped: decoded
    assert entity_version({"id": "evt_realstripeid", "created": T0}) == T0


def test_zero_decimal_currency_is_not_divided() -> None:
    assert money(1250, "jpy").amount == Decimal(1250)
    assert money(1250, "eur").amount == Decimal("12.50")
    with pytest.raises(MappingError, match="minor units"):
        money(12.5, "eur")


def test_a_unit_price_that_does_not_divide_evenly_is_kept_to_four_places() -> None:
    line = {"id": "il_9", "amount": 10000, "quantity": 3, "description": "3 x SEAT", "proration": False}
    lines = {"data": [{**line, "period": {"start": T0, "end": T0 + 30 * 86400}}]}
    source = delivery("invoice.finalized", invoice(lines=lines, subtotal=10000, tax=0, total=10000, amount_due=10000))
    result = map_event(source, CUSTOMER)
    assert isinstance(result, Mapped), result  # not a MappingError: the invoice reaches the stream
    issued = next(e for e in result.events if isinstance(e, InvoiceIssued))
    assert issued.lines[0].unit_price.amount == Decimal("33.3333")
