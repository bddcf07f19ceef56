"""Billing platform (Stripe-like) under /billing/v1.

Modelled on Stripe's API: amounts are integers in the currency's minor unit; subscriptions bill in
advance for licensed prices and in arrears for metered ones; a change creates proration lines (unused
time credited, remaining time charged) on the next invoice, or on an immediate one with
`proration_behavior=always_invoice`; `billing_cycle_anchor` in the future co-terms (a prorated first
invoice up to the anchor); `cancel_at` ends the last period early, prorated. Invoices go draft → open
(finalized, tax computed now) → paid | void | uncollectible; renewal drafts are finalized an hour after
they are created. A failed payment is retried on the dunning schedule (soft declines only: a hard decline
waits for a new payment method); when the schedule is spent the invoice is marked uncollectible and the
subscription canceled. Request bodies are JSON (Stripe takes form encoding; the semantics are the same).

Test payment methods, as Stripe's: `pm_card_visa` succeeds; `pm_card_chargeDeclined` (generic_decline),
`pm_card_chargeDeclinedInsufficientFunds` (insufficient_funds) are soft declines; `..LostCard`,
`..StolenCard`, `..Fraudulent` are hard declines.
"""

from __future__ import annotations

import contextvars
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Query, Request

from .core import Sandbox, add_months, body, check, need, sandbox
from .errors import SandboxError
from .ids import stripe_id
from .store import Tx, unix

router = APIRouter(prefix="/billing/v1")
log = logging.getLogger("accord_sandbox.billing")
API_VERSION = "2024-06-20"

#: (Idempotency-Key, request id) of the request being served, for the events it causes
request_info: contextvars.ContextVar[tuple[str | None, str]] = contextvars.ContextVar(
    "request_info", default=(None, "")
)

PAYMENT_METHODS: dict[str, tuple[str | None, str]] = {
    # token: (decline_code or None for success, "soft" | "hard")
    "pm_card_visa": (None, ""),
    "pm_card_mastercard": (None, ""),
    "pm_card_chargeDeclined": ("generic_decline", "soft"),
    "pm_card_chargeDeclinedInsufficientFunds": ("insufficient_funds", "soft"),
    "pm_card_chargeDeclinedLostCard": ("lost_card", "hard"),
    "pm_card_chargeDeclinedStolenCard": ("stolen_card", "hard"),
    "pm_card_chargeDeclinedFraudulent": ("fraudulent", "hard"),
}
TAX_RATES = {
    "US": Decimal("0"),
    "DE": Decimal("0.19"),
    "FR": Decimal("0.20"),
    "NL": Decimal("0.21"),
    "IE": Decimal("0.23"),
    "ES": Decimal("0.21"),
    "IT": Decimal("0.22"),
    "GB": Decimal("0.20"),
}
DEFAULT_DUNNING: dict[str, Any] = {
    "retry_days": [3, 5, 7],
    "subscription_final": "canceled",
    "invoice_final": "uncollectible",
}
FINALIZE_DELAY = timedelta(hours=1)
INCOMPLETE_EXPIRY = timedelta(hours=23)


def bad(message: str, param: str | None = None, code: str = "parameter_invalid", status: int = 400) -> SandboxError:
    return SandboxError(status, code, message, param=param)


def missing(kind: str, id_: str) -> SandboxError:
    return SandboxError(404, "resource_missing", f"No such {kind}: '{id_}'", param="id")


def ts(dt: datetime) -> int:
    return unix(dt)


