"""Contract tests of the CRM (Salesforce-like) against the real sandbox process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from .conftest import Receiver

pytestmark = pytest.mark.postgres

S = "/crm/services/data/v60.0/sobjects"
APEX = "/crm/services/apexrest"


async def account(sb: httpx.AsyncClient, **fields: Any) -> str:
    body = {
        "Name": f"Acct {uuid.uuid4().hex[:8]}",
        "BillingCountry": "DE",
        "CurrencyIsoCode": "EUR",
        "Legal_Entity__c": "EU",
        "Tax_Id__c": "DE123456789",
        **fields,
    }
    response = await sb.post(f"{S}/Account", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["success"] is True and created["errors"] == []
    return str(created["id"])


async def won_contract(
    sb: httpx.AsyncClient, account_id: str, start: str = "2026-01-01", term: int = 12
) -> dict[str, Any]:
    opp = (
        await sb.post(
            f"{S}/Opportunity",
            json={
                "Name": "Deal",
                "AccountId": account_id,
                "StageName": "Negotiation",
                "CloseDate": start,
                "CurrencyIsoCode": "EUR",
            },
        )
    ).json()["id"]
    for code, qty, price, freq in (("PLAT", 1, 12000, "Annual"), ("SEAT", 20, 40, "Monthly")):
        response = await sb.post(
            f"{S}/OpportunityLineItem",
            json={
                "OpportunityId": opp,
                "Product_Code__c": code,
                "Quantity": qty,
                "UnitPrice": price,
                "Billing_Frequency__c": freq,
            },
        )
        assert response.status_code == 201, response.text
    not_won = await sb.post(f"{APEX}/opportunities/{opp}/contract", json={})
    assert not_won.status_code == 400
    assert (await sb.patch(f"{S}/Opportunity/{opp}", json={"StageName": "Closed Won"})).status_code == 204
    response = await sb.post(f"{APEX}/opportunities/{opp}/contract", json={"StartDate": start, "ContractTerm": term})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_account_rest_shapes_and_hierarchy(sb: httpx.AsyncClient) -> None:
    parent = await account(sb)
    child = await account(sb, ParentId=parent)
    record = (await sb.get(f"{S}/Account/{child}")).json()
    assert record["attributes"]["type"] == "Account" and record["ParentId"] == parent
    assert len(child) == 18 and child.startswith("001")
    loop = await sb.patch(f"{S}/Account/{parent}", json={"ParentId": child})
    assert loop.status_code == 400
    assert loop.json()[0]["errorCode"] == "CIRCULAR_DEPENDENCY"
    bad = await sb.post(f"{S}/Account", json={"Name": "X", "Colour__c": "red"})
    assert bad.status_code == 400 and bad.json() == [
        {
            "message": "No such column 'Colour__c' on sobject of type Account",
            "errorCode": "INVALID_FIELD",
            "fields": ["Colour__c"],
        }
    ]
    missing = await sb.get(f"{S}/Account/001000000000000AAA")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    # the fields the integration writes back
    assert (
        await sb.patch(f"{S}/Account/{child}", json={"Invoice_Status__c": "Paid", "Credit_Hold__c": True})
    ).status_code == 204
    bad_status = await sb.patch(f"{S}/Account/{child}", json={"Invoice_Status__c": "Whatever"})
    assert bad_status.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


async def test_change_events_are_signed_cdc_with_replay(sb: httpx.AsyncClient, crm_receiver: Receiver) -> None:
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    acct = await account(sb)
    assert (await sb.patch(f"{S}/Account/{acct}", json={"Payment_Status__c": "Failed"})).status_code == 204
    events = await crm_receiver.wait_for(
        lambda e: (
            acct in e["payload"]["ChangeEventHeader"]["recordIds"]
            and e["payload"]["ChangeEventHeader"]["changeType"] == "UPDATE"
        )
    )
    header = events[0]["payload"]["ChangeEventHeader"]
    assert header["entityName"] == "Account" and header["changedFields"] == ["LastModifiedDate", "Payment_Status__c"]
    assert {"transactionKey", "sequenceNumber", "commitTimestamp", "commitNumber", "changeOrigin"} <= set(header)
    assert events[0]["payload"]["Payment_Status__c"] == "Failed"
    assert crm_receiver.rejected == []
    replayed = (await sb.get("/crm/services/cdc/events", params={"replayId": tip})).json()["events"]
    mine = [e for e in replayed if acct in e["payload"]["ChangeEventHeader"]["recordIds"]]
    assert [e["payload"]["ChangeEventHeader"]["changeType"] for e in mine] == ["CREATE", "UPDATE"]
    assert mine[0]["event"]["replayId"] < mine[1]["event"]["replayId"]


async def test_same_change_to_several_records_is_one_event(sb: httpx.AsyncClient) -> None:
    ids = [await account(sb) for _ in range(3)]
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    records = [{"attributes": {"type": "Account"}, "id": i, "Credit_Hold__c": True} for i in ids]
    response = await sb.patch(
        "/crm/services/data/v60.0/composite/sobjects", json={"allOrNone": True, "records": records}
    )
    assert response.status_code == 200 and all(r["success"] for r in response.json())
    events = (await sb.get("/crm/services/cdc/events", params={"replayId": tip})).json()["events"]
    assert len(events) == 1
    header = events[0]["payload"]["ChangeEventHeader"]
    assert sorted(header["recordIds"]) == sorted(ids) and header["changeType"] == "UPDATE"


async def test_contract_from_won_opportunity_has_sequence_gaps(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    contract = await won_contract(sb, acct)
    assert contract["Status"] == "Activated" and contract["EndDate"] == "2026-12-31"
    events = (await sb.get("/crm/services/cdc/events", params={"replayId": tip, "limit": 1000})).json()["events"]
    by_tx: dict[str, list[int]] = {}
    for e in events:
        header = e["payload"]["ChangeEventHeader"]
        by_tx.setdefault(header["transactionKey"], []).append(header["sequenceNumber"])
    # OpportunityLineItem publishes no change events, but its changes count in the sequence
    assert any(seqs != list(range(1, len(seqs) + 1)) for seqs in by_tx.values()) or any(
        min(s) > 1 for s in by_tx.values()
    )


async def test_amendments_coterm_and_addon_contracts_end_with_the_parent(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    contract = await won_contract(sb, acct, start="2026-01-15", term=12)
    assert contract["EndDate"] == "2027-01-14"
    for body in (
        {
            "Type__c": "AddProduct",
            "Product_Code__c": "API",
            "Quantity__c": 0,
            "Unit_Price__c": 0.05,
            "Billing_Frequency__c": "Usage",
        },
        {"Type__c": "QuantityChange", "Product_Code__c": "SEAT", "Quantity__c": 35},
        {"Type__c": "PriceChange", "Product_Code__c": "PLAT", "Unit_Price__c": 11000},
        {"Type__c": "RemoveProduct", "Product_Code__c": "API"},
    ):
        response = await sb.post(
            f"{APEX}/contracts/{contract['Id']}/amendments", json={**body, "Effective_Date__c": "2026-06-01"}
        )
        assert response.status_code == 201, response.text
        amendment = response.json()
        assert amendment["End_Date__c"] == "2027-01-14"  # co-termed to the contract's end
    seat = await sb.post(
        f"{APEX}/contracts/{contract['Id']}/amendments",
        json={
            "Type__c": "QuantityChange",
            "Product_Code__c": "SEAT",
            "Quantity__c": 40,
            "Effective_Date__c": "2028-01-01",
        },
    )
    assert seat.status_code == 400 and seat.json()[0]["fields"] == ["Effective_Date__c"]
    addon = await won_contract(sb, acct, start="2026-05-01")
    del addon
    opp = (
        await sb.post(
            f"{S}/Opportunity",
            json={"Name": "Add-on", "AccountId": acct, "StageName": "Negotiation", "CloseDate": "2026-07-01"},
        )
    ).json()["id"]
    await sb.post(
        f"{S}/OpportunityLineItem",
        json={"OpportunityId": opp, "Product_Code__c": "SUPP", "Quantity": 1, "UnitPrice": 3000},
    )
    await sb.patch(f"{S}/Opportunity/{opp}", json={"StageName": "Closed Won"})
    child = (
        await sb.post(
            f"{APEX}/opportunities/{opp}/contract",
            json={"StartDate": "2026-07-01", "ContractTerm": 12, "Parent_Contract__c": contract["Id"]},
        )
    ).json()
    assert child["EndDate"] == contract["EndDate"]


async def test_renewal_and_cancellation(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    contract = await won_contract(sb, acct, start="2026-01-01")
    renewal = await sb.post(f"{APEX}/contracts/{contract['Id']}/renew", json={"Uplift_Percent__c": 5})
    assert renewal.status_code == 201
    renewed = renewal.json()
    assert (renewed["StartDate"], renewed["EndDate"], renewed["Renewal_Of__c"]) == (
        "2027-01-01",
        "2027-12-31",
        contract["Id"],
    )
    twice = await sb.post(f"{APEX}/contracts/{contract['Id']}/renew", json={})
    assert twice.status_code == 400 and twice.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    cancel = await sb.post(
        f"{APEX}/contracts/{renewed['Id']}/cancel",
        json={"Cancellation_Date__c": "2027-03-31", "Cancellation_Reason__c": "Budget"},
    )
    assert cancel.status_code == 200 and cancel.json()["Status"] == "Terminated"
    again = await sb.post(f"{APEX}/contracts/{renewed['Id']}/cancel", json={"Cancellation_Date__c": "2027-04-30"})
    assert again.status_code == 400


async def test_account_merge_deletes_losers_and_updates_the_survivor(sb: httpx.AsyncClient) -> None:
    master = await account(sb)
    losers = [await account(sb), await account(sb)]
    child = await account(sb, ParentId=losers[0])
    contract = await won_contract(sb, losers[1])
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    response = await sb.post(
        f"{APEX}/accounts/merge",
        json={"masterRecordId": master, "recordToMergeIds": losers, "fields": {"Tax_Id__c": "DE999"}},
    )
    assert response.status_code == 200, response.text
    for loser in losers:
        assert (await sb.get(f"{S}/Account/{loser}")).status_code == 404
    assert (await sb.get(f"{S}/Account/{child}")).json()["ParentId"] == master
    assert (await sb.get(f"{S}/Contract/{contract['Id']}")).json()["AccountId"] == master
    assert (await sb.get(f"{S}/Account/{master}")).json()["Tax_Id__c"] == "DE999"
    events = (await sb.get("/crm/services/cdc/events", params={"replayId": tip})).json()["events"]
    headers = [e["payload"]["ChangeEventHeader"] for e in events]
    deletes = [h for h in headers if h["changeType"] == "DELETE"]
    assert len(deletes) == 1 and sorted(deletes[0]["recordIds"]) == sorted(losers)
    assert any(h["changeType"] == "UPDATE" and h["recordIds"] == [master] for h in headers)
    deleted = (
        await sb.get(f"{S}/Account/deleted", params={"start": "2000-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"})
    ).json()
    assert set(losers) <= {d["id"] for d in deleted["deletedRecords"]}


async def test_soql_subset_pages_with_next_records_url(sb: httpx.AsyncClient) -> None:
    ids = [await account(sb) for _ in range(3)]
    since = (await sb.get(f"{S}/Account/{ids[0]}")).json()["LastModifiedDate"]
    q = f"SELECT Id, Name, Credit_Hold__c FROM Account WHERE LastModifiedDate >= {since}"
    seen: list[str] = []
    page = (
        await sb.get(
            "/crm/services/data/v60.0/query", params={"q": q}, headers={"Sforce-Query-Options": "sandboxBatchSize=2"}
        )
    ).json()
    seen += [r["Id"] for r in page["records"]]
    assert set(page["records"][0]) == {"attributes", "Id", "Name", "Credit_Hold__c"}
    while not page["done"]:
        page = (await sb.get(page["nextRecordsUrl"], headers={"Sforce-Query-Options": "sandboxBatchSize=2"})).json()
        seen += [r["Id"] for r in page["records"]]
    assert set(ids) <= set(seen)
    bad = await sb.get("/crm/services/data/v60.0/query", params={"q": "DELETE everything"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "MALFORMED_QUERY"


async def test_ui_edit_is_a_change_event_with_no_api_origin(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    edit = await sb.post(
        "/admin/edit", json={"system": "crm", "kind": "Account", "id": acct, "fields": {"Invoice_Status__c": "Void"}}
    )
    assert edit.status_code == 200
    events = (await sb.get("/crm/services/cdc/events", params={"replayId": tip})).json()["events"]
    assert [e["payload"]["ChangeEventHeader"]["changeOrigin"] for e in events] == [""]


async def test_crm_rate_and_error_knobs_in_salesforce_shape(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    await sb.put("/admin/faults", json={"system": "crm", "rate_429": 1.0})
    limited = await sb.get(f"{S}/Account/{acct}")
    assert limited.status_code == 403 and limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    await sb.put("/admin/faults", json={"system": "crm", "error_rate": 1.0})
    failed = await sb.get(f"{S}/Account/{acct}")
    assert failed.status_code == 500 and failed.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"


async def test_fault_knobs_are_reproducible_for_a_seed(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)

    async def pattern() -> list[int]:
        await sb.put(
            "/admin/faults", json={"system": "crm", "endpoint": "GET /crm/services/data", "error_rate": 0.5, "seed": 7}
        )
        return [(await sb.get(f"{S}/Account/{acct}")).status_code for _ in range(20)]

    first, second = await pattern(), await pattern()
    assert first == second
    assert 200 in first and 500 in first


async def test_replay_outside_the_72_hour_window_is_refused(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    await sb.patch(f"{S}/Account/{acct}", json={"Name": "Renamed"})
    assert len((await sb.get("/crm/services/cdc/events", params={"replayId": tip - 1})).json()["events"]) >= 1
    await sb.post("/admin/clock/advance", json={"seconds": 73 * 3600})
    expired = await sb.get("/crm/services/cdc/events", params={"replayId": tip - 1})
    assert expired.status_code == 400 and expired.json()[0]["errorCode"] == "INVALID_REPLAY_ID"
    assert (await sb.get("/crm/services/cdc/events", params={"replayId": -2})).status_code == 200


async def test_duplicate_external_id_is_a_salesforce_error(sb: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    first = await account(sb, External_Id__c=key)
    response = await sb.post(f"{S}/Account", json={"Name": "Twin", "External_Id__c": key})
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "DUPLICATE_VALUE" and first in response.json()[0]["message"]


def _reorder_seed(sandbox_seed: int) -> int:
    """A knob seed whose first two held-back delays put the second event well before the first."""
    import random

    for seed in range(1000):
        rng = random.Random(f"{sandbox_seed}:{seed}:crm:webhooks")
        draws = [rng.random() for _ in range(4)]  # roll, delay, roll, delay per delivery
        first, second = 0.3 + 1.2 * draws[1], 0.3 + 1.2 * draws[3]
        if first - second > 0.8:
            return seed
    raise AssertionError("no seed found")


async def test_reorder_knob_lets_a_later_change_event_overtake(sb: httpx.AsyncClient, crm_receiver: Receiver) -> None:
    sandbox_seed = (await sb.get("/admin/status")).json()["seed"]
    knob = {"system": "crm", "endpoint": "webhooks", "webhook_reorder_rate": 1.0, "seed": _reorder_seed(sandbox_seed)}
    await sb.put("/admin/faults", json=knob)
    first, second = await account(sb), await account(sb)
    await crm_receiver.wait_for(lambda e: first in e["payload"]["ChangeEventHeader"]["recordIds"])
    arrived = [e["payload"]["ChangeEventHeader"]["recordIds"][0] for e in crm_receiver.events]
    assert arrived.index(second) < arrived.index(first)
    replay_ids = [e["event"]["replayId"] for e in crm_receiver.events]
    assert replay_ids != sorted(replay_ids)  # out of order, as the subscriber must be ready for


async def test_upsert_on_external_id_is_idempotent(sb: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    url = f"{S}/Account/External_Id__c/{key}"
    first = await sb.patch(url, json={"Name": "Upserted Co", "Legal_Entity__c": "US"})
    second = await sb.patch(
        url, json={"Name": "Upserted Co", "Legal_Entity__c": "US", "Payment_Status__c": "Succeeded"}
    )
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (second.status_code, second.json()["created"]) == (200, False)
    assert first.json()["id"] == second.json()["id"]
    record = (await sb.get(url)).json()
    assert record["Payment_Status__c"] == "Succeeded" and record["Id"] == first.json()["id"]
    wrong = await sb.patch(f"{S}/Account/Name/whatever", json={"Name": "x"})
    assert wrong.status_code == 404


async def test_change_origin_names_the_calling_client(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    tip = (await sb.get("/crm/services/cdc/events", params={"replayId": -1})).json()["latestReplayId"]
    options = {"Sforce-Call-Options": "client=accord-crm-connector"}
    assert (await sb.patch(f"{S}/Account/{acct}", json={"Credit_Hold__c": True}, headers=options)).status_code == 204
    assert (await sb.patch(f"{S}/Account/{acct}", json={"Name": "Someone else"})).status_code == 204
    events = (await sb.get("/crm/services/cdc/events", params={"replayId": tip})).json()["events"]
    origins = [e["payload"]["ChangeEventHeader"]["changeOrigin"] for e in events]
    assert origins == ["com/salesforce/api/rest/60.0;client=accord-crm-connector", "com/salesforce/api/rest/60.0"]


async def test_change_events_are_retried_with_backoff_until_accepted(
    sb: httpx.AsyncClient, crm_receiver: Receiver
) -> None:
    crm_receiver.fail_next = 2
    acct = await account(sb)

    async def attempts() -> list[int]:
        rows = (await sb.get(f"/admin/webhooks/{crm_receiver.subscriber_id}/deliveries")).json()
        return [r["attempts"] for r in rows if r["type"] == "AccountChangeEvent"]

    for _ in range(100):
        if (await attempts()) == [1]:
            break
        await asyncio.sleep(0.05)
    assert await attempts() == [1] and crm_receiver.events == []
    await sb.post("/admin/clock/advance", json={"seconds": 61})  # first backoff: 1 minute
    for _ in range(100):
        if (await attempts()) == [2]:
            break
        await asyncio.sleep(0.05)
    assert crm_receiver.events == []
    await sb.post("/admin/clock/advance", json={"seconds": 181})  # then 3 minutes
    events = await crm_receiver.wait_for(lambda e: acct in e["payload"]["ChangeEventHeader"]["recordIds"])
    assert len(events) == 1 and await attempts() == [3]


async def test_daily_api_allowance_is_reported_and_enforced(sb: httpx.AsyncClient) -> None:
    acct = await account(sb)
    response = await sb.get(f"{S}/Account/{acct}")
    used, limit = map(int, response.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/"))
    assert limit == 100_000 and used >= 1
    await sb.put("/admin/crm/api-limit", json={"daily": used + 2})
    limits = (await sb.get("/crm/services/data/v60.0/limits")).json()["DailyApiRequests"]
    assert limits == {"Max": used + 2, "Remaining": 1}  # the /limits call itself counted
    assert (await sb.get(f"{S}/Account/{acct}")).status_code == 200
    over = await sb.get(f"{S}/Account/{acct}")
    assert over.status_code == 403 and over.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert over.headers["Sforce-Limit-Info"] == f"api-usage={used + 2}/{used + 2}"
