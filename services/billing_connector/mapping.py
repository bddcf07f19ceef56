"""Pure mapping: Stripe-shaped billing events (as the sandbox sends them) -> accord's canonical billing events.

`map_event(delivery, customer)` is a pure function of the delivery and the billing customer it concerns
(read by `store.load_customer` in the ingest transaction). Choices, each checked against the sandbox:

- account id: the customer's `metadata.crm_account_id` (the generator and the CRM flow put the CRM account
  id there); legal entity: `metadata.legal_entity`. An object whose customer has none cannot be keyed, so
  the delivery fails (kept in the inbox with the reason), it is not guessed.
- entity version: the sandbox's event ids end with their sequence number (7 base-62 digits, `ids.py`), which
  grows with every billing event, so a later change of a subscription has a higher version even within one
  second; `created` (seconds) alone cannot order two changes of the same second. For an id of another shape
  (real Stripe) the event's `created` is the version.
- amounts are integers in minor units; Money is major units as Decimal (zero-decimal currencies kept as is).
- which event carries what: a payment is reported from `invoice.payment_succeeded` / `invoice.payment_failed`
  (they carry the attempt count, the decline type and the next attempt); the `charge.*` twins are ignored.
- last-writer-wins applies to subscription updates (updated / deleted): an update older than one already
  seen is stale. `created`, invoice, payment and credit note events are distinct facts that must all be
  told, whatever their order of arrival, so they carry their version but are never dropped as stale.
"""

from __future__ import annotations

import datetime
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accord.events import (
    BillingFrequency,
    CreditNoteIssued,
    CreditNoteLine,
    CreditNoteReason,
    DatePeriod,
    DeclineType,
    Event,
    InvoiceIssued,
    InvoiceLine,
    InvoiceMarkedUncollectible,
    InvoiceVoided,
    Money,
    PaymentCollected,
    PaymentFailed,
    PaymentMethod,
    PaymentRefunded,
    ProrationPolicy,
    SourceSystem,
    SubscriptionChanged,
    SubscriptionItem,
    SubscriptionProvisioned,
    SubscriptionStatus,
    SubscriptionStatusChanged,
    TaxCalculated,
    TaxLine,
    new_meta,
)
from accord.ingest import Delivery, EntityVersion, Ignored, Mapped, MappingError, MapResult

SOURCE = "billing"

#: Stripe's zero-decimal currencies: the integer amount is already in major units
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
EU_VAT = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GB GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())  # noqa: SIM905

STATUS = {
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAUSED,
    "canceled": SubscriptionStatus.CANCELLED,
    "incomplete_expired": SubscriptionStatus.ENDED,
    # no canonical status for "first invoice not paid yet": it becomes ACTIVE (or ENDED) by a later change
    "incomplete": SubscriptionStatus.UNKNOWN,
}
FREQUENCY = {
    ("month", 1): BillingFrequency.MONTHLY,
    ("month", 3): BillingFrequency.QUARTERLY,
    ("month", 6): BillingFrequency.SEMI_ANNUAL,
    ("month", 12): BillingFrequency.ANNUAL,
    ("year", 1): BillingFrequency.ANNUAL,
}
CREDIT_NOTE_REASON = {
    "duplicate": CreditNoteReason.DUPLICATE,
    "fraudulent": CreditNoteReason.FRAUDULENT,
    "order_change": CreditNoteReason.ORDER_CHANGE,
    "product_unsatisfactory": CreditNoteReason.PRODUCT_UNSATISFACTORY,
}
DECLINE = {"soft": DeclineType.SOFT, "hard": DeclineType.HARD}
_BASE62 = string.digits + string.ascii_letters


@dataclass(frozen=True, slots=True)
class Customer:
    """What accord knows of a billing customer (from its customer.* events)."""

    customer_id: str
    account_id: str | None
    legal_entity: str | None
    country: str | None
    tax_exempt: str | None


# -- small conversions ------------------------------------------------------------------------------------


