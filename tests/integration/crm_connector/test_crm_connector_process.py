"""`python -m accord_crm_connector` as its own process, on the session's real Kafka, PostgreSQL, schema registry
and sandbox: CRM changes in → canonical events exactly once (webhook twice, catch-up poll, SIGKILL + restart);
billing facts in → the Account's status fields written back to the CRM (and our own change events ignored)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from accord.devstack._base import free_port
from accord.events import (
    EVENTS,
    ContractActivated,
    CustomerAccountUpserted,
    DeclineType,
    Event,
    InvoiceIssued,
    Money,
    PaymentCollected,
    PaymentFailed,
)
from accord.events.samples import sample_event
from accord.runtime import producer_config
from accord.serde import EventCodec
from accord.webhooks import CRM_SIGNATURE_HEADER, signature_header
from accord_crm_connector.crm_client import DATA, ClientCredentials, CrmClient
from accord_crm_connector.mapping import payload_of

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

SECRET = "whsec_crm_connector_process_tests"
APEX = "/crm/services/apexrest"
CATALOGUE = ("crm.accounts", "crm.contracts", "billing.invoices", "billing.payments")


@dataclass
class Connector:
    env: dict[str, str]
    log: Path
    port: int
    topics: dict[str, str]
    codec: EventCodec
    bootstrap: str
    db_url: str
    sandbox: httpx.AsyncClient  # the operator (admin API)
    user: httpx.AsyncClient  # a person working in the CRM (no client id)
    process: subprocess.Popen[bytes] | None = None
    producers: list[Producer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "accord_crm_connector"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the connector did not come up"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=60)

    # -- the CRM, as a person uses it ---------------------------------------------------------------

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.user.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def account(self, name: str) -> str:
        body = {"Name": name, "BillingCountry": "DE", "CurrencyIsoCode": "EUR", "Legal_Entity__c": "EU"}
        return str((await self.post(f"{DATA}/sobjects/Account", body))["id"])

    async def won_contract(self, account_id: str, today: str) -> dict[str, Any]:
        opp = await self.post(
            f"{DATA}/sobjects/Opportunity",
            {
                "Name": "New business",
                "AccountId": account_id,
                "StageName": "Negotiation",
                "CloseDate": today,
                "CurrencyIsoCode": "EUR",
            },
        )
        for code, frequency in (("SEAT", "Annual"), ("API", "Usage")):
            await self.post(
                f"{DATA}/sobjects/OpportunityLineItem",
                {
                    "OpportunityId": opp["id"],
                    "Product_Code__c": code,
                    "Quantity": 10,
                    "UnitPrice": 25,
                    "Billing_Frequency__c": frequency,
                },
            )
        won = await self.user.patch(f"{DATA}/sobjects/Opportunity/{opp['id']}", json={"StageName": "Closed Won"})
        assert won.status_code == 204, won.text
        return await self.post(f"{APEX}/opportunities/{opp['id']}/contract", {"ContractTerm": 12})

    async def crm_account(self, account_id: str) -> dict[str, Any]:
        response = await self.user.get(f"{DATA}/sobjects/Account/{account_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    # -- Kafka ----------------------------------------------------------------------------------------

    def produce(self, catalogue_topic: str, events: list[Event]) -> None:
        producer = Producer(producer_config(self.bootstrap))
        self.producers.append(producer)
        topic = self.topics[catalogue_topic]
        for event in events:
            producer.produce(topic, key=event.key().encode(), value=self.codec.encode(topic, event))
        assert producer.flush(30) == 0

    def read(self, catalogue_topic: str) -> list[Event]:
        """Every event on the test's topic for `catalogue_topic`, from the start to the end now."""
        topic = self.topics[catalogue_topic]
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": 3,
            }
        )
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Event] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + 20
        try:
            while len(at_end) < len(partitions) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                    continue
                at_end.discard(msg.partition() or 0)
                out.append(self.codec.decode(topic, msg.value()).event)
        finally:
            consumer.close()
        return out

    async def db(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


async def until(check: Callable[[], Awaitable[Any]], connector: Connector, *, within: float = 90) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if connector.process is not None:
            assert connector.process.poll() is None, connector.log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"condition not met; log tail:\n{connector.log.read_text()[-3000:]}"
        await asyncio.sleep(0.3)


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def connector(
    db_url: str,
    sandbox_url: str,
    kafka_bootstrap: str,
    registry_url: str,
    codec: EventCodec,
    topic_factory: Callable[..., str],
    group_id: str,
    tmp_path: Path,
) -> AsyncIterator[Connector]:
    topics = {t: topic_factory(partitions=1, prefix=t.replace(".", "-")) for t in CATALOGUE}
    for cls in EVENTS.values():  # the subjects of the test's topics (the process never registers)
        if cls.TOPIC in topics:
            codec.schema_id(topics[cls.TOPIC], cls)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SCHEMA_REGISTRY_URL": registry_url,
        "ACCORD_SANDBOX_URL": sandbox_url,
        "ACCORD_CRM_CLIENT_ID": f"accord-test-{uuid.uuid4().hex[:8]}",
        "ACCORD_CRM_CLIENT_SECRET": "s3cret",
        "ACCORD_CRM_WEBHOOK_SECRETS": f"whsec_old_one,{SECRET}",
        "ACCORD_CRM_HTTP_PORT": str(port),
        "ACCORD_CRM_TOPICS": json.dumps(topics),
        "ACCORD_CRM_GROUP": group_id,
        "ACCORD_CRM_POLL_INTERVAL_SECONDS": "1",
    }
    async with (
        httpx.AsyncClient(base_url=sandbox_url, timeout=60) as sandbox,
        httpx.AsyncClient(base_url=sandbox_url, timeout=60, auth=ClientCredentials("someone", "pw")) as user,
    ):
        c = Connector(env, tmp_path / "connector.log", port, topics, codec, kafka_bootstrap, db_url, sandbox, user)
        c.start()
        url = f"{c.url}/webhooks/crm"
        subscribed = await sandbox.post("/admin/webhooks", json={"system": "crm", "url": url, "secret": SECRET})
        assert subscribed.status_code == 201, subscribed.text
        try:
            yield c
        finally:
            await sandbox.delete(f"/admin/webhooks/{subscribed.json()['id']}")
            if c.process is not None and c.process.poll() is None:
                assert c.stop() == 0, c.log.read_text()[-3000:]
            for p in c.producers:
                p.flush(10)


