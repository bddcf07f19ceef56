"""ERP (NetSuite-like REST record service) under /erp/services/rest/record/v1.

Behaviour modelled on NetSuite REST web services:
- POST creates and answers 204 No Content with the new record's URL in `Location` (no body);
- PUT `/{type}/eid:{externalId}` is the upsert, the idempotency lever; POST with a known externalId fails;
- references are objects `{"id": "12"}`; lists of sub-records are `{"items": [...]}`;
- every subsidiary has its own monthly period calendar; a period is open, AR-locked (no invoices or
  payments, no journal lines on receivables) or closed (nothing posts, posted transactions can't change);
- a governance limit on concurrent requests is shared by every caller (see app.py), reported at /erp/limits;
- no webhooks: integrations poll `GET /{type}?q=lastModifiedDate ON_OR_AFTER "..."` with limit/offset.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response

from .core import Sandbox, a_date, a_datetime, body, check, money, need, num, sandbox
from .errors import SandboxError
from .store import Tx, iso

router = APIRouter(prefix="/erp")
ROUTE = "/services/rest/record/v1"
BASE = "/erp" + ROUTE
KINDS = ("subsidiary", "accountingPeriod", "account", "customer", "invoice", "customerPayment", "journalEntry")
TRANSACTIONS = ("invoice", "customerPayment", "journalEntry")
AR_TRANSACTIONS = ("invoice", "customerPayment")
PERIOD_STATUSES = ("open", "ar_locked", "closed")
ACCOUNT_TYPES = (
    "AcctRec",
    "AcctPay",
    "Bank",
    "Income",
    "Expense",
    "OthCurrLiab",
    "DeferRevenue",
    "OthCurrAsset",
    "Equity",
    "OthIncome",
)
CREDIT_HOLD = ("AUTO", "ON", "OFF")
ZERO = Decimal("0.00")


def err(status: int, code: str, detail: str, path: str | None = None) -> SandboxError:
    return SandboxError(status, code, detail, param=path)


def _kind(record_type: str) -> str:
    if record_type not in KINDS:
        raise err(404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist; known: {', '.join(KINDS)}.")
    return record_type


def _ref(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise err(400, "USER_ERROR", f"Please enter value(s) for: {name}", name)
        return None
    if isinstance(value, dict) and value.get("id") is not None:
        return str(value["id"])
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise err(400, "INVALID_CONTENT", f'{name} must be a reference {{"id": "..."}}, got {value!r}', name)


async def _must(tx: Tx, kind: str, id_: str, field: str) -> dict[str, Any]:
    record = await tx.get(kind, id_)
    if record is None:
        raise err(400, "INVALID_KEY_OR_REF", f"Invalid {field} reference key {id_}.", field)
    return record


async def period_for(tx: Tx, subsidiary: str, day: date) -> dict[str, Any]:
    for period in await tx.find("accountingPeriod", {"subsidiary": {"id": subsidiary}}):
        if period["startDate"] <= day.isoformat() <= period["endDate"]:
            return period
    raise err(
        400,
        "NO_PERIOD",
        f"No accounting period of subsidiary {subsidiary} covers {day.isoformat()}; create the period first.",
        "tranDate",
    )


def check_period(period: dict[str, Any], kind: str, *, touches_ar: bool) -> None:
    status = period["status"]
    if status == "closed":
        raise err(
            400,
            "PERIOD_CLOSED",
            f"The accounting period {period['periodName']} (id {period['id']}) of subsidiary "
            f"{period['subsidiary']['id']} is closed: no transaction can be posted to or changed in it. "
            "Post into an open period.",
            "postingPeriod",
        )
    if status == "ar_locked" and (kind in AR_TRANSACTIONS or touches_ar):
        raise err(
            400,
            "PERIOD_LOCKED",
            f"The accounting period {period['periodName']} (id {period['id']}) is locked for Accounts Receivable: "
            f"a {kind} cannot be posted to it. Post into an open period.",
            "postingPeriod",
        )


#: USD value of one unit of each currency: the sandbox's fixed rate table for transactions in a currency
#: other than the subsidiary's base currency (NetSuite fills exchangeRate from its currency rates).
USD_VALUE = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.087"),
    "GBP": Decimal("1.266"),
    "CAD": Decimal("0.73"),
    "CHF": Decimal("1.13"),
    "JPY": Decimal("0.0067"),
}


def exchange_rate(record: dict[str, Any], base: str) -> float:
    """The transaction currency → base currency rate: given by the caller, or from the rate table."""
    currency = record["currency"]
    given = record.get("exchangeRate")
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, int | float) or given <= 0:
            raise err(
                400, "INVALID_FLD_VALUE", f"exchangeRate must be a positive number, got {given!r}", "exchangeRate"
            )
        if currency == base and given != 1:
            raise err(400, "INVALID_FLD_VALUE", "exchangeRate must be 1 in the base currency", "exchangeRate")
        return float(given)
    if currency not in USD_VALUE or base not in USD_VALUE:
        raise err(
            400,
            "INVALID_FLD_VALUE",
            f"no exchange rate from {currency} to {base}; pass exchangeRate or use one of {', '.join(USD_VALUE)}",
            "currency",
        )
    return float((USD_VALUE[currency] / USD_VALUE[base]).quantize(Decimal("0.000001")))


def on_credit_hold(customer: dict[str, Any]) -> bool:
    """NetSuite's credit hold: forced ON or OFF, or AUTO — on hold when the balance exceeds the credit limit."""
    override = customer.get("creditHoldOverride", "AUTO")
    if override != "AUTO":
        return bool(override == "ON")
    limit = customer.get("creditLimit")
    return limit is not None and Decimal(str(customer.get("balance", 0))) > Decimal(str(limit))