def money(minor: Any, currency: Any) -> Money:
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise MappingError(f"amount {minor!r} is not an integer of minor units")
    if not isinstance(currency, str) or len(currency) != 3:
        raise MappingError(f"currency {currency!r} is not an ISO 4217 code")
    code = currency.upper()
    amount = Decimal(minor) if code in ZERO_DECIMAL else Decimal(minor).scaleb(-2)
    return Money(amount=amount, currency=code)


def utc(ts: Any) -> datetime.datetime:
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise MappingError(f"timestamp {ts!r} is not unix seconds")
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


def period(start: Any, end: Any) -> DatePeriod:
    """Stripe's [start, end) timestamps as calendar days, both ends included."""
    first, after = utc(start), utc(end)
    last = max(first, after - datetime.timedelta(seconds=1))
    return DatePeriod(start_date=first.date(), end_date=last.date())


def entity_version(payload: Mapping[str, Any]) -> int:
    """The sandbox event sequence number (the id's last 7 base-62 digits), else the event's `created`."""
    event_id = str(payload.get("id", ""))
    suffix = event_id.removeprefix("evt_")[-7:]
    if event_id.startswith("evt_") and len(event_id) == 4 + 16 and all(c in _BASE62 for c in suffix):
        n = 0
        for c in suffix:
            n = n * 62 + _BASE62.index(c)
        return n
    created = payload.get("created")
    if not isinstance(created, int):
        raise MappingError(f"event {event_id} has no integer created timestamp")
    return created


def _obj(delivery: Delivery) -> dict[str, Any]:
    data = delivery.payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, dict):
        raise MappingError(f"event {delivery.source_event_id} has no data.object")
    return obj


def _previous(delivery: Delivery) -> Mapping[str, Any]:
    data = delivery.payload.get("data")
    prev = data.get("previous_attributes") if isinstance(data, Mapping) else None
    return prev if isinstance(prev, Mapping) else {}


@dataclass(frozen=True, slots=True)
class _Ctx:
    delivery: Delivery
    obj: dict[str, Any]
    customer: Customer
    account_id: str
    version: int
    occurred_at: datetime.datetime

    def meta(self, event_type: type[Event], correlation_id: str | None = None) -> Any:
        return new_meta(
            event_type,
            source_system=SourceSystem.BILLING,
            source_id=self.delivery.source_event_id,
            correlation_id=correlation_id or self.account_id,
            entity_version=self.version,
            legal_entity=self.customer.legal_entity,
            occurred_at=self.occurred_at,
            event_id=self.delivery.event_id(event_type),
        )

    @property
    def contract_id(self) -> str | None:
        value = (self.obj.get("metadata") or {}).get("crm_contract_id")
        return str(value) if value else None


# -- subscriptions ------------------------------------------------------------------------------------------


def _items(sub: Mapping[str, Any]) -> list[SubscriptionItem]:
    items = []
    for item in (sub.get("items") or {}).get("data") or []:
        price = item["price"]
        items.append(
            SubscriptionItem(
                item_id=item["id"],
                product_code=str(price.get("product") or price["id"]),
                contract_line_id=(item.get("metadata") or {}).get("crm_contract_line_id"),
                quantity=Decimal(int(item.get("quantity") or 0)),
                unit_price=money(price.get("unit_amount") or 0, price["currency"]),
            )
        )
    return items


def _status(value: Any) -> SubscriptionStatus:
    return STATUS.get(str(value), SubscriptionStatus.UNKNOWN)


def subscription_created(c: _Ctx) -> list[Event]:
    sub = c.obj
    items = (sub.get("items") or {}).get("data") or []
    recurring = (items[0]["price"].get("recurring") or {}) if items else {}
    frequency = FREQUENCY.get(
        (str(recurring.get("interval")), int(recurring.get("interval_count") or 1)), BillingFrequency.UNKNOWN
    )
    return [
        SubscriptionProvisioned(
            meta=c.meta(SubscriptionProvisioned, c.contract_id),
            account_id=c.account_id,
            subscription_id=sub["id"],
            contract_id=c.contract_id,
            status=_status(sub.get("status")),
            billing_frequency=frequency,
            current_period=period(sub["current_period_start"], sub["current_period_end"]),
            items=_items(sub),
        )
    ]


