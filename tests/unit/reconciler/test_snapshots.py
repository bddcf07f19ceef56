"""The snapshot mapping against the connectors' own: a billing record, an ERP entry, a CRM Account read from the
systems' APIs gives the same observations (key, kind, status, amount, currency, period, legal entity, account, extra)
as `model.observe` of the event the connector publishes for that record. Tables of named cases, no I/O.

If the billing connector's mapping or the ERP connector's result event changes what they say about a record, this
fails here, not as a false divergence between the event-derived view and a snapshot.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accord.commands import Command, Outcome, Status
from accord.events import Event
from accord.ingest import Delivery, Mapped
from accord_billing_connector.mapping import Customer, map_event
from accord_erp_connector.handlers import ConnectorConfig, decide, result_event
from accord_erp_connector.posting import ChartOfAccounts, LegalEntity, PostingRules
from accord_reconciler.model import MatchState, Observation, RecordKind, System, crm_account_status, observe
from accord_reconciler.rules import FindingClass, Policy, evaluate
from accord_reconciler.snapshots import (
    BillingCustomer,
    ErpSnapshots,
    Snapshot,
    account_observation,
    align_versions,
    credit_note_observations,
    documents_of,
    error_detail,
    invoice_observations,
    journal_entry_observations,
    latest_failures,
    major,
    refund_observations,
)

from .builders import invoice, posted, requested, states

pytestmark = pytest.mark.unit

T0 = 1_790_000_000  # 2026-09-21 in unix seconds
OBSERVED = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)


def projection(o: Observation) -> tuple[Any, ...]:
    """What a snapshot must say as the event does (not: version, event ids, when accord learned it)."""
    return (
        o.key,
        o.system,
        o.kind,
        o.record_id,
        o.amount,
        str(o.amount),
        o.currency,
        o.status,
        o.legal_entity,
        o.period,
        o.account_id,
        o.occurred_at,
        tuple(sorted(o.extra.items())),
        o.aliases,
    )


def line(n: int, amount: int, *, proration: bool = False) -> dict[str, Any]:
    return {
        "id": f"il_{n}",
        "amount": amount,
        "quantity": 1,
        "description": f"line {n}",
        "period": {"start": T0, "end": T0 + 30 * 86400},
        "proration": proration,
        "subscription_item": "si_1",
    }


def an_invoice(**fields: Any) -> dict[str, Any]:
    lines = fields.pop("lines", [line(1, 10_000)])
    tax = fields.pop("tax", 0)
    subtotal = sum(ln["amount"] for ln in lines)
    inv: dict[str, Any] = {
        "id": "in_000000001",
        "object": "invoice",
        "customer": "cus_1",
        "subscription": "sub_1",
        "status": "open",
        "currency": "usd",
        "created": T0 - 3600,
        "number": "INV-000001",
        "lines": {"object": "list", "data": lines, "has_more": False},
        "subtotal": subtotal,
        "tax": tax,
        "tax_rate": fields.pop("tax_rate", "0"),
        "total": subtotal + tax,
        "amount_due": subtotal + tax,
        "amount_paid": 0,
        "amount_remaining": subtotal + tax,
        "attempt_count": 0,
        "charge": None,
        "due_date": None,
        "status_transitions": {
            "finalized_at": T0,
            "paid_at": None,
            "voided_at": None,
            "marked_uncollectible_at": None,
        },
        "metadata": {},
    }
    inv.update(fields)
    return inv


def paid(inv: dict[str, Any], *, at: int = T0 + 60, charge: str | None = "ch_1") -> dict[str, Any]:
    return {
        **inv,
        "status": "paid",
        "paid": True,
        "charge": charge,
        "amount_paid": inv["amount_due"],
        "amount_remaining": 0,
        "status_transitions": {**inv["status_transitions"], "paid_at": at},
    }


@dataclass
class Case:
    name: str
    #: the record as the snapshot reads it now
    record: dict[str, Any]
    #: (event type, event created, the object as that event carried it): what the connector was sent
    events: list[tuple[str, int, dict[str, Any]]]
    customer: dict[str, Any] = field(
        default_factory=lambda: {"id": "cus_1", "metadata": {"crm_account_id": "001A", "legal_entity": "US"}}
    )
    country: str = "US"
    #: when the latest failed attempt's charge was made (the reader finds it among the customer's failed charges)
    failed_at: int | None = None


def _connector(case: Case) -> list[Observation]:
    meta = case.customer.get("metadata") or {}
    customer = Customer(
        customer_id=str(case.customer["id"]),
        account_id=meta.get("crm_account_id"),
        legal_entity=meta.get("legal_entity"),
        country=case.country,
        tax_exempt="none",
    )
    out: list[Observation] = []
    for n, (kind, created, obj) in enumerate(case.events, start=1):
        payload = {"id": f"evt_{n}", "object": "event", "created": created, "type": kind, "data": {"object": obj}}
        delivery = Delivery("billing", f"evt_{n}", kind, payload, OBSERVED)
        result = map_event(delivery, customer)
        events: list[Event] = list(result.events) if isinstance(result, Mapped) else []
        for event in events:
            out += observe(event, observed_at=OBSERVED)
    return out


def _ours(case: Case) -> list[Observation]:
    customer = BillingCustomer.of(case.customer)
    kind = case.record["object"]
    if kind == "invoice":
        failed_at = None if case.failed_at is None else datetime.datetime.fromtimestamp(case.failed_at, datetime.UTC)
        return invoice_observations(case.record, customer, observed_at=OBSERVED, failed_at=failed_at)
    if kind == "credit_note":
        return credit_note_observations(case.record, customer, observed_at=OBSERVED)
    return refund_observations(case.record, customer, observed_at=OBSERVED)


TAXED = an_invoice(
    currency="eur",
    lines=[line(1, 12_345), line(2, -4_001, proration=True), line(3, 7_777, proration=True)],
    tax=3_073,
    tax_rate="0.19",
)
UNTAXED_PRORATION = an_invoice(lines=[line(1, 5_000), line(2, -1_250, proration=True)])
OPEN = an_invoice()
VOID = {
    **OPEN,
    "status": "void",
    "status_transitions": {**OPEN["status_transitions"], "voided_at": T0 + 86_400 * 40},
}
WRITTEN_OFF = {
    **OPEN,
    "status": "uncollectible",
    "attempt_count": 4,
    "amount_remaining": 7_000,
    "status_transitions": {**OPEN["status_transitions"], "marked_uncollectible_at": T0 + 86_400 * 16},
}
DECLINED = {
    **OPEN,
    "attempt_count": 2,
    "amount_remaining": 9_000,
    "next_payment_attempt": T0 + 86_400 * 5,
    "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "decline_type": "soft"},
}
NOTE = {
    "id": "cn_1",
    "object": "credit_note",
    "invoice": "in_000000001",
    "customer": "cus_1",
    "amount": 2_500,
    "currency": "usd",
    "status": "issued",
    "created": T0 + 500,
    "number": "INV-000001-CN1",
    "reason": "order_change",
}
REFUND = {
    "id": "re_1",
    "object": "refund",
    "amount": 4_000,
    "charge": "ch_1",
    "currency": "usd",
    "status": "succeeded",
    "created": T0 + 900,
}
CHARGE_REFUNDED = {
    "id": "ch_1",
    "object": "charge",
    "amount": 10_000,
    "amount_refunded": 4_000,
    "currency": "usd",
    "customer": "cus_1",
    "invoice": "in_000000001",
    "refunds": ["re_1"],
    "status": "succeeded",
}

CASES = [
    Case("open invoice, untaxed", OPEN, [("invoice.finalized", T0, OPEN)]),
    Case("taxed invoice with prorations (per-line tax split)", TAXED, [("invoice.finalized", T0, TAXED)], country="DE"),
    Case("untaxed invoice with a proration", UNTAXED_PRORATION, [("invoice.finalized", T0, UNTAXED_PRORATION)]),
    Case(
        "paid invoice: its payment and the account's outcome",
        paid(OPEN),
        [("invoice.finalized", T0, OPEN), ("invoice.payment_succeeded", T0 + 60, paid(OPEN))],
    ),
    Case(
        "paid without a charge: no payment",
        paid(OPEN, charge=None),
        [("invoice.finalized", T0, OPEN), ("invoice.payment_succeeded", T0 + 60, paid(OPEN, charge=None))],
    ),
    Case(
        "voided invoice: reversed in the period of the void",
        VOID,
        [("invoice.finalized", T0, OPEN), ("invoice.voided", T0 + 86_400 * 40, VOID)],
    ),
    Case(
        "invoice written off",
        WRITTEN_OFF,
        [("invoice.finalized", T0, OPEN), ("invoice.marked_uncollectible", T0 + 86_400 * 16, WRITTEN_OFF)],
    ),
    Case(
        "zero-decimal currency",
        an_invoice(currency="jpy", lines=[line(1, 120_000)]),
        [("invoice.finalized", T0, an_invoice(currency="jpy", lines=[line(1, 120_000)]))],
    ),
    Case(
        "customer without a legal entity: keyed UNKNOWN",
        OPEN,
        [("invoice.finalized", T0, OPEN)],
        customer={"id": "cus_1", "metadata": {"crm_account_id": "001A"}},
    ),
    Case(
        "unpaid after a failed attempt: the account's latest outcome",
        DECLINED,
        [("invoice.finalized", T0, OPEN), ("invoice.payment_failed", T0 + 86_400 * 3, DECLINED)],
        failed_at=T0 + 86_400 * 3,
    ),
    Case(
        "a failed attempt without its time (no failed charge): no outcome to order",
        DECLINED,
        [("invoice.finalized", T0, OPEN)],
    ),
    Case("draft invoice: no fact yet", {**OPEN, "status": "draft"}, []),
    Case("credit note", NOTE, [("credit_note.created", T0 + 500, NOTE)]),
    Case("refund of a charge", REFUND, [("charge.refunded", T0 + 900, CHARGE_REFUNDED)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_billing_record_observed_as_the_connector_reports_it(case: Case) -> None:
    ours = _ours(case)
    theirs = _connector(case)
    assert sorted(map(projection, ours), key=repr) == sorted(map(projection, theirs), key=repr)
    assert all(o.version is None and not o.source_event_ids for o in ours)
    assert all(OBSERVED <= o.observed_at < OBSERVED + datetime.timedelta(milliseconds=1) for o in ours)


@pytest.mark.parametrize(("record", "later"), [(VOID, "VOIDED"), (WRITTEN_OFF, "UNCOLLECTIBLE")])
def test_a_later_status_ranks_newest_without_a_version(record: dict[str, Any], later: str) -> None:
    """The issue stays (it carries the amount the ERP was asked to post); the void or write-off is the newest
    statement by `recency`, as the events' versions rank it."""
    ours = invoice_observations(record, BillingCustomer.of(CASES[0].customer), observed_at=OBSERVED)
    assert [(o.kind, o.status) for o in ours] == [(RecordKind.INVOICE, "ISSUED"), (RecordKind.INVOICE, later)]
    assert max(ours, key=lambda o: o.recency()).status == later


