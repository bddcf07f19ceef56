"""Contract tests of the ERP (NetSuite-like) against the real sandbox process."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.postgres

R = "/erp/services/rest/record/v1"


def eid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create(sb: httpx.AsyncClient, kind: str, body: dict[str, Any]) -> str:
    response = await sb.post(f"{R}/{kind}", json=body)
    assert response.status_code == 204, response.text
    assert response.content == b""
    return response.headers["Location"].rsplit("/", 1)[1]


async def get(sb: httpx.AsyncClient, kind: str, key: str) -> dict[str, Any]:
    response = await sb.get(f"{R}/{kind}/{key}")
    assert response.status_code == 200, response.text
    return response.json()


async def today(sb: httpx.AsyncClient) -> date:
    return date.fromisoformat((await sb.get("/admin/clock")).json()["now"][:10])


@pytest.fixture
async def books(sb: httpx.AsyncClient) -> dict[str, str]:
    """A subsidiary with its period calendar, a chart of accounts and a customer."""
    sub = await create(
        sb, "subsidiary", {"name": "Test EU B.V.", "country": "NL", "currency": "EUR", "externalId": eid("sub")}
    )
    ids = {"subsidiary": sub}
    for key, number, acct_type in (
        ("ar", "1100", "AcctRec"),
        ("bank", "1000", "Bank"),
        ("revenue", "4000", "Income"),
        ("tax", "2200", "OthCurrLiab"),
    ):
        ids[key] = await create(sb, "account", {"acctNumber": number, "acctName": key, "acctType": acct_type})
    ids["customer"] = await create(sb, "customer", {"companyName": "Kunde GmbH", "subsidiary": {"id": sub}})
    return ids


async def period_of(sb: httpx.AsyncClient, subsidiary: str, day: date) -> dict[str, Any]:
    q = f"subsidiary EQUAL {subsidiary}"
    items = (await sb.get(f"{R}/accountingPeriod", params={"q": q, "limit": 1000})).json()["items"]
    assert len(items) == 36  # last year, this year and next, by month
    found = [p for p in items if p["startDate"] <= day.isoformat() <= p["endDate"]]
    assert len(found) == 1
    return found[0]


def invoice_body(customer: str, day: date, amount: float = 100.0, **extra: Any) -> dict[str, Any]:
    return {
        "entity": {"id": customer},
        "tranDate": day.isoformat(),
        "item": {"items": [{"description": "Seats", "amount": amount}]},
        "taxTotal": 21.0,
        **extra,
    }


async def test_subsidiary_gets_a_period_calendar_and_customers_its_currency(
    sb: httpx.AsyncClient, books: dict[str, str]
) -> None:
    period = await period_of(sb, books["subsidiary"], await today(sb))
    assert period["status"] == "open" and period["isClosed"] is False
    customer = await get(sb, "customer", books["customer"])
    assert customer["currency"] == "EUR"
    assert customer["subsidiary"] == {"id": books["subsidiary"]}
    assert customer["creditHoldOverride"] == "AUTO"


async def test_invoice_create_answers_204_with_location_and_computes_totals(
    sb: httpx.AsyncClient, books: dict[str, str]
) -> None:
    inv_id = await create(sb, "invoice", invoice_body(books["customer"], await today(sb)))
    inv = await get(sb, "invoice", inv_id)
    assert (inv["subtotal"], inv["taxTotal"], inv["total"], inv["amountRemaining"], inv["status"]) == (
        100.0,
        21.0,
        121.0,
        121.0,
        "Open",
    )
    assert (await get(sb, "customer", books["customer"]))["balance"] == 121.0


async def test_external_id_upsert_is_idempotent(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    key = eid("inv")
    body = invoice_body(books["customer"], await today(sb))
    first = await sb.put(f"{R}/invoice/eid:{key}", json=body)
    second = await sb.put(f"{R}/invoice/eid:{key}", json={**body, "memo": "again"})
    assert first.status_code == second.status_code == 204
    assert first.headers["Location"] == second.headers["Location"]
    inv = await get(sb, "invoice", f"eid:{key}")
    assert inv["externalId"] == key and inv["memo"] == "again"
    duplicate = await sb.post(f"{R}/invoice", json={**body, "externalId": key})
    assert duplicate.status_code == 400
    assert duplicate.json()["o:errorDetails"][0]["o:errorCode"] == "DUP_RCRD"


async def test_journal_entry_must_balance(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    day = (await today(sb)).isoformat()
    lines = [{"account": {"id": books["bank"]}, "debit": 100.0}, {"account": {"id": books["revenue"]}, "credit": 99.99}]
    response = await sb.post(
        f"{R}/journalEntry", json={"subsidiary": {"id": books["subsidiary"]}, "tranDate": day, "line": {"items": lines}}
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}
    assert body["o:errorDetails"][0]["o:errorCode"] == "UNBALANCED_JOURNAL"
    lines[1]["credit"] = 100.0
    je = await get(
        sb,
        "journalEntry",
        await create(
            sb, "journalEntry", {"subsidiary": {"id": books["subsidiary"]}, "tranDate": day, "line": {"items": lines}}
        ),
    )
    assert je["total"] == 100.0 and je["currency"] == "EUR"


async def test_posting_into_a_closed_or_locked_period_is_rejected(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    day = await today(sb)
    period = await period_of(sb, books["subsidiary"], day)
    inv_id = await create(sb, "invoice", invoice_body(books["customer"], day))
    locked = await sb.post(f"/admin/erp/periods/{period['id']}", json={"status": "ar_locked"})
    assert locked.status_code == 200 and locked.json()["arLocked"] is True
    refused = await sb.post(f"{R}/invoice", json=invoice_body(books["customer"], day))
    assert refused.status_code == 400
    assert refused.json()["o:errorDetails"][0]["o:errorCode"] == "PERIOD_LOCKED"
    gl_only = {
        "subsidiary": {"id": books["subsidiary"]},
        "tranDate": day.isoformat(),
        "line": {
            "items": [
                {"account": {"id": books["bank"]}, "debit": 5},
                {"account": {"id": books["revenue"]}, "credit": 5},
            ]
        },
    }
    assert (await sb.post(f"{R}/journalEntry", json=gl_only)).status_code == 204  # A/R lock leaves the GL open
    ar_journal = {
        **gl_only,
        "line": {
            "items": [{"account": {"id": books["ar"]}, "debit": 5}, {"account": {"id": books["revenue"]}, "credit": 5}]
        },
    }
    assert (await sb.post(f"{R}/journalEntry", json=ar_journal)).json()["o:errorDetails"][0][
        "o:errorCode"
    ] == "PERIOD_LOCKED"
    await sb.post(f"/admin/erp/periods/{period['id']}", json={"status": "closed"})
    closed = await sb.post(f"{R}/journalEntry", json=gl_only)
    assert closed.status_code == 400
    detail = closed.json()["o:errorDetails"][0]
    assert detail["o:errorCode"] == "PERIOD_CLOSED" and period["periodName"] in detail["detail"]
    edit = await sb.patch(f"{R}/invoice/{inv_id}", json={"memo": "late change"})
    assert edit.json()["o:errorDetails"][0]["o:errorCode"] == "PERIOD_CLOSED"
    await sb.post(f"/admin/erp/periods/{period['id']}", json={"status": "open"})
    assert (await sb.patch(f"{R}/invoice/{inv_id}", json={"memo": "reopened"})).status_code == 204


async def test_customer_payment_applies_to_invoices(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    day = (await today(sb)).isoformat()
    inv_id = await create(sb, "invoice", invoice_body(books["customer"], date.fromisoformat(day)))
    over = await sb.post(
        f"{R}/customerPayment",
        json={
            "customer": {"id": books["customer"]},
            "tranDate": day,
            "payment": 500,
            "apply": {"items": [{"doc": {"id": inv_id}, "amount": 200}]},
        },
    )
    assert over.status_code == 400 and "amount remaining is 121.00" in over.json()["o:errorDetails"][0]["detail"]
    await create(
        sb,
        "customerPayment",
        {
            "customer": {"id": books["customer"]},
            "tranDate": day,
            "payment": 121,
            "apply": {"items": [{"doc": {"id": inv_id}, "amount": 121}]},
        },
    )
    inv = await get(sb, "invoice", inv_id)
    assert (inv["status"], inv["amountRemaining"]) == ("Paid In Full", 0.0)
    assert (await get(sb, "customer", books["customer"]))["balance"] == 0.0


async def test_governance_limit_answers_429_with_retry_after(sb: httpx.AsyncClient) -> None:
    await sb.put("/admin/erp/limit", json={"concurrency": 2})
    await sb.put("/admin/faults", json={"system": "erp", "latency_ms": 400})
    limits = (await sb.get("/erp/limits")).json()
    assert limits["concurrencyLimit"] == 2
    responses = await asyncio.gather(*(sb.get(f"{R}/subsidiary", params={"limit": 1}) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.headers["Retry-After"] == "1"
    assert rejected.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"


async def test_poll_modified_since_with_paging_and_out_of_band_edit(
    sb: httpx.AsyncClient, books: dict[str, str]
) -> None:
    day = await today(sb)
    ids = [await create(sb, "invoice", invoice_body(books["customer"], day, amount=10.0 * (i + 1))) for i in range(3)]
    since = (await get(sb, "invoice", ids[0]))["lastModifiedDate"]
    seen: list[str] = []
    offset = 0
    while True:
        page = (
            await sb.get(
                f"{R}/invoice", params={"q": f'lastModifiedDate ON_OR_AFTER "{since}"', "limit": 2, "offset": offset}
            )
        ).json()
        seen += [i["id"] for i in page["items"]]
        if not page["hasMore"]:
            break
        offset += 2
    assert set(ids) <= set(seen)
    # a person changes an amount in the ERP's UI: the poller sees the record move, with the new amount
    after = (await get(sb, "invoice", ids[2]))["lastModifiedDate"]
    await asyncio.sleep(0.01)
    edit = await sb.post(
        "/admin/edit", json={"system": "erp", "kind": "invoice", "id": ids[1], "fields": {"total": 999.0}}
    )
    assert edit.status_code == 200
    page = (await sb.get(f"{R}/invoice", params={"q": f'lastModifiedDate AFTER "{after}"'})).json()
    assert [(i["id"], i["total"]) for i in page["items"] if i["id"] in ids] == [(ids[1], 999.0)]
    bad = await sb.get(f"{R}/invoice", params={"q": "amount > 5"})
    assert bad.status_code == 400 and bad.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"


async def test_erp_errors_in_netsuite_shape(sb: httpx.AsyncClient) -> None:
    missing = await sb.get(f"{R}/invoice/999999999")
    assert missing.status_code == 404 and missing.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"
    unknown = await sb.get(f"{R}/widget/1")
    assert unknown.status_code == 404 and unknown.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_RCRD_TYPE"
    bad_ref = await sb.post(f"{R}/customer", json={"companyName": "X", "subsidiary": {"id": "424242"}})
    assert bad_ref.status_code == 400 and bad_ref.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_KEY_OR_REF"
    not_json = await sb.post(f"{R}/customer", content=b"[1,", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_CONTENT"
    no_webhooks = await sb.post("/admin/webhooks", json={"system": "erp", "url": "http://127.0.0.1:9/x"})
    assert no_webhooks.status_code == 400


async def test_foreign_currency_invoice_carries_an_exchange_rate(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    usd_customer = await create(
        sb, "customer", {"companyName": "Yankee Inc", "subsidiary": {"id": books["subsidiary"]}, "currency": "USD"}
    )
    inv = await get(sb, "invoice", await create(sb, "invoice", invoice_body(usd_customer, await today(sb))))
    assert inv["currency"] == "USD" and 0.9 < inv["exchangeRate"] < 0.95  # USD → EUR
    eur = await get(sb, "invoice", await create(sb, "invoice", invoice_body(books["customer"], await today(sb))))
    assert eur["exchangeRate"] == 1.0
    odd = await sb.post(f"{R}/invoice", json=invoice_body(usd_customer, await today(sb), currency="XAU"))
    assert odd.status_code == 400 and odd.json()["o:errorDetails"][0]["o:errorPath"] == "currency"


async def test_credit_hold_follows_the_limit_unless_overridden(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    cust = await create(
        sb, "customer", {"companyName": "Tight GmbH", "subsidiary": {"id": books["subsidiary"]}, "creditLimit": 100}
    )
    assert (await get(sb, "customer", cust))["onCreditHold"] is False
    await create(sb, "invoice", invoice_body(cust, await today(sb)))  # 121.00 > 100 limit
    assert (await get(sb, "customer", cust))["onCreditHold"] is True
    assert (await sb.patch(f"{R}/customer/{cust}", json={"creditHoldOverride": "OFF"})).status_code == 204
    assert (await get(sb, "customer", cust))["onCreditHold"] is False


async def test_in_doubt_upsert_is_resolved_by_the_external_id(sb: httpx.AsyncClient, books: dict[str, str]) -> None:
    await sb.put("/admin/faults", json={"system": "erp", "endpoint": "PUT /erp/", "timeout_after_write_rate": 1.0})
    key = eid("inv")
    body = invoice_body(books["customer"], await today(sb))
    first = await sb.put(f"{R}/invoice/eid:{key}", json=body)
    assert first.status_code == 504  # applied, but the caller cannot know
    await sb.delete("/admin/faults")
    retry = await sb.put(f"{R}/invoice/eid:{key}", json=body)
    assert retry.status_code == 204
    page = (await sb.get(f"{R}/invoice", params={"q": f"externalId EQUAL {key}"})).json()
    assert page["totalResults"] == 1
