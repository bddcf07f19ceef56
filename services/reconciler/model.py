"""What each system has said about one business fact: observations, accumulated per match key. Pure, no I/O.

    for observation in observe(event, observed_at=received_at):     # a canonical event → 0..n observations
        key = resolve(observation, aliases).key                       # a subscription id → its contract's key
        state = (states.get(key) or MatchState.empty(key)).add(observation)
        findings = rules.evaluate(state, now, policy)

A **match key** names one relation between systems that must agree, as `<relation>:<id>`:

- `journal:<legal entity>/<document id>`: a billing document (invoice, credit note, payment, refund) ↔ accord's
  journal request ↔ the ERP posting;
- `contract:<crm contract id>`: the CRM contract ↔ billing's subscription(s) for it;
- `amendment:<crm amendment id>`: the CRM amendment ↔ billing's subscription change carrying it;
- `account:<canonical account id>`: billing's latest payment outcome ↔ the CRM Account's `Payment_Status__c`.

The journal key is the Kafka key of `erp.journal` (legal entity / source document id): the ERP's books are per
subsidiary, so a posting under the wrong legal entity is an orphan there and a missing posting here. Journal
events do not say which kind of billing document they record; the key does not need to (billing ids are unique
across kinds, which the ERP connector relies on too).

An observation comes from an event (`observe`) or from a snapshot of a system's read API (the I/O layer builds
them with the same constructor), so the streaming consumer and the state reconciliation share one state and one
set of rules. A `MatchState` is JSON both ways (`to_json` / `from_json`): it lives in a PostgreSQL jsonb column.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from accord.events import (
    ContractActivated,
    ContractAmended,
    ContractCancelled,
    ContractRenewed,
    CreditNoteIssued,
    Event,
    InvoiceIssued,
    InvoiceMarkedUncollectible,
    InvoiceVoided,
    JournalPosted,
    JournalRejected,
    JournalRejectionReason,
    JournalRequested,
    JournalSide,
    PaymentCollected,
    PaymentFailed,
    PaymentRefunded,
    PeriodStatus,
    PeriodStatusChanged,
    SourceSystem,
    SubscriptionChanged,
    SubscriptionProvisioned,
    SubscriptionStatusChanged,
    UtcDatetime,
)

#: the systems observed: accord.common.SourceSystem, the enum of the recon.Observation contract
System = SourceSystem


class Relation(StrEnum):
    """The relation a match key compares (its prefix)."""

    JOURNAL = "journal"
    CONTRACT = "contract"
    AMENDMENT = "amendment"
    ACCOUNT = "account"
    #: a subscription not (yet) linked to its contract: kept apart until an alias says which contract it is
    SUBSCRIPTION = "subscription"


class RecordKind(StrEnum):
    """The kind of record a system holds about the fact."""

    CONTRACT = "contract"
    AMENDMENT = "amendment"
    SUBSCRIPTION = "subscription"
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"
    REFUND = "refund"
    JOURNAL_REQUEST = "journal_request"  # accord asked the ERP to post (and what came of the attempt)
    JOURNAL_ENTRY = "journal_entry"  # the ERP's posting
    ACCOUNT_STATUS = "account_status"  # the CRM Account's write-back fields


class Status(StrEnum):
    """Statuses the rules compare. A system's own status word goes in `extra` when it differs."""

    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    APPLIED = "APPLIED"  # a subscription change carried out
    ISSUED = "ISSUED"
    VOIDED = "VOIDED"
    UNCOLLECTIBLE = "UNCOLLECTIBLE"
    COLLECTED = "COLLECTED"
    REFUNDED = "REFUNDED"
    REQUESTED = "REQUESTED"
    REJECTED = "REJECTED"
    HELD = "HELD"  # rejected because its period is closed, kept for a person to approve (policy HOLD)
    IN_DOUBT = "IN_DOUBT"  # a write whose outcome is unknown
    POSTED = "POSTED"
    # payment outcomes, in the CRM's Payment_Status__c words, so both sides of the account relation compare as-is
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PAYMENT_REFUNDED = "Refunded"
    PENDING = "Pending"


#: subscription statuses in billing that still bill the customer
LIVE_SUBSCRIPTION = frozenset({"TRIALING", "ACTIVE", "PAST_DUE", "PAUSED"})


def match_key(relation: Relation, ident: str) -> str:
    return f"{relation.value}:{ident}"