# -- ERP ---------------------------------------------------------------------------------------------------------


def _posted(entity: str, inv: dict[str, Any], erp_record: dict[str, Any], period: str) -> Observation:
    """What the stream says of the ERP's posting of `inv`: the connector's decision, then its result event."""
    customer = Customer("cus_1", "001A", entity, "NL", "none")
    payload = {"id": "evt_9", "object": "event", "created": T0, "type": "invoice.finalized", "data": {"object": inv}}
    mapped = map_event(Delivery("billing", "evt_9", "invoice.finalized", payload, OBSERVED), customer)
    assert isinstance(mapped, Mapped)
    rules = PostingRules(charts={LegalEntity(entity): ChartOfAccounts.default()}, base_currencies={entity: "EUR"})
    config = ConnectorConfig(rules=rules, rates={("USD", "EUR"): Decimal("0.92")})
    decision = decide(None, mapped.events[0], config)
    (spec,) = decision.commands
    command = Command(1, spec.system, spec.kind, spec.key, spec.payload, 1, Status.PENDING)
    result = {
        "erp_id": erp_record["id"],
        "external_id": spec.payload["external_id"],
        "posting_period": period,
        "total": str(Decimal(str(erp_record["total"])).quantize(Decimal("0.01"))),
        "currency": erp_record["currency"],
    }
    erp_record["externalId"] = spec.payload["external_id"]
    erp_record["custbody_accord_documents"] = ",".join(spec.payload["document_ids"])
    (posted,) = observe(result_event(command, Outcome(Status.SUCCEEDED, result=result), now=OBSERVED))
    return posted


