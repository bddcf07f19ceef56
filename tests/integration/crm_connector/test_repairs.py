"""The reconciler's RESYNC_CRM_STATUS, carried out by `python -m accord_crm_connector` as its own process against the
session's Kafka, PostgreSQL, registry and sandbox CRM: a person overwrote the Account's status fields by hand; the
repair writes the connector's last decided status back, and the same request again (redelivered, or re-published
under a new event id) writes nothing more."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from accord.devstack._base import free_port
from accord.events import (
    EVENTS,
    DeclineType,
    InvoiceIssued,
    Money,
    PaymentFailed,
    RepairAction,
    RepairRequested,
    SourceSystem,
    new_meta,
)
from accord.serde import EventCodec
from accord_crm_connector.crm_client import DATA, ClientCredentials
from tests.integration.crm_connector.test_crm_connector_process import CATALOGUE, SECRET, Connector, billing_fact, until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]


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
    """The process with every topic of its own, recon.repairs included (one partition: requests in order)."""
    topics = {t: topic_factory(partitions=1, prefix=t.replace(".", "-")) for t in (*CATALOGUE, RepairRequested.TOPIC)}
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
        "ACCORD_CRM_WEBHOOK_SECRETS": SECRET,
        "ACCORD_CRM_HTTP_PORT": str(port),
        "ACCORD_CRM_TOPICS": json.dumps(topics),
        "ACCORD_CRM_GROUP": group_id,
    }
    async with (
        httpx.AsyncClient(base_url=sandbox_url, timeout=60) as sandbox,
        httpx.AsyncClient(base_url=sandbox_url, timeout=60, auth=ClientCredentials("someone", "pw")) as user,
    ):
        c = Connector(env, tmp_path / "connector.log", port, topics, codec, kafka_bootstrap, db_url, sandbox, user)
        c.start()
        try:
            yield c
        finally:
            if c.process is not None and c.process.poll() is None:
                assert c.stop() == 0, c.log.read_text()[-3000:]
            for p in c.producers:
                p.flush(10)


def resync(account_id: str) -> RepairRequested:
    """A RESYNC_CRM_STATUS as the reconciler publishes it (its event id is its repair_id)."""
    repair_id = str(uuid.uuid4())
    return RepairRequested(
        meta=new_meta(
            RepairRequested,
            source_system=SourceSystem.ACCORD,
            source_id=repair_id,
            correlation_id=str(uuid.uuid4()),
            entity_version=1,
            event_id=uuid.UUID(repair_id),
        ),
        repair_id=repair_id,
        divergence_key=f"account:{account_id}:status_mismatch/payment_status",
        divergence_id=str(uuid.uuid4()),
        action=RepairAction.RESYNC_CRM_STATUS,
        target_system=SourceSystem.CRM,
        entity_type="account",
        entity_id=account_id,
        account_id=account_id,
        detail="Payment_Status__c differs between billing and the CRM",
    )


def with_new_id(event: RepairRequested) -> RepairRequested:
    return event.model_copy(update={"meta": event.meta.model_copy(update={"event_id": uuid.uuid4()})})


FAILED_AND_HELD = {"Payment_Status__c": "Failed", "Credit_Hold__c": True, "Invoice_Status__c": "Open"}
EDITED_BY_HAND = {"Payment_Status__c": "Succeeded", "Credit_Hold__c": False}


async def test_resync_writes_the_last_decided_status_once_per_repair(connector: Connector) -> None:
    c = connector
    account_id = await c.account(f"Payer {uuid.uuid4().hex[:6]}")
    invoice = f"in_{uuid.uuid4().hex[:10]}"
    eur = Money(amount=Decimal("1234.00"), currency="EUR")
    c.produce("billing.invoices", [billing_fact(InvoiceIssued, account_id, 0, invoice_id=invoice, amount_due=eur)])
    c.produce(
        "billing.payments",
        [billing_fact(PaymentFailed, account_id, 1, invoice_id=invoice, decline_type=DeclineType.HARD)],
    )

    async def shows(fields: dict[str, Any]) -> bool:
        record = await c.crm_account(account_id)
        return all(record.get(k) == v for k, v in fields.items())

    async def commands() -> list[asyncpg.Record]:
        return await c.db(
            "SELECT idempotency_key, status, result FROM crm_connector.commands WHERE payload->>'account_id' = $1 "
            "ORDER BY id",
            account_id,
        )

    async def settled() -> bool:
        rows = await commands()
        return bool(rows) and all(r["status"] == "succeeded" for r in rows)

    await until(lambda: shows(FAILED_AND_HELD), c)
    await until(settled, c)
    decided = [r["idempotency_key"] for r in await commands()]

    async def edit_by_hand() -> None:  # a person in the CRM (no client id: not one of our write-backs)
        answer = await c.user.patch(f"{DATA}/sobjects/Account/{account_id}", json=EDITED_BY_HAND)
        assert answer.status_code == 204, answer.text
        assert await shows(EDITED_BY_HAND)

    await edit_by_hand()
    first = resync(account_id)
    c.produce(RepairRequested.TOPIC, [first])
    await until(lambda: shows(FAILED_AND_HELD), c)
    await until(settled, c)
    rows = await commands()
    resynced = [r for r in rows if r["idempotency_key"] not in decided]
    assert [r["idempotency_key"] for r in resynced] == [f"crm/account-status/{account_id}/v2/resync/{first.repair_id}"]
    assert json.loads(resynced[0]["result"]) == {"written": FAILED_AND_HELD, "version": 2}

    # The same request redelivered and re-published under a new event id; one for an account this connector never
    # decided for; then a new repair, processed after all of them on the one partition: once its write is done,
    # the ones before it have been handled, and only the new one wrote.
    await edit_by_hand()
    unknown = resync(f"001{uuid.uuid4().hex[:12]}")
    later = resync(account_id)
    c.produce(RepairRequested.TOPIC, [first, with_new_id(first), unknown, later])
    await until(lambda: shows(FAILED_AND_HELD), c)
    await until(settled, c)
    keys = [r["idempotency_key"] for r in await commands() if r["idempotency_key"] not in decided]
    assert keys == [
        f"crm/account-status/{account_id}/v2/resync/{first.repair_id}",
        f"crm/account-status/{account_id}/v2/resync/{later.repair_id}",
    ]
    assert await c.db("SELECT 1 FROM crm_connector.commands WHERE payload->>'account_id' = $1", unknown.entity_id) == []
    log = c.log.read_text()
    assert f"has decided no status for account {unknown.entity_id}" in log
    # The repairs carried out are remembered with the account's state; its decision is untouched.
    (state,) = await c.db(
        "SELECT data FROM crm_connector.aggregate_state WHERE aggregate = 'account_status' AND key = $1", account_id
    )
    data = json.loads(state["data"])
    assert (data["version"], data["repairs"]) == (2, [first.repair_id, later.repair_id])
