"""The ERP connector's story: billing documents in, journal requests and ERP commands out, results back as events.

- invoice-issued, credit-note-issued, payment-collected, payment-refunded, invoice-voided → the posting rules
  (`posting.plan`) → `JournalRequested` on `erp.journal` and a `post_journal` command for the ERP
  (`Decision.commands`; SUMMARIZED: a `stage_entry` command instead, posted in its period's summary); a
  document the rules refuse → `JournalRejected` with the reason; an entry whose period is closed under the HOLD
  policy → `JournalRejected` (PERIOD_CLOSED, "held for approval") and a `hold_journal` command whose closing
  transaction keeps the entry and opens a case in the exception queue (holds.py);
- customer-provision-requested for the ERP → one `upsert_customer` command per request_id
  (`decide_provisioning`); an invalid request → `ProvisioningFailed` at once;
- the command's outcome (`result_event`, `provisioning_result`, from the worker's `on_result`: results.py) →
  `JournalPosted` or `JournalRejected`, `ProvisioningCompleted` or `ProvisioningFailed`;
- the reconciler's repair-requested READ_BACK for the ERP → one `read_back` command per repair_id
  (`decide_repair`), whose closing transaction hands the in-doubt journal command back to the worker's own
  read-back (repairs.py): the entry found → `JournalPosted`, not found → posted again, by the normal result path.

Handlers are pure and deterministic: event ids of what they emit derive from the event they handle, so a
redelivered event decides exactly the same. State is per customer account (the key of the billing topics and of
q2c.provisioning): the invoices seen, so a void can reverse exactly what its invoice posted, and the requests
answered.
"""

from __future__ import annotations

import logging
import re
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
    CustomerProvisionRequested,
    Event,
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
    ProvisioningCompleted,
    ProvisioningFailed,
    RepairAction,
    RepairRequested,
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

log = logging.getLogger("accord.erp_connector")

SYSTEM = "erp"
KIND = "post_journal"
CUSTOMER_KIND = "upsert_customer"
LOCAL = "accord"  # commands with no call to make: their effect is written where they close
HOLD_KIND = "hold_journal"
STAGE_KIND = "stage_entry"  # SUMMARIZED: the entry waits for its period's summary (summaries.py)
READ_BACK_KIND = "read_back"  # a repair: the in-doubt journal command read back again (repairs.py)
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
    #: catalogue topic → the topic used instead, for what is consumed and what is published (tests, staging)
    topics: Mapping[str, str] = field(default_factory=dict)

    def topic(self, catalogue: str) -> str:
        return self.topics.get(catalogue, catalogue)


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
        return Decision(state=new_state, outputs=[Outgoing(config.topic(JOURNAL_TOPIC), rejected.key(), rejected)])
    _remember(new_state, doc)
    entry = decision.entry
    if entry.total == 0:
        # A zero document (a metered subscription's first invoice, a fully credited one) moves no money: the
        # ERP refuses an entry without amounts, and the ledger needs none. Remembered, nothing posted.
        return Decision(state=new_state)
    if isinstance(decision, Hold):
        return _hold(new_state, event, doc, decision, config)
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
    key, payload = command_key(entry, str(meta.event_id)), _post_payload(entry, doc, meta)
    if config.rules.summarization is Summarization.SUMMARIZED:
        command = CommandSpec(LOCAL, STAGE_KIND, key, payload)  # posted later, in its period's summary
    else:
        command = CommandSpec(SYSTEM, KIND, key, payload)
    return Decision(
        state=new_state,
        outputs=[Outgoing(config.topic(JOURNAL_TOPIC), requested.key(), requested)],
        commands=[command],
    )


def _post_payload(entry: JournalEntry, doc: SourceDocument, meta: Meta) -> dict[str, Any]:
    return {
        **to_payload(entry),
        "source_document_id": doc.document_id,
        "causation_id": str(meta.event_id),
        "correlation_id": meta.correlation_id,
        "entity_version": meta.entity_version,
        "account_id": doc.account_id,
        "source_document_type": _DOC_TYPES[doc.kind].value,
    }


