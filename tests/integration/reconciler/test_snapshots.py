"""The state reconciliation's pull against the real sandbox (its own PostgreSQL, real HTTP, OAuth, faults).

A full book is generated in the sandbox, its billing documents are posted to the ERP by the ERP connector's own code
(mapping → decider → JournalExecutor over HTTP → result event), and what the stream would say about every record
(`model.observe` of those events) is compared with what the snapshots read from each system's API. Then a person
edits an ERP entry, a billing invoice and a CRM Account by hand: a pull since the previous run's end finds them.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accord.commands import Command, Outcome, RetryPolicy, Status
from accord.events import CreditNoteIssued, Event, InvoiceIssued, InvoiceVoided, PaymentCollected, PaymentRefunded
from accord.ingest import Delivery, Mapped, MappingError
from accord_billing_connector.mapping import Customer, map_event
from accord_erp_connector.erp_client import ErpClient, ErpRejected, JournalExecutor
from accord_erp_connector.handlers import ConnectorConfig, decide, result_event
from accord_erp_connector.posting import ChartOfAccounts, LegalEntity, PostingRules
from accord_reconciler.model import Observation, RecordKind, Relation, System, observe, relation_of
from accord_reconciler.model import Status as ObsStatus
from accord_reconciler.snapshots import (
    BillingObject,
    BillingSnapshots,
    CrmSnapshots,
    ErpSnapshots,
    PullError,
    Snapshot,
    collect,
)

pytestmark = pytest.mark.postgres

BILLING_KEY = "sk_test_reconciler_snapshots"
CLIENT = {"client_id": "accord-reconciler", "client_secret": "s3cret"}
ZERO = datetime.timedelta(0)
FAST = RetryPolicy(max_attempts=12, base=0.05, cap=0.5)  # the sandbox's Retry-After (1 s) still applies
#: the billing events the ERP connector posts (handlers.service)
POSTED_KINDS = (InvoiceIssued, CreditNoteIssued, InvoiceVoided, PaymentCollected, PaymentRefunded)
BASES = {"US": "USD", "EU": "EUR", "UK": "GBP"}


def projection(o: Observation) -> tuple[Any, ...]:
    """What a snapshot must say as the stream does (not: version, event ids, when accord learned it)."""
    extra = {k: v for k, v in o.extra.items() if k != "posted_at"}
    return (
        o.key,
        o.system,
        o.kind,
        o.record_id,
        str(o.amount),
        o.currency,
        o.status,
        o.legal_entity,
        o.period,
        o.account_id,
        tuple(sorted(extra.items())),
    )


class Book:
    """One generated book: its namespace, the CRM account ids and billing customers it owns, and the stream's view."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.customers: dict[str, Customer] = {}
        self.stream: list[Observation] = []
        self.posted: dict[str, Observation] = {}  # erp internal id → the stream's JournalPosted observation
        self.unmapped: set[str] = set()  # billing records whose event the connector failed to map

    @property
    def accounts(self) -> set[str]:
        return {c.account_id for c in self.customers.values() if c.account_id}

    def mine(self, o: Observation) -> bool:
        if o.system is System.CRM or relation_of(o.key) is Relation.ACCOUNT:
            return o.key.removeprefix("account:") in self.accounts
        if o.system is System.ERP:
            return o.record_id in self.posted
        return o.account_id in self.accounts


@pytest.fixture
async def http(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=120) as client:
        yield client
        await client.delete("/admin/faults")  # knobs this test set are cleared for the next one


def billing(http: httpx.AsyncClient, **options: Any) -> BillingSnapshots:
    return BillingSnapshots(http, api_key=BILLING_KEY, retry=FAST, **options)


def erp(http: httpx.AsyncClient, **options: Any) -> ErpSnapshots:
    return ErpSnapshots(http, **CLIENT, retry=FAST, **options)


def crm(http: httpx.AsyncClient, **options: Any) -> CrmSnapshots:
    return CrmSnapshots(http, **CLIENT, retry=FAST, **options)


