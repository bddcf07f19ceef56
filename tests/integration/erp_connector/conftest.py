"""Fixtures: the session's real sandbox ERP, books of this test's own (a subsidiary with its period calendar and a
chart of accounts under fresh externalIds, so closing a period never touches another test), and the connector's
client of it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from accord.runtime import PostgresStore
from accord_erp_connector.erp_client import RECORD, ErpClient
from accord_erp_connector.posting import AccountCode, ChartOfAccounts, LegalEntity, PostingRules, Role

SCHEMA = "erp_connector"
ACCOUNTS = {
    Role.RECEIVABLE: ("1100", "AcctRec"),
    Role.CASH: ("1000", "Bank"),
    Role.REVENUE: ("4000", "Income"),
    Role.TAX_PAYABLE: ("2200", "OthCurrLiab"),
    Role.REFUNDS: ("4900", "Income"),
    Role.ROUNDING: ("7990", "Expense"),
}


@dataclass
class Books:
    entity: LegalEntity
    subsidiary_id: str
    rules: PostingRules
    today: date
    admin: httpx.AsyncClient

    async def period(self, day: date) -> dict[str, Any]:
        q = f"subsidiary EQUAL {self.subsidiary_id}"
        items = (await self.admin.get(f"{RECORD}/accountingPeriod", params={"q": q, "limit": 1000})).json()["items"]
        (found,) = [p for p in items if p["startDate"] <= day.isoformat() <= p["endDate"]]
        return dict(found)

    async def set_period(self, day: date, status: str) -> None:
        period = await self.period(day)
        response = await self.admin.post(f"/admin/erp/periods/{period['id']}", json={"status": status})
        assert response.status_code == 200, response.text

    async def journals(self, external_id: str) -> list[dict[str, Any]]:
        page = await self.admin.get(f"{RECORD}/journalEntry", params={"q": f"externalId EQUAL {external_id}"})
        assert page.status_code == 200, page.text
        return list(page.json()["items"])


@pytest.fixture
async def erp(sandbox_url: str) -> AsyncIterator[ErpClient]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as http:
        yield ErpClient(http, client_id="accord-erp-connector", client_secret="s3cret")
        # knobs this test set are cleared for the next one (the sandbox is the session's)
        await http.delete("/admin/faults")
        await http.put("/admin/erp/limit", json={"concurrency": 5})


@pytest.fixture
async def books(erp: ErpClient) -> Books:
    """A fresh subsidiary (EUR) and chart of accounts, created through the ERP's own API."""
    tag = uuid.uuid4().hex[:8]
    entity = LegalEntity(f"T{tag}")
    await erp.upsert("subsidiary", entity, {"name": f"Test {tag} B.V.", "country": "NL", "currency": "EUR"})
    codes = {}
    for role, (number, kind) in ACCOUNTS.items():
        code = f"t{tag}-{number}"
        await erp.upsert("account", code, {"acctNumber": number, "acctName": f"{role.value} {tag}", "acctType": kind})
        codes[role] = AccountCode(code)
    rules = PostingRules(charts={entity: ChartOfAccounts(codes)}, base_currencies={entity: "EUR"})
    subsidiary = await erp.get("subsidiary", f"eid:{entity}")
    assert subsidiary is not None
    today = date.fromisoformat((await erp.http.get("/admin/clock")).json()["now"][:10])
    admin = erp.http
    admin.auth = erp.auth  # the record reads below go through the ERP's auth too
    return Books(entity, str(subsidiary["id"]), rules, today, admin)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    assert pool is not None
    await PostgresStore(pool, SCHEMA).migrate()  # the runtime's tables and the commands table
    try:
        yield pool
    finally:
        await pool.close()
