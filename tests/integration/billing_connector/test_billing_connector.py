"""The billing connector end to end on real parts: the session's sandbox sends signed webhooks to the receiver
(uvicorn on a loopback port), which ingests them into real PostgreSQL; the runtime's OutboxRelay publishes the
canonical events to real Kafka through the real schema registry, and the test reads them back and decodes them.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from confluent_kafka import Consumer, Producer
from prometheus_client import REGISTRY

from accord.events import Event
from accord.ingest import Outcome
from accord.runtime import OutboxRelay, producer_config
from accord.serde import EventCodec
from accord.webhooks import BILLING_SIGNATURE_HEADER, signature_header
from accord_billing_connector.app import WEBHOOK_PATH, billing_source, create_app
from accord_billing_connector.poller import CatchUpPoller
from accord_billing_connector.store import SCHEMA, migrate_all

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

SECRET = "whsec_billing_connector_tests"
API = {"Authorization": "Bearer sk_test_billing_connector_tests"}
CATALOGUE_TOPICS = ("billing.subscriptions", "billing.invoices", "billing.payments")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Connector:
    pool: asyncpg.Pool
    codec: EventCodec
    topics: dict[str, str]
    url: str
    sandbox: httpx.AsyncClient
    bootstrap: str
    group: str

    async def inbox(self, customer: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            f"""SELECT source_event_id, event_type, via, status, reason FROM {SCHEMA}.ingest_inbox
                WHERE convert_from(raw_body, 'UTF8') LIKE '%"' || $1 || '"%' ORDER BY id""",
            customer,
        )

    def read_events(self, account_id: str, wanted: Callable[[list[Event]], bool], within: float = 60) -> list[Event]:
        """Canonical events of `account_id` on this test's topics, decoded, until `wanted` holds."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe(list(self.topics.values()))
        found: list[Event] = []
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline and not wanted(found):
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                if msg.key() == account_id.encode():
                    event, _ = self.codec.decode(msg.topic(), msg.value())
                    found.append(event)
            # a little longer: a duplicate would arrive right behind
            end = time.monotonic() + 2
            while time.monotonic() < end:
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error() and msg.key() == account_id.encode():
                    found.append(self.codec.decode(msg.topic(), msg.value())[0])
        finally:
            consumer.close()
        return found


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def connector(
    db_url: str,
    sandbox_url: str,
    kafka_bootstrap: str,
    codec: EventCodec,
    topic_factory: Callable[..., str],
    group_id: str,
) -> AsyncIterator[Connector]:
    topics = {t: topic_factory(partitions=1, prefix=t.replace(".", "-")) for t in CATALOGUE_TOPICS}
    pool = await asyncpg.create_pool(db_url, min_size=2, max_size=6)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate_all(conn, schema=SCHEMA)
    stop = asyncio.Event()
    relay = OutboxRelay(pool, SCHEMA, Producer(producer_config(kafka_bootstrap)), service="billing", poll_interval=0.2)
    relay_task = asyncio.create_task(relay.run(stop))
    port = _free_port()
    app = create_app(pool=pool, codec=codec, secrets=["whsec_previous_one", SECRET], topics=topics)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server_task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event for "listening"
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=60, headers=API) as sandbox:
        subscribed = await sandbox.post("/admin/webhooks", json={"system": "billing", "url": url, "secret": SECRET})
        assert subscribed.status_code == 201, subscribed.text
        try:
            yield Connector(pool, codec, topics, url, sandbox, kafka_bootstrap, group_id)
        finally:
            await sandbox.delete(f"/admin/webhooks/{subscribed.json()['id']}")
            await sandbox.delete("/admin/faults", params={"system": "billing"})
            server.should_exit = True
            stop.set()
            await asyncio.gather(server_task, relay_task)
            await pool.close()


