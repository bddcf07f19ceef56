"""The ERP connector's story: billing documents in, journal requests and ERP commands out, results back as events.

- invoice-issued, credit-note-issued, payment-collected, payment-refunded, invoice-voided → the posting rules
  (`posting.plan`) → `JournalRequested` on `erp.journal` and a `post_journal` command for the ERP
  (`Decision.commands`); a document the rules refuse → `JournalRejected` with the reason; an entry whose
  period is closed under the HOLD policy → `JournalRejected` (PERIOD_CLOSED, "held for approval") and an
  `ExceptionChanged` (OPEN) for a person, the held entry kept in state to release later.
- the command's outcome (`result_event`, from the worker's `on_result`) → `JournalPosted` or `JournalRejected`.

Handlers are pure and deterministic: event ids of what they emit derive from the event they handle, so a
redelivered event decides exactly the same. State is per customer account (the billing topics' key): the
invoices seen, so a void can reverse exactly what its invoice posted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from accord.casework import write_outbox
from accord.commands import Command, OnResult, Outcome, Status
from accord.errors import ConfigurationError
from accord.events import (
    CreditNoteIssued,
    Event,
    ExceptionChanged,
    ExceptionStatus,
    InvoiceIssued,
    InvoiceVoided,
    JournalLine,
    JournalPosted,
    JournalRejected,
    JournalRejectionReason,
    JournalRequested,
    JournalSide,
    Meta,
    Money,
    PaymentCollected,
    PaymentRefunded,
    PeriodStatus,
    PeriodStatusChanged,
    SourceDocumentType,
    SourceSystem,
)
from accord.runtime import CommandSpec, Decision, Envelope, Outgoing, Service

from .erp_client import rejection_code
from .posting import (
    DocumentId,
    DocumentKind,
    EventId,
    Hold,
    JournalEntry,
    LegalEntity,
    PeriodCalendar,
    PeriodId,
    PeriodState,
    PostingError,
    PostingRules,
    RevenueLine,
    SourceDocument,
    Summarization,
    plan,
    to_payload,
)

SYSTEM = "erp"
KIND = "post_journal"
JOURNAL_TOPIC = JournalRequested.TOPIC
_IDS = uuid.UUID("6f0b8a53-2f4e-4a1e-9a57-0d1b6c8e7e21")  # namespace of the ids this connector derives
_DOC_TYPES = {
    DocumentKind.INVOICE: SourceDocumentType.INVOICE,
    DocumentKind.VOID: SourceDocumentType.INVOICE,  # a void is the reversal of its invoice's entry
    DocumentKind.CREDIT_NOTE: SourceDocumentType.CREDIT_NOTE,
    DocumentKind.PAYMENT: SourceDocumentType.PAYMENT,
    DocumentKind.REFUND: SourceDocumentType.REFUND,
}
_REASONS = {
    "PERIOD_CLOSED": JournalRejectionReason.PERIOD_CLOSED,
    "PERIOD_LOCKED": JournalRejectionReason.PERIOD_CLOSED,
    "NO_PERIOD": JournalRejectionReason.PERIOD_CLOSED,
    "MAPPING_MISSING": JournalRejectionReason.MAPPING_MISSING,
    "INVALID_KEY_OR_REF": JournalRejectionReason.MAPPING_MISSING,
}


@dataclass(frozen=True)
class ConnectorConfig:
    rules: PostingRules
    #: the period calendar as the connector knows it now (from PeriodStatusChanged, or configuration)
    calendar: Callable[[], PeriodCalendar] = field(default=lambda: PeriodCalendar())
    #: one unit of the first currency in the second (the entity's base currency)
    rates: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)


def derived_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, "/".join(parts))


def _meta(cause: Meta, event_type: type[Event], *, entity: str, tag: str) -> Meta:
    return Meta(
        event_id=derived_id(str(cause.event_id), tag),
        event_type=event_type.AVRO_NAME,
        occurred_at=cause.occurred_at,
        source_system=SourceSystem.ACCORD,
        source_id=str(cause.event_id),
        correlation_id=cause.correlation_id,
        causation_id=str(cause.event_id),
        legal_entity=entity,
        entity_version=cause.entity_version,
    )


_PERIOD_STATES = {
    PeriodStatus.OPEN: PeriodState.OPEN,
    PeriodStatus.CLOSING: PeriodState.AR_LOCKED,  # only adjustments: no more invoices or payments
    PeriodStatus.CLOSED: PeriodState.CLOSED,
}


def with_period(calendar: PeriodCalendar, event: PeriodStatusChanged) -> PeriodCalendar:
    """The calendar after a period-status-changed event (an UNKNOWN status, from a newer writer, changes nothing)."""
    state = _PERIOD_STATES.get(event.status)
    if state is None:
        return calendar
    return calendar.with_state(LegalEntity(event.legal_entity), PeriodId(event.period), state)


# -- billing documents → source documents --------------------------------------------------------------


def _rate(config: ConnectorConfig, entity: LegalEntity, currency: str, document_id: str) -> Decimal:
    base = config.rules.base_currencies.get(entity)
    if base is None or currency == base:
        return Decimal(1)  # (no base: build_entry names the missing mapping)
    rate = config.rates.get((currency, base))
    if rate is None:
        raise PostingError(
            f"no exchange rate from {currency} to {base} for legal entity {entity}: add it to the rates",
            document_id=document_id,
            code="MAPPING_MISSING",
        )
    return rate


def _entity(meta: Meta) -> LegalEntity:
    return LegalEntity(meta.legal_entity or "")


def source_document(event: Any, state: Mapping[str, Any], config: ConnectorConfig) -> SourceDocument:
    """The posting input of a billing event; PostingError when it cannot be posted (a void of an unseen invoice)."""
    meta: Meta = event.meta
    entity = _entity(meta)
    common = {"event_id": EventId(str(meta.event_id)), "legal_entity": entity, "account_id": event.account_id}
    if isinstance(event, InvoiceIssued | CreditNoteIssued):
        kind = DocumentKind.INVOICE if isinstance(event, InvoiceIssued) else DocumentKind.CREDIT_NOTE
        doc_id = event.invoice_id if isinstance(event, InvoiceIssued) else event.credit_note_id
        number = event.invoice_number if isinstance(event, InvoiceIssued) else event.credit_note_number
        currency = event.total.currency
        return SourceDocument(
            kind=kind,
            document_id=DocumentId(doc_id),
            document_date=event.issue_date,
            currency=currency,
            rate=_rate(config, entity, currency, doc_id),
            total=event.total.amount,
            tax=event.tax_total.amount,
            lines=tuple(
                RevenueLine(ln.amount.amount, getattr(ln, "product_code", None), ln.line_id) for ln in event.lines
            ),
            reference=number,
            **common,
        )
    if isinstance(event, PaymentCollected | PaymentRefunded):
        kind = DocumentKind.PAYMENT if isinstance(event, PaymentCollected) else DocumentKind.REFUND
        doc_id = event.payment_id if isinstance(event, PaymentCollected) else event.refund_id
        when = event.collected_at if isinstance(event, PaymentCollected) else event.refunded_at
        currency = event.amount.currency
        return SourceDocument(
            kind=kind,
            document_id=DocumentId(doc_id),
            document_date=when.astimezone(UTC).date(),
            currency=currency,
            rate=_rate(config, entity, currency, doc_id),
            total=event.amount.amount,
            **common,
        )
    if isinstance(event, InvoiceVoided):
        seen = state.get("invoices", {}).get(event.invoice_id)
        if seen is None:
            raise PostingError(
                "voided, but this connector never posted the invoice: there is no entry to reverse",
                document_id=event.invoice_id,
            )
        return SourceDocument(
            kind=DocumentKind.VOID,
            document_id=DocumentId(event.invoice_id),
            document_date=meta.occurred_at.astimezone(UTC).date(),  # reversed in the period of the void
            currency=seen["currency"],
            rate=Decimal(seen["rate"]),
            total=Decimal(seen["total"]),
            tax=Decimal(seen["tax"]),
            lines=tuple(RevenueLine(Decimal(a), p) for a, p in seen["lines"]),
            reference=event.invoice_number,
            **common,
        )
    raise TypeError(f"no posting rule for {type(event).__name__}")


def _remember(state: dict[str, Any], doc: SourceDocument) -> None:
    if doc.kind is DocumentKind.INVOICE:
        state.setdefault("invoices", {})[doc.document_id] = {
            "currency": doc.currency,
            "rate": str(doc.rate),
            "total": str(doc.total),
            "tax": str(doc.tax),
            "lines": [[str(ln.amount), ln.product_code] for ln in doc.lines],
        }


# -- the decider ---------------------------------------------------------------------------------------


def journal_lines(entry: JournalEntry) -> list[JournalLine]:
    return [
        JournalLine(
            line_no=n,
            gl_account=ln.account,
            side=JournalSide(ln.side.value),
            amount=Money(amount=ln.amount, currency=entry.currency),
            memo=ln.memo,
            dimensions={
                "source_currency": entry.source_currency,
                "source_amount": str(ln.source_amount),
                "rate": str(entry.rate),
            },
        )
        for n, ln in enumerate(entry.lines, start=1)
    ]


def command_key(entry: JournalEntry, event_id: str) -> str:
    """One command per (entry, event): a redelivery records nothing new; a document re-sent under a new event
    is a second command, and the externalId upsert keeps it one entry in the ERP."""
    return f"{entry.external_id}@{event_id}"


def decide(state: Mapping[str, Any] | None, event: Any, config: ConnectorConfig) -> Decision[dict[str, Any]]:
    new_state: dict[str, Any] = {k: dict(v) for k, v in (state or {}).items()}
    meta: Meta = event.meta
    entity = meta.legal_entity or "UNKNOWN"
    try:
        doc = source_document(event, new_state, config)
        decision = plan(doc, rules=config.rules, calendar=config.calendar())
    except PostingError as exc:
        rejected = JournalRejected(
            meta=_meta(meta, JournalRejected, entity=entity, tag="rejected"),
            legal_entity=entity,
            source_document_id=exc.document_id,
            journal_request_id=str(derived_id(str(meta.event_id), "request")),
            reason=JournalRejectionReason(exc.code),
            detail=str(exc),
        )
        return Decision(state=new_state, outputs=[Outgoing(JOURNAL_TOPIC, rejected.key(), rejected)])
    _remember(new_state, doc)
    entry = decision.entry
    if isinstance(decision, Hold):
        return _hold(new_state, event, doc, decision)
    requested = JournalRequested(
        meta=_meta(meta, JournalRequested, entity=entity, tag="requested"),
        legal_entity=entity,
        source_document_id=doc.document_id,
        journal_request_id=entry.external_id,
        source_document_type=_DOC_TYPES[doc.kind],
        account_id=doc.account_id,
        accounting_date=entry.accounting_date,
        lines=journal_lines(entry),
    )
    payload = {
        **to_payload(entry),
        "source_document_id": doc.document_id,
        "causation_id": str(meta.event_id),
        "correlation_id": meta.correlation_id,
        "entity_version": meta.entity_version,
    }
    command = CommandSpec(SYSTEM, KIND, command_key(entry, str(meta.event_id)), payload)
    return Decision(state=new_state, outputs=[Outgoing(JOURNAL_TOPIC, requested.key(), requested)], commands=[command])


def _hold(state: dict[str, Any], event: Any, doc: SourceDocument, decision: Hold) -> Decision[dict[str, Any]]:
    meta: Meta = event.meta
    entry = decision.entry
    state.setdefault("held", {})[entry.external_id] = to_payload(entry)
    rejected = JournalRejected(
        meta=_meta(meta, JournalRejected, entity=entry.legal_entity, tag="held"),
        legal_entity=entry.legal_entity,
        source_document_id=doc.document_id,
        journal_request_id=entry.external_id,
        reason=JournalRejectionReason.PERIOD_CLOSED,
        detail=decision.reason,
    )
    exception_id = str(derived_id(entry.external_id, "held"))
    raised = ExceptionChanged(
        meta=_meta(meta, ExceptionChanged, entity=entry.legal_entity, tag="exception"),
        exception_id=exception_id,
        kind="journal-held",
        status=ExceptionStatus.OPEN,
        summary=f"{entry.memo}: {decision.reason}"[:500],
        account_id=doc.account_id,
        related_event_id=str(meta.event_id),
    )
    return Decision(
        state=state,
        outputs=[
            Outgoing(JOURNAL_TOPIC, rejected.key(), rejected),
            Outgoing(ExceptionChanged.TOPIC, raised.key(), raised),
        ],
    )


# -- command results → events ------------------------------------------------------------------------


def _reason(outcome: Outcome) -> JournalRejectionReason:
    code = rejection_code(outcome.error)
    if code in _REASONS:
        return _REASONS[code]
    if outcome.error and "HTTP 429" in outcome.error:
        return JournalRejectionReason.QUOTA_EXCEEDED
    if code is not None:
        return JournalRejectionReason.VALIDATION_FAILED
    return JournalRejectionReason.UNKNOWN


def result_event(command: Command, outcome: Outcome, *, now: datetime) -> JournalPosted | JournalRejected:
    """The event a finished `post_journal` command stands for."""
    p = command.payload
    meta = Meta(
        event_id=derived_id(command.key, outcome.status.value),
        event_type=(JournalPosted if outcome.status is Status.SUCCEEDED else JournalRejected).AVRO_NAME,
        occurred_at=now,
        source_system=SourceSystem.ERP if outcome.status is Status.SUCCEEDED else SourceSystem.ACCORD,
        source_id=str((outcome.result or {}).get("erp_id") or command.key),
        correlation_id=str(p["correlation_id"]),
        causation_id=str(p["causation_id"]),
        legal_entity=str(p["legal_entity"]),
        entity_version=int(p["entity_version"]),
    )
    common = {
        "legal_entity": str(p["legal_entity"]),
        "source_document_id": str(p["source_document_id"]),
        "journal_request_id": str(p["external_id"]),
    }
    if outcome.status is Status.SUCCEEDED and outcome.result is not None:
        result = outcome.result
        return JournalPosted(
            meta=meta,
            erp_journal_id=str(result["erp_id"]),
            posting_period=str(result["posting_period"]),
            posted_at=now,
            total=Money(amount=Decimal(str(result["total"])), currency=str(result["currency"] or p["currency"])),
            **common,
        )
    detail = outcome.error or "no answer"
    if outcome.status is Status.IN_DOUBT:
        detail = f"in doubt, a person must check the ERP for externalId {p['external_id']}: {detail}"
    return JournalRejected(meta=meta, reason=_reason(outcome), detail=detail[:2000], **common)


def on_result(schema: str, encode: Callable[[str, Any], bytes], *, clock: Callable[[], datetime]) -> OnResult:
    """The worker's `on_result`: the result event into the outbox, in the transaction that closes the command."""

    async def record(conn: asyncpg.Connection, command: Command, outcome: Outcome) -> None:
        event = result_event(command, outcome, now=clock())
        await write_outbox(conn, schema, [(event.TOPIC, event.key(), encode(event.TOPIC, event))])

    return record


# -- the registry ---------------------------------------------------------------------------------------


def service(config: ConnectorConfig, *, name: str = "erp_connector") -> Service:
    if config.rules.summarization is not Summarization.PER_DOCUMENT:
        raise ConfigurationError(
            "the event-driven connector posts PER_DOCUMENT; SUMMARIZED entries are built by posting.summarize over "
            "a period's entries, which no scheduled job runs yet: set the summarization to PER_DOCUMENT"
        )

    def handler(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide(state, envelope.event, config)

    handled = (InvoiceIssued, CreditNoteIssued, InvoiceVoided, PaymentCollected, PaymentRefunded)
    return Service(
        name=name,
        topics=[InvoiceIssued.TOPIC, PaymentCollected.TOPIC],
        handlers={cls.AVRO_NAME: handler for cls in handled},
        aggregate="customer_postings",
    )


__all__ = [
    "ConnectorConfig",
    "decide",
    "on_result",
    "result_event",
    "service",
    "source_document",
    "with_period",
]
