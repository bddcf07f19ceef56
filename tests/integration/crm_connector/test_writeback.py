"""The write-back executor under accord.commands' worker, on real PostgreSQL and the session's sandbox CRM:
versions (an older command never overwrites a newer state), REQUEST_LIMIT_EXCEEDED retried, in-doubt read back.

Fault knobs are set only on `PATCH …/Account/<this test's account>`, which nothing else calls, and cleared after."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from accord.commands import CommandWorker, RetryPolicy, TokenBucket, enqueue
from accord.runtime import PostgresStore
from accord_crm_connector.app import SCHEMA
from accord_crm_connector.crm_client import DATA, ClientCredentials, CrmClient
from accord_crm_connector.status import AGGREGATE, KIND, SYSTEM, command_key
from accord_crm_connector.writeback import AccountStatusWriter

pytestmark = [pytest.mark.postgres]


@dataclass
class WriteBack:
    pool: asyncpg.Pool
    worker: CommandWorker
    user: httpx.AsyncClient
    admin: httpx.AsyncClient
    account: str

    async def command(self, version: int, fields: dict[str, Any]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            payload = {"account_id": self.account, "version": version, "fields": fields}
            await enqueue(
                conn, schema=SCHEMA, system=SYSTEM, kind=KIND, key=command_key(self.account, version), payload=payload
            )
            await conn.execute(
                f"""INSERT INTO {SCHEMA}.aggregate_state (aggregate, key, version, data) VALUES ($1, $2, 1, $3)
                    ON CONFLICT (aggregate, key) DO UPDATE SET data = excluded.data""",
                AGGREGATE,
                self.account,
                json.dumps({"version": version}),
            )

    async def rows(self) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                f"SELECT idempotency_key, status, attempts, result::text AS result, last_error FROM {SCHEMA}.commands "
                "ORDER BY id"
            )
        )

    async def work_until_done(self, within: float = 60) -> list[asyncpg.Record]:
        deadline = time.monotonic() + within
        while True:
            await self.worker.run_once()
            rows = await self.rows()
            if all(r["status"] in ("succeeded", "failed") for r in rows):
                return rows
            assert time.monotonic() < deadline, [dict(r) for r in rows]
            await asyncio.sleep(0.2)

    async def crm(self) -> dict[str, Any]:
        response = await self.user.get(f"{DATA}/sobjects/Account/{self.account}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def fault(self, **knob: Any) -> None:
        endpoint = f"PATCH {DATA}/sobjects/Account/{self.account}"
        answer = await self.admin.put("/admin/faults", json={"system": "crm", "endpoint": endpoint, **knob})
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def writeback(db_url: str, sandbox_url: str) -> AsyncIterator[WriteBack]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=8)
    assert pool is not None
    await PostgresStore(pool, SCHEMA).migrate()
    async with (
        httpx.AsyncClient(base_url=sandbox_url, timeout=60) as http,
        httpx.AsyncClient(base_url=sandbox_url, timeout=60) as admin,
        httpx.AsyncClient(base_url=sandbox_url, timeout=60, auth=ClientCredentials("someone", "pw")) as user,
    ):
        created = await user.post(
            f"{DATA}/sobjects/Account",
            json={"Name": f"Write-back {uuid.uuid4().hex[:6]}", "BillingCountry": "DE", "CurrencyIsoCode": "EUR"},
        )
        assert created.status_code == 201, created.text
        client = CrmClient(http, client_id=f"accord-{uuid.uuid4().hex[:8]}", client_secret="s3cret")
        worker = CommandWorker(
            pool,
            SCHEMA,
            executors={f"{SYSTEM}/{KIND}": AccountStatusWriter(client, pool, schema=SCHEMA)},
            rate_limits={SYSTEM: TokenBucket(rate=20, burst=5)},
            retry=RetryPolicy(max_attempts=5, base=0.05, cap=0.2),
            call_timeout=10,
        )
        w = WriteBack(pool, worker, user, admin, str(created.json()["id"]))
        try:
            yield w
        finally:
            await admin.delete(
                "/admin/faults", params={"system": "crm", "endpoint": f"PATCH {DATA}/sobjects/Account/{w.account}"}
            )
    await pool.close()


OPEN = {"Invoice_Status__c": "Open", "Payment_Status__c": "Failed", "Credit_Hold__c": True}
PAID = {"Invoice_Status__c": "Paid", "Payment_Status__c": "Succeeded", "Credit_Hold__c": False}


async def test_an_older_command_never_overwrites_a_newer_state(writeback: WriteBack) -> None:
    await writeback.command(1, OPEN)
    await writeback.command(2, PAID)  # decided before the first was sent: both queued, claimed together
    rows = await writeback.work_until_done()
    results = {r["idempotency_key"]: json.loads(r["result"]) for r in rows}
    assert results[command_key(writeback.account, 1)] == {"superseded_by": 2, "version": 1}
    assert results[command_key(writeback.account, 2)]["written"] == PAID
    record = await writeback.crm()
    assert {k: record[k] for k in PAID} == PAID


async def test_request_limit_exceeded_is_retried(writeback: WriteBack) -> None:
    await writeback.fault(rate_429=1.0)  # the CRM answers 403 REQUEST_LIMIT_EXCEEDED (Retry-After: 1)
    await writeback.command(1, OPEN)
    await writeback.worker.run_once()
    (row,) = await writeback.rows()
    assert row["status"] == "pending" and "REQUEST_LIMIT_EXCEEDED" in row["last_error"]
    await writeback.admin.delete(
        "/admin/faults", params={"system": "crm", "endpoint": f"PATCH {DATA}/sobjects/Account/{writeback.account}"}
    )
    (row,) = await writeback.work_until_done()
    assert row["status"] == "succeeded" and row["attempts"] >= 2
    record = await writeback.crm()
    assert {k: record[k] for k in OPEN} == OPEN


async def test_an_in_doubt_write_is_read_back_not_sent_again(writeback: WriteBack) -> None:
    await writeback.fault(timeout_after_write_rate=1.0)  # applied, then 504: the caller cannot know
    await writeback.command(1, OPEN)
    await writeback.worker.run_once()
    (row,) = await writeback.rows()
    assert row["status"] == "in_doubt", dict(row)
    (row,) = await writeback.work_until_done()  # the knob still answers 504 to a PATCH: only a read-back succeeds
    assert row["status"] == "succeeded" and json.loads(row["result"])["read_back"] is True
    record = await writeback.crm()
    assert {k: record[k] for k in OPEN} == OPEN
