"""The REDRIVE_POSTING repair's pure pieces, as tables of named cases: which requests become a command, which billing
documents become which synthetic billing events, and what mapping.py (through `map_redrive`) makes of them."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import pytest

from accord.events import (
    CreditNoteIssued,
    InvoiceIssued,
    InvoiceVoided,
    Meta,
    PaymentCollected,
    PaymentRefunded,
    RepairAction,
    RepairRequested,
    SourceSystem,
    TaxCalculated,
)
from accord.ingest import Delivery, Mapped
from accord.runtime import Envelope, Service
from accord_billing_connector.executor import BillingRefused
from accord_billing_connector.mapping import Customer
from accord_billing_connector.repairs import (
    REDRIVE_KIND,
    Redrive,
    Refused,
    command_key,
    decide,
    map_redrive,
    plan,
    synthetic_events,
    with_repairs,
)

pytestmark = pytest.mark.unit

T0 = 1_764_000_000  # 2025-11-24T16:00:00Z
CUSTOMER = Customer("cus_1", "acc-42", "EU", "DE", "none")
POSITION = 123_456
REQUEST_ID = uuid.UUID("0b4c7a9e-58f1-4a55-9b5f-3f8f0c1d2e3a")


def request(**changes: Any) -> RepairRequested:
    fields: dict[str, Any] = {
        "meta": Meta(
            event_id=REQUEST_ID,
            event_type=RepairRequested.AVRO_NAME,
            occurred_at=datetime.datetime(2026, 11, 28, tzinfo=datetime.UTC),
            source_system=SourceSystem.ACCORD,
            source_id=str(REQUEST_ID),
            correlation_id="finding-1",
            causation_id=None,
            legal_entity="EU",
            entity_version=1,
        ),
        "repair_id": str(REQUEST_ID),
        "divergence_key": "journal:EU/in_1:missing",
        "divergence_id": "div-1",
        "action": RepairAction.REDRIVE_POSTING,
        "target_system": SourceSystem.BILLING,
        "entity_type": "invoice",
        "entity_id": "in_1",
        "account_id": "acc-42",
        "detail": "the ERP has no posting of invoice in_1",
        **changes,
    }
    return RepairRequested(**fields)


# -- requests → plans ---------------------------------------------------------------------------------------

PLANS: dict[str, tuple[dict[str, Any], Redrive | Refused | None]] = {
    "an invoice": ({}, Redrive(str(REQUEST_ID), "invoice", "in_1", str(REQUEST_ID))),
    "a credit note": (
        {"entity_type": "credit_note", "entity_id": "cn_9"},
        Redrive(str(REQUEST_ID), "credit_note", "cn_9", str(REQUEST_ID)),
    ),
    "a payment (its charge)": (
        {"entity_type": "payment", "entity_id": "ch_3"},
        Redrive(str(REQUEST_ID), "payment", "ch_3", str(REQUEST_ID)),
    ),
    "a refund": (
        {"entity_type": "refund", "entity_id": "re_4"},
        Redrive(str(REQUEST_ID), "refund", "re_4", str(REQUEST_ID)),
    ),
    "the CRM's re-sync is not ours": (
        {"action": RepairAction.RESYNC_CRM_STATUS, "target_system": SourceSystem.CRM, "entity_type": "account"},
        None,
    ),
    "the ERP's read-back is not ours": ({"action": RepairAction.READ_BACK, "target_system": SourceSystem.ERP}, None),
    "another action for billing": (
        {"action": RepairAction.READ_BACK},
        Refused("the billing connector carries out REDRIVE_POSTING only, not READ_BACK"),
    ),
    "an action from a newer writer": (
        {"action": RepairAction.UNKNOWN},
        Refused("the billing connector carries out REDRIVE_POSTING only, not UNKNOWN"),
    ),
    "a record that is no billing document": (
        {"entity_type": "journal", "entity_id": "EU/in_1"},
        Refused(
            "entity_type 'journal' is no billing document a re-drive knows (credit_note, invoice, payment, refund)"
        ),
    ),
    "an id that would change the API path": (
        {"entity_id": "in_1/../../customers"},
        Refused("entity_id 'in_1/../../customers' is not a billing object id (letters, digits and _)"),
    ),
    "an empty id": ({"entity_id": ""}, Refused("entity_id '' is not a billing object id (letters, digits and _)")),
}


@pytest.mark.parametrize("name", PLANS)
def test_plan(name: str) -> None:
    changes, expected = PLANS[name]
    assert plan(request(**changes)) == expected


def test_a_request_becomes_one_command_keyed_by_the_request_and_a_redelivery_decides_the_same() -> None:
    first, again = decide(None, request()), decide(None, request())
    [command] = first.commands
    assert (command.system, command.kind, command.key) == (
        "billing",
        REDRIVE_KIND,
        f"redrive/{REQUEST_ID}/{REQUEST_ID}",
    )
    assert command.payload == {
        "repair_id": str(REQUEST_ID),
        "entity_type": "invoice",
        "entity_id": "in_1",
        "causation_id": str(REQUEST_ID),
    }
    assert first == again and first.state is None and not first.outputs


@pytest.mark.parametrize("name", [n for n, (_, expected) in PLANS.items() if not isinstance(expected, Redrive)])
def test_a_request_not_carried_out_records_nothing(name: str, caplog: pytest.LogCaptureFixture) -> None:
    changes, expected = PLANS[name]
    decision = decide(None, request(**changes))
    assert not decision.commands and not decision.outputs and decision.state is None
    logged = [r.getMessage() for r in caplog.records if r.name == "accord_billing_connector.repairs"]
    if isinstance(expected, Refused):
        assert logged == [
            f"repair {REQUEST_ID} ({request(**changes).action.value} {changes.get('entity_type', 'invoice')} "
            f"{changes.get('entity_id', 'in_1')}) not carried out: {expected.reason}"
        ]
    else:
        assert logged == []  # another system's request is not this connector's business: no noise


def test_the_same_repair_under_another_event_is_another_command_key() -> None:
    other = request(meta=request().meta.model_copy(update={"event_id": uuid.uuid4()}))
    redrive, again = plan(request()), plan(other)
    assert isinstance(redrive, Redrive) and isinstance(again, Redrive)
    assert command_key(redrive) != command_key(again)


def test_with_repairs_adds_the_repairs_topic_and_handler_to_the_service() -> None:
    base = Service(name="g1", topics=["t-requests"], handlers={"accord.x.Y": lambda s, e: decide(s, e.event)})
    svc = with_repairs(base, topics={"recon.repairs": "t-repairs"})
    assert list(svc.topics) == ["t-requests", "t-repairs"] and svc.group == "g1"
    assert set(svc.handlers) == {"accord.x.Y", RepairRequested.AVRO_NAME}
    env = Envelope("t-repairs", 0, 0, None, "in_1", request(), str(REQUEST_ID), RepairRequested.AVRO_NAME)
    [command] = svc.handlers[RepairRequested.AVRO_NAME](None, env).commands
    assert command.kind == REDRIVE_KIND
    assert list(with_repairs(base).topics) == ["t-requests", "recon.repairs"]


# -- documents → synthetic billing events → canonical events ------------------------------------------------


def invoice(**changes: Any) -> dict[str, Any]:
    inv: dict[str, Any] = {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "subscription": None,
        "status": "paid",
        "currency": "eur",
        "created": T0,
        "number": "INV-000007",
        "lines": {
            "data": [
                {
                    "id": "il_1",
                    "amount": 10000,
                    "quantity": 1,
                    "description": "Consulting",
                    "period": {"start": T0, "end": T0},
                    "proration": False,
                }
            ]
        },
        "subtotal": 10000,
        "tax": 1900,
        "tax_rate": "0.19",
        "total": 11900,
        "amount_due": 11900,
        "amount_paid": 11900,
        "amount_remaining": 0,
        "attempt_count": 1,
        "charge": "ch_3",
        "status_transitions": {"finalized_at": T0 + 60, "paid_at": T0 + 61, "voided_at": None},
        "metadata": {},
    }
    inv.update(changes)
    return inv


def charge(**changes: Any) -> dict[str, Any]:
    ch: dict[str, Any] = {
        "id": "ch_3",
        "object": "charge",
        "amount": 11900,
        "amount_refunded": 3000,
        "currency": "eur",
        "customer": "cus_1",
        "invoice": "in_1",
        "created": T0 + 61,
        "status": "succeeded",
        "refunds": ["re_1", "re_4"],
    }
    ch.update(changes)
    return ch


REFUND = {"id": "re_4", "object": "refund", "amount": 1000, "charge": "ch_3", "status": "succeeded", "created": T0 + 99}
NOTE = {
    "id": "cn_9",
    "object": "credit_note",
    "invoice": "in_1",
    "customer": "cus_1",
    "amount": 500,
    "currency": "eur",
    "reason": "order_change",
    "memo": "goodwill",
    "status": "issued",
    "created": T0 + 120,
    "number": "INV-000007-CN1",
}
VOID = invoice(
    status="void",
    charge=None,
    amount_paid=0,
    amount_remaining=11900,
    status_transitions={"finalized_at": T0 + 60, "paid_at": None, "voided_at": T0 + 500},
)


def redrive(kind: str, doc_id: str) -> Redrive:
    return Redrive("rep-1", kind, doc_id, str(REQUEST_ID))


def eur(value: str) -> tuple[Decimal, str]:
    return Decimal(value), "EUR"


#: name → (the request, what was read, the synthetic events' (type, created), the canonical events' checks)
DOCUMENTS: dict[str, tuple[Redrive, dict[str, Any], list[tuple[str, int]], dict[type[Any], dict[str, Any]]]] = {
    "a paid invoice is told as issued": (
        redrive("invoice", "in_1"),
        {"invoice": invoice()},
        [("invoice.finalized", T0 + 60)],
        {
            InvoiceIssued: {"invoice_id": "in_1", "total": eur("119.00"), "tax_total": eur("19.00")},
            TaxCalculated: {"document_id": "in_1", "tax_amount": eur("19.00")},
        },
    ),
    "a void invoice is told as issued, then voided": (
        redrive("invoice", "in_1"),
        {"invoice": VOID},
        [("invoice.finalized", T0 + 60), ("invoice.voided", T0 + 500)],
        {
            InvoiceIssued: {"invoice_id": "in_1", "total": eur("119.00")},
            TaxCalculated: {"document_id": "in_1"},
            InvoiceVoided: {"invoice_id": "in_1", "voided_amount": eur("119.00")},
        },
    ),
    "a payment is told from its invoice": (
        redrive("payment", "ch_3"),
        {"charge": charge(), "invoice": invoice()},
        [("invoice.payment_succeeded", T0 + 61)],
        {PaymentCollected: {"payment_id": "ch_3", "invoice_id": "in_1", "amount": eur("119.00"), "attempt": 1}},
    ),
    "a refund is told alone, even when its charge has several": (
        redrive("refund", "re_4"),
        {"refund": REFUND, "charge": charge()},
        [("charge.refunded", T0 + 99)],
        {PaymentRefunded: {"refund_id": "re_4", "payment_id": "ch_3", "amount": eur("10.00")}},
    ),
    "a credit note": (
        redrive("credit_note", "cn_9"),
        {"credit_note": NOTE},
        [("credit_note.created", T0 + 120)],
        {CreditNoteIssued: {"credit_note_id": "cn_9", "invoice_id": "in_1", "total": eur("5.00")}},
    ),
}


def _delivery(payload: dict[str, Any]) -> Delivery:
    return Delivery("billing", payload["id"], payload["type"], payload, datetime.datetime.now(datetime.UTC))


def _value(event: Any, name: str) -> Any:
    value = getattr(event, name)
    return (value.amount, value.currency) if hasattr(value, "currency") else value


@pytest.mark.parametrize("name", DOCUMENTS)
def test_documents_become_the_events_mapping_makes_caused_by_the_request_at_billings_position(name: str) -> None:
    planned, documents, expected_events, checks = DOCUMENTS[name]
    payloads = synthetic_events(planned, {"position": POSITION, **documents})
    assert [(p["type"], p["created"]) for p in payloads] == expected_events
    assert [p["id"] for p in payloads] == [f"accord-repair:rep-1:{kind}" for kind, _ in expected_events]
    events: list[Any] = []
    for payload in payloads:
        result = map_redrive(_delivery(payload), CUSTOMER)
        assert isinstance(result, Mapped), result
        assert result.entity is None  # documents are facts, never dropped as stale by last-writer-wins
        events += list(result.events)
    assert {type(e) for e in events} == set(checks)
    for event in events:
        assert event.meta.causation_id == str(REQUEST_ID)
        assert event.meta.entity_version == POSITION
        assert event.meta.legal_entity == "EU" and event.account_id == "acc-42"
        assert event.meta.source_id.startswith("accord-repair:rep-1:")
        for field, value in checks[type(event)].items():
            assert _value(event, field) == value, (type(event).__name__, field)


def test_the_void_is_told_in_the_moment_of_the_void() -> None:
    [_, voided] = synthetic_events(redrive("invoice", "in_1"), {"position": POSITION, "invoice": VOID})
    result = map_redrive(_delivery(voided), CUSTOMER)
    assert isinstance(result, Mapped) and len(result.events) == 1
    event: Any = result.events[0]
    assert event.meta.occurred_at == datetime.datetime.fromtimestamp(T0 + 500, datetime.UTC)


REFUSALS: dict[str, tuple[Redrive, dict[str, Any], str]] = {
    "a draft invoice": (
        redrive("invoice", "in_1"),
        {"invoice": invoice(status="draft", status_transitions={"finalized_at": None})},
        "not-finalized",
    ),
    "a failed charge": (
        redrive("payment", "ch_3"),
        {"charge": charge(status="failed"), "invoice": invoice()},
        "not-succeeded",
    ),
    "a charge of no invoice": (redrive("payment", "ch_3"), {"charge": charge(invoice=None)}, "no-invoice"),
    "a charge its invoice does not name": (
        redrive("payment", "ch_3"),
        {"charge": charge(), "invoice": invoice(charge="ch_other")},
        "no-invoice",
    ),
    "a pending refund": (
        redrive("refund", "re_4"),
        {"refund": {**REFUND, "status": "pending"}, "charge": charge()},
        "not-succeeded",
    ),
    "a void credit note": (redrive("credit_note", "cn_9"), {"credit_note": {**NOTE, "status": "void"}}, "void"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_a_document_that_cannot_be_told_is_refused_for_good(name: str) -> None:
    planned, documents, code = REFUSALS[name]
    with pytest.raises(BillingRefused) as caught:
        synthetic_events(planned, {"position": POSITION, **documents})
    assert caught.value.code == code and caught.value.retryable is False
    assert planned.entity_id in str(caught.value)


def test_an_ordinary_delivery_passes_through_unstamped() -> None:
    """Without the repair's stamp (not a re-drive), map_redrive is mapping.py's mapper unchanged."""
    [payload] = synthetic_events(redrive("credit_note", "cn_9"), {"position": POSITION, "credit_note": NOTE})
    del payload["accord_repair"]
    result = map_redrive(_delivery(payload), CUSTOMER)
    assert isinstance(result, Mapped) and len(result.events) == 1
    event: Any = result.events[0]
    assert event.meta.causation_id is None and event.meta.entity_version == T0 + 120