def _hold(
    state: dict[str, Any], event: Any, doc: SourceDocument, decision: Hold, config: ConnectorConfig
) -> Decision[dict[str, Any]]:
    """A held entry: `JournalRejected` (PERIOD_CLOSED, held) now, and a `hold_journal` command whose closing
    transaction keeps the entry and opens a case in the exception queue (`holds.hold`): a person approves it,
    or the period reopening releases it."""
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
    payload = {**_post_payload(entry, doc, meta), "reason": decision.reason}
    hold = CommandSpec(LOCAL, HOLD_KIND, f"{entry.external_id}@{meta.event_id}/hold", payload)
    return Decision(
        state=state, outputs=[Outgoing(config.topic(JOURNAL_TOPIC), rejected.key(), rejected)], commands=[hold]
    )


# -- customer master: provisioning requests → an ERP command --------------------------------------------

_CURRENCY = re.compile(r"[A-Z]{3}")


def _invalid_request(event: CustomerProvisionRequested) -> str | None:
    if not event.account_id.strip():
        return "account_id is empty: the request needs the canonical account id (the customer's externalId)"
    if not event.legal_entity.strip():
        return "legal_entity is empty: the request needs the legal entity code of the customer's subsidiary"
    if not _CURRENCY.fullmatch(event.currency):
        return f"currency {event.currency!r} is not an ISO 4217 code in capitals (EUR, USD, ...)"
    if not event.name.strip():
        return "name is empty: the ERP customer needs a company name"
    return None


def decide_provisioning(
    state: Mapping[str, Any] | None, event: CustomerProvisionRequested, config: ConnectorConfig
) -> Decision[dict[str, Any]]:
    """An ERP customer request → one `upsert_customer` command per request_id (its answer, ProvisioningCompleted
    or ProvisioningFailed, is written when the command closes). Requests for other systems are not ours; a
    request_id seen before (re-sent under a new event) records nothing, so it is answered exactly once."""
    if event.target_system is not SourceSystem.ERP:
        return Decision()
    seen = dict((state or {}).get("provisioning", {}))
    if event.request_id in seen:
        return Decision()
    new_state: dict[str, Any] = {k: dict(v) for k, v in (state or {}).items()}
    new_state["provisioning"] = {**seen, event.request_id: str(event.meta.event_id)}
    payload = {
        "request_id": event.request_id,
        "workflow_id": event.workflow_id,
        "account_id": event.account_id,
        "legal_entity": event.legal_entity,
        "currency": event.currency,
        "name": event.name,
        "causation_id": str(event.meta.event_id),
        "correlation_id": event.meta.correlation_id,
        "entity_version": event.meta.entity_version,
    }
    # Keyed by account as well: a request_id reused upstream for another account (state is per account, so it
    # is not seen as a repeat) is a second command, never a key conflict that would stop the consumer.
    key = f"customer/{event.account_id}/{event.request_id}"
    problem = _invalid_request(event)
    if problem is not None:
        command = Command(0, SYSTEM, CUSTOMER_KIND, key, payload, 0, Status.PENDING)
        failed = provisioning_result(
            command, Outcome(Status.FAILED, error=f"invalid-request: {problem}"), now=event.meta.occurred_at
        )
        return Decision(state=new_state, outputs=[Outgoing(config.topic(failed.TOPIC), failed.key(), failed)])
    return Decision(state=new_state, commands=[CommandSpec(SYSTEM, CUSTOMER_KIND, key, payload)])


def provisioning_result(
    command: Command, outcome: Outcome, *, now: datetime
) -> ProvisioningCompleted | ProvisioningFailed:
    """The answer to a customer request: completed with the ERP's internal id, or failed (retryable unless the
    ERP or accord refused the request itself)."""
    p = command.payload
    succeeded = outcome.status is Status.SUCCEEDED and outcome.result is not None
    meta = Meta(
        event_id=derived_id(command.key, "answer"),  # one answer per request, whatever its status
        event_type=(ProvisioningCompleted if succeeded else ProvisioningFailed).AVRO_NAME,
        occurred_at=now,
        source_system=SourceSystem.ERP if succeeded else SourceSystem.ACCORD,
        source_id=str((outcome.result or {}).get("erp_id") or p["request_id"]),
        correlation_id=str(p["correlation_id"]),
        causation_id=str(p["causation_id"]),
        legal_entity=str(p["legal_entity"]) or None,
        entity_version=int(p["entity_version"]),
    )
    common: dict[str, Any] = {
        "request_id": str(p["request_id"]),
        "workflow_id": str(p["workflow_id"]),
        "account_id": str(p["account_id"]),
        "target_system": SourceSystem.ERP,
        "request_type": CustomerProvisionRequested.AVRO_NAME,
    }
    if succeeded and outcome.result is not None:
        return ProvisioningCompleted(
            meta=meta,
            system_ids=[str(outcome.result["erp_id"])],
            created=bool(outcome.result.get("created")),
            **common,
        )
    error = outcome.error or "no answer"
    code = rejection_code(error)
    if error.startswith("invalid-request: "):
        code, error, retryable = "invalid-request", error.removeprefix("invalid-request: "), False
    elif outcome.status is Status.IN_DOUBT:
        code, retryable = "in-doubt", True
    elif "retries spent" in error:
        code, retryable = "retries-exhausted", True
    else:
        retryable = code is None  # the ERP refused the request itself: it must change
        code = code or "unknown"
    return ProvisioningFailed(meta=meta, error_code=code, error_message=error[:2000], retryable=retryable, **common)