def make_periods(subsidiary: str, year_from: int, year_to: int) -> list[dict[str, Any]]:
    periods = []
    for year in range(year_from, year_to + 1):
        for month in range(1, 13):
            start = date(year, month, 1)
            end = date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1
            periods.append(
                {
                    "periodName": start.strftime("%b %Y"),
                    "startDate": start.isoformat(),
                    "endDate": date.fromordinal(end).isoformat(),
                    "subsidiary": {"id": subsidiary},
                    "status": "open",
                }
            )
    return periods


def _period_flags(period: dict[str, Any]) -> dict[str, Any]:
    status = period["status"]
    return {**period, "isClosed": status == "closed", "arLocked": status in ("ar_locked", "closed")}


# -- validation per record type ------------------------------------------------------------------------


async def _build(tx: Tx, kind: str, data: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """The record to store after applying `data` on `old` (None for a new record), validated."""
    merged = {**(old or {}), **data}
    if kind == "subsidiary":
        need(merged, "name", "erp")
        country = need(merged, "country", "erp")
        currency = need(merged, "currency", "erp")
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise err(400, "INVALID_FLD_VALUE", f"country must be an ISO 3166 alpha-2 code, got {country!r}", "country")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise err(400, "INVALID_FLD_VALUE", f"currency must be an ISO 4217 code, got {currency!r}", "currency")
        if old is not None and old["currency"] != currency:
            raise err(400, "INVALID_FLD_VALUE", "the base currency of a subsidiary cannot change", "currency")
        return merged
    if kind == "accountingPeriod":
        if old is None:
            raise err(400, "INSUFFICIENT_PERMISSION", "Accounting periods are created with their subsidiary.")
        status = need(merged, "status", "erp")
        if status not in PERIOD_STATUSES:
            raise err(400, "INVALID_FLD_VALUE", f"status must be one of {PERIOD_STATUSES}", "status")
        return _period_flags(merged)
    if kind == "account":
        need(merged, "acctNumber", "erp")
        need(merged, "acctName", "erp")
        if need(merged, "acctType", "erp") not in ACCOUNT_TYPES:
            raise err(400, "INVALID_FLD_VALUE", f"acctType must be one of {', '.join(ACCOUNT_TYPES)}", "acctType")
        return merged
    if kind == "customer":
        need(merged, "companyName", "erp")
        sub = await _must(tx, "subsidiary", _ref(merged, "subsidiary") or "", "subsidiary")
        merged["subsidiary"] = {"id": sub["id"]}
        merged.setdefault("currency", sub["currency"])
        merged.setdefault("creditHoldOverride", "AUTO")
        if merged["creditHoldOverride"] not in CREDIT_HOLD:
            raise err(
                400, "INVALID_FLD_VALUE", f"creditHoldOverride must be one of {CREDIT_HOLD}", "creditHoldOverride"
            )
        check(merged, "creditLimit", "erp", (int, float))
        merged.setdefault("balance", 0.0)
        merged.setdefault("entityId", merged["companyName"])
        merged["onCreditHold"] = on_credit_hold(merged)
        return merged
    # transactions
    if old is not None:
        old_period = await tx.get("accountingPeriod", old["postingPeriod"]["id"])
        assert old_period is not None
        check_period(old_period, kind, touches_ar=True)
    tran_date = a_date(merged, "tranDate", "erp")
    assert tran_date is not None
    merged["tranDate"] = tran_date.isoformat()
    if kind == "journalEntry":
        sub = await _must(tx, "subsidiary", _ref(merged, "subsidiary") or "", "subsidiary")
        lines = (merged.get("line") or {}).get("items") if isinstance(merged.get("line"), dict) else None
        if not lines or not isinstance(lines, list):
            raise err(400, "USER_ERROR", "A journal entry needs line.items with at least two lines.", "line.items")
        debit_total = credit_total = ZERO
        touches_ar = False
        clean = []
        for i, line in enumerate(lines):
            if not isinstance(line, dict):
                raise err(400, "INVALID_CONTENT", "each line must be an object", f"line.items[{i}]")
            account = await _must(tx, "account", _ref(line, "account") or "", f"line.items[{i}].account")
            touches_ar |= account["acctType"] == "AcctRec"
            debit = money(line, "debit", "erp", required=False) or ZERO
            credit = money(line, "credit", "erp", required=False) or ZERO
            if (debit > 0) == (credit > 0) or debit < 0 or credit < 0:
                raise err(
                    400,
                    "INVALID_FLD_VALUE",
                    "each line carries exactly one positive amount, debit or credit",
                    f"line.items[{i}]",
                )
            debit_total += debit
            credit_total += credit
            clean.append({**line, "account": {"id": account["id"]}, "debit": num(debit), "credit": num(credit)})
        if debit_total != credit_total:
            raise err(
                400,
                "UNBALANCED_JOURNAL",
                f"The total of debits ({debit_total}) must equal the total of credits ({credit_total}).",
                "line.items",
            )
        period = await period_for(tx, sub["id"], tran_date)
        check_period(period, kind, touches_ar=touches_ar)
        merged.update(
            subsidiary={"id": sub["id"]},
            postingPeriod={"id": period["id"]},
            currency=merged.get("currency") or sub["currency"],
            line={"items": clean},
            total=num(debit_total),
        )
        merged["exchangeRate"] = exchange_rate(merged, sub["currency"])
        return merged
    customer = await _must(tx, "customer", _ref(merged, "entity" if kind == "invoice" else "customer") or "", "entity")
    sub_id = customer["subsidiary"]["id"]
    period = await period_for(tx, sub_id, tran_date)
    check_period(period, kind, touches_ar=True)
    merged.update(subsidiary={"id": sub_id}, postingPeriod={"id": period["id"]})
    merged["currency"] = merged.get("currency") or customer["currency"]
    subsidiary = await _must(tx, "subsidiary", sub_id, "subsidiary")
    merged["exchangeRate"] = exchange_rate(merged, subsidiary["currency"])
    if kind == "invoice":
        merged["entity"] = {"id": customer["id"]}
        items = (merged.get("item") or {}).get("items") if isinstance(merged.get("item"), dict) else None
        if not items or not isinstance(items, list):
            raise err(400, "USER_ERROR", "An invoice needs item.items with at least one line.", "item.items")
        subtotal = ZERO
        clean = []
        for i, line in enumerate(items):
            if not isinstance(line, dict):
                raise err(400, "INVALID_CONTENT", "each item must be an object", f"item.items[{i}]")
            amount = money(line, "amount", "erp")
            assert amount is not None
            subtotal += amount
            clean.append({**line, "amount": num(amount)})
        tax = money(merged, "taxTotal", "erp", required=False) or ZERO
        total = subtotal + tax
        paid = Decimal(str(old["amountPaid"])) if old else ZERO
        if total < paid:
            raise err(400, "INVALID_FLD_VALUE", f"the new total {total} is below the amount already paid {paid}")
        merged.update(
            item={"items": clean},
            subtotal=num(subtotal),
            taxTotal=num(tax),
            total=num(total),
            amountPaid=num(paid),
            amountRemaining=num(total - paid),
            status="Paid In Full" if total == paid else "Open",
        )
        return merged
    # customerPayment
    if old is not None:
        raise err(400, "INVALID_FLD_VALUE", "a customer payment cannot be changed; void it and enter a new one")
    merged["customer"] = {"id": customer["id"]}
    amount = money(merged, "payment", "erp")
    assert amount is not None
    if amount <= 0:
        raise err(400, "INVALID_FLD_VALUE", "payment must be positive", "payment")
    applies = (merged.get("apply") or {}).get("items", []) if isinstance(merged.get("apply"), dict) else []
    applied = ZERO
    for i, line in enumerate(applies):
        inv = await _must(tx, "invoice", _ref(line, "doc") or "", f"apply.items[{i}].doc")
        if inv["entity"]["id"] != customer["id"]:
            raise err(
                400, "INVALID_KEY_OR_REF", f"invoice {inv['id']} belongs to another customer", f"apply.items[{i}]"
            )
        value = money(line, "amount", "erp")
        assert value is not None
        remaining = Decimal(str(inv["amountRemaining"])).quantize(Decimal("0.01"))
        if value <= 0 or value > remaining:
            raise err(
                400,
                "INVALID_FLD_VALUE",
                f"cannot apply {value} to invoice {inv['id']}: its amount remaining is {remaining}",
                f"apply.items[{i}].amount",
            )
        applied += value
        paid = Decimal(str(inv["amountPaid"])) + value
        left = remaining - value
        inv.update(amountPaid=num(paid), amountRemaining=num(left), status="Paid In Full" if left == 0 else "Open")
        await tx.update("invoice", inv["id"], inv)
    if applied > amount:
        raise err(400, "INVALID_FLD_VALUE", f"applied {applied} exceeds the payment {amount}", "apply.items")
    merged.update(payment=num(amount), applied=num(applied), unapplied=num(amount - applied))
    return merged


async def _after_write(tx: Tx, kind: str, record: dict[str, Any]) -> None:
    if kind == "subsidiary" and not await tx.find("accountingPeriod", {"subsidiary": {"id": record["id"]}}):
        year = tx.now.year
        for period in make_periods(record["id"], year - 1, year + 1):
            pid = str(await tx.next_number("erp:accountingPeriod"))
            period = _period_flags({**period, "id": pid, "lastModifiedDate": iso(tx.now)})
            await tx.insert("accountingPeriod", pid, period)
    if kind in ("invoice", "customerPayment"):
        cust_id = record["entity" if kind == "invoice" else "customer"]["id"]
        invoices = await tx.find("invoice", {"entity": {"id": cust_id}})
        balance = sum((Decimal(str(i["amountRemaining"])) for i in invoices), ZERO)
        customer = await tx.get("customer", cust_id)
        assert customer is not None
        customer.update(balance=num(balance), lastModifiedDate=iso(tx.now))
        customer["onCreditHold"] = on_credit_hold(customer)
        await tx.update("customer", cust_id, customer)


async def write(
    tx: Tx, kind: str, data: dict[str, Any], *, existing: dict[str, Any] | None, external_id: str | None
) -> dict[str, Any]:
    for reserved in ("id", "lastModifiedDate", "createdDate"):
        data.pop(reserved, None)
    record = await _build(tx, kind, data, existing)
    record["lastModifiedDate"] = iso(tx.now)
    if existing is None:
        if kind in TRANSACTIONS:
            record.setdefault("tranId", f"{kind[:3].upper()}{await tx.next_number('erp:tranId:' + kind):05d}")
        record["id"] = str(await tx.next_number(f"erp:{kind}"))
        record["createdDate"] = iso(tx.now)
        if external_id:
            record["externalId"] = external_id
        await tx.insert(kind, record["id"], record, external_id=external_id)
    else:
        record["id"] = existing["id"]
        await tx.update(kind, record["id"], record)
    await _after_write(tx, kind, record)
    return record


def _location(request: Request, kind: str, id_: str) -> Response:
    url = f"{str(request.base_url).rstrip('/')}{BASE}/{kind}/{id_}"
    return Response(status_code=204, headers={"Location": url})


async def _lookup(tx: Tx, kind: str, key: str) -> dict[str, Any] | None:
    if key.startswith("eid:"):
        return await tx.by_external_id(kind, key[4:])
    return await tx.get(kind, key)


# -- routes ---------------------------------------------------------------------------------------------


@router.get("/limits")
async def limits(request: Request) -> dict[str, Any]:
    box = sandbox(request)
    return {
        "concurrencyLimit": box.erp_limit,
        "inFlight": box.erp_in_flight,
        "rejectedSinceStart": box.erp_rejected,
        "sharedBy": "all integrations of the account",
    }


@router.post(ROUTE + "/{record_type}")
async def create(record_type: str, request: Request) -> Response:
    kind = _kind(record_type)
    data = await body(request, "erp")
    external_id = check(data, "externalId", "erp", str)
    box = sandbox(request)
    async with box.store.tx("erp") as tx:
        if external_id and await tx.by_external_id(kind, external_id) is not None:
            raise err(
                400,
                "DUP_RCRD",
                f"A {kind} with externalId '{external_id}' already exists; use PUT {BASE}/{kind}/eid:{external_id} "
                "to upsert.",
                "externalId",
            )
        record = await write(tx, kind, data, existing=None, external_id=external_id)
    return _location(request, kind, record["id"])


@router.put(ROUTE + "/{record_type}/{key}")
async def upsert(record_type: str, key: str, request: Request) -> Response:
    kind = _kind(record_type)
    if not key.startswith("eid:") or len(key) <= 4:
        raise err(400, "INVALID_REQUEST", "PUT is the upsert and needs an external id: PUT /{type}/eid:{externalId}.")
    data = await body(request, "erp")
    box = sandbox(request)
    async with box.store.tx("erp") as tx:
        existing = await tx.by_external_id(kind, key[4:])
        record = await write(tx, kind, data, existing=existing, external_id=key[4:])
    return _location(request, kind, record["id"])


@router.patch(ROUTE + "/{record_type}/{key}")
async def update(record_type: str, key: str, request: Request) -> Response:
    kind = _kind(record_type)
    data = await body(request, "erp")
    box = sandbox(request)
    async with box.store.tx("erp") as tx:
        existing = await _lookup(tx, kind, key)
        if existing is None:
            raise err(404, "NONEXISTENT_ID", f"The record {kind} {key} does not exist.")
        if kind == "accountingPeriod":
            raise err(403, "INSUFFICIENT_PERMISSION", "Periods are closed and locked by the period-close process.")
        await write(tx, kind, data, existing=existing, external_id=existing.get("externalId"))
    return Response(status_code=204)


@router.get(ROUTE + "/{record_type}/{key}")
async def get(record_type: str, key: str, request: Request) -> dict[str, Any]:
    kind = _kind(record_type)
    async with sandbox(request).store.tx("erp") as tx:
        record = await _lookup(tx, kind, key)
    if record is None:
        raise err(404, "NONEXISTENT_ID", f"The record {kind} {key} does not exist.")
    return record


_SINCE = re.compile(r'^lastModifiedDate\s+(ON_OR_AFTER|AFTER)\s+"([^"]+)"$')
_EQUAL = re.compile(r'^(\w+)\s+(?:EQUAL|IS)\s+"?([^"]*)"?$')
REFERENCES = {"subsidiary", "entity", "customer", "postingPeriod", "account"}
Q_HELP = (
    'q supports clauses joined by AND: lastModifiedDate ON_OR_AFTER|AFTER "<ISO 8601 timestamp>", '
    "<field> EQUAL <value> (references such as subsidiary compare their id)"
)


def parse_q(q: str) -> tuple[datetime | None, dict[str, Any]]:
    """NetSuite's record-collection `q`, the subset the sandbox understands."""
    since: datetime | None = None
    match: dict[str, Any] = {}
    for clause in re.split(r"\s+AND\s+", q.strip()):
        if m := _SINCE.match(clause):
            since = a_datetime(m.group(2), "q", "erp")
            if m.group(1) == "AFTER":
                since += timedelta(microseconds=1)
        elif m := _EQUAL.match(clause):
            field, value = m.group(1), m.group(2)
            match[field] = {"id": value} if field in REFERENCES else value
        else:
            raise err(400, "INVALID_PARAMETER", f"cannot read {clause!r}; {Q_HELP}", "q")
    return since, match


@router.get(ROUTE + "/{record_type}")
async def list_(
    record_type: str, request: Request, q: str | None = None, limit: int = 1000, offset: int = 0
) -> dict[str, Any]:
    """NetSuite's collection paging (limit ≤ 1000, offset) in lastModifiedDate order, filtered by `q`.

    Unlike NetSuite, the items carry the whole record, not just links, so a reconciler can snapshot.
    """
    kind = _kind(record_type)
    if not 1 <= limit <= 1000 or offset < 0:
        raise err(400, "INVALID_PARAMETER", "limit must be 1..1000 and offset ≥ 0")
    since, match = parse_q(q) if q else (None, {})
    box: Sandbox = sandbox(request)
    items, has_more, total = await box.store.page(
        "erp", kind, match=match or None, modified_since=since, offset=offset, limit=limit
    )
    return {"count": len(items), "hasMore": has_more, "offset": offset, "totalResults": total, "items": items}


async def set_period_status(box: Sandbox, period_id: str, status: str) -> dict[str, Any]:
    """The period-close process (an admin knob): open → ar_locked → closed, or reopen."""
    if status not in PERIOD_STATUSES:
        raise err(400, "INVALID_FLD_VALUE", f"status must be one of {PERIOD_STATUSES}")
    async with box.store.tx("erp") as tx:
        period = await tx.get("accountingPeriod", period_id)
        if period is None:
            raise err(404, "NONEXISTENT_ID", f"accounting period {period_id} does not exist")
        period = _period_flags({**period, "status": status, "lastModifiedDate": iso(tx.now)})
        await tx.update("accountingPeriod", period_id, period)
    return period
