"""The exception queue on a real database (the orchestrator's schema with the runtime's outbox) and registry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from accord.casework import migrate_casework
from accord.migrations import migrate
from accord.runtime._store import MIGRATIONS as RUNTIME_MIGRATIONS
from accord.serde import EventCodec

SCHEMA = "orchestrator"


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_url)
    await migrate(c, RUNTIME_MIGRATIONS, schema=SCHEMA)
    await migrate_casework(c, schema=SCHEMA)
    yield c
    await c.close()