def journal_key(legal_entity: str | None, document_id: str) -> str:
    """The journal key; a document without a legal entity is keyed under UNKNOWN, as the ERP connector does."""
    return match_key(Relation.JOURNAL, f"{legal_entity or 'UNKNOWN'}/{document_id}")


def relation_of(key: str) -> Relation:
    prefix, sep, _ = key.partition(":")
    if not sep:
        raise ValueError(f"match key {key!r} has no '<relation>:' prefix (one of {', '.join(Relation)})")
    try:
        return Relation(prefix)
    except ValueError:
        raise ValueError(f"match key {key!r}: unknown relation {prefix!r} (one of {', '.join(Relation)})") from None


def period_of(day: datetime.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


class Observation(BaseModel):
    """One system's statement about one record of a match key, at one moment.

    `observed_at` is when accord learned it (the consumer's receipt time or the snapshot's read time): SLAs run
    from it, so a source clock that drifts or a replayed topic does not move deadlines. `occurred_at` is when the
    fact happened in the source. `version` is the source record's version that the statement reflects: for the
    ERP posting and accord's request, the billing document's version they were made from, so versions compare
    across the relation. Amounts are Decimal in major units with their ISO 4217 currency; `extra` holds what only
    some observations know (tax, proration, exchange rate, the last error), as text so it stays exact in JSON.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    system: System
    kind: RecordKind
    record_id: str
    amount: Decimal | None = None
    currency: str | None = None
    status: str | None = None
    legal_entity: str | None = None
    period: str | None = Field(default=None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    version: int | None = None
    source_event_ids: tuple[str, ...] = ()
    observed_at: UtcDatetime
    occurred_at: UtcDatetime | None = None
    account_id: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    #: other keys later observations may use for this match key (a subscription id for its contract)
    aliases: tuple[str, ...] = ()

    def identity(self) -> tuple[object, ...]:
        """What makes two observations the same statement: the same event (a redelivered webhook, a replayed
        topic) or, for a snapshot, the same record read with the same content."""
        if self.source_event_ids:
            return (self.system, self.kind, self.record_id, self.source_event_ids)
        return (self.system, self.kind, self.record_id, self.version, self.status, self.amount, self.currency)

    def decimal(self, name: str) -> Decimal | None:
        value = self.extra.get(name)
        return None if value is None else Decimal(value)

    def recency(self) -> tuple[int, datetime.datetime]:
        return (self.version if self.version is not None else -1, self.observed_at)


class MatchState(BaseModel):
    """Everything observed for one match key, in arrival order, without repeats. Immutable: `add` returns a new one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    observations: tuple[Observation, ...] = ()

    @classmethod
    def empty(cls, key: str) -> Self:
        relation_of(key)  # refuses a malformed key now, not at the first rule
        return cls(key=key)

    @property
    def relation(self) -> Relation:
        return relation_of(self.key)

    def add(self, *observations: Observation) -> Self:
        """The state with `observations` added; one already held (same identity) is not added twice."""
        seen = {o.identity() for o in self.observations}
        new: list[Observation] = []
        for o in observations:
            if o.key != self.key:
                raise ValueError(f"observation of {o.key!r} added to the state of {self.key!r}: route it first")
            if o.identity() not in seen:
                seen.add(o.identity())
                new.append(o)
        if not new:
            return self
        return self.model_copy(update={"observations": (*self.observations, *new)})

    def absorb(self, other: MatchState) -> Self:
        """This state with `other`'s observations moved in: when an alias becomes known after observations were
        kept under it (a subscription's status change seen before its provisioning), the consumer merges them."""
        return self.add(*(o.model_copy(update={"key": self.key}) for o in other.observations))

    def compact(self) -> Self:
        """The state without what no rule reads any more, so a long-lived key stays small.

        Only the account relation grows without bound (every payment outcome of a customer): it keeps billing's
        latest outcome and the CRM's latest read. Document and contract keys are bounded by their lifecycle and are
        kept whole: their older statements are evidence (and the identities that make redeliveries no-ops).
        """
        if self.relation is not Relation.ACCOUNT:
            return self
        billing = self.of(System.BILLING, RecordKind.PAYMENT)
        crm = self.of(System.CRM, RecordKind.ACCOUNT_STATUS)
        keep = [
            max(group, key=key)
            for group, key in (
                (billing, lambda o: (o.extra.get("outcome_at", ""), o.observed_at)),
                (crm, lambda o: (o.observed_at, "")),
            )
            if group
        ]
        if len(keep) == len(self.observations):
            return self
        return self.model_copy(update={"observations": tuple(o for o in self.observations if o in keep)})

    def of(self, system: System, *kinds: RecordKind) -> list[Observation]:
        return [o for o in self.observations if o.system is system and (not kinds or o.kind in kinds)]

    def latest_per_record(self, system: System, *kinds: RecordKind) -> dict[str, Observation]:
        """The newest observation of each record (by version, then time) of `system`."""
        out: dict[str, Observation] = {}
        for o in self.of(system, *kinds):
            held = out.get(o.record_id)
            if held is None or o.recency() >= held.recency():
                out[o.record_id] = o
        return out

    @property
    def first_seen(self) -> datetime.datetime | None:
        return min((o.observed_at for o in self.observations), default=None)

    @property
    def last_seen(self) -> datetime.datetime | None:
        return max((o.observed_at for o in self.observations), default=None)

    @property
    def account_id(self) -> str | None:
        return next((o.account_id for o in self.observations if o.account_id), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON value (Decimal and datetimes as text) for a jsonb column."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Self:
        return cls.model_validate(value)

    def to_json_text(self) -> str:
        """The same JSON as text, encoded natively (several times faster than `to_json` + json.dumps)."""
        return self.model_dump_json()

    @classmethod
    def from_json_text(cls, text: str | bytes) -> Self:
        return cls.model_validate_json(text)


class PeriodBook(BaseModel):
    """The ERP's accounting periods as accord knows them (from `erp.periods`, a compacted topic): the timing rule
    asks it whether a document's period was closed when its posting was rerouted. A period not listed is open."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    states: dict[str, PeriodStatus] = Field(default_factory=dict)  # "<legal entity>/<YYYY-MM>" → status

    def status(self, legal_entity: str, period: str) -> PeriodStatus:
        return self.states.get(f"{legal_entity}/{period}", PeriodStatus.OPEN)

    def closed(self, legal_entity: str, period: str) -> bool:
        return self.status(legal_entity, period) in (PeriodStatus.CLOSING, PeriodStatus.CLOSED)

    def apply(self, event: PeriodStatusChanged) -> PeriodBook:
        if event.status is PeriodStatus.UNKNOWN:
            return self  # a status from a newer writer: changes nothing we understand
        return PeriodBook(states={**self.states, f"{event.legal_entity}/{event.period}": event.status})


# -- aliases -----------------------------------------------------------------------------------------------------


def resolve(observation: Observation, aliases: Mapping[str, str]) -> Observation:
    """The observation under the key its alias points to (a subscription's status change → its contract's key);
    unchanged when its key is no alias. The consumer keeps the alias table from every observation's `aliases`."""
    target = aliases.get(observation.key)
    if target is None or target == observation.key:
        return observation
    return observation.model_copy(update={"key": target})


def aliases_of(observations: Iterable[Observation]) -> dict[str, str]:
    """alias key → match key, as the observations declare them."""
    return {alias: o.key for o in observations for alias in o.aliases}


# -- canonical events → observations -----------------------------------------------------------------------------


def cadence_groups(lines: Iterable[Any]) -> set[str]:
    """The subscriptions a contract's lines make in billing: one per cadence, usage-based lines apart (billed in
    arrears; the billing connector's grouping). A contract with no lines still expects one subscription."""
    groups = {"USAGE" if ln.usage_based else (ln.billing_frequency or "MONTHLY") for ln in lines}
    return {str(g) for g in groups} or {"MONTHLY"}


def _base(event: Event, observed_at: datetime.datetime | None) -> dict[str, Any]:
    meta = event.meta  # type: ignore[attr-defined]
    return {
        "source_event_ids": (str(meta.event_id),),
        "observed_at": observed_at or meta.occurred_at,
        "occurred_at": meta.occurred_at,
        "version": meta.entity_version,
        "legal_entity": meta.legal_entity,
    }


def _entity(event: Event) -> str | None:
    entity: str | None = event.meta.legal_entity  # type: ignore[attr-defined]
    return entity


def observe(event: Event, *, observed_at: datetime.datetime | None = None) -> list[Observation]:
    """What `event` says, as observations (none for an event no relation compares).

    `observed_at` is when the consumer received it (default: the event's `occurred_at`, for pure uses).
    """
    b = _base(event, observed_at)
    match event:
        case ContractActivated():
            return [
                Observation(
                    key=match_key(Relation.CONTRACT, event.contract_id),
                    system=System.CRM,
                    kind=RecordKind.CONTRACT,
                    record_id=event.contract_id,
                    amount=event.total_contract_value.amount,
                    currency=event.total_contract_value.currency,
                    status=Status.ACTIVE,
                    period=period_of(event.start_date),
                    account_id=event.account_id,
                    extra={
                        "contract_number": event.contract_number,
                        "start_date": event.start_date.isoformat(),
                        "subscriptions": str(len(cadence_groups(event.lines))),
                    },
                    **b,
                )
            ]
        case ContractRenewed():
            # A renewal in place keeps the contract active; a renewal under a new contract id is a contract of its
            # own, which billing provisions like any activated one.
            return [
                Observation(
                    key=match_key(Relation.CONTRACT, event.renewal_contract_id),
                    system=System.CRM,
                    kind=RecordKind.CONTRACT,
                    record_id=event.renewal_contract_id,
                    amount=event.total_contract_value.amount,
                    currency=event.total_contract_value.currency,
                    status=Status.ACTIVE,
                    period=period_of(event.start_date),
                    account_id=event.account_id,
                    extra={"renewed_from": event.contract_id, "automatic": str(event.automatic).lower()},
                    **b,
                )
            ]
        case ContractAmended():
            delta = event.delta_contract_value
            return [
                Observation(
                    key=match_key(Relation.CONTRACT, event.contract_id),
                    system=System.CRM,
                    kind=RecordKind.CONTRACT,
                    record_id=event.contract_id,
                    status=Status.ACTIVE,
                    account_id=event.account_id,
                    extra={"amendment_id": event.amendment_id},
                    **b,
                ),
                Observation(
                    key=match_key(Relation.AMENDMENT, event.amendment_id),
                    system=System.CRM,
                    kind=RecordKind.AMENDMENT,
                    record_id=event.amendment_id,
                    amount=delta.amount,
                    currency=delta.currency,
                    status=Status.ACTIVE,
                    period=period_of(event.effective_date),
                    account_id=event.account_id,
                    extra={
                        "contract_id": event.contract_id,
                        "amendment_type": event.amendment_type.value,
                        "proration_policy": event.proration_policy.value,
                    },
                    **b,
                ),
            ]
        case ContractCancelled():
            return [
                Observation(
                    key=match_key(Relation.CONTRACT, event.contract_id),
                    system=System.CRM,
                    kind=RecordKind.CONTRACT,
                    record_id=event.contract_id,
                    status=Status.CANCELLED,
                    period=period_of(event.effective_date),
                    account_id=event.account_id,
                    extra={"effective_date": event.effective_date.isoformat(), "reason": event.reason.value},
                    **b,
                )
            ]
        case SubscriptionProvisioned():
            if event.contract_id is None:
                return []  # a subscription sold outside the CRM: no contract to agree with
            return [
                Observation(
                    key=match_key(Relation.CONTRACT, event.contract_id),
                    system=System.BILLING,
                    kind=RecordKind.SUBSCRIPTION,
                    record_id=event.subscription_id,
                    status=event.status.value,
                    period=period_of(event.current_period.start_date),
                    account_id=event.account_id,
                    extra={"billing_frequency": event.billing_frequency.value},
                    aliases=(match_key(Relation.SUBSCRIPTION, event.subscription_id),),
                    **b,
                )
            ]
        case SubscriptionStatusChanged():
            # No contract id on the event: keyed by subscription, which the consumer's alias table turns into the
            # contract's key (learned from the subscription's provisioning).
            return [
                Observation(
                    key=match_key(Relation.SUBSCRIPTION, event.subscription_id),
                    system=System.BILLING,
                    kind=RecordKind.SUBSCRIPTION,
                    record_id=event.subscription_id,
                    status=event.status.value,
                    account_id=event.account_id,
                    extra={"previous_status": event.previous_status.value},
                    **b,
                )
            ]
        case SubscriptionChanged():
            if event.amendment_id is None:
                return []
            proration = event.proration_amount
            return [
                Observation(
                    key=match_key(Relation.AMENDMENT, event.amendment_id),
                    system=System.BILLING,
                    kind=RecordKind.SUBSCRIPTION,
                    record_id=event.subscription_id,
                    amount=None if proration is None else proration.amount,
                    currency=None if proration is None else proration.currency,
                    status=Status.APPLIED,
                    period=period_of(event.effective_date),
                    account_id=event.account_id,
                    extra={"proration_policy": event.proration_policy.value},
                    **b,
                )
            ]
        case InvoiceIssued():
            prorated = sum((ln.amount.amount for ln in event.lines if ln.proration), Decimal(0))
            prorated_tax = sum(
                (t.tax_amount.amount for ln in event.lines if ln.proration for t in ln.taxes), Decimal(0)
            )
            return [
                Observation(
                    key=journal_key(_entity(event), event.invoice_id),
                    system=System.BILLING,
                    kind=RecordKind.INVOICE,
                    record_id=event.invoice_id,
                    amount=event.total.amount,
                    currency=event.total.currency,
                    status=Status.ISSUED,
                    period=period_of(event.issue_date),
                    account_id=event.account_id,
                    extra={
                        "document_date": event.issue_date.isoformat(),
                        "number": event.invoice_number,
                        "subtotal": str(event.subtotal.amount),
                        "tax": str(event.tax_total.amount),
                        "proration": str(prorated),
                        "proration_tax": str(prorated_tax),
                        "lines": str(len(event.lines)),
                    },
                    **b,
                )
            ]
        case CreditNoteIssued():
            return [
                Observation(
                    key=journal_key(_entity(event), event.credit_note_id),
                    system=System.BILLING,
                    kind=RecordKind.CREDIT_NOTE,
                    record_id=event.credit_note_id,
                    amount=event.total.amount,
                    currency=event.total.currency,
                    status=Status.ISSUED,
                    period=period_of(event.issue_date),
                    account_id=event.account_id,
                    extra={
                        "document_date": event.issue_date.isoformat(),
                        "number": event.credit_note_number,
                        "invoice_id": event.invoice_id,
                        "subtotal": str(event.subtotal.amount),
                        "tax": str(event.tax_total.amount),
                        "lines": str(len(event.lines)),
                    },
                    **b,
                )
            ]
        case InvoiceVoided():
            # The ERP connector reverses the invoice's posting in the period of the void.
            return [
                Observation(
                    key=journal_key(_entity(event), event.invoice_id),
                    system=System.BILLING,
                    kind=RecordKind.INVOICE,
                    record_id=event.invoice_id,
                    amount=event.voided_amount.amount,
                    currency=event.voided_amount.currency,
                    status=Status.VOIDED,
                    period=period_of(event.meta.occurred_at.date()),
                    account_id=event.account_id,
                    extra={"number": event.invoice_number},
                    **b,
                )
            ]
        case InvoiceMarkedUncollectible():
            return [
                Observation(
                    key=journal_key(_entity(event), event.invoice_id),
                    system=System.BILLING,
                    kind=RecordKind.INVOICE,
                    record_id=event.invoice_id,
                    amount=event.uncollectible_amount.amount,
                    currency=event.uncollectible_amount.currency,
                    status=Status.UNCOLLECTIBLE,
                    account_id=event.account_id,
                    extra={"number": event.invoice_number},
                    **b,
                )
            ]
        case PaymentCollected():
            when = event.collected_at
            extra = {"document_date": when.date().isoformat(), "outcome_at": when.isoformat()}
            if event.invoice_id is not None:
                extra["invoice_id"] = event.invoice_id
            return [
                Observation(
                    key=journal_key(_entity(event), event.payment_id),
                    system=System.BILLING,
                    kind=RecordKind.PAYMENT,
                    record_id=event.payment_id,
                    amount=event.amount.amount,
                    currency=event.amount.currency,
                    status=Status.COLLECTED,
                    period=period_of(when.date()),
                    account_id=event.account_id,
                    extra=extra,
                    **b,
                ),
                _payment_outcome(event.account_id, event.payment_id, Status.SUCCEEDED, when, event, b),
            ]
        case PaymentFailed():
            return [
                _payment_outcome(event.account_id, event.payment_id, Status.FAILED, event.meta.occurred_at, event, b)
            ]
        case PaymentRefunded():
            when = event.refunded_at
            return [
                Observation(
                    key=journal_key(_entity(event), event.refund_id),
                    system=System.BILLING,
                    kind=RecordKind.REFUND,
                    record_id=event.refund_id,
                    amount=event.amount.amount,
                    currency=event.amount.currency,
                    status=Status.REFUNDED,
                    period=period_of(when.date()),
                    account_id=event.account_id,
                    extra={"document_date": when.date().isoformat(), "payment_id": event.payment_id},
                    **b,
                ),
                _payment_outcome(event.account_id, event.payment_id, Status.PAYMENT_REFUNDED, when, event, b),
            ]
        case JournalRequested():
            debits = [ln for ln in event.lines if ln.side is JournalSide.DEBIT]
            currency = debits[0].amount.currency if debits else None
            extra = {
                "source_document_type": event.source_document_type.value,
                "accounting_date": event.accounting_date.isoformat(),
            }
            dims = [ln.dimensions for ln in debits]
            if dims and all("source_amount" in d for d in dims):
                extra["source_amount"] = str(sum((Decimal(d["source_amount"]) for d in dims), Decimal(0)))
            for name in ("source_currency", "rate"):
                values = {d[name] for d in dims if name in d}
                if len(values) == 1:
                    extra[name] = values.pop()
            return [
                Observation(
                    key=journal_key(event.legal_entity, event.source_document_id),
                    system=System.ACCORD,
                    kind=RecordKind.JOURNAL_REQUEST,
                    record_id=event.journal_request_id,
                    amount=sum((ln.amount.amount for ln in debits), Decimal(0)) if debits else None,
                    currency=currency,
                    status=Status.REQUESTED,
                    period=period_of(event.accounting_date),
                    account_id=event.account_id,
                    extra=extra,
                    **{**b, "legal_entity": event.legal_entity},
                )
            ]
        case JournalRejected():
            return [
                Observation(
                    key=journal_key(event.legal_entity, event.source_document_id),
                    system=System.ACCORD,
                    kind=RecordKind.JOURNAL_REQUEST,
                    record_id=event.journal_request_id,
                    status=_attempt_status(event),
                    extra={"reason": event.reason.value, "error": event.detail},
                    **{**b, "legal_entity": event.legal_entity},
                )
            ]
        case JournalPosted():
            return [
                Observation(
                    key=journal_key(event.legal_entity, event.source_document_id),
                    system=System.ERP,
                    kind=RecordKind.JOURNAL_ENTRY,
                    record_id=event.erp_journal_id,
                    amount=event.total.amount,
                    currency=event.total.currency,
                    status=Status.POSTED,
                    period=event.posting_period,
                    extra={"journal_request_id": event.journal_request_id, "posted_at": event.posted_at.isoformat()},
                    **{**b, "legal_entity": event.legal_entity},
                )
            ]
        case _:
            return []


def _attempt_status(event: JournalRejected) -> Status:
    # The ERP connector writes an in-doubt outcome as a rejection whose detail says so (handlers.result_event), and a
    # held entry as PERIOD_CLOSED "held for approval" (handlers._hold).
    if event.detail.startswith("in doubt"):
        return Status.IN_DOUBT
    if event.reason is JournalRejectionReason.PERIOD_CLOSED and "held" in event.detail:
        return Status.HELD
    return Status.REJECTED


def _payment_outcome(
    account_id: str, payment_id: str, status: Status, when: datetime.datetime, event: Event, b: Mapping[str, Any]
) -> Observation:
    amount = event.amount  # type: ignore[attr-defined]
    return Observation(
        key=match_key(Relation.ACCOUNT, account_id),
        system=System.BILLING,
        kind=RecordKind.PAYMENT,
        record_id=payment_id,
        amount=amount.amount,
        currency=amount.currency,
        status=status,
        account_id=account_id,
        extra={"outcome_at": when.astimezone(datetime.UTC).isoformat()},
        **b,
    )


def crm_account_status(
    account_id: str,
    payment_status: str | None,
    *,
    observed_at: datetime.datetime,
    version: int | None = None,
    invoice_status: str | None = None,
) -> Observation:
    """A CRM Account's write-back fields as read from the CRM (the snapshot adapter's constructor)."""
    extra = {} if invoice_status is None else {"invoice_status": invoice_status}
    return Observation(
        key=match_key(Relation.ACCOUNT, account_id),
        system=System.CRM,
        kind=RecordKind.ACCOUNT_STATUS,
        record_id=account_id,
        status=payment_status,
        version=version,
        observed_at=observed_at,
        account_id=account_id,
        extra=extra,
    )


__all__ = [
    "LIVE_SUBSCRIPTION",
    "MatchState",
    "Observation",
    "PeriodBook",
    "RecordKind",
    "Relation",
    "Status",
    "System",
    "aliases_of",
    "crm_account_status",
    "journal_key",
    "match_key",
    "observe",
    "period_of",
    "relation_of",
    "resolve",
]
