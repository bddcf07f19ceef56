"""accord.ingest against real PostgreSQL and the real schema registry, with a toy mapper (no billing logic).

The toy source's body: {"id", "type", "entity", "version", "account", "amount"}; type "pay" becomes a
PaymentCollected under last-writer-wins on ("thing", entity), "skip" is ignored, "boom" makes the mapper raise.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from accord.events import Money, PaymentCollected, PaymentMethod, SourceSystem, new_meta
from accord.ingest import (
    Delivery,
    EntityVersion,
    Ignored,
    Mapped,
    MapResult,
    Outcome,
    Source,
    WebhookReceiver,
    ingest,
    migrate_ingest,
    stable_event_id,
)
from accord.migrations import migrate
from accord.runtime._store import MIGRATIONS as RUNTIME_MIGRATIONS
from accord.serde import EventCodec
from accord.webhooks import signature_header

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

SCHEMA = "ingest_test"
SECRET = "whsec_ingest_test"


def toy_mapper(delivery: Delivery, _context: Any) -> MapResult:
    p = delivery.payload
    if delivery.event_type == "skip":
        return Ignored("toy: nothing to say")
    if delivery.event_type == "boom":
        raise ValueError("toy mapper cannot read this")
    event = PaymentCollected(
        meta=new_meta(
            PaymentCollected,
            source_system=SourceSystem.BILLING,
            source_id=delivery.source_event_id,
            correlation_id="c",
            entity_version=int(p["version"]),
        ),  # a random event id: ingest replaces it with the stable one
        account_id=str(p["account"]),
        payment_id=str(p["entity"]),
        amount=Money(amount=Decimal(str(p["amount"])), currency="EUR"),
        method=PaymentMethod.CARD,
        attempt=1,
        collected_at=datetime.datetime.now(datetime.UTC),
    )
    return Mapped([event], EntityVersion("thing", str(p["entity"]), int(p["version"])))


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=3)
    assert p is not None
    async with p.acquire() as conn:
        await migrate(conn, RUNTIME_MIGRATIONS, schema=SCHEMA)
        await migrate_ingest(conn, schema=SCHEMA)
    yield p
    await p.close()


@pytest.fixture
def source() -> Source:
    # a topic name of this test's own, so its registry subject is too
    return Source(name="toy", mapper=toy_mapper, topics={"billing.payments": f"test.ingest.{uuid.uuid4().hex[:8]}"})


def body(**fields: Any) -> bytes:
    return json.dumps(
        {"id": f"e{uuid.uuid4().hex[:6]}", "type": "pay", "account": "acc-1", "amount": "1.5"} | fields
    ).encode()


async def run(pool: asyncpg.Pool, source: Source, codec: EventCodec, raw: bytes) -> Any:
    async with pool.acquire() as conn:
        return await ingest(conn, schema=SCHEMA, source=source, codec=codec, raw_body=raw, payload=json.loads(raw))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_processed_once_then_duplicate_is_a_no_op(pool: asyncpg.Pool, source: Source, codec: EventCodec) -> None:
    raw = body(id="e1", entity="p1", version=1)
    first = await run(pool, source, codec, raw)
    again = await run(pool, source, codec, raw)
    assert (first.outcome, again.outcome) == (Outcome.PROCESSED, Outcome.DUPLICATE)
    rows = await pool.fetch(f"SELECT topic, key, value FROM {SCHEMA}.outbox")
    assert len(rows) == 1 and rows[0]["key"] == b"acc-1" and rows[0]["topic"] == source.topics["billing.payments"]
    event, _ = codec.decode(rows[0]["topic"], rows[0]["value"])
    assert event.meta.event_id == stable_event_id("toy", "e1", PaymentCollected.AVRO_NAME)  # type: ignore[attr-defined]
    inbox = await pool.fetch(f"SELECT status, emitted, raw_body FROM {SCHEMA}.ingest_inbox")
    assert [(r["status"], r["emitted"], bytes(r["raw_body"])) for r in inbox] == [("processed", 1, raw)]


async def test_older_version_is_stale_and_emits_nothing(pool: asyncpg.Pool, source: Source, codec: EventCodec) -> None:
    before = sample("accord_ingest_stale_total", source="toy")
    outcomes = [
        (await run(pool, source, codec, body(id=i, entity="p1", version=v))).outcome
        for i, v in (("a", 2), ("b", 1), ("c", 2), ("d", 3))
    ]
    assert outcomes == [Outcome.PROCESSED, Outcome.STALE, Outcome.STALE, Outcome.PROCESSED]
    assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox") == 2
    reason = await pool.fetchval(f"SELECT reason FROM {SCHEMA}.ingest_inbox WHERE source_event_id = 'b'")
    assert reason == "thing p1 version 1 is not newer than version 2"
    assert await pool.fetchval(f"SELECT version FROM {SCHEMA}.ingest_versions WHERE entity_id = 'p1'") == 3
    # another entity is independent
    assert (await run(pool, source, codec, body(id="e", entity="p2", version=1))).outcome is Outcome.PROCESSED
    assert sample("accord_ingest_stale_total", source="toy") == before + 2


async def test_mapper_error_keeps_the_delivery_as_failed(pool: asyncpg.Pool, source: Source, codec: EventCodec) -> None:
    before = sample("accord_ingest_failed_total", source="toy")
    result = await run(pool, source, codec, body(id="x", type="boom"))
    ignored = await run(pool, source, codec, body(id="y", type="skip"))
    assert (result.outcome, ignored.outcome) == (Outcome.FAILED, Outcome.IGNORED)
    rows = await pool.fetch(f"SELECT source_event_id, status, reason FROM {SCHEMA}.ingest_inbox ORDER BY id")
    assert [(r["source_event_id"], r["status"], r["reason"]) for r in rows] == [
        ("x", "failed", "ValueError: toy mapper cannot read this"),
        ("y", "ignored", "toy: nothing to say"),
    ]
    assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox") == 0
    assert sample("accord_ingest_failed_total", source="toy") == before + 1


async def test_receiver_rejects_bad_signatures_and_records_them(
    pool: asyncpg.Pool, source: Source, codec: EventCodec
) -> None:
    receiver = WebhookReceiver(
        pool=pool, schema=SCHEMA, source=source, codec=codec, secrets=["whsec_old", SECRET], signature_header="Sig"
    )
    app = Starlette(routes=[receiver.route("/hook")])
    good = body(id="ok1", entity="p9", version=1)
    bad = body(id="bad1", entity="p9", version=2)
    now = int(time.time())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        cases = {
            "good (second secret of a rotation)": (good, {"Sig": signature_header(good, [SECRET], now)}, 200),
            "duplicate": (good, {"Sig": signature_header(good, [SECRET], now)}, 200),
            "wrong secret": (bad, {"Sig": signature_header(bad, ["whsec_other"], now), "Authorization": "x"}, 400),
            "no header": (bad, {}, 400),
            "too old": (bad, {"Sig": signature_header(bad, [SECRET], now - 3600)}, 400),
            "signed but not JSON": (b"[1", {"Sig": signature_header(b"[1", [SECRET], now)}, 400),
            "signed, no id": (b"{}", {"Sig": signature_header(b"{}", [SECRET], now)}, 400),
        }
        answers = {}
        for name, (raw, headers, status) in cases.items():
            response = await client.post("/hook", content=raw, headers=headers)
            answers[name] = response.status_code
            assert response.status_code == status, (name, response.text)
    assert answers["duplicate"] == 200
    rejects = await pool.fetch(
        f"SELECT reason, headers, body_sha256, body_size FROM {SCHEMA}.ingest_rejects ORDER BY id"
    )
    assert [r["reason"] for r in rejects] == ["mismatch", "missing", "stale", "payload", "payload"]
    first = json.loads(rejects[0]["headers"])
    assert first["sig"] == "[redacted]" and first["authorization"] == "[redacted]"
    assert rejects[0]["body_sha256"] == hashlib.sha256(bad).hexdigest() and rejects[0]["body_size"] == len(bad)
    inbox = await pool.fetch(f"SELECT source_event_id, status FROM {SCHEMA}.ingest_inbox")
    assert [(r["source_event_id"], r["status"]) for r in inbox] == [("ok1", "processed")]