def subscription_updated(c: _Ctx) -> list[Event]:
    sub, previous = c.obj, _previous(c.delivery)
    events: list[Event] = []
    if "items" in previous:
        events.append(
            SubscriptionChanged(
                meta=c.meta(SubscriptionChanged, c.contract_id),
                account_id=c.account_id,
                subscription_id=sub["id"],
                effective_date=c.occurred_at.date(),
                # the sandbox (as Stripe) prorates to the second; the event does not say if it was turned off
                proration_policy=ProrationPolicy.PRORATE_DAILY,
                items=_items(sub),
            )
        )
    if "status" in previous and previous["status"] != sub.get("status"):
        events.append(_status_changed(c, _status(previous["status"])))
    return events


def _status_changed(c: _Ctx, previous: SubscriptionStatus, reason: str | None = None) -> SubscriptionStatusChanged:
    return SubscriptionStatusChanged(
        meta=c.meta(SubscriptionStatusChanged, c.contract_id),
        account_id=c.account_id,
        subscription_id=c.obj["id"],
        previous_status=previous,
        status=_status(c.obj.get("status")),
        effective_at=c.occurred_at,
        reason=reason,
    )


def subscription_deleted(c: _Ctx) -> list[Event]:
    # The deleted event carries no previous status; consumers know the one they saw last.
    return [_status_changed(c, SubscriptionStatus.UNKNOWN, reason="subscription deleted in billing")]


# -- invoices -----------------------------------------------------------------------------------------------


def _tax_kind(country: str | None) -> str:
    return "VAT" if country in EU_VAT else "SALES"


def _line_taxes(c: _Ctx, amounts: list[int], total_tax: int, rate: Decimal, currency: str) -> list[list[TaxLine]]:
    """Per-line taxes at the invoice's rate; the rounding rest goes on the last taxed line so they sum up."""
    if not total_tax:
        return [[] for _ in amounts]
    shares = [int((Decimal(a) * rate).quantize(Decimal("1"))) for a in amounts]
    if shares:
        shares[-1] += total_tax - sum(shares)
    country = c.customer.country or "XX"
    return [
        [
            TaxLine(
                jurisdiction=country,
                tax_type=_tax_kind(c.customer.country),
                rate=rate,
                taxable_amount=money(a, currency),
                tax_amount=money(s, currency),
            )
        ]
        for a, s in zip(amounts, shares, strict=True)
    ]


def invoice_finalized(c: _Ctx) -> list[Event]:
    inv = c.obj
    currency = inv["currency"]
    lines = (inv.get("lines") or {}).get("data") or []
    rate = Decimal(str(inv.get("tax_rate") or "0"))
    tax = int(inv.get("tax") or 0)
    taxes = _line_taxes(c, [int(line["amount"]) for line in lines], tax, rate, currency)
    issued_at = utc((inv.get("status_transitions") or {}).get("finalized_at") or inv["created"])
    due = inv.get("due_date")
    invoice_lines = []
    for line, line_taxes in zip(lines, taxes, strict=True):
        quantity = int(line.get("quantity") or 1) or 1
        invoice_lines.append(
            InvoiceLine(
                line_id=line["id"],
                description=str(line.get("description") or ""),
                subscription_item_id=line.get("subscription_item"),
                quantity=Decimal(quantity),
                unit_price=Money(
                    amount=(money(line["amount"], currency).amount / quantity).quantize(Decimal("0.0001")),
                    currency=currency.upper(),
                ),
                amount=money(line["amount"], currency),
                period=period(line["period"]["start"], line["period"]["end"]),
                proration=bool(line.get("proration")),
                taxes=line_taxes,
            )
        )
    issued = InvoiceIssued(
        meta=c.meta(InvoiceIssued, c.contract_id),
        account_id=c.account_id,
        invoice_id=inv["id"],
        invoice_number=str(inv.get("number") or inv["id"]),
        subscription_id=inv.get("subscription"),
        contract_id=c.contract_id,
        issue_date=issued_at.date(),
        due_date=utc(due).date() if isinstance(due, int) else issued_at.date(),
        lines=invoice_lines,
        subtotal=money(inv["subtotal"], currency),
        tax_total=money(tax, currency),
        total=money(inv["total"], currency),
        amount_due=money(inv["amount_due"], currency),
    )
    calculated = TaxCalculated(
        meta=c.meta(TaxCalculated, c.contract_id),
        account_id=c.account_id,
        calculation_id=f"{inv['id']}/tax",
        document_id=inv["id"],
        engine="billing",
        taxable_amount=money(inv["subtotal"], currency),
        tax_amount=money(tax, currency),
        lines=[t for line_taxes in taxes for t in line_taxes],
    )
    return [issued, calculated]


