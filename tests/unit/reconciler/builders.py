"""Canonical events for the reconciler's tables: what billing, the CRM, accord and the ERP say about one fact.

Each builder starts from the schema's own sample (`accord.events.samples.sample_event`) and sets what the case is
about, so a new schema field needs no edit here. Times default to T0; `at` is when accord observed the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from accord.events import (
    BillingFrequency,
    ContractActivated,
    ContractAmended,
    ContractCancelled,
    ContractLine,
    ContractRenewed,
    DatePeriod,
    Event,
    InvoiceIssued,
    InvoiceLine,
    InvoiceMarkedUncollectible,
    InvoiceVoided,
    JournalLine,
    JournalPosted,
    JournalRejected,
    JournalRejectionReason,
    JournalRequested,
    JournalSide,
    Money,
    PaymentCollected,
    PaymentFailed,
    PeriodStatus,
    PeriodStatusChanged,
    SourceDocumentType,
    SourceSystem,
    SubscriptionChanged,
    SubscriptionProvisioned,
    SubscriptionStatus,
    SubscriptionStatusChanged,
    TaxLine,
)
from accord.events.samples import sample_event
from accord_reconciler.model import MatchState, Observation, PeriodBook, aliases_of, observe, resolve

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
E = TypeVar("E", bound=Event)
_SEQ = iter(range(1, 10**9))


def m(amount: str, currency: str = "EUR") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def at(seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> datetime:
    return T0 + timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)


def build(
    cls: type[E],
    *,
    when: datetime = T0,
    entity: str | None = "EU",
    version: int = 1,
    system: SourceSystem = SourceSystem.BILLING,
    event_id: uuid.UUID | None = None,
    **fields: Any,
) -> E:
    """A valid `cls` event: the schema's sample with a fresh event id, `fields` and the meta given."""
    sample = sample_event(cls, minimal=True)
    meta = sample.meta.model_copy(  # type: ignore[attr-defined]
        update={
            "event_id": event_id or uuid.UUID(int=next(_SEQ)),
            "occurred_at": when,
            "legal_entity": entity,
            "entity_version": version,
            "source_system": system,
        }
    )
    return cls.model_validate({**sample.model_dump(), "meta": meta.model_dump(), **_dump(fields)})


def _dump(fields: dict[str, Any]) -> dict[str, Any]:
    def one(value: Any) -> Any:
        if isinstance(value, list):
            return [one(v) for v in value]
        return value.model_dump() if hasattr(value, "model_dump") else value

    return {k: one(v) for k, v in fields.items()}


# -- billing -----------------------------------------------------------------------------------------------------


def line(amount: str, currency: str = "EUR", *, proration: bool = False, tax: str | None = None) -> InvoiceLine:
    taxes = (
        []
        if tax is None
        else [
            TaxLine(
                jurisdiction="FR",
                tax_type="VAT",
                rate=Decimal("0.2"),
                taxable_amount=m(amount, currency),
                tax_amount=m(tax, currency),
            )
        ]
    )
    return InvoiceLine(
        line_id=f"il_{next(_SEQ)}",
        description="Seats",
        product_code="SEAT",
        quantity=Decimal(1),
        unit_price=m(amount, currency),
        amount=m(amount, currency),
        period=DatePeriod(start_date=date(2026, 11, 1), end_date=date(2026, 11, 30)),
        proration=proration,
        taxes=taxes,
    )


def invoice(
    invoice_id: str = "in_1",
    *,
    lines: Iterable[InvoiceLine] | None = None,
    tax: str = "20.00",
    currency: str = "EUR",
    issued: date = date(2026, 11, 10),
    when: datetime = T0,
    entity: str | None = "EU",
    version: int = 1,
    event_id: uuid.UUID | None = None,
) -> InvoiceIssued:
    lines = list(lines) if lines is not None else [line("100.00", currency)]
    subtotal = sum((ln.amount.amount for ln in lines), Decimal(0))
    total = subtotal + Decimal(tax)
    return build(
        InvoiceIssued,
        when=when,
        entity=entity,
        version=version,
        event_id=event_id,
        account_id="acc-1",
        invoice_id=invoice_id,
        invoice_number=f"INV-{invoice_id}",
        issue_date=issued,
        due_date=issued + timedelta(days=30),
        lines=lines,
        subtotal=m(str(subtotal), currency),
        tax_total=m(tax, currency),
        total=m(str(total), currency),
        amount_due=m(str(total), currency),
    )


def void(invoice_id: str = "in_1", *, amount: str = "120.00", when: datetime = T0, version: int = 2) -> InvoiceVoided:
    return build(
        InvoiceVoided,
        when=when,
        version=version,
        account_id="acc-1",
        invoice_id=invoice_id,
        invoice_number=f"INV-{invoice_id}",
        voided_amount=m(amount),
    )


