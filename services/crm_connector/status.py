"""Outbound status propagation: billing's invoice and payment facts → the CRM Account's write-back fields.

    decision = decide(state, event)     # pure: Decision(new state, commands=[a write-back of the Account])

State per customer account (the billing topics' key, = the CRM Account id), kept as JSON by the runtime:
the invoices seen (amount due, paid so far, voided / written off), the credit holds in force, the last payment
outcome, what was last decided for the Account and a version that grows with every new decision.

What is written (absolute values, so sending one twice is harmless). The CRM's fields are restricted
picklists (`Invoice_Status__c`: Draft, Open, Paid, Void, Uncollectible, Partially Paid; `Payment_Status__c`:
Succeeded, Failed, Refunded, Pending), so the formats are those values, chosen by these rules:

- `Invoice_Status__c`, over the account's invoices: "Open" if any is owed with nothing paid on it, else
  "Partially Paid" if any is owed with part paid, else "Uncollectible" if any written-off invoice is still
  unpaid, else "Paid" if any was paid, else "Void" if every one was voided; not written before any invoice.
- `Payment_Status__c`: the latest payment outcome by its time in billing — "Succeeded" (collected), "Failed"
  (any decline, soft or hard), "Refunded"; a late-arriving older outcome never replaces a newer one.
- `Credit_Hold__c`: true while any hold is in force; a hold starts with a HARD payment failure (on its invoice;
  without an invoice, on the payment) or an invoice marked uncollectible, and ends when that invoice is paid or
  voided (a hold on a payment without invoice ends with the next payment collected after it).

Events arrive in order per account within a topic, but invoices and payments are two topics: a payment may come
before its invoice. Invoices are therefore tracked by id with flags, and the status is derived from all of them.

Each change of the decided fields bumps `version` and records ONE command keyed `crm/account-status/<account>/
v<version>`, whose payload holds the whole write-back and the version: the executor skips a command whose
version is older than the account's current one (see `writeback.py`), so an older state never overwrites a newer.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accord.events import (
    DeclineType,
    InvoiceIssued,
    InvoiceMarkedUncollectible,
    InvoiceVoided,
    PaymentCollected,
    PaymentFailed,
    PaymentRefunded,
)
from accord.runtime import CommandSpec, Decision, Envelope, Service

SYSTEM = "crm"
KIND = "account_status"
AGGREGATE = "account_status"
#: settled invoices kept per account beyond this many are forgotten (oldest first): state stays bounded
KEEP_SETTLED = 200

INVOICE_FIELD = "Invoice_Status__c"
PAYMENT_FIELD = "Payment_Status__c"
HOLD_FIELD = "Credit_Hold__c"

HANDLED = (
    InvoiceIssued,
    InvoiceVoided,
    InvoiceMarkedUncollectible,
    PaymentCollected,
    PaymentFailed,
    PaymentRefunded,
)

State = dict[str, Any]


def empty_state() -> State:
    return {"version": 0, "seq": 0, "invoices": {}, "holds": {}, "payment": None, "written": {}}


def command_key(account_id: str, version: int) -> str:
    return f"crm/account-status/{account_id}/v{version}"


# -- invoices ---------------------------------------------------------------------------------------------


def _invoice(state: State, invoice_id: str) -> dict[str, Any]:
    invoices: dict[str, dict[str, Any]] = state["invoices"]
    if invoice_id not in invoices:
        state["seq"] += 1
        invoices[invoice_id] = {
            "n": state["seq"],
            "due": None,
            "currency": None,
            "paid": "0",
            "voided": False,
            "uncollectible": False,
        }
    return invoices[invoice_id]


def invoice_status(invoice: Mapping[str, Any]) -> str | None:
    """One invoice's standing: void, paid, uncollectible, partial, open; None while only payments are known."""
    if invoice["voided"]:
        return "void"
    paid = Decimal(invoice["paid"])
    if invoice["due"] is None:
        return None  # a payment came before its invoice: nothing known to be owed yet
    if paid >= Decimal(invoice["due"]):
        return "paid"
    if invoice["uncollectible"]:
        return "uncollectible"
    return "partial" if paid > 0 else "open"


_ACCOUNT_INVOICE_STATUS = (
    ("open", "Open"),
    ("partial", "Partially Paid"),
    ("uncollectible", "Uncollectible"),
    ("paid", "Paid"),
    ("void", "Void"),
)


def account_invoice_status(state: State) -> str | None:
    seen = {invoice_status(i) for i in state["invoices"].values()}
    return next((label for status, label in _ACCOUNT_INVOICE_STATUS if status in seen), None)


def _settled(invoice: Mapping[str, Any]) -> bool:
    return invoice_status(invoice) in ("paid", "void")


def _prune(state: State) -> None:
    settled = sorted((i["n"], k) for k, i in state["invoices"].items() if _settled(i))
    for _, invoice_id in settled[: max(len(settled) - KEEP_SETTLED, 0)]:
        del state["invoices"][invoice_id]