def invoice_voided(c: _Ctx) -> list[Event]:
    inv = c.obj
    return [
        InvoiceVoided(
            meta=c.meta(InvoiceVoided, c.contract_id),
            account_id=c.account_id,
            invoice_id=inv["id"],
            invoice_number=str(inv.get("number") or inv["id"]),
            voided_amount=money(inv.get("amount_remaining", inv["amount_due"]), inv["currency"]),
        )
    ]


def invoice_uncollectible(c: _Ctx) -> list[Event]:
    inv = c.obj
    return [
        InvoiceMarkedUncollectible(
            meta=c.meta(InvoiceMarkedUncollectible, c.contract_id),
            account_id=c.account_id,
            invoice_id=inv["id"],
            invoice_number=str(inv.get("number") or inv["id"]),
            uncollectible_amount=money(inv.get("amount_remaining", inv["amount_due"]), inv["currency"]),
            reason="payment retries exhausted" if inv.get("attempt_count") else None,
        )
    ]


# -- payments -----------------------------------------------------------------------------------------------


def payment_succeeded(c: _Ctx) -> list[Event] | Ignored:
    inv = c.obj
    if not inv.get("charge"):
        return Ignored("invoice paid without a charge (credit or out of band): no payment to report")
    paid_at = (inv.get("status_transitions") or {}).get("paid_at") or c.delivery.payload.get("created")
    return [
        PaymentCollected(
            meta=c.meta(PaymentCollected, c.contract_id),
            account_id=c.account_id,
            payment_id=inv["charge"],
            invoice_id=inv["id"],
            amount=money(inv["amount_paid"], inv["currency"]),
            method=PaymentMethod.CARD,
            attempt=max(int(inv.get("attempt_count") or 1), 1),
            collected_at=utc(paid_at),
        )
    ]


def payment_failed(c: _Ctx) -> list[Event]:
    inv = c.obj
    error = inv.get("last_payment_error") or {}
    attempt = max(int(inv.get("attempt_count") or 1), 1)
    next_attempt = inv.get("next_payment_attempt")
    code = str(error.get("decline_code") or error.get("code") or "unknown")
    return [
        PaymentFailed(
            meta=c.meta(PaymentFailed, c.contract_id),
            account_id=c.account_id,
            # the invoice event does not name the failed charge: the attempt of the invoice identifies it
            payment_id=f"{inv['id']}/attempt/{attempt}",
            invoice_id=inv["id"],
            amount=money(inv.get("amount_remaining", inv["amount_due"]), inv["currency"]),
            method=PaymentMethod.UNKNOWN if code == "no_payment_method" else PaymentMethod.CARD,
            decline_type=DECLINE.get(str(error.get("decline_type")), DeclineType.UNKNOWN),
            decline_code=code,
            attempt=attempt,
            next_attempt_at=utc(next_attempt) if isinstance(next_attempt, int) else None,
        )
    ]


def charge_refunded(c: _Ctx) -> list[Event]:
    charge = c.obj
    refunds = charge.get("refunds") or []
    if len(refunds) != 1:
        # A charge.refunded tells the cumulative amount only: the amount of the latest of several refunds
        # cannot be told from it alone (a refund.created handler would). Kept as failed, not guessed.
        raise MappingError(f"charge {charge['id']} has {len(refunds)} refunds; the amount of the latest is unknown")
    return [
        PaymentRefunded(
            meta=c.meta(PaymentRefunded),
            account_id=c.account_id,
            refund_id=str(refunds[0]),
            payment_id=charge["id"],
            invoice_id=charge.get("invoice"),
            amount=money(charge["amount_refunded"], charge["currency"]),
            refunded_at=c.occurred_at,
        )
    ]