def uncollectible(invoice_id: str = "in_1", *, when: datetime = T0, version: int = 3) -> InvoiceMarkedUncollectible:
    return build(
        InvoiceMarkedUncollectible,
        when=when,
        version=version,
        account_id="acc-1",
        invoice_id=invoice_id,
        invoice_number=f"INV-{invoice_id}",
        uncollectible_amount=m("120.00"),
    )


def payment(
    payment_id: str = "py_1",
    amount: str = "120.00",
    *,
    currency: str = "EUR",
    invoice_id: str | None = "in_1",
    when: datetime = T0,
    entity: str | None = "EU",
) -> PaymentCollected:
    return build(
        PaymentCollected,
        when=when,
        entity=entity,
        account_id="acc-1",
        payment_id=payment_id,
        invoice_id=invoice_id,
        amount=m(amount, currency),
        attempt=1,
        collected_at=when,
    )


def payment_failed(payment_id: str = "py_2", *, when: datetime = T0) -> PaymentFailed:
    return build(
        PaymentFailed,
        when=when,
        account_id="acc-1",
        payment_id=payment_id,
        invoice_id="in_1",
        amount=m("120.00"),
        attempt=1,
        next_attempt_at=None,
    )


# -- accord's journal requests and the ERP's answers ------------------------------------------------------------


def requested(
    document_id: str = "in_1",
    request_id: str = "accord-EU-invoice-in_1",
    amount: str = "120.00",
    *,
    currency: str = "EUR",
    source_currency: str | None = None,
    source_amount: str | None = None,
    rate: str = "1",
    booked: date = date(2026, 11, 10),
    when: datetime | None = None,
    entity: str = "EU",
    version: int = 1,
) -> JournalRequested:
    dims = {"source_currency": source_currency or currency, "source_amount": source_amount or amount, "rate": rate}
    lines = [
        JournalLine(
            line_no=1,
            gl_account="acct-1100",
            side=JournalSide.DEBIT,
            amount=m(amount, currency),
            memo="receivable",
            dimensions=dims,
        ),
        JournalLine(
            line_no=2,
            gl_account="acct-4000",
            side=JournalSide.CREDIT,
            amount=m(amount, currency),
            memo="revenue",
            dimensions={**dims, "source_amount": source_amount or amount},
        ),
    ]
    return build(
        JournalRequested,
        when=when or at(1),
        entity=entity,
        version=version,
        system=SourceSystem.ACCORD,
        legal_entity=entity,
        source_document_id=document_id,
        journal_request_id=request_id,
        source_document_type=SourceDocumentType.INVOICE,
        account_id="acc-1",
        accounting_date=booked,
        lines=lines,
    )


def posted(
    document_id: str = "in_1",
    request_id: str = "accord-EU-invoice-in_1",
    erp_id: str = "je_1",
    total: str = "120.00",
    *,
    currency: str = "EUR",
    period: str = "2026-11",
    when: datetime | None = None,
    entity: str = "EU",
    version: int = 1,
    event_id: uuid.UUID | None = None,
) -> JournalPosted:
    when = when or at(2)
    return build(
        JournalPosted,
        when=when,
        entity=entity,
        version=version,
        system=SourceSystem.ERP,
        event_id=event_id,
        legal_entity=entity,
        source_document_id=document_id,
        journal_request_id=request_id,
        erp_journal_id=erp_id,
        posting_period=period,
        posted_at=when,
        total=m(total, currency),
    )


def rejected(
    document_id: str = "in_1",
    request_id: str = "accord-EU-invoice-in_1",
    *,
    reason: JournalRejectionReason = JournalRejectionReason.VALIDATION_FAILED,
    detail: str = "the ERP refused the entry: account acct-4000 is inactive",
    when: datetime | None = None,
    version: int = 1,
) -> JournalRejected:
    return build(
        JournalRejected,
        when=when or at(2),
        version=version,
        system=SourceSystem.ACCORD,
        legal_entity="EU",
        source_document_id=document_id,
        journal_request_id=request_id,
        reason=reason,
        detail=detail,
    )


def in_doubt(document_id: str = "in_1", request_id: str = "accord-EU-invoice-in_1", **kw: Any) -> JournalRejected:
    detail = f"in doubt, a person must check the ERP for externalId {request_id}: HTTP 504 after sending"
    return rejected(document_id, request_id, reason=JournalRejectionReason.UNKNOWN, detail=detail, **kw)


def period_closed(period: str = "2026-11", entity: str = "EU") -> PeriodStatusChanged:
    return build(
        PeriodStatusChanged, system=SourceSystem.ERP, legal_entity=entity, period=period, status=PeriodStatus.CLOSED
    )