ERP_CASES = [
    ("in the base currency", an_invoice(currency="eur"), 100.0, "EUR"),
    ("converted from USD (the entry is in the base currency)", an_invoice(), 92.0, "EUR"),
    (
        "a total the ERP keeps as a float with one decimal",
        an_invoice(currency="eur", lines=[line(1, 12_350)]),
        123.5,
        "EUR",
    ),
]


@pytest.mark.parametrize(("name", "inv", "total", "currency"), ERP_CASES, ids=[c[0] for c in ERP_CASES])
def test_erp_entry_observed_as_journal_posted(name: str, inv: dict[str, Any], total: float, currency: str) -> None:
    record: dict[str, Any] = {
        "id": "417",
        "total": total,
        "currency": currency,
        "subsidiary": {"id": "3"},
        "postingPeriod": {"id": "27"},
        "tranDate": "2026-09-21",
        "createdDate": "2026-09-21T10:00:00Z",
        "lastModifiedDate": "2026-09-21T10:00:00Z",
    }
    expected = _posted("EU", inv, record, "2026-09")
    (ours,) = journal_entry_observations(record, legal_entity="EU", period="2026-09", observed_at=OBSERVED)
    same = ("key", "system", "kind", "record_id", "amount", "currency", "status", "legal_entity", "period")
    assert {f: getattr(ours, f) for f in same} == {f: getattr(expected, f) for f in same}
    assert str(ours.amount) == str(expected.amount)
    assert ours.extra["journal_request_id"] == expected.extra["journal_request_id"]
    assert ours.version is None and expected.version is not None  # the ERP record does not carry the version


