"""Contract tests of the billing platform (Stripe-like) against the real sandbox process."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from .conftest import Receiver

pytestmark = pytest.mark.postgres

B = "/billing/v1"
DAY = 86_400


def email() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


async def customer(
    sb: httpx.AsyncClient, pm: str = "pm_card_visa", country: str = "US", **extra: Any
) -> dict[str, Any]:
    response = await sb.post(
        f"{B}/customers",
        json={
            "name": "Test Co",
            "email": email(),
            "address": {"country": country},
            "invoice_settings": {"default_payment_method": pm},
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def monthly(
    amount: int = 1000, currency: str = "usd", usage: str = "licensed", product: str = "SEAT"
) -> dict[str, Any]:
    return {
        "currency": currency,
        "unit_amount": amount,
        "product": product,
        "recurring": {"interval": "month", "usage_type": usage},
    }


async def subscribe(sb: httpx.AsyncClient, cust: str, *items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await sb.post(f"{B}/subscriptions", json={"customer": cust, "items": list(items), **extra})
    assert response.status_code == 200, response.text
    return response.json()


async def invoice(sb: httpx.AsyncClient, invoice_id: str) -> dict[str, Any]:
    response = await sb.get(f"{B}/invoices/{invoice_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def advance(sb: httpx.AsyncClient, seconds: float) -> None:
    response = await sb.post("/admin/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


async def test_same_idempotency_key_replays_the_first_response(sb: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    body = {"name": "Idem Co", "email": email()}
    first = await sb.post(f"{B}/customers", json=body, headers={"Idempotency-Key": key})
    second = await sb.post(f"{B}/customers", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other = await sb.post(f"{B}/customers", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert other.json()["id"] != first.json()["id"]


async def test_same_key_with_other_parameters_is_an_idempotency_error(sb: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    assert (await sb.post(f"{B}/customers", json={"name": "A"}, headers={"Idempotency-Key": key})).status_code == 200
    response = await sb.post(f"{B}/customers", json={"name": "B"}, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "idempotency_error"
    assert key in error["message"]


async def test_timeout_after_write_is_resolved_by_retrying_with_the_same_key(sb: httpx.AsyncClient) -> None:
    await sb.put(
        "/admin/faults",
        json={"system": "billing", "endpoint": "POST /billing/v1/customers", "timeout_after_write_rate": 1.0},
    )
    key = uuid.uuid4().hex
    mail = email()
    first = await sb.post(f"{B}/customers", json={"name": "Doubt", "email": mail}, headers={"Idempotency-Key": key})
    assert first.status_code == 504  # the caller cannot tell whether the customer exists
    await sb.delete("/admin/faults")
    retry = await sb.post(f"{B}/customers", json={"name": "Doubt", "email": mail}, headers={"Idempotency-Key": key})
    assert retry.status_code == 200
    assert retry.headers.get("Idempotent-Replayed") == "true"  # the write had been applied the first time
    listed = (await sb.get(f"{B}/customers", params={"limit": 100})).json()["data"]
    assert [c["id"] for c in listed if c["email"] == mail] == [retry.json()["id"]]


async def test_stripe_error_shape_for_bad_input(sb: httpx.AsyncClient) -> None:
    response = await sb.post(f"{B}/subscriptions", json={"customer": "cus_nope", "items": [{"price_data": monthly()}]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    response = await sb.post(f"{B}/customers", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert set(response.json()["error"]) >= {"type", "code", "message"}
    cust = await customer(sb)
    response = await sb.post(
        f"{B}/subscriptions",
        json={
            "customer": cust["id"],
            "items": [{"price_data": monthly()}, {"price_data": {**monthly(), "recurring": {"interval": "year"}}}],
        },
    )
    assert response.status_code == 400
    assert "same recurring interval" in response.json()["error"]["message"]


async def test_subscription_first_invoice_is_paid_with_tax_computed_at_finalization(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb, country="DE")
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(10_000, "eur"), "quantity": 3})
    assert sub["status"] == "active"
    inv = await invoice(sb, sub["latest_invoice"])
    assert inv["status"] == "paid"
    assert inv["subtotal"] == 30_000
    assert inv["tax"] == 5_700  # 19 % German VAT
    assert inv["total"] == inv["amount_paid"] == 35_700
    assert inv["lines"]["data"][0]["period"] == {"start": sub["current_period_start"], "end": sub["current_period_end"]}
    assert inv["lines"]["data"][0]["proration"] is False
    charges = (await sb.get(f"{B}/charges", params={"customer": cust["id"]})).json()["data"]
    assert [c["status"] for c in charges] == ["succeeded"]


async def test_reverse_charge_customer_pays_no_tax(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb, country="FR", tax_exempt="reverse")
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(10_000, "eur")})
    inv = await invoice(sb, sub["latest_invoice"])
    assert (inv["tax"], inv["reverse_charge"]) == (0, True)


async def test_quantity_change_prorates_and_always_invoice_bills_now(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(3_000), "quantity": 1})
    half = (sub["current_period_start"] + sub["current_period_end"]) // 2
    item = sub["items"]["data"][0]
    response = await sb.post(
        f"{B}/subscriptions/{sub['id']}",
        json={
            "items": [{"id": item["id"], "quantity": 3}],
            "proration_behavior": "always_invoice",
            "proration_date": half,
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["items"]["data"][0]["quantity"] == 3
    inv = await invoice(sb, updated["latest_invoice"])
    assert inv["billing_reason"] == "subscription_update"
    amounts = sorted(line["amount"] for line in inv["lines"]["data"])
    assert all(line["proration"] for line in inv["lines"]["data"])
    assert amounts[0] < 0 < amounts[1]  # unused time credited, remaining time charged
    assert abs(amounts[0] + 1_500) <= 1 and abs(amounts[1] - 4_500) <= 1
    assert inv["status"] == "paid"


async def test_billing_cycle_anchor_coterms_with_a_prorated_first_invoice(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    now = (await sb.get("/admin/clock")).json()
    start = int(__import__("datetime").datetime.fromisoformat(now["now"].replace("Z", "+00:00")).timestamp())
    anchor = start + 10 * DAY
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(31_000)}, billing_cycle_anchor=anchor)
    assert sub["current_period_end"] == anchor
    inv = await invoice(sb, sub["latest_invoice"])
    line = inv["lines"]["data"][0]
    assert line["proration"] is True
    assert 0 < line["amount"] < 31_000
    assert line["period"]["end"] == anchor


async def test_soft_declines_follow_the_dunning_schedule_then_cancel(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(2_000)})
    declining = {"invoice_settings": {"default_payment_method": "pm_card_chargeDeclinedInsufficientFunds"}}
    assert (await sb.post(f"{B}/customers/{cust['id']}", json=declining)).status_code == 200
    # one jump past the period end and the whole schedule: each step runs at its own due time, in order
    end = sub["current_period_end"]
    await advance(sb, end - _now(await sb.get("/admin/clock")) + 16 * DAY)
    renewed = (await sb.get(f"{B}/subscriptions/{sub['id']}")).json()
    assert renewed["latest_invoice"] != sub["latest_invoice"]
    inv = await invoice(sb, renewed["latest_invoice"])
    assert inv["billing_reason"] == "subscription_cycle"
    assert inv["created"] == end and inv["status_transitions"]["finalized_at"] == end + 3600
    assert inv["attempt_count"] == 4
    assert inv["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert inv["status"] == "uncollectible"
    assert inv["status_transitions"]["marked_uncollectible_at"] == end + 3600 + (3 + 5 + 7) * DAY
    assert renewed["status"] == "canceled"
    charges = (await sb.get(f"{B}/charges", params={"customer": cust["id"], "limit": 100})).json()["data"]
    failed = sorted(c["created"] for c in charges if c["status"] == "failed")
    assert [t - failed[0] for t in failed] == [0, 3 * DAY, 8 * DAY, 15 * DAY]
    # the subscription went past_due on the first failure: its events say so, in order
    events = (await sb.get(f"{B}/events", params={"type": "customer.subscription.*", "limit": 100})).json()["data"]
    mine = [e for e in reversed(events) if e["data"]["object"]["id"] == sub["id"]]
    assert [e["data"]["object"]["status"] for e in mine][-2:] == ["past_due", "canceled"]


def _now(response: httpx.Response) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(response.json()["now"].replace("Z", "+00:00")).timestamp())


async def test_hard_decline_is_not_retried_until_a_new_payment_method(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb, pm="pm_card_chargeDeclinedLostCard")
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(5_000)})
    assert sub["status"] == "incomplete"
    inv = await invoice(sb, sub["latest_invoice"])
    assert inv["status"] == "open"
    assert inv["next_payment_attempt"] is None  # hard decline: no smart retry
    assert inv["last_payment_error"]["decline_type"] == "hard"
    paid = await sb.post(f"{B}/invoices/{inv['id']}/pay", json={})
    assert paid.status_code == 402
    assert paid.json()["error"]["type"] == "card_error"
    await sb.post(f"{B}/customers/{cust['id']}", json={"invoice_settings": {"default_payment_method": "pm_card_visa"}})
    assert (await invoice(sb, inv["id"]))["status"] == "paid"
    assert (await sb.get(f"{B}/subscriptions/{sub['id']}")).json()["status"] == "active"


async def test_metered_usage_is_billed_in_arrears(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(7, usage="metered", product="API")})
    first = await invoice(sb, sub["latest_invoice"])
    assert first["total"] == 0 and first["status"] == "paid"
    item = sub["items"]["data"][0]
    for quantity in (100, 250):
        response = await sb.post(f"{B}/subscription_items/{item['id']}/usage_records", json={"quantity": quantity})
        assert response.status_code == 200, response.text
    outside = await sb.post(
        f"{B}/subscription_items/{item['id']}/usage_records",
        json={"quantity": 1, "timestamp": sub["current_period_end"] + 10 * DAY},
    )
    assert outside.status_code == 400
    await advance(sb, sub["current_period_end"] - _now(await sb.get("/admin/clock")) + 60)
    renewed = (await sb.get(f"{B}/subscriptions/{sub['id']}")).json()
    inv = await invoice(sb, renewed["latest_invoice"])
    usage = [line for line in inv["lines"]["data"] if line["price"] == item["price"]["id"]]
    assert [(u["quantity"], u["amount"]) for u in usage] == [(350, 350 * 7)]
    assert usage[0]["period"]["end"] == sub["current_period_end"]


async def test_refunds_credit_notes_and_invoice_state_machine(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(10_000)})
    inv = await invoice(sb, sub["latest_invoice"])
    charge = inv["charge"]
    refund = await sb.post(f"{B}/refunds", json={"charge": charge, "amount": 4_000})
    assert refund.status_code == 200 and refund.json()["amount"] == 4_000
    too_much = await sb.post(f"{B}/refunds", json={"charge": charge, "amount": 7_000})
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"
    void_paid = await sb.post(f"{B}/invoices/{inv['id']}/void", json={})
    assert void_paid.status_code == 400
    # a manual invoice: draft → open, a pre-payment credit note lowers what is due, then void
    item = await sb.post(f"{B}/invoiceitems", json={"customer": cust["id"], "amount": 5_000, "currency": "usd"})
    assert item.status_code == 200
    draft = (await sb.post(f"{B}/invoices", json={"customer": cust["id"]})).json()
    assert draft["status"] == "draft" and draft["total"] == 5_000
    opened = (await sb.post(f"{B}/invoices/{draft['id']}/finalize", json={"auto_advance": False})).json()
    assert opened["status"] == "open" and opened["number"]
    note = await sb.post(f"{B}/credit_notes", json={"invoice": opened["id"], "amount": 1_000, "reason": "duplicate"})
    assert note.status_code == 200 and note.json()["type"] == "pre_payment"
    assert (await invoice(sb, opened["id"]))["amount_remaining"] == 4_000
    voided = await sb.post(f"{B}/invoices/{opened['id']}/void", json={})
    assert voided.json()["status"] == "void"
    again = await sb.post(f"{B}/invoices/{opened['id']}/finalize", json={})
    assert again.status_code == 400


async def test_events_api_lists_events_since_an_id(sb: httpx.AsyncClient) -> None:
    marker = (await sb.get(f"{B}/events", params={"limit": 1})).json()["data"]
    cust = await customer(sb)
    await subscribe(sb, cust["id"], {"price_data": monthly()})
    params: dict[str, Any] = {"limit": 100}
    if marker:
        params["ending_before"] = marker[0]["id"]
    newer = (await sb.get(f"{B}/events", params=params)).json()["data"]
    types = [e["type"] for e in newer]
    assert "customer.created" in types and "invoice.paid" in types
    # newest first, as Stripe lists: the customer came before its subscription's invoice was paid
    assert types.index("invoice.paid") < types.index("customer.created")
    ids = [e["id"] for e in newer]
    assert marker == [] or marker[0]["id"] not in ids
    missing = await sb.get(f"{B}/events", params={"ending_before": "evt_nope"})
    assert missing.status_code == 400


async def test_webhooks_are_signed_and_verified(sb: httpx.AsyncClient, billing_receiver: Receiver) -> None:
    cust = await customer(sb)
    events = await billing_receiver.wait_for(lambda e: e["data"]["object"].get("id") == cust["id"])
    assert events[0]["type"] == "customer.created"
    assert billing_receiver.signature_headers[-1].startswith("t=")


async def test_secret_rotation_signs_with_both_secrets(sb: httpx.AsyncClient, billing_receiver: Receiver) -> None:
    new_secret = "whsec_rotated_secret_1"
    rotated = await sb.post(f"/admin/webhooks/{billing_receiver.subscriber_id}/rotate", json={"secret": new_secret})
    assert rotated.json()["secrets"][-1] == new_secret and len(rotated.json()["secrets"]) == 2
    billing_receiver.secrets = [new_secret]  # the receiver already switched: the new v1 must verify
    cust = await customer(sb)
    await billing_receiver.wait_for(lambda e: e["data"]["object"].get("id") == cust["id"])
    assert billing_receiver.signature_headers[-1].count("v1=") == 2


async def test_bad_signature_is_rejected_and_delivery_retried_with_backoff(
    sb: httpx.AsyncClient, billing_receiver: Receiver
) -> None:
    billing_receiver.secrets = ["whsec_not_the_one_we_gave"]
    cust = await customer(sb)
    deliveries: list[dict[str, Any]] = []
    for _ in range(100):
        deliveries = (await sb.get(f"/admin/webhooks/{billing_receiver.subscriber_id}/deliveries")).json()
        if any(d["attempts"] >= 1 and d["type"] == "customer.created" for d in deliveries):
            break
        await __import__("asyncio").sleep(0.05)
    assert "mismatch" in billing_receiver.rejected
    failed = [d for d in deliveries if d["attempts"] >= 1 and d["type"] == "customer.created"]
    assert failed and all(d["status"] == "pending" and d["last_status"] == 401 for d in failed)
    assert billing_receiver.events == []
    billing_receiver.secrets = ["whsec_billing_test_secret"]
    await advance(sb, 90)  # past the first backoff (60 s): delivered at last, at least once
    await billing_receiver.wait_for(lambda e: e["data"]["object"].get("id") == cust["id"])


async def test_webhook_drop_and_duplicate_knobs(sb: httpx.AsyncClient, billing_receiver: Receiver) -> None:
    await sb.put("/admin/faults", json={"system": "billing", "endpoint": "webhooks", "webhook_duplicate_rate": 1.0})
    cust = await customer(sb)
    await billing_receiver.wait_for(lambda e: e["data"]["object"].get("id") == cust["id"])
    await __import__("asyncio").sleep(0.3)
    copies = [
        e
        for e in billing_receiver.events
        if e["type"] == "customer.created" and e["data"]["object"]["id"] == cust["id"]
    ]
    assert len(copies) == 2 and copies[0]["id"] == copies[1]["id"]
    await sb.put("/admin/faults", json={"system": "billing", "endpoint": "webhooks", "webhook_drop_rate": 1.0})
    dropped = await customer(sb)
    for _ in range(100):
        rows = (await sb.get(f"/admin/webhooks/{billing_receiver.subscriber_id}/deliveries")).json()
        if rows and all(r["status"] != "pending" for r in rows):
            break
        await __import__("asyncio").sleep(0.05)
    assert not [e for e in billing_receiver.events if e["data"]["object"].get("id") == dropped["id"]]
    # the events API still has it: that is how a subscriber recovers what was dropped
    listed = (await sb.get(f"{B}/events", params={"type": "customer.created", "limit": 20})).json()["data"]
    assert dropped["id"] in [e["data"]["object"]["id"] for e in listed]


async def test_429_knob_answers_with_retry_after(sb: httpx.AsyncClient) -> None:
    await sb.put("/admin/faults", json={"system": "billing", "rate_429": 1.0})
    response = await sb.get(f"{B}/customers")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "rate_limit"


async def test_unpaid_first_invoice_expires_the_subscription(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb, pm="pm_card_chargeDeclined")
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(1_500)})
    assert sub["status"] == "incomplete"
    first = await invoice(sb, sub["latest_invoice"])
    assert first["next_payment_attempt"] is None  # first invoices are not retried
    assert (await sb.get(f"{B}/customers/{cust['id']}")).json()["delinquent"] is True
    await advance(sb, 23 * 3600 + 60)
    assert (await sb.get(f"{B}/subscriptions/{sub['id']}")).json()["status"] == "incomplete_expired"
    assert (await invoice(sb, first["id"]))["status"] == "void"
    assert (await sb.get(f"{B}/customers/{cust['id']}")).json()["delinquent"] is False


async def test_delayed_webhooks_wait_for_sandbox_time(sb: httpx.AsyncClient, billing_receiver: Receiver) -> None:
    await sb.put(
        "/admin/faults",
        json={
            "system": "billing",
            "endpoint": "webhooks",
            "webhook_delay_rate": 1.0,
            "webhook_delay_seconds": 3600,
            "seed": 3,
        },
    )
    cust = await customer(sb)
    for _ in range(60):
        rows = (await sb.get(f"/admin/webhooks/{billing_receiver.subscriber_id}/deliveries")).json()
        if rows and all(r["status"] == "pending" for r in rows) and len(rows) >= 1:
            await __import__("asyncio").sleep(0.3)
            break
        await __import__("asyncio").sleep(0.05)
    assert not [e for e in billing_receiver.events if e["data"]["object"].get("id") == cust["id"]]
    await sb.delete("/admin/faults")
    await advance(sb, 3601)
    await billing_receiver.wait_for(lambda e: e["data"]["object"].get("id") == cust["id"])


async def test_post_payment_credit_note_refunds_part_and_credits_the_rest(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    sub = await subscribe(sb, cust["id"], {"price_data": monthly(10_000)})
    paid = await invoice(sb, sub["latest_invoice"])
    note = await sb.post(f"{B}/credit_notes", json={"invoice": paid["id"], "amount": 3_000, "refund_amount": 1_000})
    assert note.status_code == 200, note.text
    assert note.json()["type"] == "post_payment" and note.json()["refund"]
    assert (await sb.get(f"{B}/charges/{paid['charge']}")).json()["amount_refunded"] == 1_000
    assert (await sb.get(f"{B}/customers/{cust['id']}")).json()["balance"] == -2_000
    too_much = await sb.post(f"{B}/credit_notes", json={"invoice": paid["id"], "amount": 8_000})
    assert too_much.status_code == 400
    # the credit balance pays part of the next invoice
    await advance(sb, sub["current_period_end"] - _now(await sb.get("/admin/clock")) + 2 * 3600)
    renewal = await invoice(sb, (await sb.get(f"{B}/subscriptions/{sub['id']}")).json()["latest_invoice"])
    assert renewal["starting_balance_applied"] == 2_000
    assert renewal["amount_due"] == 8_000 and renewal["status"] == "paid"


async def test_lists_page_with_starting_after_newest_first(sb: httpx.AsyncClient) -> None:
    cust = await customer(sb)
    for amount in (100, 200, 300):
        await sb.post(f"{B}/invoiceitems", json={"customer": cust["id"], "amount": amount, "currency": "usd"})
        await sb.post(f"{B}/invoices", json={"customer": cust["id"]})
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"customer": cust["id"], "limit": 2}
        if cursor:
            params["starting_after"] = cursor
        page = (await sb.get(f"{B}/invoices", params=params)).json()
        seen += [inv["total"] for inv in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == [300, 200, 100]


async def test_form_encoded_requests_as_stripe_clients_send_them(sb: httpx.AsyncClient) -> None:
    form = {
        "name": "Form Co",
        "email": email(),
        "invoice_settings[default_payment_method]": "pm_card_visa",
        "address[country]": "NL",
        "metadata[crm_account_id]": "001ABC",
    }
    cust = await sb.post(f"{B}/customers", data=form)
    assert cust.status_code == 200, cust.text
    assert cust.json()["metadata"] == {"crm_account_id": "001ABC"}
    sub = await sb.post(
        f"{B}/subscriptions",
        data={
            "customer": cust.json()["id"],
            "items[0][price_data][currency]": "eur",
            "items[0][price_data][unit_amount]": "1000",
            "items[0][price_data][product]": "SEAT",
            "items[0][price_data][recurring][interval]": "month",
            "items[0][quantity]": "4",
        },
    )
    assert sub.status_code == 200, sub.text
    inv = await invoice(sb, sub.json()["latest_invoice"])
    assert (inv["subtotal"], inv["tax"]) == (4_000, 840)  # 21 % Dutch VAT
    bad = await sb.post(f"{B}/subscriptions", data={"customer": cust.json()["id"], "items[0][quantity]": "four"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "parameter_invalid_integer"