def mine(events: list[Event], account_id: str) -> list[Event]:
    return [e for e in events if getattr(e, "account_id", None) == account_id]


async def test_crm_changes_become_canonical_events_exactly_once(connector: Connector) -> None:
    c = connector
    crm = CrmClient(c.sandbox, client_id="test-reader", client_secret="pw")
    before = await crm.latest_replay_id()
    today = (await c.sandbox.get("/admin/clock")).json()["now"][:10]
    account_id = await c.account(f"Acme {uuid.uuid4().hex[:6]}")
    contract = await c.won_contract(account_id, today)

    async def emitted() -> bool:
        accounts = mine(c.read("crm.accounts"), account_id)
        contracts = mine(c.read("crm.contracts"), account_id)
        return bool(accounts) and bool(contracts)

    await until(emitted, c)

    # The same webhooks again, twice each (as a sender retrying would): signed by the sandbox's scheme.
    changes = [
        e
        for e in await crm.all_changes(before)
        if set(payload_of(e)["ChangeEventHeader"]["recordIds"])
        & {
            account_id,
            contract["Id"],
        }
    ]
    assert {payload_of(e)["ChangeEventHeader"]["entityName"] for e in changes} == {"Account", "Contract"}
    async with httpx.AsyncClient(base_url=c.url, timeout=30) as hook:
        for change in changes:
            body = json.dumps(change, separators=(",", ":")).encode()
            for _ in range(2):
                answer = await hook.post(
                    "/webhooks/crm",
                    content=body,
                    headers={CRM_SIGNATURE_HEADER: signature_header(body, [SECRET], int(time.time()))},
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["outcome"] == "duplicate"
        forged = await hook.post("/webhooks/crm", content=body, headers={CRM_SIGNATURE_HEADER: "t=1,v1=00"})
        assert forged.status_code == 400 and forged.headers["content-type"] == "application/problem+json"

    def check(accounts: list[Event], contracts: list[Event]) -> None:
        (upsert,) = accounts
        assert isinstance(upsert, CustomerAccountUpserted)
        assert (upsert.crm_account_id, upsert.country_code, upsert.currency) == (account_id, "DE", "EUR")
        (activated,) = contracts
        assert isinstance(activated, ContractActivated) and activated.contract_id == contract["Id"]
        cadence = sorted((x.product_code, x.billing_frequency, x.usage_based) for x in activated.lines)
        assert [(code, f.value if f else None, usage) for code, f, usage in cadence] == [
            ("API", "MONTHLY", True),
            ("SEAT", "ANNUAL", False),
        ]

    check(mine(c.read("crm.accounts"), account_id), mine(c.read("crm.contracts"), account_id))

    # SIGKILL, restart: the catch-up re-reads from its cursor; nothing is emitted twice, and what changed while
    # the connector was down comes through (the sandbox's webhook fails meanwhile: the poll finds it).
    c.kill()
    renamed = await c.user.patch(f"{DATA}/sobjects/Account/{account_id}", json={"Name": "Acme Renamed"})
    assert renamed.status_code == 204, renamed.text
    c.start()

    async def renamed_upsert() -> list[Event]:
        return [e for e in mine(c.read("crm.accounts"), account_id) if getattr(e, "name", "") == "Acme Renamed"]

    await until(renamed_upsert, c)
    await asyncio.sleep(3)  # a few more polls: a duplicate would show up now
    accounts = mine(c.read("crm.accounts"), account_id)
    assert [getattr(e, "name", None) for e in accounts][1:] == ["Acme Renamed"]
    check(accounts[:1], mine(c.read("crm.contracts"), account_id))
    assert len({e.meta.event_id for e in accounts}) == len(accounts)  # type: ignore[attr-defined]
    failed = await c.db("SELECT reason FROM crm_connector.ingest_inbox WHERE status = 'failed'")
    assert [r["reason"] for r in failed if account_id in (r["reason"] or "")] == []


def billing_fact(cls: type[Event], account_id: str, minute: int, **fields: Any) -> Event:
    event = sample_event(cls)
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minute)
    meta = event.meta.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": moment})  # type: ignore[attr-defined]
    return event.model_copy(update={"meta": meta, "account_id": account_id, **fields})


