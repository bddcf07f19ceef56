"""Fixtures: a fake SaaS API on loopback, and a fresh database with the runtime's and the commands' tables."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from accord.runtime import PostgresStore
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
    await PostgresStore(pool, SCHEMA).migrate()  # the runtime's tables and the commands table
    try:
        yield pool
    finally:
        await pool.close()
