"""The reconciler's READ_BACK, carried out by `python -m accord_erp_connector` as its own process against the session's
Kafka, PostgreSQL, registry and sandbox ERP: a journal write that ended in doubt is read back — the entry that landed
is published as JournalPosted without being posted again, the entry that was lost is posted from the stored
command — and the same request again (redelivered, or re-published under a new event id) changes nothing more."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from accord.events import (
    JournalPosted,
    JournalRejected,
    JournalRequested,
    RepairAction,
    RepairRequested,
    SourceSystem,
    new_meta,
)
from accord.runtime import producer_config
from accord.serde import EventCodec
from accord_erp_connector.erp_client import RECORD, ErpClient
from tests.integration.erp_connector.test_service_process import (
    ACCOUNTS,
    CATALOGUE,
    PUBLISHED,
    SUBSIDIARIES,
    Stack,
    invoice,
    subsidiary,
    with_new_id,
)

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

JOURNAL_PUT = f"PUT {RECORD}/journalEntry"
JOURNAL_GET = f"GET {RECORD}/journalEntry"


class Repairs:
    """This test's recon.repairs topic, one partition: requests are processed in the order published."""

    def __init__(self, stack: Stack, topic: str) -> None:
        self.stack = stack
        self.topic = topic

    def publish(self, *requests: RepairRequested) -> None:
        producer = Producer(producer_config(self.stack.bootstrap))
        for request in requests:
            producer.produce(self.topic, key=request.key().encode(), value=self.stack.codec.encode(self.topic, request))
        assert producer.flush(30) == 0


def read_back(entity: str, document_id: str, external_id: str) -> RepairRequested:
    """A READ_BACK as the reconciler publishes it (its event id is its repair_id)."""
    repair_id = str(uuid.uuid4())
    return RepairRequested(
        meta=new_meta(
            RepairRequested,
            source_system=SourceSystem.ACCORD,
            source_id=repair_id,
            correlation_id=str(uuid.uuid4()),
            entity_version=1,
            legal_entity=entity,
            event_id=uuid.UUID(repair_id),
        ),
        repair_id=repair_id,
        divergence_key=f"journal:{entity}/{document_id}:in_doubt",
        divergence_id=str(uuid.uuid4()),
        action=RepairAction.READ_BACK,
        target_system=SourceSystem.ERP,
        entity_type="invoice",
        entity_id=document_id,
        journal_request_id=external_id,
        detail="the ERP write for the invoice is in doubt",
    )


