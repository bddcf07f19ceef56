"""The inbound side (`CrmInbound`) in the test process, on the session's real sandbox CRM, real PostgreSQL and real
schema registry: the webhook endpoint (called through its ASGI app), the catch-up by replay and the re-sync by query
all go through accord.ingest; the canonical events are read back from the outbox table and decoded."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from accord.events import (
    EVENTS,
    AmendmentType,
    ContractActivated,
    ContractAmended,
    CustomerAccountMerged,
    CustomerAccountUpserted,
    Event,
)
from accord.ingest import migrate_ingest
from accord.runtime import PostgresStore
from accord.serde import EventCodec
from accord.webhooks import CRM_SIGNATURE_HEADER, signature_header
from accord_crm_connector.app import SCHEMA, create_app
from accord_crm_connector.crm_client import DATA, ClientCredentials, CrmClient
from accord_crm_connector.inbound import CrmInbound
from accord_crm_connector.mapping import payload_of

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

SECRET = "whsec_crm_inbound_tests"
APEX = "/crm/services/apexrest"


@dataclass
class Inbound:
    inbound: CrmInbound
    pool: asyncpg.Pool
    codec: EventCodec
    topics: dict[str, str]
    hook: httpx.AsyncClient  # the webhook endpoint, in process
    user: httpx.AsyncClient  # a person working in the CRM
    before: int  # the replay id before this test's changes

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.user.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def account(self, name: str) -> str:
        body = {"Name": name, "BillingCountry": "FR", "CurrencyIsoCode": "EUR", "Legal_Entity__c": "EU"}
        return str((await self.post(f"{DATA}/sobjects/Account", body))["id"])

    async def outbox(self) -> list[Event]:
        rows = await self.pool.fetch(f"SELECT topic, value FROM {SCHEMA}.outbox ORDER BY id")
        return [self.codec.decode(r["topic"], r["value"]).event for r in rows]

    async def changes_of(self, record_id: str) -> list[dict[str, Any]]:
        events = await self.inbound.client.all_changes(self.before)
        return [e for e in events if record_id in payload_of(e)["ChangeEventHeader"]["recordIds"]]

    async def push(self, change: dict[str, Any]) -> httpx.Response:
        body = json.dumps(change, separators=(",", ":")).encode()
        signed = signature_header(body, [SECRET], int(time.time()))
        return await self.hook.post("/webhooks/crm", content=body, headers={CRM_SIGNATURE_HEADER: signed})


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def inbound(db_url: str, sandbox_url: str, codec: EventCodec) -> AsyncIterator[Inbound]:
    suffix = uuid.uuid4().hex[:8]
    topics = {"crm.accounts": f"test-crm-accounts-{suffix}", "crm.contracts": f"test-crm-contracts-{suffix}"}
    for cls in EVENTS.values():  # outbox rows only (no relay): the subjects, not the topics, must exist
        if cls.TOPIC in topics:
            codec.schema_id(topics[cls.TOPIC], cls)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=6)
    assert pool is not None
    await PostgresStore(pool, SCHEMA).migrate()
    async with pool.acquire() as conn:
        await migrate_ingest(conn, schema=SCHEMA)
    async with (
        httpx.AsyncClient(base_url=sandbox_url, timeout=60) as http,
        httpx.AsyncClient(base_url=sandbox_url, timeout=60, auth=ClientCredentials("someone", "pw")) as user,
    ):
        client = CrmClient(http, client_id=f"accord-{suffix}", client_secret="s3cret")
        before = await client.latest_replay_id()
        crm = CrmInbound(
            pool=pool,
            schema=SCHEMA,
            codec=codec,
            client=client,
            secrets=[SECRET],
            topics=topics,
            start_replay_id=before,
        )
        app = create_app(crm, ready=lambda: True)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm-connector") as hook:
            yield Inbound(crm, pool, codec, topics, hook, user, before)
    await pool.close()


async def test_a_change_naming_two_records_emits_one_versioned_event_per_record(inbound: Inbound) -> None:
    a, b = await inbound.account("Twin A"), await inbound.account("Twin B")
    same = {"Name": f"Twins {uuid.uuid4().hex[:6]}"}
    updated = await inbound.user.patch(
        f"{DATA}/composite/sobjects",
        json={"records": [{"attributes": {"type": "Account"}, "id": i, **same} for i in (a, b)]},
    )
    assert updated.status_code == 200, updated.text
    (change,) = [c for c in await inbound.changes_of(a) if payload_of(c)["ChangeEventHeader"]["changeType"] == "UPDATE"]
    assert payload_of(change)["ChangeEventHeader"]["recordIds"] == [a, b]  # one event, two records

    outcomes = await inbound.inbound.catch_up()
    assert outcomes["processed"] == 3 and outcomes["failed"] == 0  # two creates, one update of both
    upserts = [e for e in await inbound.outbox() if isinstance(e, CustomerAccountUpserted)]
    assert sorted((u.crm_account_id, u.name) for u in upserts if u.name == same["Name"]) == [
        (a, same["Name"]),
        (b, same["Name"]),
    ]
    assert len({u.meta.event_id for u in upserts}) == len(upserts) == 4
    # the same change pushed now: already in the inbox
    answer = await inbound.push(change)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "duplicate")
    # read again from the start: nothing new
    await inbound.pool.execute(f"DELETE FROM {SCHEMA}.ingest_cursors")
    assert set(await inbound.inbound.catch_up()) <= {"duplicate"}
    assert len(await inbound.outbox()) == 4


async def test_a_pushed_gap_event_is_mapped_from_the_record_stale_when_nothing_changed(inbound: Inbound) -> None:
    account = await inbound.account("Gap Co")
    (create,) = await inbound.changes_of(account)
    assert (await inbound.push(create)).json()["outcome"] == "processed"
    header = payload_of(create)["ChangeEventHeader"]
    gap = {
        **create,
        "payload": {"ChangeEventHeader": {**header, "changeType": "GAP_UPDATE", "transactionKey": "gap-tx-1"}},
    }
    inbound.inbound.wake.clear()
    answer = await inbound.push(gap)
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "stale"  # the record's version was emitted already: last writer wins
    assert inbound.inbound.wake.is_set()  # and a GAP event asks for a catch-up

    renamed = await inbound.user.patch(f"{DATA}/sobjects/Account/{account}", json={"Name": "Gap Co Renamed"})
    assert renamed.status_code == 204
    gap2 = {**gap, "payload": {"ChangeEventHeader": {**header, "changeType": "GAP_UPDATE", "transactionKey": "gap-2"}}}
    assert (await inbound.push(gap2)).json()["outcome"] == "processed"  # read from the CRM: the new name
    names = [e.name for e in await inbound.outbox() if isinstance(e, CustomerAccountUpserted)]
    assert names == ["Gap Co", "Gap Co Renamed"]


async def test_a_merge_pushed_is_left_to_the_catch_up_which_sees_its_whole_transaction(inbound: Inbound) -> None:
    survivor, loser = await inbound.account("Merge Keeper"), await inbound.account("Merge Loser")
    await inbound.post(f"{APEX}/accounts/merge", {"masterRecordId": survivor, "recordToMergeIds": [loser]})
    (delete,) = [
        c for c in await inbound.changes_of(loser) if payload_of(c)["ChangeEventHeader"]["changeType"] == "DELETE"
    ]
    inbound.inbound.wake.clear()
    answer = await inbound.push(delete)
    assert (answer.status_code, answer.json()["outcome"]) == (202, "deferred")
    assert inbound.inbound.wake.is_set()
    await inbound.inbound.catch_up()
    merged = [
        (e.account_id, e.merged_account_id) for e in await inbound.outbox() if isinstance(e, CustomerAccountMerged)
    ]
    assert merged == [(survivor, loser)]


async def test_resync_by_query_goes_through_the_same_ingest(inbound: Inbound) -> None:
    clock = (await inbound.inbound.client.http.get("/admin/clock")).json()["now"]
    since = datetime.datetime.fromisoformat(clock)
    account = await inbound.account("Resync SA")
    opp = await inbound.post(
        f"{DATA}/sobjects/Opportunity",
        {
            "Name": "Deal",
            "AccountId": account,
            "StageName": "Negotiation",
            "CloseDate": clock[:10],
            "CurrencyIsoCode": "EUR",
        },
    )
    await inbound.post(
        f"{DATA}/sobjects/OpportunityLineItem",
        {"OpportunityId": opp["id"], "Product_Code__c": "SEAT", "Quantity": 2, "UnitPrice": 10},
    )
    won = await inbound.user.patch(f"{DATA}/sobjects/Opportunity/{opp['id']}", json={"StageName": "Closed Won"})
    assert won.status_code == 204
    contract = await inbound.post(f"{APEX}/opportunities/{opp['id']}/contract", {"ContractTerm": 12})
    effective = (datetime.date.fromisoformat(clock[:10]) + datetime.timedelta(days=10)).isoformat()
    amendment = await inbound.post(
        f"{APEX}/contracts/{contract['Id']}/amendments",
        {"Type__c": "QuantityChange", "Product_Code__c": "SEAT", "Quantity__c": 5, "Effective_Date__c": effective},
    )

    first = await inbound.inbound.resync(since)
    assert first["processed"] >= 3 and first["failed"] == 0
    events = await inbound.outbox()
    assert account in [e.crm_account_id for e in events if isinstance(e, CustomerAccountUpserted)]
    assert contract["Id"] in [e.contract_id for e in events if isinstance(e, ContractActivated)]
    amended = [e for e in events if isinstance(e, ContractAmended) and e.contract_id == contract["Id"]]
    assert [(e.amendment_id, e.amendment_type) for e in amended] == [(amendment["Id"], AmendmentType.UPSELL)]
    again = await inbound.inbound.resync(since)
    assert set(again) == {"duplicate"}  # the same records unchanged: the same deliveries
    assert len(await inbound.outbox()) == len(events)


async def test_a_change_of_two_records_one_of_them_stale_emits_only_the_newer(inbound: Inbound) -> None:
    a, b = await inbound.account("Pair A"), await inbound.account("Pair B")
    await inbound.inbound.catch_up()  # both creates: versions seen
    renamed = await inbound.user.patch(f"{DATA}/sobjects/Account/{a}", json={"Name": "Pair A Renamed"})
    assert renamed.status_code == 204
    (create,) = [c for c in await inbound.changes_of(a) if payload_of(c)["ChangeEventHeader"]["changeType"] == "CREATE"]
    header = {**payload_of(create)["ChangeEventHeader"], "changeType": "GAP_UPDATE", "transactionKey": "gap-pair"}
    answer = await inbound.push({**create, "payload": {"ChangeEventHeader": {**header, "recordIds": [a, b]}}})
    assert (answer.status_code, answer.json()["outcome"]) == (200, "processed")
    (row,) = await inbound.pool.fetch(
        f"SELECT status, emitted, reason FROM {SCHEMA}.ingest_inbox WHERE source_event_id LIKE 'gap-pair:%'"
    )
    assert (row["status"], row["emitted"]) == ("processed", 1)
    assert f"Account {b} version" in row["reason"] and "is not newer" in row["reason"]
    names = [e.name for e in await inbound.outbox() if isinstance(e, CustomerAccountUpserted)]
    assert names == ["Pair A", "Pair B", "Pair A Renamed"]