# -- the reconciler's repairs: READ_BACK of an in-doubt journal entry -----------------------------------


def decide_repair(event: RepairRequested) -> Decision[dict[str, Any]]:
    """A READ_BACK for the ERP → one `read_back` command keyed by its repair_id, so a redelivered or re-published
    request (same repair_id) records nothing new. Its payload holds only what the repair_id determines, never the
    event's meta: the same request under another event id is the same command, not a key conflict. Requests for
    other systems are not ours; a READ_BACK without the in-doubt entry's externalId cannot be carried out."""
    if event.target_system is not SourceSystem.ERP:
        return Decision()
    if event.action is not RepairAction.READ_BACK or not (event.journal_request_id or "").strip():
        log.warning(
            "repair %s (%s) not carried out: the ERP connector reads back in-doubt journal entries only (action "
            "READ_BACK with journal_request_id), got action %s and journal_request_id %r",
            event.repair_id,
            event.divergence_key,
            event.action.value,
            event.journal_request_id,
        )
        return Decision()
    payload = {
        "repair_id": event.repair_id,
        "divergence_key": event.divergence_key,
        "entity_id": event.entity_id,
        "external_id": event.journal_request_id,
    }
    return Decision(commands=[CommandSpec(LOCAL, READ_BACK_KIND, f"repair/{event.repair_id}", payload)])


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


def service(config: ConnectorConfig, *, name: str = "erp_connector", summary_job: bool = False) -> Service:
    """The decider as a runtime service. SUMMARIZED needs the period job that posts the staged entries
    (`summaries.close_batches`, run by the process): without it (`summary_job`) it is refused, never ignored."""
    if config.rules.summarization is not Summarization.PER_DOCUMENT and not summary_job:
        raise ConfigurationError(
            "the event-driven connector posts PER_DOCUMENT; SUMMARIZED entries are built by posting.summarize over "
            "a period's entries, which only the process's period job runs (summary_job=True): set the "
            "summarization to PER_DOCUMENT or run the job"
        )

    def handler(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide(state, envelope.event, config)

    def provisioning(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide_provisioning(state, envelope.event, config)

    def repair(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide_repair(envelope.event)

    handled = (InvoiceIssued, CreditNoteIssued, InvoiceVoided, PaymentCollected, PaymentRefunded)
    # State is per canonical account id, the key of the first three topics: the invoices seen, the requests
    # answered. recon.repairs is keyed by billing document id; its decider keeps no state (its command key is
    # the idempotency), so no state row is ever written under those keys.
    consumed = (InvoiceIssued.TOPIC, PaymentCollected.TOPIC, CustomerProvisionRequested.TOPIC, RepairRequested.TOPIC)
    return Service(
        name=name,
        topics=[config.topic(t) for t in consumed],
        handlers={
            **{cls.AVRO_NAME: handler for cls in handled},
            CustomerProvisionRequested.AVRO_NAME: provisioning,
            RepairRequested.AVRO_NAME: repair,
        },
        aggregate="customer_postings",
    )


__all__ = [
    "ConnectorConfig",
    "decide",
    "decide_provisioning",
    "decide_repair",
    "on_result",
    "provisioning_result",
    "result_event",
    "service",
    "source_document",
    "with_period",
]