async def test_billing_status_is_written_back_to_the_account(connector: Connector) -> None:
    c = connector
    account_id = await c.account(f"Payer {uuid.uuid4().hex[:6]}")
    invoice = f"in_{uuid.uuid4().hex[:10]}"
    eur = Money(amount=Decimal("1234.00"), currency="EUR")
    c.produce("billing.invoices", [billing_fact(InvoiceIssued, account_id, 0, invoice_id=invoice, amount_due=eur)])
    c.produce(
        "billing.payments",
        [billing_fact(PaymentFailed, account_id, 1, invoice_id=invoice, decline_type=DeclineType.HARD)],
    )

    async def held() -> bool:
        record = await c.crm_account(account_id)
        return record.get("Credit_Hold__c") is True and record.get("Payment_Status__c") == "Failed"

    await until(held, c)
    assert (await c.crm_account(account_id))["Invoice_Status__c"] == "Open"

    async def commands() -> list[asyncpg.Record]:
        return await c.db(
            "SELECT idempotency_key, status, result FROM crm_connector.commands WHERE payload->>'account_id' = $1 "
            "ORDER BY id",
            account_id,
        )

    async def settled() -> bool:
        return all(r["status"] == "succeeded" for r in await commands())

    await until(settled, c)
    # SIGKILL, restart: the status consumer re-reads what it had not committed, decides nothing twice.
    c.kill()
    c.start()
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=2)
    paid = billing_fact(PaymentCollected, account_id, 2, invoice_id=invoice, amount=eur, collected_at=later)
    c.produce("billing.payments", [paid])

    async def released() -> bool:
        record = await c.crm_account(account_id)
        return record.get("Credit_Hold__c") is False and record.get("Invoice_Status__c") == "Paid"

    await until(released, c)
    assert (await c.crm_account(account_id))["Payment_Status__c"] == "Succeeded"

    # Three decisions (whichever of invoice and failure came first), one command each, all applied once.
    await until(settled, c)
    done = await commands()
    assert [json.loads(r["result"])["version"] for r in done] == [1, 2, 3]
    assert [r["status"] for r in done] == ["succeeded"] * 3

    # Our write-backs came back as change events and were ignored: the account was upserted once, at creation.
    async def own_changes_seen() -> list[asyncpg.Record]:
        rows = await c.db(
            "SELECT reason FROM crm_connector.ingest_inbox WHERE status = 'ignored' "
            "AND convert_from(raw_body, 'UTF8') LIKE '%' || $1 || '%'",
            account_id,
        )
        return [r for r in rows if "our own write-back" in (r["reason"] or "")]

    assert len(await until(own_changes_seen, c)) >= 2
    assert len(mine(c.read("crm.accounts"), account_id)) == 1
