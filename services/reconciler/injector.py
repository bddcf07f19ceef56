"""A divergence injector: a book of customers' canonical events with divergences of every class injected by
dropping, duplicating or altering events, and the manifest of what each must be found as (match key and class).

    book = Book.generate(customers=1000, per_class=55, seed=7)
    book.events            # what the systems would have published, in per-key order
    book.expected          # {(match key, finding class)} the reconciler must find, and nothing else
    noisy(book.events, rng, duplicates=0.3)   # heavy delivery noise: redeliveries and cross-topic reordering

Each customer's flow is what the services publish for one deal (contract activated, subscription provisioned,
invoice issued, its journal request and posting, the payment collected and its posting; some invoices voided and
reversed), in the legal entity's currency. A customer chosen for a class gets exactly one divergence of it, on its
own keys, so the manifest is exact: a finding for a clean customer is a false positive, one missing is a miss.
Used by the reconciler's tests and by `bench/recon` (time to detect).
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from accord.events import (
    ContractActivated,
    DatePeriod,
    Event,
    InvoiceIssued,
    InvoiceLine,
    InvoiceVoided,
    JournalLine,
    JournalPosted,
    JournalRejected,
    JournalRejectionReason,
    JournalRequested,
    JournalSide,
    Money,
    PaymentCollected,
    SourceDocumentType,
    SourceSystem,
    SubscriptionProvisioned,
    SubscriptionStatus,
    TaxLine,
)
from accord.events.samples import sample_event

from .model import Relation, journal_key, match_key
from .rules import FindingClass

E = TypeVar("E", bound=Event)

#: legal entity → currency of its customers' documents (the entity's base currency: no conversion)
ENTITIES = {"EU": "EUR", "US": "USD", "UK": "GBP"}
#: the classes injected, in the order customers are assigned to them
CLASSES = (
    FindingClass.MISSING,
    FindingClass.DUPLICATE,
    FindingClass.AMOUNT_MISMATCH,
    FindingClass.CURRENCY_MISMATCH,
    FindingClass.STATUS_MISMATCH,
    FindingClass.ORPHAN,
    FindingClass.STALE,
    FindingClass.TIMING,
    FindingClass.IN_DOUBT,
)
NAMESPACE = uuid.UUID("5b0d7c3e-6a21-4f8e-9d4c-2e7f1a3b9c60")


def _m(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount, currency=currency)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.model_dump() if hasattr(value, "model_dump") else value


@dataclass
class Book:
    events: list[Event] = field(default_factory=list)
    expected: set[tuple[str, FindingClass]] = field(default_factory=set)
    #: customer index → the class injected for it (clean customers are absent)
    injected: dict[int, FindingClass] = field(default_factory=dict)
    run: str = "run"

    @classmethod
    def generate(
        cls,
        *,
        customers: int,
        per_class: int = 0,
        seed: int = 0,
        start: datetime.datetime | None = None,
        run: str | None = None,
    ) -> Book:
        """`customers` flows; the first `per_class` * 9 of a shuffled order get one divergence each."""
        if per_class * len(CLASSES) > customers:
            raise ValueError(f"{per_class} per class needs {per_class * len(CLASSES)} customers, got {customers}")
        rng = random.Random(seed)
        book = cls(run=run or f"r{seed}")
        order = list(range(customers))
        rng.shuffle(order)
        for n, customer in enumerate(order[: per_class * len(CLASSES)]):
            book.injected[customer] = CLASSES[n % len(CLASSES)]
        when = start or datetime.datetime.now(datetime.UTC)
        for customer in range(customers):
            _Flow(book, customer, rng, when).build(book.injected.get(customer))
        return book


class _Flow:
    """One customer's deal, with at most one divergence."""

    def __init__(self, book: Book, n: int, rng: random.Random, when: datetime.datetime) -> None:
        self.book, self.rng, self.when = book, rng, when
        self.entity = ("EU", "US", "UK")[n % 3]
        self.currency = ENTITIES[self.entity]
        tag = f"{book.run}-{n:05d}"
        self.account = f"acc-{tag}"
        self.contract = f"ctr-{tag}"
        self.subscription = f"sub-{tag}"
        self.invoice = f"in-{tag}"
        self.payment = f"py-{tag}"
        self.seq = 0
        self.voided = n % 7 == 3  # some clean invoices are voided and reversed, as billing does
        self.issue_date = datetime.date(2026, 11, 1 + n % 20)

    def event(self, cls: type[E], *, system: SourceSystem, version: int = 1, **fields: Any) -> E:
        self.seq += 1
        sample = sample_event(cls, minimal=True)
        meta = sample.meta.model_copy(  # type: ignore[attr-defined]
            update={
                "event_id": uuid.uuid5(NAMESPACE, f"{self.account}/{self.seq}"),
                "occurred_at": self.when,
                "legal_entity": self.entity,
                "entity_version": version,
                "source_system": system,
                "correlation_id": self.account,
            }
        )
        data = {k: _plain(v) for k, v in fields.items()}
        return cls.model_validate({**sample.model_dump(), "meta": meta.model_dump(), **data})

    # -- the facts ---------------------------------------------------------------------------------------------

    def build(self, divergence: FindingClass | None) -> None:
        out = self.book.events
        amount = Decimal(self.rng.randrange(10_000, 500_000)) / 100
        tax = (amount * Decimal("0.2")).quantize(Decimal("0.01")) if self.entity != "US" else Decimal("0.00")
        total = amount + tax
        cur = self.currency
        out.append(
            self.event(
                ContractActivated,
                system=SourceSystem.CRM,
                account_id=self.account,
                contract_id=self.contract,
                contract_number=f"C-{self.contract}",
                start_date=datetime.date(2026, 11, 1),
                end_date=datetime.date(2027, 10, 31),
                term_months=12,
                total_contract_value=_m(amount * 12, cur),
            )
        )
        if divergence is FindingClass.STATUS_MISMATCH:
            self.expect(match_key(Relation.CONTRACT, self.contract), divergence)  # the provisioning never came
        else:
            out.append(
                self.event(
                    SubscriptionProvisioned,
                    system=SourceSystem.BILLING,
                    account_id=self.account,
                    subscription_id=self.subscription,
                    contract_id=self.contract,
                    status=SubscriptionStatus.ACTIVE,
                    current_period=DatePeriod(
                        start_date=datetime.date(2026, 11, 1), end_date=datetime.date(2026, 11, 30)
                    ),
                )
            )
        taxes = [
            TaxLine(
                jurisdiction=self.entity,
                tax_type="VAT",
                rate=Decimal("0.2"),
                taxable_amount=_m(amount, cur),
                tax_amount=_m(tax, cur),
            )
        ]
        line = InvoiceLine(
            line_id=f"il-{self.invoice}",
            description="Seats",
            product_code="SEAT",
            quantity=Decimal(1),
            unit_price=_m(amount, cur),
            amount=_m(amount, cur),
            period=DatePeriod(start_date=datetime.date(2026, 11, 1), end_date=datetime.date(2026, 11, 30)),
            proration=False,
            taxes=taxes if tax else [],
        )
        invoice_key = journal_key(self.entity, self.invoice)
        if divergence is FindingClass.ORPHAN:
            # the ERP holds a posting of a document billing never issued (an entry keyed in by hand)
            ghost = f"{self.invoice}-ghost"
            out += self.journal(ghost, total, cur, version=1, request="r-" + ghost, erp="je-" + ghost)
            self.expect(journal_key(self.entity, ghost), divergence)
        out.append(
            self.event(
                InvoiceIssued,
                system=SourceSystem.BILLING,
                account_id=self.account,
                invoice_id=self.invoice,
                invoice_number=f"INV-{self.invoice}",
                subscription_id=self.subscription,
                issue_date=self.issue_date,
                due_date=self.issue_date + datetime.timedelta(days=30),
                lines=[line],
                subtotal=_m(amount, cur),
                tax_total=_m(tax, cur),
                total=_m(total, cur),
                amount_due=_m(total, cur),
            )
        )
        request = f"accord-{self.entity}-invoice-{self.invoice}"
        match divergence:
            case FindingClass.MISSING:
                self.expect(invoice_key, divergence)  # neither requested nor posted: a dropped event
            case FindingClass.DUPLICATE:
                out += self.journal(self.invoice, total, cur, request=request, erp=f"je-{self.invoice}")
                out.append(self.posting(self.invoice, total, cur, request=request, erp=f"je-{self.invoice}-2"))
                self.expect(invoice_key, divergence)
            case FindingClass.AMOUNT_MISMATCH:
                out += self.journal(
                    self.invoice,
                    total,
                    cur,
                    request=request,
                    erp=f"je-{self.invoice}",
                    posted_total=total + Decimal("7.00"),
                )
                self.expect(invoice_key, divergence)
            case FindingClass.CURRENCY_MISMATCH:
                other = "CHF"
                out += self.journal(
                    self.invoice, total, cur, request=request, erp=f"je-{self.invoice}", posted_currency=other
                )
                self.expect(invoice_key, divergence)
            case FindingClass.TIMING:
                out += self.journal(
                    self.invoice, total, cur, request=request, erp=f"je-{self.invoice}", period="2026-12"
                )
                self.expect(invoice_key, divergence)
            case FindingClass.IN_DOUBT:
                out.append(self.request(self.invoice, total, cur, request=request))
                out.append(
                    self.event(
                        JournalRejected,
                        system=SourceSystem.ACCORD,
                        legal_entity=self.entity,
                        source_document_id=self.invoice,
                        journal_request_id=request,
                        reason=JournalRejectionReason.UNKNOWN,
                        detail=f"in doubt, check the ERP for externalId {request}: HTTP 504 after sending",
                    )
                )
                self.expect(invoice_key, divergence)
            case _:
                out += self.journal(self.invoice, total, cur, request=request, erp=f"je-{self.invoice}")
        if (self.voided and divergence is None) or divergence is FindingClass.STALE:
            out.append(
                self.event(
                    InvoiceVoided,
                    system=SourceSystem.BILLING,
                    version=2,
                    account_id=self.account,
                    invoice_id=self.invoice,
                    invoice_number=f"INV-{self.invoice}",
                    voided_amount=_m(total, cur),
                )
            )
            if divergence is FindingClass.STALE:
                self.expect(invoice_key, divergence)  # the reversal never posted
            else:
                # the ERP connector reverses in the period of the void
                rev = f"{request}-void"
                out += self.journal(
                    self.invoice,
                    total,
                    cur,
                    version=2,
                    request=rev,
                    erp=f"{self.invoice}-rev",
                    period=f"{self.when:%Y-%m}",
                )
            return
        out.append(
            self.event(
                PaymentCollected,
                system=SourceSystem.BILLING,
                account_id=self.account,
                payment_id=self.payment,
                invoice_id=self.invoice,
                amount=_m(total, cur),
                attempt=1,
                collected_at=datetime.datetime.combine(self.issue_date, datetime.time(12), datetime.UTC),
            )
        )
        out += self.journal(
            self.payment,
            total,
            cur,
            request=f"accord-{self.entity}-payment-{self.payment}",
            erp=f"je-{self.payment}",
            doc_type=SourceDocumentType.PAYMENT,
        )

    def expect(self, key: str, cls: FindingClass) -> None:
        self.book.expected.add((key, cls))

    def journal(
        self,
        document: str,
        total: Decimal,
        currency: str,
        *,
        request: str,
        erp: str,
        version: int = 1,
        posted_total: Decimal | None = None,
        posted_currency: str | None = None,
        period: str | None = None,
        doc_type: SourceDocumentType = SourceDocumentType.INVOICE,
    ) -> list[Event]:
        return [
            self.request(document, total, currency, request=request, version=version, doc_type=doc_type),
            self.posting(
                document,
                posted_total if posted_total is not None else total,
                posted_currency or currency,
                request=request,
                erp=erp,
                version=version,
                period=period,
            ),
        ]

    def request(
        self,
        document: str,
        total: Decimal,
        currency: str,
        *,
        request: str,
        version: int = 1,
        doc_type: SourceDocumentType = SourceDocumentType.INVOICE,
    ) -> JournalRequested:
        dims = {"source_currency": currency, "source_amount": str(total), "rate": "1"}
        sides = ((JournalSide.DEBIT, "acct-1100"), (JournalSide.CREDIT, "acct-4000"))
        lines = [
            JournalLine(
                line_no=i, gl_account=acct, side=side, amount=_m(total, currency), memo=doc_type.value, dimensions=dims
            )
            for i, (side, acct) in enumerate(sides, 1)
        ]
        return self.event(
            JournalRequested,
            system=SourceSystem.ACCORD,
            version=version,
            legal_entity=self.entity,
            source_document_id=document,
            journal_request_id=request,
            source_document_type=doc_type,
            account_id=self.account,
            accounting_date=self.issue_date,
            lines=lines,
        )

    def posting(
        self,
        document: str,
        total: Decimal,
        currency: str,
        *,
        request: str,
        erp: str,
        version: int = 1,
        period: str | None = None,
    ) -> JournalPosted:
        return self.event(
            JournalPosted,
            system=SourceSystem.ERP,
            version=version,
            legal_entity=self.entity,
            source_document_id=document,
            journal_request_id=request,
            erp_journal_id=erp,
            posting_period=period or f"{self.issue_date:%Y-%m}",
            posted_at=self.when,
            total=_m(total, currency),
        )


def noisy(
    events: Sequence[Event], rng: random.Random, *, duplicates: float = 0.0, shuffle_topics: bool = True
) -> list[Event]:
    """Heavy delivery noise: a share of events delivered twice (a redelivered webhook, a retried publish), and
    each topic's events sent as a block in a random topic order (so a posting may come long before its invoice).
    Order within a topic and key is kept: Kafka keeps it, and the reconciler may rely on nothing else."""
    doubled: list[Event] = []
    for e in events:
        doubled.append(e)
        if rng.random() < duplicates:
            doubled.append(e)
    if not shuffle_topics:
        return doubled
    by_topic: dict[str, list[Event]] = {}
    for e in doubled:
        by_topic.setdefault(e.TOPIC, []).append(e)
    topics = list(by_topic)
    rng.shuffle(topics)
    return [e for t in topics for e in by_topic[t]]


def per_class(expected: Iterable[tuple[str, FindingClass]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, cls in expected:
        counts[cls.value] = counts.get(cls.value, 0) + 1
    return counts