# -- the CRM and billing's subscriptions -------------------------------------------------------------------------


def contract_line(
    frequency: BillingFrequency | None = BillingFrequency.MONTHLY, *, usage: bool = False
) -> ContractLine:
    return ContractLine(
        line_id=f"ln_{next(_SEQ)}",
        product_code="SEAT",
        quantity=Decimal(1),
        unit_price=m("1000.00"),
        start_date=date(2026, 11, 1),
        end_date=date(2027, 10, 31),
        billing_frequency=frequency,
        usage_based=usage,
    )


def activated(
    contract_id: str = "ctr_1", *, when: datetime = T0, lines: Iterable[ContractLine] = ()
) -> ContractActivated:
    return build(
        ContractActivated,
        when=when,
        system=SourceSystem.CRM,
        account_id="acc-1",
        contract_id=contract_id,
        contract_number="C-1",
        start_date=date(2026, 11, 1),
        end_date=date(2027, 10, 31),
        term_months=12,
        total_contract_value=m("12000.00"),
        lines=list(lines),
    )


def renewed(renewal_id: str = "ctr_2", contract_id: str = "ctr_1", *, when: datetime = T0) -> ContractRenewed:
    return build(
        ContractRenewed,
        when=when,
        system=SourceSystem.CRM,
        account_id="acc-1",
        contract_id=contract_id,
        renewal_contract_id=renewal_id,
        start_date=date(2027, 11, 1),
        end_date=date(2028, 10, 31),
        term_months=12,
        automatic=False,
        total_contract_value=m("12000.00"),
    )


def cancelled(
    contract_id: str = "ctr_1", *, effective: date = date(2026, 11, 9), when: datetime = T0, version: int = 2
) -> ContractCancelled:
    return build(
        ContractCancelled,
        when=when,
        version=version,
        system=SourceSystem.CRM,
        account_id="acc-1",
        contract_id=contract_id,
        effective_date=effective,
    )


def amended(amendment_id: str = "am_1", contract_id: str = "ctr_1", *, when: datetime = T0) -> ContractAmended:
    return build(
        ContractAmended,
        when=when,
        version=3,
        system=SourceSystem.CRM,
        account_id="acc-1",
        contract_id=contract_id,
        amendment_id=amendment_id,
        effective_date=date(2026, 11, 15),
        co_term_end_date=date(2027, 10, 31),
        delta_contract_value=m("500.00"),
    )


def provisioned(
    subscription_id: str = "sub_1",
    contract_id: str | None = "ctr_1",
    *,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    when: datetime | None = None,
    frequency: BillingFrequency = BillingFrequency.MONTHLY,
) -> SubscriptionProvisioned:
    return build(
        SubscriptionProvisioned,
        when=when or at(minutes=1),
        account_id="acc-1",
        subscription_id=subscription_id,
        contract_id=contract_id,
        status=status,
        billing_frequency=frequency,
        current_period=DatePeriod(start_date=date(2026, 11, 1), end_date=date(2026, 11, 30)),
    )


def status_changed(
    subscription_id: str = "sub_1",
    status: SubscriptionStatus = SubscriptionStatus.CANCELLED,
    *,
    when: datetime | None = None,
) -> SubscriptionStatusChanged:
    return build(
        SubscriptionStatusChanged,
        when=when or at(minutes=5),
        version=2,
        account_id="acc-1",
        subscription_id=subscription_id,
        previous_status=SubscriptionStatus.ACTIVE,
        status=status,
        effective_at=when or at(minutes=5),
    )


def changed(
    subscription_id: str = "sub_1", amendment_id: str | None = "am_1", *, when: datetime | None = None
) -> SubscriptionChanged:
    return build(
        SubscriptionChanged,
        when=when or at(minutes=2),
        version=2,
        account_id="acc-1",
        subscription_id=subscription_id,
        amendment_id=amendment_id,
        effective_date=date(2026, 11, 15),
        proration_amount=m("12.50"),
    )


# -- states ------------------------------------------------------------------------------------------------------


def states(*items: Event | Observation) -> dict[str, MatchState]:
    """The match states the items make, as the consumer builds them: observed, routed by alias, accumulated."""
    observations: list[Observation] = []
    for item in items:
        observations.extend([item] if isinstance(item, Observation) else observe(item))
    aliases = aliases_of(observations)
    out: dict[str, MatchState] = {}
    for o in observations:
        o = resolve(o, aliases)
        out[o.key] = (out.get(o.key) or MatchState.empty(o.key)).add(o)
    return out


def book(*events: PeriodStatusChanged) -> PeriodBook:
    result = PeriodBook()
    for event in events:
        result = result.apply(event)
    return result