def credit_note_created(c: _Ctx) -> list[Event]:
    note = c.obj
    amount = money(note["amount"], note["currency"])
    return [
        CreditNoteIssued(
            meta=c.meta(CreditNoteIssued),
            account_id=c.account_id,
            credit_note_id=note["id"],
            credit_note_number=str(note.get("number") or note["id"]),
            invoice_id=note["invoice"],
            issue_date=utc(note.get("created") or c.delivery.payload["created"]).date(),
            reason=CREDIT_NOTE_REASON.get(str(note.get("reason")), CreditNoteReason.UNKNOWN),
            lines=[
                CreditNoteLine(
                    line_id=f"{note['id']}/1", description=str(note.get("memo") or "credit"), amount=amount, taxes=[]
                )
            ],
            subtotal=amount,
            tax_total=Money(amount=Decimal(0), currency=amount.currency),
            total=amount,
        )
    ]


# -- the registry: which source event goes where ------------------------------------------------------------

#: event type -> (mapping function, whether it is a subscription update under last-writer-wins)
HANDLERS: dict[str, tuple[Callable[[_Ctx], list[Event] | Ignored], bool]] = {
    "customer.subscription.created": (subscription_created, False),
    "customer.subscription.updated": (subscription_updated, True),
    "customer.subscription.deleted": (subscription_deleted, True),
    "invoice.finalized": (invoice_finalized, False),
    "invoice.voided": (invoice_voided, False),
    "invoice.marked_uncollectible": (invoice_uncollectible, False),
    "invoice.payment_succeeded": (payment_succeeded, False),
    "invoice.payment_failed": (payment_failed, False),
    "charge.refunded": (charge_refunded, False),
    "credit_note.created": (credit_note_created, False),
}
#: understood, and deliberately no canonical event (the reason is kept on the inbox row)
IGNORED = {
    "customer.created": "customers are recorded for the account lookup; CRM owns accounts",
    "customer.updated": "customers are recorded for the account lookup; CRM owns accounts",
    "invoice.created": "a draft invoice is not a fact yet; invoice.finalized reports it",
    "invoice.paid": "reported from invoice.payment_succeeded",
    "charge.succeeded": "reported from invoice.payment_succeeded",
    "charge.failed": "reported from invoice.payment_failed",
}


def customer_of(payload: Mapping[str, Any]) -> str | None:
    """The billing customer id an event concerns (the customer itself for customer.* events)."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        return None
    if obj.get("object") == "customer":
        return str(obj.get("id"))
    customer = obj.get("customer")
    return str(customer) if customer else None


def map_event(delivery: Delivery, customer: Customer | None) -> MapResult:
    """The canonical events of one billing event, or why there are none. Raises MappingError (kept as failed)."""
    kind = delivery.event_type
    if kind in IGNORED:
        return Ignored(IGNORED[kind])
    found = HANDLERS.get(kind)
    if found is None:
        return Ignored(f"no canonical event for billing event type {kind}")
    handler, snapshot = found
    obj = _obj(delivery)
    if customer is None:
        raise MappingError(f"billing customer {customer_of(delivery.payload)} of {kind} is unknown to accord")
    if not customer.account_id:
        raise MappingError(f"billing customer {customer.customer_id} has no metadata.crm_account_id")
    version = entity_version(delivery.payload)
    ctx = _Ctx(
        delivery=delivery,
        obj=obj,
        customer=customer,
        account_id=customer.account_id,
        version=version,
        occurred_at=utc(delivery.payload.get("created")),
    )
    try:
        out = handler(ctx)
    except (KeyError, TypeError, ValueError) as exc:
        raise MappingError(f"{kind} {obj.get('id')}: unexpected shape: {type(exc).__name__}: {exc}") from exc
    if isinstance(out, Ignored):
        return out
    if not out:
        return Ignored(f"{kind} changed nothing accord reports (no status or item change)")
    entity = EntityVersion("subscription", str(obj["id"]), version) if snapshot else None
    return Mapped(out, entity)
