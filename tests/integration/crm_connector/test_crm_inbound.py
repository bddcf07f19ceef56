"""The CRM inbound core against the real sandbox process (state in the session's real PostgreSQL) and the real
schema registry: changes made through the CRM's API come back as CDC events, are read with the client, mapped,
and encoded as valid canonical events; our own write-backs are recognised and ignored."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from accord.events import (
    AmendmentType,
    ContractActivated,
    ContractAmended,
    CustomerAccountMerged,
    CustomerAccountUpserted,
    Event,
)
from accord.serde import EventCodec
from accord_crm_connector.cdc import CdcTracker
from accord_crm_connector.crm_client import DATA, ClientCredentials, CrmClient, CrmRejected
from accord_crm_connector.mapping import Ignore, MapResult, payload_of
from accord_crm_connector.sync import catch_up, resync

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

APEX = "/crm/services/apexrest"


@dataclass
class Crm:
    client: CrmClient  # accord's connector (names itself in Sforce-Call-Options)
    user: httpx.AsyncClient  # a person working in the CRM (no client id)
    today: datetime.date
    cursor: int  # the replay id before this test's changes

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.user.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def account(self, name: str, **fields: Any) -> str:
        body = {"Name": name, "BillingCountry": "DE", "CurrencyIsoCode": "EUR", "Legal_Entity__c": "EU", **fields}
        return str((await self.post(f"{DATA}/sobjects/Account", body))["id"])

    async def won_contract(self, account_id: str) -> dict[str, Any]:
        opp = await self.post(
            f"{DATA}/sobjects/Opportunity",
            {
                "Name": "New business",
                "AccountId": account_id,
                "StageName": "Negotiation",
                "CloseDate": self.today.isoformat(),
                "CurrencyIsoCode": "EUR",
            },
        )
        await self.post(
            f"{DATA}/sobjects/OpportunityLineItem",
            {"OpportunityId": opp["id"], "Product_Code__c": "SEAT", "Quantity": 10, "UnitPrice": 25},
        )
        won = await self.user.patch(f"{DATA}/sobjects/Opportunity/{opp['id']}", json={"StageName": "Closed Won"})
        assert won.status_code == 204, won.text
        return await self.post(f"{APEX}/opportunities/{opp['id']}/contract", {"ContractTerm": 12})

    async def mapped(self, since: int | None = None) -> list[tuple[dict[str, Any], MapResult]]:
        tracker = CdcTracker("crm", last_replay_id=self.cursor if since is None else since)
        return await catch_up(self.client, tracker, limit=7)  # small pages: paging is exercised


@pytest.fixture
async def crm(sandbox_url: str) -> AsyncIterator[Crm]:
    async with (
        httpx.AsyncClient(base_url=sandbox_url, timeout=30) as http,
        httpx.AsyncClient(base_url=sandbox_url, timeout=30, auth=ClientCredentials("someone", "pw")) as user,
    ):
        client = CrmClient(http, client_id=f"accord-{uuid.uuid4().hex[:8]}", client_secret="s3cret")
        today = datetime.date.fromisoformat((await http.get("/admin/clock")).json()["now"][:10])
        yield Crm(client, user, today, await client.latest_replay_id())


def events_of(results: list[tuple[dict[str, Any], MapResult]]) -> list[Event]:
    return [e for _, r in results if isinstance(r, list) for e in r]


def entity_of(event: dict[str, Any]) -> str:
    return str(payload_of(event)["ChangeEventHeader"]["entityName"])


async def test_account_and_contract_become_valid_canonical_events(crm: Crm, registry_url: str) -> None:
    account_id = await crm.account("Acme GmbH", Tax_Id__c="DE123456789")
    contract = await crm.won_contract(account_id)
    effective = crm.today + datetime.timedelta(days=31)
    await crm.post(
        f"{APEX}/contracts/{contract['Id']}/amendments",
        {
            "Type__c": "QuantityChange",
            "Product_Code__c": "SEAT",
            "Quantity__c": 15,
            "Effective_Date__c": str(effective),
        },
    )

    results = await crm.mapped()
    events = events_of(results)
    upserts = [e for e in events if isinstance(e, CustomerAccountUpserted)]
    assert [(u.crm_account_id, u.country_code, u.currency, u.tax_id, u.meta.legal_entity) for u in upserts] == [
        (account_id, "DE", "EUR", "DE123456789", "EU")
    ]
    (activated,) = [e for e in events if isinstance(e, ContractActivated)]
    assert (activated.account_id, activated.contract_id, activated.term_months) == (account_id, contract["Id"], 12)
    assert [(line.product_code, line.quantity) for line in activated.lines] == [("SEAT", 15)]  # lines as they are now
    (amended,) = [e for e in events if isinstance(e, ContractAmended)]
    assert (amended.amendment_type, amended.effective_date) == (AmendmentType.UPSELL, effective)
    assert amended.co_term_end_date == activated.end_date
    ignored = {entity_of(ev) for ev, r in results if isinstance(r, Ignore)}
    assert ignored == {"Opportunity", "Contract_Line__c"}

    with EventCodec.connect(registry_url, auto_register=True) as codec:
        for event in events:
            decoded = codec.decode(event.TOPIC, codec.encode(event.TOPIC, event))
            assert decoded.event == event

    # re-read from the same replay id (a re-delivery): the very same canonical events
    assert [e.meta.event_id for e in events_of(await crm.mapped())] == [e.meta.event_id for e in events]


async def test_own_write_back_is_recognised_and_ignored(crm: Crm) -> None:
    account_id = await crm.account("Paying Customer")
    await crm.client.write_back(account_id, invoice_status="Paid", payment_status="Succeeded", credit_hold=True)
    record = await crm.client.record("Account", account_id)
    assert record is not None and record["Credit_Hold__c"] is True

    results = await crm.mapped()
    (write_back,) = [(ev, r) for ev, r in results if payload_of(ev)["ChangeEventHeader"]["changeType"] == "UPDATE"]
    header = payload_of(write_back[0])["ChangeEventHeader"]
    assert header["changeOrigin"].endswith(f";client={crm.client.client_id}")
    assert isinstance(write_back[1], Ignore) and "own write-back" in write_back[1].reason


async def test_merge_emits_one_merged_event_per_loser(crm: Crm) -> None:
    survivor = await crm.account("Acme Group")
    losers = [await crm.account("Acme dup 1"), await crm.account("Acme dup 2", ParentId=survivor)]
    await crm.post(f"{APEX}/accounts/merge", {"masterRecordId": survivor, "recordToMergeIds": losers})

    events = events_of(await crm.mapped())
    merged = [(e.account_id, e.merged_account_id) for e in events if isinstance(e, CustomerAccountMerged)]
    assert merged == [(survivor, loser) for loser in losers]
    assert survivor in [e.crm_account_id for e in events if isinstance(e, CustomerAccountUpserted)][-1:]


async def test_refetch_since_a_replay_id_returns_what_was_missed(crm: Crm) -> None:
    first = await crm.account("Seen Co")
    seen = await crm.mapped()
    processed = max(int(ev["event"]["replayId"]) for ev, _ in seen)
    missed = [await crm.account("Missed One"), await crm.account("Missed Two")]

    again = events_of(await crm.mapped(since=processed))
    assert [e.crm_account_id for e in again if isinstance(e, CustomerAccountUpserted)] == missed
    assert first not in [getattr(e, "crm_account_id", None) for e in again]


async def test_errors_carry_the_crm_error_code(crm: Crm) -> None:
    with pytest.raises(CrmRejected) as info:
        await crm.client.write_back("001000000000000AAA", invoice_status="Paid")
    assert info.value.code == "NOT_FOUND" and not info.value.retryable
    assert await crm.client.record("Account", "001000000000000AAA") is None


async def test_a_revoked_session_gets_a_new_token(crm: Crm) -> None:
    await crm.client.latest_replay_id()
    before = crm.client.auth.fetched
    revoked = await crm.client.http.post("/admin/tokens/revoke")
    assert revoked.status_code in (200, 204), revoked.text
    assert await crm.client.latest_replay_id() >= crm.cursor  # 401 INVALID_SESSION_ID, new token, same call again
    assert crm.client.auth.fetched == before + 1


async def test_resync_by_query_maps_changed_records(crm: Crm) -> None:
    """The fallback after INVALID_REPLAY_ID: records changed since a time, as full upserts and activations."""
    since = datetime.datetime.fromisoformat((await crm.client.http.get("/admin/clock")).json()["now"])
    account_id = await crm.account("Resynced AG")
    contract = await crm.won_contract(account_id)

    events = await resync(crm.client, ["Account", "Contract"], since=since)
    assert [e.crm_account_id for e in events if isinstance(e, CustomerAccountUpserted)] == [account_id]
    (activated,) = [e for e in events if isinstance(e, ContractActivated)]
    assert activated.contract_id == contract["Id"] and len(activated.lines) == 1
    again = await resync(crm.client, ["Account", "Contract"], since=since)
    assert [e.meta.event_id for e in again] == [e.meta.event_id for e in events]  # unchanged → same events