async def create_customer(sandbox: httpx.AsyncClient, account_id: str) -> str:
    response = await sandbox.post(
        "/billing/v1/customers",
        json={
            "name": f"Test {account_id}",
            "currency": "eur",
            "address": {"country": "DE"},
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
            "metadata": {"crm_account_id": account_id, "legal_entity": "EU"},
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def create_subscription(sandbox: httpx.AsyncClient, customer: str) -> dict[str, Any]:
    response = await sandbox.post(
        "/billing/v1/subscriptions",
        json={
            "customer": customer,
            "items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 1250,
                        "product": "SEAT",
                        "recurring": {"interval": "month", "usage_type": "licensed"},
                    },
                    "quantity": 3,
                }
            ],
            "metadata": {"crm_contract_id": "800TEST"},
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for(check: Callable[[], Any], within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {within}s")


EXPECTED = {
    "SubscriptionProvisioned",
    "SubscriptionStatusChanged",
    "InvoiceIssued",
    "TaxCalculated",
    "PaymentCollected",
}


def names(events: list[Event]) -> list[str]:
    return sorted(type(e).__name__ for e in events)


async def test_subscription_becomes_canonical_events_once_even_when_every_webhook_is_sent_twice(
    connector: Connector,
) -> None:
    c = connector
    knob = {"system": "billing", "endpoint": "webhooks", "webhook_duplicate_rate": 1.0}
    assert (await c.sandbox.put("/admin/faults", json=knob)).status_code == 200
    before = _duplicates()
    account = f"acc-{uuid.uuid4().hex[:10]}"
    customer = await create_customer(c.sandbox, account)
    sub = await create_subscription(c.sandbox, customer)

    events = await asyncio.to_thread(c.read_events, account, lambda found: set(names(found)) >= EXPECTED)
    assert names(events) == sorted(EXPECTED)  # each exactly once, though every webhook came twice
    by_type = {type(e).__name__: e for e in events}
    provisioned: Any = by_type["SubscriptionProvisioned"]
    assert (provisioned.subscription_id, provisioned.contract_id, provisioned.meta.legal_entity) == (
        sub["id"],
        "800TEST",
        "EU",
    )
    issued: Any = by_type["InvoiceIssued"]
    assert str(issued.subtotal.amount) == "37.5000" and str(issued.tax_total.amount) == "7.1300"  # DE 19 %
    status: Any = by_type["SubscriptionStatusChanged"]
    assert status.status.value == "ACTIVE"
    # every delivery came twice: the second of each was a no-op counted as a duplicate
    delivered = len(await c.inbox(customer))
    assert delivered >= 8
    assert await wait_for(lambda: _duplicates_since(before, delivered)) >= delivered

    # a forged delivery: refused, recorded, nothing ingested
    forged = b'{"id":"evt_forged","type":"invoice.finalized","data":{"object":{}}}'
    header = signature_header(forged, ["whsec_not_ours"], int(time.time()))
    async with httpx.AsyncClient() as client:
        answer = await client.post(c.url, content=forged, headers={BILLING_SIGNATURE_HEADER: header})
    assert answer.status_code == 400 and answer.json()["reason"] == "mismatch"
    reject = await c.pool.fetchrow(f"SELECT reason, headers FROM {SCHEMA}.ingest_rejects ORDER BY id DESC LIMIT 1")
    assert reject is not None and reject["reason"] == "mismatch"
    assert (
        await c.pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.ingest_inbox WHERE source_event_id = 'evt_forged'") == 0
    )


def _duplicates() -> float:
    return REGISTRY.get_sample_value("accord_ingest_duplicate_total", {"source": "billing"}) or 0.0


async def _duplicates_since(before: float, at_least: int) -> float:
    # a duplicate writes no row: the counter is the evidence (this process's receiver is the only one counting)
    seen = _duplicates() - before
    return seen if seen >= at_least else 0.0


async def test_poller_catches_up_on_dropped_webhooks_without_duplicates(connector: Connector) -> None:
    c = connector
    poller = CatchUpPoller(
        pool=c.pool, schema=SCHEMA, source=billing_source(SCHEMA, c.topics), codec=c.codec, client=c.sandbox
    )
    assert await poller.start_from_latest() is not None
    account = f"acc-{uuid.uuid4().hex[:10]}"
    # delivered by webhook first: the poller will meet it again as a duplicate
    customer = await create_customer(c.sandbox, account)
    await wait_for(lambda: c.inbox(customer))
    # the receiver "down": the sandbox drops every webhook from now on
    knob = {"system": "billing", "endpoint": "webhooks", "webhook_drop_rate": 1.0}
    assert (await c.sandbox.put("/admin/faults", json=knob)).status_code == 200
    sub = await create_subscription(c.sandbox, customer)
    await asyncio.sleep(2)  # the dispatcher drops the deliveries meanwhile
    assert [r["event_type"] for r in await c.inbox(customer)] == ["customer.created"]

    outcomes = await poller.run_once()
    assert outcomes["duplicate"] >= 1 and outcomes["processed"] >= 4
    polled = await c.inbox(customer)
    assert {r["event_type"] for r in polled if r["via"] == "poll"} >= {
        "customer.subscription.created",
        "invoice.finalized",
        "invoice.payment_succeeded",
    }
    again = await poller.run_once()
    assert again.get(Outcome.PROCESSED.value, 0) == 0

    events = await asyncio.to_thread(c.read_events, account, lambda found: set(names(found)) >= EXPECTED)
    assert names(events) == sorted(EXPECTED)
    assert any(getattr(e, "subscription_id", None) == sub["id"] for e in events)