@pytest.fixture
async def stack(
    kafka_bootstrap: str,
    db_url: str,
    registry_url: str,
    sandbox_url: str,
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> AsyncIterator[tuple[Stack, Repairs]]:
    with EventCodec.connect(registry_url, auto_register=True) as codec:
        topics = {name: topic_factory(prefix=f"erp-{name}") for name in CATALOGUE}
        repairs_topic = topic_factory(prefix="erp-repairs", partitions=1)
        for name, classes in PUBLISHED.items():
            for cls in classes:
                codec.schema_id(topics[name], cls)
        codec.schema_id(repairs_topic, RepairRequested)
        async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as http:
            erp = ErpClient(http, client_id="accord-erp-connector-test", client_secret="s3cret")
            for code, (name, country, currency) in SUBSIDIARIES.items():
                await subsidiary(erp, code, name, country, currency)
            for number, name, kind in ACCOUNTS:
                body = {"acctNumber": number, "acctName": name, "acctType": kind}
                await erp.upsert("account", f"acct-{number}", body)
            today = date.fromisoformat((await http.get("/admin/clock")).json()["now"][:10])
            s = Stack(kafka_bootstrap, db_url, registry_url, sandbox_url, codec, topics, erp, today, tmp_path)
            mapped = {CATALOGUE[k]: v for k, v in topics.items()} | {RepairRequested.TOPIC: repairs_topic}
            # Two calls per command: the write in doubt, then one read-back that fails too → the command ends in doubt.
            s.start(ACCORD_ERP_TOPICS=json.dumps(mapped), ACCORD_ERP_COMMAND_ATTEMPTS="2")
            try:
                yield s, Repairs(s, repairs_topic)
            finally:
                await http.delete("/admin/faults", params={"system": "erp"})
                if s.process is not None:
                    s.process.kill()
                    s.process.wait(timeout=30)


async def fault(stack: Stack, endpoint: str, **knob: Any) -> None:
    answer = await stack.erp.http.put("/admin/faults", json={"system": "erp", "endpoint": endpoint, **knob})
    assert answer.status_code == 200, answer.text


async def in_doubt(stack: Stack, document_id: str, *, write_lands: bool) -> str:
    """Post one invoice while the ERP answers its write with a 5xx (after applying it, or without) and its
    read-back with a 500: the command ends in doubt and the connector says so. Its entry's externalId."""
    await fault(stack, JOURNAL_PUT, **({"timeout_after_write_rate": 1.0} if write_lands else {"error_rate": 1.0}))
    await fault(stack, JOURNAL_GET, error_rate=1.0)
    try:
        doc = invoice(f"acc-{uuid.uuid4().hex[:8]}", "EU", "EUR", stack.today)
        doc = doc.model_copy(update={"invoice_id": document_id})
        stack.produce("invoices", doc)

        async def said_in_doubt() -> bool:
            return any(
                isinstance(e, JournalRejected)
                and e.source_document_id == document_id
                and e.detail.startswith("in doubt")
                for e in stack.read("journal")
            )

        await stack.await_until(said_in_doubt, f"no in-doubt JournalRejected for {document_id}")
    finally:
        await stack.erp.http.delete("/admin/faults", params={"system": "erp"})
    (requested,) = [
        e for e in stack.read("journal") if isinstance(e, JournalRequested) and e.source_document_id == document_id
    ]
    return requested.journal_request_id


def posted(stack: Stack, document_id: str) -> list[JournalPosted]:
    return [e for e in stack.read("journal") if isinstance(e, JournalPosted) and e.source_document_id == document_id]


async def test_read_back_finishes_in_doubt_entries_once(stack: tuple[Stack, Repairs]) -> None:
    s, repairs = stack
    landed_doc, lost_doc = f"in_{uuid.uuid4().hex[:12]}", f"in_{uuid.uuid4().hex[:12]}"
    landed = await in_doubt(s, landed_doc, write_lands=True)
    lost = await in_doubt(s, lost_doc, write_lands=False)
    (before,) = await s.journals(landed)  # the write that timed out was applied
    assert await s.journals(lost) == []  # the one refused with a 500 was not
    assert posted(s, landed_doc) == posted(s, lost_doc) == []

    # The reconciler's two READ_BACKs; a request for another system on the same topic is not this connector's.
    first, second = read_back("EU", landed_doc, landed), read_back("EU", lost_doc, lost)
    not_ours = read_back("EU", landed_doc, landed).model_copy(update={"target_system": SourceSystem.BILLING})
    repairs.publish(not_ours, first, second)

    async def both_posted() -> bool:
        return bool(posted(s, landed_doc)) and bool(posted(s, lost_doc)) and await s.settled()

    await s.await_until(both_posted, "the read-backs did not publish JournalPosted for both entries")
    (after,) = await s.journals(landed)
    assert after["lastModifiedDate"] == before["lastModifiedDate"]  # found by reading back: not written again
    (lost_entry,) = await s.journals(lost)  # not found: posted from the stored command, once
    (landed_posted,) = posted(s, landed_doc)
    (lost_posted,) = posted(s, lost_doc)
    assert (landed_posted.erp_journal_id, landed_posted.journal_request_id) == (str(after["id"]), landed)
    assert (lost_posted.erp_journal_id, lost_posted.journal_request_id) == (str(lost_entry["id"]), lost)
    assert landed_posted.total.amount == lost_posted.total.amount == 121

    # The same requests again, delivered twice and re-published under new event ids; then one more READ_BACK of
    # the entry now posted (a new repair_id), processed after them on the one partition: once it has closed,
    # the duplicates before it have been handled too.
    later = read_back("EU", landed_doc, landed)
    repairs.publish(first, second, with_new_id(first), with_new_id(second), later)

    async def later_done() -> bool:
        rows = await s.fetch("SELECT status FROM {s}.commands WHERE idempotency_key = $1", f"repair/{later.repair_id}")
        return [r["status"] for r in rows] == ["succeeded"] and await s.settled()

    await s.await_until(later_done, "the last READ_BACK was not carried out")
    rows = await s.fetch("SELECT idempotency_key, status FROM {s}.commands WHERE kind = 'read_back' ORDER BY id")
    assert [(r["idempotency_key"], r["status"]) for r in rows] == [
        (f"repair/{r.repair_id}", "succeeded") for r in (first, second, later)
    ]
    journals = await s.fetch(
        "SELECT payload->>'external_id' AS external_id, status FROM {s}.commands "
        "WHERE kind = 'post_journal' ORDER BY id"
    )
    assert [(r["external_id"], r["status"]) for r in journals] == [(landed, "succeeded"), (lost, "succeeded")]
    assert len(posted(s, landed_doc)) == len(posted(s, lost_doc)) == 1
    assert [e["lastModifiedDate"] for e in await s.journals(landed)] == [before["lastModifiedDate"]]
    assert len(await s.journals(lost)) == 1
    log = s.log.read_text()
    assert f"journal entry {landed} is already_posted" in log
    s.alive()