@pytest.mark.parametrize(
    ("name", "documents", "observed"),
    [
        ("one document", "in_1", 1),
        ("a summary of several documents: no one document's posting", "in_1,in_2", 0),
        ("not posted by accord (no lineage)", None, 0),
    ],
)
def test_erp_entries_keyed_by_their_one_document(name: str, documents: str | None, observed: int) -> None:
    record = {"id": "1", "total": 10.0, "currency": "EUR", "externalId": "x", "custbody_accord_documents": documents}
    assert (
        len(journal_entry_observations(record, legal_entity="EU", period="2026-09", observed_at=OBSERVED)) == observed
    )
    assert len(documents_of(record)) == (0 if documents is None else len(documents.split(",")))


def test_erp_entry_carrying_the_document_version() -> None:
    record = {
        "id": "1",
        "total": 10.0,
        "currency": "EUR",
        "custbody_accord_documents": "in_1",
        "custbody_accord_version": 42,
    }
    (o,) = journal_entry_observations(record, legal_entity="EU", period="2026-09", observed_at=OBSERVED)
    assert o.version == 42


# -- CRM ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields", "status", "invoice_status"),
    [
        ("both fields written back", {"Payment_Status__c": "Failed", "Invoice_Status__c": "Open"}, "Failed", "Open"),
        ("never written back", {"Payment_Status__c": None, "Invoice_Status__c": None}, None, None),
    ],
)
def test_crm_account_observed_as_the_account_constructor(
    name: str, fields: dict[str, Any], status: str | None, invoice_status: str | None
) -> None:
    account = {"Id": "0015g000000001AAA", "LastModifiedDate": "2026-11-28T11:00:00.000Z", **fields}
    ours = account_observation(account, observed_at=OBSERVED)
    assert ours == crm_account_status("0015g000000001AAA", status, observed_at=OBSERVED, invoice_status=invoice_status)
    assert ours.key == "account:0015g000000001AAA" and ours.system is System.CRM


# -- small pieces ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [(12345, "usd", "123.4500"), (-400, "eur", "-4.0000"), (1200, "JPY", "1200.0000"), (0, "gbp", "0.0000")],
)
def test_minor_units_become_the_events_money(minor: int, currency: str, expected: str) -> None:
    assert str(major(minor, currency)) == expected


def test_minor_units_must_be_integers() -> None:
    with pytest.raises(ValueError, match="not an integer of minor units"):
        major(12.5, "usd")


def test_snapshot_until_is_the_newest_change_seen() -> None:
    since = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
    snap = Snapshot.start(System.ERP, since)
    snap.saw(since - datetime.timedelta(minutes=1))  # re-read in the overlap: does not move the mark back
    assert snap.until == since
    snap.saw(since + datetime.timedelta(hours=2))
    snap.saw(None)
    snap.skip("summary journal entries")
    assert snap.until == since + datetime.timedelta(hours=2)
    assert "skipped 1 summary journal entries" in snap.describe()


def test_snapshot_refuses_a_naive_since() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Snapshot.start(System.CRM, datetime.datetime(2026, 11, 1))


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        (
            "stripe",
            {"error": {"type": "invalid_request_error", "code": "parameter_invalid", "message": "bad"}},
            "parameter_invalid: bad",
        ),
        (
            "netsuite",
            {"o:errorDetails": [{"detail": "no such", "o:errorCode": "INVALID_PARAMETER"}]},
            "INVALID_PARAMETER: no such",
        ),
        ("salesforce", [{"message": "malformed", "errorCode": "MALFORMED_QUERY"}], "MALFORMED_QUERY: malformed"),
    ],
)
def test_error_detail_reads_each_systems_shape(name: str, body: Any, expected: str) -> None:
    response = httpx.Response(400, json=body)
    assert error_detail(response) == expected