# -- holds and payments ------------------------------------------------------------------------------------


def _release_holds(state: State, *, collected_at: str | None = None) -> None:
    holds: dict[str, dict[str, Any]] = state["holds"]
    for key, hold in list(holds.items()):
        invoice = state["invoices"].get(hold.get("invoice") or "")
        if invoice is not None and _settled(invoice):
            del holds[key]
        elif hold.get("invoice") is None and collected_at is not None and collected_at >= hold["at"]:
            del holds[key]  # a hold on a payment without invoice: a later collection clears it


def _payment_outcome(state: State, outcome: str, at: datetime.datetime) -> None:
    stamp = _stamp(at)
    last = state["payment"]
    if last is None or stamp >= last["at"]:
        state["payment"] = {"status": outcome, "at": stamp}


def _stamp(at: datetime.datetime) -> str:
    """A UTC timestamp whose text sorts as its time (fixed width: microseconds always written)."""
    return at.astimezone(datetime.UTC).isoformat(timespec="microseconds")


# -- the decider ------------------------------------------------------------------------------------------


def write_back(state: State) -> dict[str, Any]:
    """The Account fields the state stands for (absent: nothing to say yet)."""
    fields: dict[str, Any] = {}
    invoice = account_invoice_status(state)
    if invoice is not None:
        fields[INVOICE_FIELD] = invoice
    if state["payment"] is not None:
        fields[PAYMENT_FIELD] = state["payment"]["status"]
    fields[HOLD_FIELD] = bool(state["holds"])
    return fields


def apply(state: State, event: Any) -> None:
    """The state after one billing fact (mutates `state`, a private copy)."""
    if isinstance(event, InvoiceIssued):
        invoice = _invoice(state, event.invoice_id)
        invoice["due"] = str(event.amount_due.amount)
        invoice["currency"] = event.amount_due.currency
    elif isinstance(event, InvoiceVoided):
        _invoice(state, event.invoice_id)["voided"] = True
    elif isinstance(event, InvoiceMarkedUncollectible):
        invoice = _invoice(state, event.invoice_id)
        invoice["uncollectible"] = True
        if invoice["due"] is None:
            invoice["due"] = str(event.uncollectible_amount.amount)
            invoice["currency"] = event.uncollectible_amount.currency
        state["holds"][f"uncollectible:{event.invoice_id}"] = {
            "invoice": event.invoice_id,
            "at": _stamp(event.meta.occurred_at),
        }
    elif isinstance(event, PaymentCollected):
        if event.invoice_id:
            invoice = _invoice(state, event.invoice_id)
            invoice["paid"] = str(Decimal(invoice["paid"]) + event.amount.amount)
        _payment_outcome(state, "Succeeded", event.collected_at)
        _release_holds(state, collected_at=_stamp(event.collected_at))
    elif isinstance(event, PaymentFailed):
        if event.decline_type is DeclineType.HARD:
            key = f"hard:{event.invoice_id}" if event.invoice_id else f"hard-payment:{event.payment_id}"
            state["holds"][key] = {"invoice": event.invoice_id, "at": _stamp(event.meta.occurred_at)}
        _payment_outcome(state, "Failed", event.meta.occurred_at)
    elif isinstance(event, PaymentRefunded):
        _payment_outcome(state, "Refunded", event.refunded_at)
    _release_holds(state)
    _prune(state)


def decide(state: State | None, event: Any) -> Decision[State]:
    """The new state of the account and, when the Account's fields change, one write-back command."""
    new = _copy(state or empty_state())
    apply(new, event)
    fields = write_back(new)
    commands: list[CommandSpec] = []
    if fields != new["written"]:
        new["version"] += 1
        new["written"] = fields
        account = str(event.account_id)
        commands.append(
            CommandSpec(
                system=SYSTEM,
                kind=KIND,
                key=command_key(account, new["version"]),
                payload={"account_id": account, "version": new["version"], "fields": fields},
            )
        )
    return Decision(state=new, commands=commands)


def _copy(state: State) -> State:
    return {
        **state,
        "invoices": {k: dict(v) for k, v in state["invoices"].items()},
        "holds": {k: dict(v) for k, v in state["holds"].items()},
        "written": dict(state["written"]),
    }


# -- the registry -----------------------------------------------------------------------------------------


def service(name: str, topics: Mapping[str, str] | None = None) -> Service:
    """The status consumer: `name` is its consumer group; `topics` maps catalogue topics to the ones to read."""
    mapped = dict(topics or {})

    def handler(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide(state, envelope.event)

    catalogue = sorted({cls.TOPIC for cls in HANDLED})
    return Service(
        name=name,
        topics=[mapped.get(t, t) for t in catalogue],
        handlers={cls.AVRO_NAME: handler for cls in HANDLED},
        aggregate=AGGREGATE,
    )