def dt(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


# -- events ---------------------------------------------------------------------------------------------


async def emit(tx: Tx, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
    event_id = await stripe_id(tx, "evt")
    key, request_id = request_info.get()
    data: dict[str, Any] = {"object": obj}
    if previous:
        data["previous_attributes"] = previous
    payload = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": ts(tx.now),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id or None, "idempotency_key": key},
        "type": type_,
    }
    await tx.emit(type_, event_id, payload)


async def save(tx: Tx, kind: str, obj: dict[str, Any]) -> None:
    await tx.update(kind, obj["id"], obj)


async def load(tx: Tx, kind: str, id_: Any, label: str | None = None) -> dict[str, Any]:
    if not isinstance(id_, str):
        raise bad(f"{label or kind} must be an id string", label or kind)
    obj = await tx.get(kind, id_)
    if obj is None:
        raise missing(label or kind, id_)
    return obj


# -- money and periods ------------------------------------------------------------------------------------


def prorate(amount: int, part: float, whole: float) -> int:
    if whole <= 0:
        return 0
    return int((Decimal(amount) * Decimal(part) / Decimal(whole)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def step(start: datetime, interval: str, count: int, n: int = 1) -> datetime:
    months = count * n * (12 if interval == "year" else 1)
    if interval in ("day", "week"):
        return start + timedelta(days=count * n * (7 if interval == "week" else 1))
    moved = add_months(start.date(), months)
    return start.replace(year=moved.year, month=moved.month, day=moved.day)


def next_boundary(anchor: datetime, interval: str, count: int, after: datetime) -> datetime:
    """The first anchor + k·interval strictly after `after`."""
    n = 0
    boundary = anchor
    while boundary <= after:
        n += 1
        boundary = step(anchor, interval, count, n)
    return boundary


# -- objects -----------------------------------------------------------------------------------------------


def _price_from(data: dict[str, Any], currency: str | None) -> dict[str, Any]:
    cur = (data.get("currency") or currency or "").lower()
    if len(cur) != 3:
        raise bad("currency must be a three-letter ISO code", "currency")
    amount = data.get("unit_amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise bad("unit_amount must be a non-negative integer in the currency's minor unit", "unit_amount")
    recurring = data.get("recurring")
    if recurring is not None:
        if not isinstance(recurring, dict) or recurring.get("interval") not in ("day", "week", "month", "year"):
            raise bad("recurring.interval must be one of day, week, month, year", "recurring[interval]")
        usage = recurring.get("usage_type", "licensed")
        if usage not in ("licensed", "metered"):
            raise bad("recurring.usage_type must be licensed or metered", "recurring[usage_type]")
        recurring = {
            "interval": recurring["interval"],
            "interval_count": int(recurring.get("interval_count", 1)),
            "usage_type": usage,
        }
    return {
        "object": "price",
        "currency": cur,
        "unit_amount": amount,
        "recurring": recurring,
        "product": str(data.get("product") or "prod_default"),
        "nickname": data.get("nickname"),
        "metadata": data.get("metadata") or {},
    }


async def create_price(tx: Tx, data: dict[str, Any], currency: str | None = None) -> dict[str, Any]:
    price = _price_from(data, currency)
    price["id"] = await stripe_id(tx, "price")
    price["created"] = ts(tx.now)
    await tx.insert("price", price["id"], price)
    return price


def tax_rate(customer: dict[str, Any]) -> Decimal:
    if customer.get("tax_exempt") in ("exempt", "reverse"):
        return Decimal("0")
    country = ((customer.get("address") or {}).get("country") or "").upper()
    return TAX_RATES.get(country, Decimal("0"))


def _recalc(invoice: dict[str, Any]) -> None:
    subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
    invoice["subtotal"] = subtotal
    invoice["total"] = subtotal + invoice.get("tax", 0)
    invoice["amount_due"] = max(invoice["total"] - invoice.get("starting_balance_applied", 0), 0)
    invoice["amount_remaining"] = max(
        invoice["amount_due"] - invoice["amount_paid"] - invoice.get("pre_payment_credit_notes_amount", 0), 0
    )


async def new_invoice(
    tx: Tx,
    customer: dict[str, Any],
    *,
    currency: str,
    subscription: dict[str, Any] | None,
    reason: str,
    lines: list[dict[str, Any]],
    period: tuple[datetime, datetime] | None = None,
    auto_advance: bool = True,
) -> dict[str, Any]:
    invoice_id = await stripe_id(tx, "in")
    # pending invoice items of this customer (prorations of earlier changes) join the invoice
    pending = await tx.find("invoiceitem", {"customer": customer["id"], "invoice": None})
    for item in pending:
        if subscription is not None and item.get("subscription") not in (None, subscription["id"]):
            continue
        if item["currency"] != currency:
            continue
        item["invoice"] = invoice_id
        await save(tx, "invoiceitem", item)
        lines.append(
            {
                "type": "invoiceitem",
                "amount": item["amount"],
                "currency": currency,
                "description": item["description"],
                "period": item["period"],
                "proration": item["proration"],
                "quantity": item.get("quantity", 1),
                "price": item.get("price"),
                "invoice_item": item["id"],
            }
        )
    for i, line in enumerate(lines):
        line.setdefault("id", f"il_{invoice_id[3:]}{i:03d}")
        line["object"] = "line_item"
    invoice: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer["id"],
        "subscription": subscription["id"] if subscription else None,
        "status": "draft",
        "currency": currency,
        "billing_reason": reason,
        "collection_method": "charge_automatically",
        "auto_advance": auto_advance,
        "created": ts(tx.now),
        "period_start": ts(period[0]) if period else ts(tx.now),
        "period_end": ts(period[1]) if period else ts(tx.now),
        "lines": {"object": "list", "data": lines, "has_more": False},
        "tax": 0,
        "amount_paid": 0,
        "attempt_count": 0,
        "attempted": False,
        "next_payment_attempt": None,
        "number": None,
        "charge": None,
        "paid": False,
        "status_transitions": {
            "finalized_at": None,
            "paid_at": None,
            "voided_at": None,
            "marked_uncollectible_at": None,
        },
        "metadata": dict((subscription or {}).get("metadata") or {}),
        "pre_payment_credit_notes_amount": 0,
        "post_payment_credit_notes_amount": 0,
        "starting_balance_applied": 0,
    }
    _recalc(invoice)
    await tx.insert("invoice", invoice_id, invoice)
    await emit(tx, "invoice.created", invoice)
    return invoice


async def finalize(tx: Tx, invoice: dict[str, Any], *, pay: bool = True) -> dict[str, Any]:
    if invoice["status"] != "draft":
        raise bad(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    customer = await load(tx, "customer", invoice["customer"])
    subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
    rate = tax_rate(customer)
    invoice["tax"] = int((Decimal(subtotal) * rate).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    invoice["tax_rate"] = str(rate)
    invoice["reverse_charge"] = customer.get("tax_exempt") == "reverse"
    # customer credit balance (negative) is applied first
    total = subtotal + invoice["tax"]
    credit = -customer.get("balance", 0)
    applied = min(max(credit, 0), max(total, 0))
    if applied:
        customer["balance"] += applied
        await save(tx, "customer", customer)
    invoice["starting_balance_applied"] = applied
    invoice["starting_balance"] = -credit
    invoice["status"] = "open"
    invoice["number"] = f"INV-{await tx.next_number('billing:invoice_number'):06d}"
    invoice["status_transitions"]["finalized_at"] = ts(tx.now)
    _recalc(invoice)
    await save(tx, "invoice", invoice)
    await emit(tx, "invoice.finalized", invoice)
    if invoice["amount_remaining"] == 0:
        await mark_paid(tx, invoice, charge=None)
    elif pay and invoice["auto_advance"]:
        await attempt_payment(tx, invoice)
    return invoice


async def mark_paid(tx: Tx, invoice: dict[str, Any], charge: str | None, out_of_band: bool = False) -> None:
    invoice.update(status="paid", paid=True, charge=charge, next_payment_attempt=None)
    invoice["amount_paid"] = invoice["amount_due"] - invoice.get("pre_payment_credit_notes_amount", 0)
    invoice["paid_out_of_band"] = out_of_band
    invoice["status_transitions"]["paid_at"] = ts(tx.now)
    _recalc(invoice)
    await save(tx, "invoice", invoice)
    await emit(tx, "invoice.paid", invoice)
    await emit(tx, "invoice.payment_succeeded", invoice)
    await _set_delinquent(tx, invoice["customer"])
    if invoice["subscription"]:
        sub = await tx.get("subscription", invoice["subscription"])
        if sub is not None and sub["status"] in ("past_due", "incomplete", "unpaid"):
            previous = {"status": sub["status"]}
            sub["status"] = "active"
            await save(tx, "subscription", sub)
            await emit(tx, "customer.subscription.updated", sub, previous)


async def attempt_payment(tx: Tx, invoice: dict[str, Any]) -> dict[str, Any] | None:
    """Charge the customer's default payment method for what remains; dunning on failure."""
    customer = await load(tx, "customer", invoice["customer"])
    method = (customer.get("invoice_settings") or {}).get("default_payment_method")
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    decline: str | None
    if not method:
        decline, kind = "no_payment_method", "soft"
    else:
        decline, kind = PAYMENT_METHODS.get(method, ("generic_decline", "soft"))
    charge = {
        "id": await stripe_id(tx, "ch"),
        "object": "charge",
        "amount": invoice["amount_remaining"],
        "amount_refunded": 0,
        "currency": invoice["currency"],
        "customer": customer["id"],
        "invoice": invoice["id"],
        "payment_method": method,
        "created": ts(tx.now),
        "refunded": False,
        "refunds": [],
    }
    if decline is None:
        charge.update(
            status="succeeded",
            paid=True,
            failure_code=None,
            failure_message=None,
            outcome={"type": "authorized", "network_status": "approved_by_network", "reason": None},
        )
    else:
        charge.update(
            status="failed",
            paid=False,
            failure_code="card_declined",
            failure_message=f"Your card was declined ({decline}).",
            outcome={
                "type": "issuer_declined",
                "network_status": "declined_by_network",
                "reason": decline,
                "decline_type": kind,
            },
        )
    if method is not None:
        await tx.insert("charge", charge["id"], charge)
        await emit(tx, f"charge.{charge['status']}", charge)
    if decline is None:
        await mark_paid(tx, invoice, charge["id"])
        return charge
    retry_days: list[int] = list(DEFAULT_DUNNING["retry_days"])
    attempt = invoice["attempt_count"]
    sub = await tx.get("subscription", invoice["subscription"]) if invoice["subscription"] else None
    # the first invoice of an incomplete subscription is not retried: it expires after 23 hours
    incomplete = sub is not None and sub["status"] == "incomplete"
    spent = kind == "soft" and attempt > len(retry_days) and not incomplete
    if kind == "soft" and not spent and not incomplete:
        invoice["next_payment_attempt"] = ts(tx.now + timedelta(days=retry_days[attempt - 1]))
    else:
        invoice["next_payment_attempt"] = None  # hard declines wait for a new payment method
    invoice["last_payment_error"] = {"code": "card_declined", "decline_code": decline, "decline_type": kind}
    await save(tx, "invoice", invoice)
    await emit(tx, "invoice.payment_failed", invoice)
    if spent:
        # the schedule is spent: the final actions of the dunning settings
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = ts(tx.now)
        await save(tx, "invoice", invoice)
        await emit(tx, "invoice.marked_uncollectible", invoice, {"status": "open"})
    await _set_delinquent(tx, invoice["customer"])
    if sub is None or sub["status"] in ("canceled", "incomplete_expired", "incomplete"):
        return charge
    if spent:
        await cancel(tx, sub, prorate_=False)
    elif sub["status"] == "active":
        sub["status"] = "past_due"
        await save(tx, "subscription", sub)
        await emit(tx, "customer.subscription.updated", sub, {"status": "active"})
    return charge


async def _set_delinquent(tx: Tx, customer_id: str) -> None:
    """Stripe's `delinquent`: the customer's latest invoice payment failed and is still open."""
    customer = await load(tx, "customer", customer_id)
    failing = [i for i in await tx.find("invoice", {"customer": customer_id, "status": "open"}) if i["attempt_count"]]
    if customer.get("delinquent") != bool(failing):
        previous = {"delinquent": customer.get("delinquent")}
        customer["delinquent"] = bool(failing)
        await save(tx, "customer", customer)
        await emit(tx, "customer.updated", customer, previous)


async def cancel(tx: Tx, sub: dict[str, Any], *, prorate_: bool) -> dict[str, Any]:
    if sub["status"] == "canceled":
        raise bad(f"The subscription {sub['id']} is already canceled.", code="resource_already_canceled")
    if prorate_:
        start, end = dt(sub["current_period_start"]), dt(sub["current_period_end"])
        for item in sub["items"]["data"]:
            price = item["price"]
            if (price.get("recurring") or {}).get("usage_type") == "metered":
                continue
            amount = prorate(
                price["unit_amount"] * item["quantity"], (end - tx.now).total_seconds(), (end - start).total_seconds()
            )
            if amount:
                await add_pending(
                    tx, sub, -amount, f"Unused time on {item['quantity']} x {price['product']}", (tx.now, end), item
                )
    sub.update(status="canceled", canceled_at=ts(tx.now), ended_at=ts(tx.now))
    await save(tx, "subscription", sub)
    await emit(tx, "customer.subscription.deleted", sub)
    return sub


async def add_pending(
    tx: Tx, sub: dict[str, Any], amount: int, description: str, period: tuple[datetime, datetime], item: dict[str, Any]
) -> dict[str, Any]:
    pending = {
        "id": await stripe_id(tx, "ii"),
        "object": "invoiceitem",
        "customer": sub["customer"],
        "subscription": sub["id"],
        "subscription_item": item["id"],
        "amount": amount,
        "currency": sub["currency"],
        "description": description,
        "period": {"start": ts(period[0]), "end": ts(period[1])},
        "proration": True,
        "quantity": item["quantity"],
        "price": item["price"]["id"],
        "invoice": None,
        "date": ts(tx.now),
    }
    await tx.insert("invoiceitem", pending["id"], pending)
    return pending


def metered(item: dict[str, Any]) -> bool:
    return bool((item["price"].get("recurring") or {}).get("usage_type") == "metered")


def _licensed_lines(
    sub: dict[str, Any], start: datetime, end: datetime, full: tuple[datetime, datetime]
) -> list[dict[str, Any]]:
    lines = []
    whole = (full[1] - full[0]).total_seconds()
    part = (end - start).total_seconds()
    prorated = abs(part - whole) > 1
    for item in sub["items"]["data"]:
        price = item["price"]
        if (price.get("recurring") or {}).get("usage_type") == "metered":
            continue
        amount = price["unit_amount"] * item["quantity"]
        if prorated:
            amount = prorate(amount, part, whole)
        lines.append(
            {
                "type": "subscription",
                "amount": amount,
                "currency": sub["currency"],
                "description": f"{item['quantity']} x {price['product']}" + (" (prorated)" if prorated else ""),
                "period": {"start": ts(start), "end": ts(end)},
                "proration": prorated,
                "quantity": item["quantity"],
                "price": price["id"],
                "subscription_item": item["id"],
            }
        )
    return lines


async def _metered_lines(tx: Tx, sub: dict[str, Any], start: datetime, end: datetime) -> list[dict[str, Any]]:
    lines = []
    for item in sub["items"]["data"]:
        price = item["price"]
        if (price.get("recurring") or {}).get("usage_type") != "metered":
            continue
        records = await tx.find("usage_record", {"subscription_item": item["id"]})
        quantity = 0
        for record in records:
            if ts(start) <= record["timestamp"] < ts(end):
                quantity = record["quantity"] if record["action"] == "set" else quantity + record["quantity"]
        lines.append(
            {
                "type": "subscription",
                "amount": quantity * price["unit_amount"],
                "currency": sub["currency"],
                "description": f"{quantity} x {price['product']} (usage)",
                "period": {"start": ts(start), "end": ts(end)},
                "proration": False,
                "quantity": quantity,
                "price": price["id"],
                "subscription_item": item["id"],
            }
        )
    return lines


async def _resolve_items(tx: Tx, raw: Any, currency: str | None) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise bad("items must be a non-empty list", "items")
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise bad("each item must be an object", f"items[{i}]")
        if entry.get("price"):
            price = await load(tx, "price", entry["price"], f"items[{i}][price]")
        elif isinstance(entry.get("price_data"), dict):
            price = await create_price(tx, entry["price_data"], currency)
        else:
            raise bad("each item needs price or price_data", f"items[{i}]")
        if price.get("recurring") is None:
            raise bad(f"The price {price['id']} is not recurring; subscriptions need recurring prices.", f"items[{i}]")
        quantity = entry.get("quantity", 1)
        if price["recurring"]["usage_type"] == "metered":
            quantity = 0 if "quantity" not in entry else quantity
            if quantity:
                raise bad("quantity can't be set on a metered price", f"items[{i}][quantity]")
        elif not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise bad("quantity must be a non-negative integer", f"items[{i}][quantity]")
        items.append(
            {
                "id": await stripe_id(tx, "si"),
                "object": "subscription_item",
                "price": price,
                "quantity": quantity,
                "metadata": entry.get("metadata") or {},
            }
        )
    currencies = {it["price"]["currency"] for it in items}
    intervals = {(it["price"]["recurring"]["interval"], it["price"]["recurring"]["interval_count"]) for it in items}
    if len(currencies) > 1:
        raise bad("All prices on a subscription must have the same currency.", "items")
    if len(intervals) > 1:
        raise bad("All prices on a subscription must have the same recurring interval and interval_count.", "items")
    return items


# -- routes: customers -------------------------------------------------------------------------------------


def _stamp(request: Request) -> None:
    n = request.app.state.sandbox.counters
    n["req"] = n.get("req", 0) + 1
    request_info.set((request.headers.get("Idempotency-Key"), f"req_{n['req']:012d}"))


@router.post("/customers")
async def create_customer(request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    for name in ("name", "email", "currency", "tax_exempt"):
        check(data, name, "billing", str)
    if data.get("tax_exempt", "none") not in ("none", "exempt", "reverse"):
        raise bad("tax_exempt must be none, exempt or reverse", "tax_exempt")
    method = (data.get("invoice_settings") or {}).get("default_payment_method") or data.get("payment_method")
    if method is not None and method not in PAYMENT_METHODS:
        raise bad(f"No such PaymentMethod: '{method}'", "payment_method", code="resource_missing", status=400)
    async with sandbox(request).store.tx("billing") as tx:
        customer = {
            "id": await stripe_id(tx, "cus"),
            "object": "customer",
            "created": ts(tx.now),
            "name": data.get("name"),
            "email": data.get("email"),
            "currency": (data.get("currency") or "").lower() or None,
            "address": data.get("address") or {},
            "tax_exempt": data.get("tax_exempt", "none"),
            "tax_ids": data.get("tax_ids") or [],
            "balance": 0,
            "delinquent": False,
            "invoice_settings": {"default_payment_method": method},
            "metadata": data.get("metadata") or {},
        }
        await tx.insert("customer", customer["id"], customer)
        await emit(tx, "customer.created", customer)
    return customer


@router.post("/customers/{customer_id}")
async def update_customer(customer_id: str, request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    async with sandbox(request).store.tx("billing") as tx:
        customer = await load(tx, "customer", customer_id)
        previous: dict[str, Any] = {}
        for name in ("name", "email", "address", "tax_exempt", "metadata"):
            if name in data:
                previous[name] = customer.get(name)
                customer[name] = data[name]
        new_method = (data.get("invoice_settings") or {}).get("default_payment_method")
        if new_method is not None:
            if new_method not in PAYMENT_METHODS:
                raise bad(f"No such PaymentMethod: '{new_method}'", "invoice_settings[default_payment_method]")
            previous["invoice_settings"] = dict(customer["invoice_settings"])
            customer["invoice_settings"]["default_payment_method"] = new_method
        await save(tx, "customer", customer)
        await emit(tx, "customer.updated", customer, previous)
        if new_method is not None:
            # a new payment method retries the open invoices a hard decline left waiting
            for invoice in await tx.find("invoice", {"customer": customer_id, "status": "open"}):
                if invoice["attempt_count"] and invoice["next_payment_attempt"] is None:
                    await attempt_payment(tx, invoice)
    return customer


# -- routes: prices, subscriptions ---------------------------------------------------------------------


@router.post("/prices")
async def create_price_route(request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    async with sandbox(request).store.tx("billing") as tx:
        return await create_price(tx, data)


@router.post("/subscriptions")
async def create_subscription(request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    need(data, "customer", "billing")
    async with sandbox(request).store.tx("billing") as tx:
        customer = await load(tx, "customer", data["customer"], "customer")
        items = await _resolve_items(tx, data.get("items"), customer.get("currency"))
        currency = items[0]["price"]["currency"]
        interval = items[0]["price"]["recurring"]["interval"]
        count = items[0]["price"]["recurring"]["interval_count"]
        start = tx.now
        if data.get("backdate_start_date") is not None:
            start = dt(int(check(data, "backdate_start_date", "billing", int)))
        anchor_raw = data.get("billing_cycle_anchor")
        anchor = dt(int(check(data, "billing_cycle_anchor", "billing", int))) if anchor_raw is not None else start
        if anchor < start:
            raise bad("billing_cycle_anchor cannot be earlier than the subscription start", "billing_cycle_anchor")
        if anchor > step(start, interval, count):
            raise bad("billing_cycle_anchor must be within one billing interval of the start", "billing_cycle_anchor")
        cancel_at = data.get("cancel_at")
        if cancel_at is not None and (not isinstance(cancel_at, int) or cancel_at <= ts(start)):
            raise bad("cancel_at must be a unix timestamp after the start", "cancel_at")
        if anchor > start:  # co-terming: a prorated stub period up to the anchor
            period_end = anchor
            full = (step(anchor, interval, count, -1) if interval in ("month", "year") else start, anchor)
            full = (min(full[0], start), anchor) if full[0] > start else full
        else:
            period_end = step(start, interval, count)
            full = (start, period_end)
        if cancel_at is not None and dt(cancel_at) < period_end:
            period_end = dt(cancel_at)
        sub = {
            "id": await stripe_id(tx, "sub"),
            "object": "subscription",
            "customer": customer["id"],
            "status": "incomplete",
            "currency": currency,
            "items": {"object": "list", "data": items},
            "billing_cycle_anchor": ts(anchor),
            "start_date": ts(start),
            "created": ts(tx.now),
            "current_period_start": ts(start),
            "current_period_end": ts(period_end),
            "cancel_at": cancel_at,
            "canceled_at": None,
            "ended_at": None,
            "collection_method": "charge_automatically",
            "metadata": data.get("metadata") or {},
            "latest_invoice": None,
        }
        for item in items:
            item["subscription"] = sub["id"]
        await tx.insert("subscription", sub["id"], sub)
        await emit(tx, "customer.subscription.created", sub)
        lines = _licensed_lines(sub, start, period_end, full)
        invoice = await new_invoice(
            tx,
            customer,
            currency=currency,
            subscription=sub,
            reason="subscription_create",
            lines=lines,
            period=(start, period_end),
        )
        sub["latest_invoice"] = invoice["id"]
        await save(tx, "subscription", sub)
        await finalize(tx, invoice)
        sub = await load(tx, "subscription", sub["id"])
        if sub["status"] == "incomplete" and invoice["status"] == "paid":
            sub["status"] = "active"
            await save(tx, "subscription", sub)
            await emit(tx, "customer.subscription.updated", sub, {"status": "incomplete"})
        return sub


@router.post("/subscriptions/{sub_id}")
async def update_subscription(sub_id: str, request: Request) -> dict[str, Any]:
    """Items changed (quantity, price, added, `deleted: true`), with prorations as Stripe makes them."""
    _stamp(request)
    data = await body(request, "billing")
    behaviour = data.get("proration_behavior", "create_prorations")
    if behaviour not in ("create_prorations", "always_invoice", "none"):
        raise bad("proration_behavior must be create_prorations, always_invoice or none", "proration_behavior")
    async with sandbox(request).store.tx("billing") as tx:
        sub = await load(tx, "subscription", sub_id)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise bad(f"A canceled subscription can't be updated ({sub_id}).", code="resource_missing")
        start, end = dt(sub["current_period_start"]), dt(sub["current_period_end"])
        when = tx.now
        if data.get("proration_date") is not None:
            when = dt(int(check(data, "proration_date", "billing", int)))
            if not start <= when <= end:
                raise bad("proration_date must be within the current period", "proration_date")
        previous: dict[str, Any] = {"items": {"data": [dict(i) for i in sub["items"]["data"]]}}
        whole = (end - start).total_seconds()
        remaining = (end - when).total_seconds()
        by_id = {item["id"]: item for item in sub["items"]["data"]}
        raw = data.get("items") or []
        if not isinstance(raw, list):
            raise bad("items must be a list", "items")
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise bad("each item must be an object", f"items[{i}]")
            old = by_id.get(entry["id"]) if entry.get("id") else None
            if entry.get("id") and old is None:
                raise bad(f"No such subscription item: '{entry['id']}' on {sub_id}", f"items[{i}][id]")
            new_item: dict[str, Any] | None = None
            if not entry.get("deleted"):
                if old is not None and not entry.get("price") and not entry.get("price_data"):
                    new_item = {**old, "quantity": entry.get("quantity", old["quantity"])}
                else:
                    resolved = await _resolve_items(
                        tx, [{k: v for k, v in entry.items() if k != "id"}], sub["currency"]
                    )
                    new_item = resolved[0]
                    new_item["subscription"] = sub_id
                    if old is not None:
                        new_item["id"] = old["id"]
                    if new_item["price"]["currency"] != sub["currency"]:
                        raise bad("All prices on a subscription must have the same currency.", f"items[{i}]")
            if behaviour != "none":
                if old is not None and not metered(old):
                    credit = prorate(old["price"]["unit_amount"] * old["quantity"], remaining, whole)
                    if credit:
                        await add_pending(
                            tx,
                            sub,
                            -credit,
                            f"Unused time on {old['quantity']} x {old['price']['product']} after {when.date()}",
                            (when, end),
                            old,
                        )
                if new_item is not None and not metered(new_item):
                    charge = prorate(new_item["price"]["unit_amount"] * new_item["quantity"], remaining, whole)
                    if charge:
                        await add_pending(
                            tx,
                            sub,
                            charge,
                            f"Remaining time on {new_item['quantity']} x {new_item['price']['product']} "
                            f"after {when.date()}",
                            (when, end),
                            new_item,
                        )
            if old is not None:
                del by_id[old["id"]]
            if new_item is not None:
                by_id[new_item["id"]] = new_item
        if not by_id:
            raise bad("A subscription needs at least one item; cancel it instead.", "items")
        sub["items"]["data"] = list(by_id.values())
        for name in ("metadata", "cancel_at"):
            if name in data:
                previous[name] = sub.get(name)
                sub[name] = data[name]
        if sub.get("cancel_at") and dt(sub["cancel_at"]) < end:
            sub["current_period_end"] = sub["cancel_at"]
        await save(tx, "subscription", sub)
        await emit(tx, "customer.subscription.updated", sub, previous)
        if behaviour == "always_invoice":
            customer = await load(tx, "customer", sub["customer"])
            invoice = await new_invoice(
                tx,
                customer,
                currency=sub["currency"],
                subscription=sub,
                reason="subscription_update",
                lines=[],
                period=(when, end),
            )
            sub["latest_invoice"] = invoice["id"]
            await save(tx, "subscription", sub)
            await finalize(tx, invoice)
            sub = await load(tx, "subscription", sub_id)
        return sub


@router.delete("/subscriptions/{sub_id}")
async def cancel_subscription(sub_id: str, request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    async with sandbox(request).store.tx("billing") as tx:
        sub = await load(tx, "subscription", sub_id)
        sub = await cancel(tx, sub, prorate_=bool(data.get("prorate", False)))
        if data.get("invoice_now"):
            customer = await load(tx, "customer", sub["customer"])
            lines = await _metered_lines(tx, sub, dt(sub["current_period_start"]), tx.now)
            invoice = await new_invoice(
                tx, customer, currency=sub["currency"], subscription=sub, reason="subscription_cycle", lines=lines
            )
            await finalize(tx, invoice)
        return sub


@router.post("/subscription_items/{item_id}/usage_records")
async def usage_record(item_id: str, request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    quantity = need(data, "quantity", "billing", int)
    action = data.get("action", "increment")
    if action not in ("increment", "set"):
        raise bad("action must be increment or set", "action")
    async with sandbox(request).store.tx("billing") as tx:
        subs = await tx.find("subscription", {"items": {"data": [{"id": item_id}]}})
        if not subs:
            raise missing("subscription item", item_id)
        sub = subs[0]
        item = next(i for i in sub["items"]["data"] if i["id"] == item_id)
        if (item["price"].get("recurring") or {}).get("usage_type") != "metered":
            raise bad(
                f"Usage records can only be created for metered prices; {item_id} is licensed.", "subscription_item"
            )
        stamp = data.get("timestamp", ts(tx.now))
        if not isinstance(stamp, int) or not sub["current_period_start"] <= stamp < sub["current_period_end"] + 300:
            raise bad(
                "Cannot create the usage record with this timestamp because timestamps must be within the "
                "subscription's current billing period.",
                "timestamp",
            )
        record = {
            "id": await stripe_id(tx, "mbur"),
            "object": "usage_record",
            "subscription_item": item_id,
            "quantity": quantity,
            "timestamp": stamp,
            "action": action,
        }
        await tx.insert("usage_record", record["id"], record)
        return record


# -- routes: invoices --------------------------------------------------------------------------------------


@router.post("/invoiceitems")
async def create_invoice_item(request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    need(data, "customer", "billing")
    amount = need(data, "amount", "billing", int)
    currency = need(data, "currency", "billing").lower()
    async with sandbox(request).store.tx("billing") as tx:
        customer = await load(tx, "customer", data["customer"], "customer")
        item = {
            "id": await stripe_id(tx, "ii"),
            "object": "invoiceitem",
            "customer": customer["id"],
            "subscription": None,
            "amount": amount,
            "currency": currency,
            "description": data.get("description") or "",
            "period": {"start": ts(tx.now), "end": ts(tx.now)},
            "proration": False,
            "quantity": 1,
            "price": None,
            "invoice": None,
            "date": ts(tx.now),
        }
        await tx.insert("invoiceitem", item["id"], item)
        return item


@router.post("/invoices")
async def create_invoice(request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    need(data, "customer", "billing")
    async with sandbox(request).store.tx("billing") as tx:
        customer = await load(tx, "customer", data["customer"], "customer")
        currency = (data.get("currency") or customer.get("currency") or "usd").lower()
        return await new_invoice(
            tx,
            customer,
            currency=currency,
            subscription=None,
            reason="manual",
            lines=[],
            auto_advance=bool(data.get("auto_advance", False)),
        )


async def _invoice_action(request: Request, invoice_id: str, action: str) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    async with sandbox(request).store.tx("billing") as tx:
        invoice = await load(tx, "invoice", invoice_id)
        status = invoice["status"]
        if action == "finalize":
            return await finalize(tx, invoice, pay=bool(data.get("auto_advance", invoice["auto_advance"])))
        if action == "void":
            if status != "open":
                raise bad(f"You can only void an open invoice; {invoice_id} is {status}.", code="invoice_not_editable")
            invoice["status"] = "void"
            invoice["next_payment_attempt"] = None
            invoice["status_transitions"]["voided_at"] = ts(tx.now)
            await save(tx, "invoice", invoice)
            await emit(tx, "invoice.voided", invoice, {"status": status})
            return invoice
        if action == "mark_uncollectible":
            if status != "open":
                raise bad(
                    f"You can only mark an open invoice uncollectible; {invoice_id} is {status}.",
                    code="invoice_not_editable",
                )
            invoice["status"] = "uncollectible"
            invoice["next_payment_attempt"] = None
            invoice["status_transitions"]["marked_uncollectible_at"] = ts(tx.now)
            await save(tx, "invoice", invoice)
            await emit(tx, "invoice.marked_uncollectible", invoice, {"status": status})
            return invoice
        # pay
        if status not in ("open", "uncollectible"):
            raise bad(
                f"Invoice {invoice_id} is {status}; only open or uncollectible invoices can be paid.",
                code="invoice_not_editable",
            )
        if data.get("paid_out_of_band"):
            await mark_paid(tx, invoice, charge=None, out_of_band=True)
            return invoice
        charge = await attempt_payment(tx, invoice)
        if charge is None or charge["status"] != "succeeded":
            decline = (invoice.get("last_payment_error") or {}).get("decline_code")
            raise SandboxError(
                402,
                "card_declined",
                f"Your card was declined ({decline}).",
                error_type="card_error",
                extra={"decline_code": decline, "charge": (charge or {}).get("id")},
            )
        return await load(tx, "invoice", invoice_id)


@router.post("/invoices/{invoice_id}/finalize")
async def finalize_route(invoice_id: str, request: Request) -> dict[str, Any]:
    return await _invoice_action(request, invoice_id, "finalize")


@router.post("/invoices/{invoice_id}/pay")
async def pay_route(invoice_id: str, request: Request) -> dict[str, Any]:
    return await _invoice_action(request, invoice_id, "pay")


@router.post("/invoices/{invoice_id}/void")
async def void_route(invoice_id: str, request: Request) -> dict[str, Any]:
    return await _invoice_action(request, invoice_id, "void")


@router.post("/invoices/{invoice_id}/mark_uncollectible")
async def uncollectible_route(invoice_id: str, request: Request) -> dict[str, Any]:
    return await _invoice_action(request, invoice_id, "mark_uncollectible")


# -- routes: refunds, credit notes ---------------------------------------------------------------------


@router.post("/refunds")
async def create_refund(request: Request) -> dict[str, Any]:
    _stamp(request)
    data = await body(request, "billing")
    need(data, "charge", "billing")
    async with sandbox(request).store.tx("billing") as tx:
        return await refund(tx, data["charge"], data.get("amount"), data.get("reason"))


async def refund(tx: Tx, charge_id: Any, amount: Any, reason: Any) -> dict[str, Any]:
    charge = await load(tx, "charge", charge_id, "charge")
    if charge["status"] != "succeeded":
        raise bad(f"Charge {charge['id']} did not succeed; there is nothing to refund.", "charge")
    left = charge["amount"] - charge["amount_refunded"]
    value = left if amount is None else amount
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise bad("amount must be a positive integer", "amount")
    if value > left:
        raise bad(
            f"Refund amount ({value}) is greater than unrefunded amount on charge ({left})",
            "amount",
            code="amount_too_large",
        )
    refund_obj = {
        "id": await stripe_id(tx, "re"),
        "object": "refund",
        "amount": value,
        "charge": charge["id"],
        "currency": charge["currency"],
        "status": "succeeded",
        "reason": reason,
        "created": ts(tx.now),
    }
    await tx.insert("refund", refund_obj["id"], refund_obj)
    charge["amount_refunded"] += value
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    charge["refunds"].append(refund_obj["id"])
    await save(tx, "charge", charge)
    await emit(tx, "charge.refunded", charge)
    return refund_obj


@router.post("/credit_notes")
async def create_credit_note(request: Request) -> dict[str, Any]:
    """Pre-payment (invoice open: lowers what is due) or post-payment (paid: refund and/or customer credit)."""
    _stamp(request)
    data = await body(request, "billing")
    need(data, "invoice", "billing")
    amount = need(data, "amount", "billing", int)
    if amount <= 0:
        raise bad("amount must be positive", "amount")
    async with sandbox(request).store.tx("billing") as tx:
        invoice = await load(tx, "invoice", data["invoice"], "invoice")
        if invoice["status"] not in ("open", "paid"):
            raise bad(
                f"Credit notes can only be issued on open or paid invoices; {invoice['id']} is {invoice['status']}.",
                "invoice",
            )
        credited = invoice["pre_payment_credit_notes_amount"] + invoice["post_payment_credit_notes_amount"]
        if amount > invoice["total"] - credited:
            raise bad(
                f"The credit note amount ({amount}) exceeds the invoice's remaining creditable amount "
                f"({invoice['total'] - credited}).",
                "amount",
            )
        note: dict[str, Any] = {
            "id": await stripe_id(tx, "cn"),
            "object": "credit_note",
            "invoice": invoice["id"],
            "customer": invoice["customer"],
            "amount": amount,
            "currency": invoice["currency"],
            "reason": data.get("reason"),
            "memo": data.get("memo"),
            "status": "issued",
            "created": ts(tx.now),
            "number": f"{invoice['number']}-CN{await tx.next_number('billing:cn:' + invoice['id'])}",
            "refund": None,
            "customer_balance_transaction": None,
        }
        if invoice["status"] == "open":
            note["type"] = "pre_payment"
            invoice["pre_payment_credit_notes_amount"] += amount
            _recalc(invoice)
            await save(tx, "invoice", invoice)
            if invoice["amount_remaining"] == 0:
                await mark_paid(tx, invoice, charge=invoice.get("charge"))
        else:
            note["type"] = "post_payment"
            refund_amount = data.get("refund_amount", 0)
            if not isinstance(refund_amount, int) or not 0 <= refund_amount <= amount:
                raise bad("refund_amount must be an integer between 0 and amount", "refund_amount")
            if refund_amount:
                if not invoice.get("charge"):
                    raise bad("this invoice was paid out of band: nothing to refund", "refund_amount")
                note["refund"] = (await refund(tx, invoice["charge"], refund_amount, "requested_by_customer"))["id"]
            credit = amount - refund_amount
            if credit:
                customer = await load(tx, "customer", invoice["customer"])
                customer["balance"] -= credit
                await save(tx, "customer", customer)
                note["customer_balance_transaction"] = {"amount": -credit}
            invoice["post_payment_credit_notes_amount"] += amount
            await save(tx, "invoice", invoice)
        await tx.insert("credit_note", note["id"], note)
        await emit(tx, "credit_note.created", note)
        return note


# -- routes: reads -----------------------------------------------------------------------------------------

_LISTABLE = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "refunds": "refund",
    "credit_notes": "credit_note",
    "prices": "price",
    "invoiceitems": "invoiceitem",
}


#: one clause of Stripe's search query language that the sandbox understands: `metadata['key']:'value'`,
#: `name:'value'` or `email:'value'` (exact match), clauses joined by AND
_SEARCH_CLAUSE = re.compile(r"""^\s*(metadata\[['"]([^'"]+)['"]\]|name|email)\s*:\s*['"]([^'"]*)['"]\s*$""")


@router.get("/customers/search")
async def search_customers(request: Request, query: str, limit: int = 10, page: str | None = None) -> dict[str, Any]:
    """Stripe's `GET /v1/customers/search`: exact matches on metadata, name or email, newest first."""
    if not 1 <= limit <= 100:
        raise bad("limit must be between 1 and 100", "limit")
    match: dict[str, Any] = {}
    for clause in re.split(r"\s+AND\s+", query.strip()):
        found = _SEARCH_CLAUSE.match(clause)
        if found is None:
            raise bad(
                f"The sandbox's search understands metadata['key']:'value', name:'value' and email:'value' "
                f"joined by AND; cannot read {clause.strip()!r}",
                "query",
            )
        field, key, value = found.groups()
        if key is not None:
            match.setdefault("metadata", {})[key] = value
        else:
            match[field] = value
    offset = int(page) if page and page.isdigit() else 0
    items, has_more, _ = await sandbox(request).store.page(
        "billing", "customer", match=match, newest_first=True, offset=offset, limit=limit
    )
    return {
        "object": "search_result",
        "url": "/v1/customers/search",
        "has_more": has_more,
        "next_page": str(offset + limit) if has_more else None,
        "data": items,
    }


@router.get("/events")
async def list_events(
    request: Request,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    type: str | None = None,
    created_gte: int | None = Query(default=None, alias="created[gte]"),
) -> dict[str, Any]:
    """Newest first, as Stripe; `ending_before=evt_X` pages towards newer events (events since X)."""
    if not 1 <= limit <= 100:
        raise bad("limit must be between 1 and 100", "limit")
    box: Sandbox = sandbox(request)
    pool = box.store.pool
    args: list[Any] = []
    where = ["system = 'billing'"]
    if type:
        args.append(type.replace("*", "%"))
        where.append(f"type LIKE ${len(args)}")
    if created_gte is not None:
        args.append(dt(created_gte))
        where.append(f"created_at >= ${len(args)}")
    for cursor in (starting_after, ending_before):
        if (
            cursor is not None
            and await pool.fetchval("SELECT seq FROM events WHERE id = $1 AND system = 'billing'", cursor) is None
        ):
            raise bad(
                f"No such event: '{cursor}'",
                "starting_after" if cursor == starting_after else "ending_before",
                code="resource_missing",
            )
    if ending_before is not None:
        args.append(ending_before)
        where.append(f"seq > (SELECT seq FROM events WHERE id = ${len(args)})")
        order = "ASC"
    else:
        if starting_after is not None:
            args.append(starting_after)
            where.append(f"seq < (SELECT seq FROM events WHERE id = ${len(args)})")
        order = "DESC"
    args.append(limit + 1)
    rows = await pool.fetch(
        f"SELECT payload FROM events WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ${len(args)}", *args
    )
    items = [r["payload"] for r in rows[:limit]]
    if order == "ASC":
        items.reverse()
    return {"object": "list", "url": "/v1/events", "has_more": len(rows) > limit, "data": items}


@router.get("/events/{event_id}")
async def get_event(event_id: str, request: Request) -> dict[str, Any]:
    row = await sandbox(request).store.pool.fetchrow(
        "SELECT payload FROM events WHERE id = $1 AND system = 'billing'", event_id
    )
    if row is None:
        raise missing("event", event_id)
    return dict(row["payload"])


@router.get("/{collection}")
async def list_objects(
    collection: str,
    request: Request,
    limit: int = 10,
    starting_after: str | None = None,
    customer: str | None = None,
    subscription: str | None = None,
    status: str | None = None,
    created_gte: int | None = Query(default=None, alias="created[gte]"),
) -> dict[str, Any]:
    kind = _LISTABLE.get(collection)
    if kind is None:
        raise SandboxError(404, "resource_missing", f"Unrecognized request URL (GET: /v1/{collection}).")
    if not 1 <= limit <= 100:
        raise bad("limit must be between 1 and 100", "limit")
    match: dict[str, Any] = {}
    for name, value in (("customer", customer), ("subscription", subscription), ("status", status)):
        if value is not None:
            match[name] = value
    items, has_more, _ = await sandbox(request).store.page(
        "billing",
        kind,
        match=match or None,
        created_gte=dt(created_gte) if created_gte is not None else None,
        after_id=starting_after,
        newest_first=True,
        limit=limit,
    )
    return {"object": "list", "url": f"/v1/{collection}", "has_more": has_more, "data": items}


@router.get("/{collection}/{object_id}")
async def get_object(collection: str, object_id: str, request: Request) -> dict[str, Any]:
    kind = _LISTABLE.get(collection)
    if kind is None:
        raise SandboxError(404, "resource_missing", f"Unrecognized request URL (GET: /v1/{collection}/{object_id}).")
    obj = await sandbox(request).store.get("billing", kind, object_id)
    if obj is None:
        raise missing(kind, object_id)
    return obj


# -- time: renewals, finalization, dunning -------------------------------------------------------------


#: what falls due, and when: (action, kind of record, SQL selecting the earliest such record and its due time)
_DUE = (
    (
        "finalize",
        "invoice",
        "SELECT data, (data->>'created')::bigint + $2 AS due FROM records WHERE system = 'billing' "
        "AND kind = 'invoice' AND data->>'status' = 'draft' AND (data->>'created')::bigint <= $1 "
        "AND NOT deleted AND NOT data ? 'sandbox_tick_error' AND (data->>'auto_advance')::boolean "
        "ORDER BY (data->>'created')::bigint, id LIMIT 1",
    ),
    (
        "retry",
        "invoice",
        "SELECT data, (data->>'next_payment_attempt')::bigint + $2 AS due FROM records WHERE system = 'billing' "
        "AND kind = 'invoice' AND data->>'status' = 'open' AND (data->>'next_payment_attempt')::bigint <= $1 "
        "AND NOT deleted AND NOT data ? 'sandbox_tick_error' "
        "ORDER BY (data->>'next_payment_attempt')::bigint, id LIMIT 1",
    ),
    (
        "expire",
        "subscription",
        "SELECT data, (data->>'created')::bigint + $2 AS due FROM records WHERE system = 'billing' "
        "AND kind = 'subscription' AND data->>'status' = 'incomplete' AND (data->>'created')::bigint <= $1 "
        "AND NOT deleted AND NOT data ? 'sandbox_tick_error' ORDER BY (data->>'created')::bigint, id LIMIT 1",
    ),
    (
        "renew",
        "subscription",
        "SELECT data, (data->>'current_period_end')::bigint + $2 AS due FROM records WHERE system = 'billing' "
        "AND kind = 'subscription' AND data->>'status' IN ('active', 'past_due', 'unpaid') "
        "AND (data->>'current_period_end')::bigint <= $1 AND NOT deleted AND NOT data ? 'sandbox_tick_error' "
        "ORDER BY (data->>'current_period_end')::bigint, id LIMIT 1",
    ),
)
_DELAYS = {
    "finalize": int(FINALIZE_DELAY.total_seconds()),
    "retry": 0,
    "expire": int(INCOMPLETE_EXPIRY.total_seconds()),
    "renew": 0,
}


async def tick(box: Sandbox, limit: int = 5000) -> int:
    """Do what fell due up to sandbox time now, earliest first, each at its own due time.

    A jump of the clock by 40 days thus renews at the period end, finalizes an hour later, retries on
    days 3, 5 and 7 after that, in that order and with those timestamps, as if the time had passed.
    A record whose action fails is marked `sandbox_tick_error` and left aside, so it cannot block the rest.
    """
    done = 0
    while done < limit:
        now = ts(box.store.clock.now())
        failed: tuple[str, str, str] | None = None
        async with box.store.tx("billing") as tx:
            candidates = []
            for order, (action, kind, sql) in enumerate(_DUE):
                # $1: the latest creation (or due) time that is due now; $2: the delay after it
                row = await tx.conn.fetchrow(sql, now - _DELAYS[action], _DELAYS[action])
                if row is not None:
                    candidates.append((row["due"], order, action, kind, dict(row["data"])))
            if not candidates:
                break
            due, _, action, kind, data = min(candidates, key=lambda c: (c[0], c[1]))
            tx.now = dt(due)
            try:
                async with tx.conn.transaction():  # a savepoint: a failing action leaves nothing behind
                    await _ACTIONS[action](tx, data)
            except Exception as exc:  # logged and set aside, never retried in a loop
                log.exception("billing %s of %s %s failed; set aside", action, kind, data.get("id"))
                failed = (kind, data["id"], f"{type(exc).__name__}: {exc}"[:300])
        if failed is not None:
            async with box.store.tx("billing") as tx:
                record = await tx.get(failed[0], failed[1])
                if record is not None:
                    record["sandbox_tick_error"] = failed[2]
                    await tx.update(failed[0], failed[1], record, touch=False)
        done += 1
    return done


async def _finalize_due(tx: Tx, invoice: dict[str, Any]) -> None:
    await finalize(tx, invoice)


async def _retry_due(tx: Tx, invoice: dict[str, Any]) -> None:
    await attempt_payment(tx, invoice)


async def _expire_incomplete(tx: Tx, sub: dict[str, Any]) -> None:
    """A first invoice still unpaid 23 hours on: the subscription expires and its invoice is voided."""
    invoice = await tx.get("invoice", sub["latest_invoice"]) if sub.get("latest_invoice") else None
    if invoice is not None and invoice["status"] == "open":
        invoice.update(status="void", next_payment_attempt=None)
        invoice["status_transitions"]["voided_at"] = ts(tx.now)
        await save(tx, "invoice", invoice)
        await emit(tx, "invoice.voided", invoice, {"status": "open"})
        await _set_delinquent(tx, sub["customer"])
    sub.update(status="incomplete_expired", ended_at=ts(tx.now))
    await save(tx, "subscription", sub)
    await emit(tx, "customer.subscription.deleted", sub)


async def _renew(tx: Tx, sub: dict[str, Any]) -> None:
    start, end = dt(sub["current_period_start"]), dt(sub["current_period_end"])
    customer = await load(tx, "customer", sub["customer"])
    usage = await _metered_lines(tx, sub, start, end)
    if sub.get("cancel_at") and sub["cancel_at"] <= sub["current_period_end"]:
        if any(line["amount"] for line in usage):
            invoice = await new_invoice(
                tx,
                customer,
                currency=sub["currency"],
                subscription=sub,
                reason="subscription_cycle",
                lines=usage,
                period=(start, end),
            )
            sub["latest_invoice"] = invoice["id"]
        sub.update(status="canceled", canceled_at=ts(end), ended_at=ts(end))
        await save(tx, "subscription", sub)
        await emit(tx, "customer.subscription.deleted", sub)
        return
    price = sub["items"]["data"][0]["price"]["recurring"]
    anchor = dt(sub["billing_cycle_anchor"])
    new_end = next_boundary(anchor, price["interval"], price["interval_count"], end)
    full = (end, new_end)
    if sub.get("cancel_at") and dt(sub["cancel_at"]) < new_end:
        new_end = dt(sub["cancel_at"])
    previous = {"current_period_start": sub["current_period_start"], "current_period_end": sub["current_period_end"]}
    sub["current_period_start"], sub["current_period_end"] = ts(end), ts(new_end)
    lines = usage + _licensed_lines(sub, end, new_end, full)
    invoice = await new_invoice(
        tx,
        customer,
        currency=sub["currency"],
        subscription=sub,
        reason="subscription_cycle",
        lines=lines,
        period=(end, new_end),
    )
    sub["latest_invoice"] = invoice["id"]
    await save(tx, "subscription", sub)
    await emit(tx, "customer.subscription.updated", sub, previous)


_ACTIONS = {
    "finalize": _finalize_due,
    "retry": _retry_due,
    "expire": _expire_incomplete,
    "renew": _renew,
}