def test_latest_failure_per_invoice_from_its_failed_charges() -> None:
    charges = [
        {"id": "ch_1", "status": "failed", "invoice": "in_1", "created": T0},
        {"id": "ch_2", "status": "failed", "invoice": "in_1", "created": T0 + 300},
        {"id": "ch_3", "status": "succeeded", "invoice": "in_1", "created": T0 + 900},
        {"id": "ch_4", "status": "failed", "invoice": None, "created": T0},
    ]
    assert latest_failures(charges) == {"in_1": datetime.datetime.fromtimestamp(T0 + 300, datetime.UTC)}


async def test_a_pull_takes_its_since_from_its_snapshot_and_refuses_another() -> None:
    since = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
    async with httpx.AsyncClient() as http:
        reader = ErpSnapshots(http, client_id="accord", client_secret="s3cret")
        snap = Snapshot.start(System.ERP, since)
        assert reader._begin(None, snap) == (snap, since)
        assert reader.last is snap
        with pytest.raises(ValueError, match="pass one"):
            reader._begin(since + datetime.timedelta(days=1), snap)
        with pytest.raises(ValueError, match="a CRM snapshot passed to the ERP pull"):
            reader._begin(None, Snapshot.start(System.CRM))


# -- a snapshot added to the stream's state ----------------------------------------------------------------------


def _journal_state() -> tuple[MatchState, Observation]:
    """The stream's state of a clean invoice posting (issued, requested, posted), and its posting's observation."""
    (state,) = states(invoice(), requested(), posted()).values()
    (posting,) = state.of(System.ERP)
    return state, posting


def _read(posting: Observation, amount: str, *, minutes: float = 5) -> Observation:
    """The same ERP entry as a snapshot reads it `minutes` after the posting, with `amount`."""
    return posting.model_copy(
        update={
            "amount": Decimal(amount),
            "version": None,
            "source_event_ids": (),
            "observed_at": posting.observed_at + datetime.timedelta(minutes=minutes),
            "extra": {k: v for k, v in posting.extra.items() if k != "posted_at"},
        }
    )


def test_an_edited_erp_amount_is_seen_by_the_rules_once_aligned() -> None:
    state, posting = _journal_state()
    edited = _read(posting, "220.25")
    later = edited.observed_at + datetime.timedelta(minutes=2)  # past the settle time
    unaligned = state.add(edited)
    assert [f.finding_class for f in evaluate(unaligned, later, Policy())] == []  # the stream's version hides it
    aligned = state.add(*align_versions(state, [edited]))
    assert aligned.latest_per_record(System.ERP)[posting.record_id].amount == Decimal("220.25")
    assert [f.finding_class for f in evaluate(aligned, later, Policy())] == [FindingClass.AMOUNT_MISMATCH]


def test_an_unchanged_re_read_adds_nothing() -> None:
    state, posting = _journal_state()
    once = state.add(*align_versions(state, [_read(posting, "120.00")]))
    twice = once.add(*align_versions(once, [_read(posting, "120.00", minutes=9)]))
    assert len(once.observations) == len(state.observations) + 1
    assert twice == once
    assert evaluate(twice, posting.observed_at + datetime.timedelta(hours=1), Policy()) == []


def test_a_status_the_stream_never_told_ranks_newest() -> None:
    (state,) = states(invoice(version=7)).values()
    customer = BillingCustomer("cus_1", state.account_id, "EU")
    (issued,) = state.of(System.BILLING)
    read = invoice_observations(
        {**an_invoice(id=issued.record_id, currency="eur"), "status": "void"}, customer, observed_at=OBSERVED
    )
    aligned = align_versions(state, read)
    assert [(o.status, o.version) for o in aligned] == [("ISSUED", 7), ("VOIDED", 7)]
    assert max(state.add(*aligned).of(System.BILLING), key=lambda o: o.recency()).status == "VOIDED"


def test_records_the_stream_never_told_keep_no_version() -> None:
    state, posting = _journal_state()
    other = _read(posting, "5.00").model_copy(update={"record_id": "je_other"})
    assert align_versions(state, [other]) == [other]