async def _billing_events(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every billing event, oldest first (the order the connector handles them in)."""
    headers = {"Authorization": f"Bearer {BILLING_KEY}"}
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = (await http.get("/billing/v1/events", params=params, headers=headers)).json()
        out += page["data"]
        if not page["has_more"]:
            return list(reversed(out))
        params["starting_after"] = page["data"][-1]["id"]


async def _credit_and_refund(http: httpx.AsyncClient, namespace: str) -> tuple[str, str]:
    """A post-payment credit note on one paid invoice of the book, half of it refunded to the card (a credit note, a
    refund, a charge refunded: documents the generator does not make)."""
    headers = {"Authorization": f"Bearer {BILLING_KEY}"}
    customers = (await http.get("/billing/v1/customers", params={"limit": 100}, headers=headers)).json()["data"]
    for customer in customers:
        if not str(customer.get("name", "")).startswith(namespace + " "):
            continue
        params = {"customer": customer["id"], "status": "paid", "limit": 100}
        for invoice in (await http.get("/billing/v1/invoices", params=params, headers=headers)).json()["data"]:
            credited = invoice["post_payment_credit_notes_amount"] + invoice["pre_payment_credit_notes_amount"]
            if invoice.get("charge") and min(invoice["amount_paid"], invoice["total"] - credited) >= 200:
                body = {"invoice": invoice["id"], "amount": 200, "refund_amount": 100, "reason": "order_change"}
                response = await http.post("/billing/v1/credit_notes", json=body, headers=headers)
                assert response.status_code == 200, response.text
                return str(response.json()["id"]), str(response.json()["refund"])
    raise AssertionError(f"book {namespace} has no paid invoice to credit")


async def generate(http: httpx.AsyncClient) -> Book:
    """A full book in every system, and its billing documents posted to the ERP as the connectors would."""
    book = Book(f"snap-{uuid.uuid4().hex[:8]}")
    response = await http.post(
        "/admin/generate", json={"customers": 5, "seed": 11, "namespace": book.namespace, "mode": "full"}, timeout=300
    )
    assert response.status_code == 200, response.text
    await _credit_and_refund(http, book.namespace)
    rules = PostingRules(charts={LegalEntity(e): ChartOfAccounts.default() for e in BASES}, base_currencies=dict(BASES))
    config = ConnectorConfig(rules=rules, rates={("USD", "EUR"): Decimal("0.92"), ("EUR", "USD"): Decimal("1.087")})
    executor = JournalExecutor(ErpClient(http, **CLIENT))
    states: dict[str, Any] = {}
    for n, payload in enumerate(await _billing_events(http)):
        obj = payload["data"]["object"]
        if obj.get("object") == "customer":
            meta = obj.get("metadata") or {}
            if str(obj.get("name", "")).startswith(book.namespace + " "):
                book.customers[obj["id"]] = Customer(
                    obj["id"],
                    meta.get("crm_account_id"),
                    meta.get("legal_entity"),
                    (obj.get("address") or {}).get("country"),
                    obj.get("tax_exempt"),
                )
            continue
        customer = book.customers.get(str(obj.get("customer")))
        if customer is None:
            continue  # another book's
        delivery = Delivery("billing", payload["id"], payload["type"], payload, datetime.datetime.now(datetime.UTC))
        try:
            mapped = map_event(delivery, customer)
        except MappingError:
            # the connector keeps the delivery as failed: the stream never says it; a snapshot still reads the record
            book.unmapped.add(str(obj["id"]))
            continue
        events: list[Event] = list(mapped.events) if isinstance(mapped, Mapped) else []
        for event in events:
            book.stream += observe(event)
            if not isinstance(event, POSTED_KINDS):
                continue
            decision = decide(states.get(customer.account_id or ""), event, config)
            states[customer.account_id or ""] = decision.state
            for spec in decision.commands:
                if spec.kind != "post_journal":
                    continue
                command = Command(n, spec.system, spec.kind, spec.key, spec.payload, 1, Status.PENDING)
                try:
                    result = await executor.execute(command)
                except ErpRejected:
                    continue  # a closed period: not posted, so nothing for the snapshot to find either
                posted = result_event(command, Outcome(Status.SUCCEEDED, result=dict(result)), now=delivery.received_at)
                (observation,) = observe(posted)
                book.stream.append(observation)
                book.posted[observation.record_id] = observation
    assert book.customers and book.posted, "the book has customers and postings"
    return book


@pytest.fixture
async def book(http: httpx.AsyncClient) -> Book:
    return await generate(http)


def _expected(book: Book) -> set[tuple[Any, ...]]:
    """The stream's statements a snapshot can make: journal documents and postings, payment successes and refunds
    (a failed payment's outcome `<invoice>/attempt/<n>` is not in any record: the stream alone says it)."""
    return {
        projection(o)
        for o in book.stream
        if relation_of(o.key) is Relation.JOURNAL or o.status in (ObsStatus.SUCCEEDED, ObsStatus.PAYMENT_REFUNDED)
    }


async def test_full_pull_says_what_the_stream_says_across_pages(http: httpx.AsyncClient, book: Book) -> None:
    snaps = {s: Snapshot.start(s) for s in (System.BILLING, System.ERP, System.CRM)}
    pulled = [
        *await collect(billing(http, page_size=3).pull(None, snaps[System.BILLING])),
        *await collect(erp(http, page_size=4).pull(None, snaps[System.ERP])),
        *await collect(crm(http, batch_size=3).pull(None, snaps[System.CRM])),
    ]
    mine = [o for o in pulled if book.mine(o)]
    # a failed payment: the snapshot says the latest attempt of each unpaid invoice, as the stream said it
    failed = {projection(o) for o in mine if o.status == ObsStatus.FAILED}
    assert failed and failed <= {projection(o) for o in book.stream if o.status == ObsStatus.FAILED}
    lost = [o for o in mine if o.record_id in book.unmapped]  # the stream never said these: the snapshot does
    assert {o.record_id for o in lost} == book.unmapped
    got = {
        projection(o)
        for o in mine
        if o.system is not System.CRM and o.record_id not in book.unmapped and o.status != ObsStatus.FAILED
    }
    expected = _expected(book)
    assert got - expected == set(), "the snapshot says something the stream does not"
    assert expected - got == set(), "the snapshot misses what the stream says"
    kinds = {
        RecordKind.INVOICE,
        RecordKind.CREDIT_NOTE,
        RecordKind.PAYMENT,
        RecordKind.REFUND,
        RecordKind.JOURNAL_ENTRY,
    }
    assert {o.kind for o in mine} >= kinds
    # every account of the book read once from the CRM, with its (never written back) payment status
    accounts = [o for o in mine if o.system is System.CRM]
    assert sorted(o.record_id for o in accounts) == sorted(book.accounts)
    for snap in snaps.values():
        assert snap.done and snap.pages > 1 and snap.records >= 3, snap.describe()
        assert snap.until is not None and snap.throttled == 0
    assert snaps[System.ERP].observations >= len(book.posted)


async def test_hand_edits_are_found_by_a_pull_since_the_previous_run(http: httpx.AsyncClient, book: Book) -> None:
    readers = {
        System.BILLING: billing(http, overlap=ZERO),
        System.ERP: erp(http, overlap=ZERO),
        System.CRM: crm(http, overlap=ZERO),
    }
    first = {s: Snapshot.start(s) for s in readers}
    full = {s: await collect(r.pull(None, first[s])) for s, r in readers.items()}

    # a person overrides an ERP entry's amount, edits an invoice in the billing dashboard, sets an Account's status
    entry_id = sorted(book.posted)[0]
    posted = book.posted[entry_id]
    new_total = float((posted.amount or Decimal(0)) + Decimal("100.25"))
    invoice = next(o for o in full[System.BILLING] if book.mine(o) and o.kind is RecordKind.INVOICE)
    account = sorted(book.accounts)[0]
    edits = [
        {"system": "erp", "kind": "journalEntry", "id": entry_id, "fields": {"total": new_total}},
        {"system": "billing", "kind": "invoice", "id": invoice.record_id, "fields": {"total": 1}},
        {"system": "crm", "kind": "Account", "id": account, "fields": {"Payment_Status__c": "Failed"}},
    ]
    for edit in edits:
        response = await http.post("/admin/edit", json=edit)
        assert response.status_code == 200, response.text
    # and billing credits a paid invoice again, refunding part of it: a second refund of the same charge, which the
    # connector cannot map (charge.refunded tells the cumulative amount only), while the refund itself says it
    note, refund = await _credit_and_refund(http, book.namespace)

    second = {s: Snapshot.start(s, first[s].until) for s in readers}
    changed = {s: await collect(r.pull(second[s].since, second[s])) for s, r in readers.items()}

    (entry,) = [o for o in changed[System.ERP] if o.record_id == entry_id]
    assert entry.amount == Decimal(str(new_total)) and entry.key == posted.key and entry.amount != posted.amount
    # only what changed at or after the previous run's end is read again (the entries stamped exactly then, too)
    last = {o.record_id for o in full[System.ERP] if o.occurred_at == first[System.ERP].until}
    assert {o.record_id for o in changed[System.ERP]} <= {entry_id, *last}
    before, after = first[System.ERP].until, second[System.ERP].until
    assert before is not None and after is not None and after > before

    issued = [o for o in changed[System.BILLING] if o.record_id == invoice.record_id and o.status == ObsStatus.ISSUED]
    assert [o.amount for o in issued] == [Decimal("0.01")]
    assert len(changed[System.BILLING]) < len(full[System.BILLING])

    new = {(o.kind, o.record_id, o.amount, o.status) for o in changed[System.BILLING]}
    assert {
        (RecordKind.CREDIT_NOTE, note, Decimal(2), "ISSUED"),
        (RecordKind.REFUND, refund, Decimal(1), "REFUNDED"),
    } <= new

    statuses = {o.record_id: o.status for o in changed[System.CRM]}
    assert statuses.get(account) == "Failed"
    assert len(changed[System.CRM]) < len(full[System.CRM])

    # a repair's read-back of one record per system sees the same
    erp_reader, billing_reader, crm_reader = readers[System.ERP], readers[System.BILLING], readers[System.CRM]
    assert isinstance(erp_reader, ErpSnapshots) and isinstance(billing_reader, BillingSnapshots)
    assert isinstance(crm_reader, CrmSnapshots)
    assert [o.amount for o in await erp_reader.read(entry_id)] == [entry.amount]
    assert [o.amount for o in await billing_reader.read(BillingObject.INVOICE, invoice.record_id)][:1] == [
        Decimal("0.01")
    ]
    assert [o.status for o in await crm_reader.read(account)] == ["Failed"]
    assert await erp_reader.read("999999999") == []


async def test_throttled_pages_are_retried_and_nothing_is_lost(http: httpx.AsyncClient, book: Book) -> None:
    calm = await collect(erp(http, page_size=2).pull())
    fault = {"system": "erp", "endpoint": "GET /erp/services/rest/record/v1/journalEntry", "rate_429": 0.5, "seed": 3}
    assert (await http.put("/admin/faults", json=fault)).status_code == 200
    snap = Snapshot.start(System.ERP)
    throttled = await collect(erp(http, page_size=2, rng=random.Random(1)).pull(None, snap))
    assert snap.throttled > 0, snap.describe()
    assert sorted(map(projection, throttled)) == sorted(map(projection, calm))


async def test_a_refused_pull_says_what_to_fix(http: httpx.AsyncClient) -> None:
    reader = BillingSnapshots(http, api_key="pk_live_wrong", retry=FAST)
    with pytest.raises(PullError) as caught:
        await collect(reader.pull())
    assert caught.value.status == 401 and not caught.value.retryable
    assert "invalid_api_key" in str(caught.value) and "check the BILLING credentials" in str(caught.value)
