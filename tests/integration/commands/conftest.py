"""Fixtures: a fake SaaS API on loopback, and a fresh database with the runtime's and the commands' tables."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from accord.commands import migrate_commands
from accord.migrations import migrate
from accord.runtime._store import MIGRATIONS as RUNTIME_MIGRATIONS
from tests.integration.commands.saas_server import FakeSaas, serve

SCHEMA = "billing_connector"


@pytest.fixture
async def saas() -> AsyncIterator[FakeSaas]:
    async with serve(FakeSaas()) as fake:
        yield fake


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=6)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate(conn, RUNTIME_MIGRATIONS, schema=SCHEMA)
        await migrate_commands(conn, schema=SCHEMA)
    try:
        yield pool
    finally:
        await pool.close()
