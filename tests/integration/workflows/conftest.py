"""Fixtures for the workflow engine on the real database and registry: an engine per test, in its own database."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import asyncpg
import pytest

from accord.events import AccountStatus, ContractActivated, CustomerAccountUpserted, Event, InvoiceIssued
from accord.events.samples import sample_event
from accord.runtime import Envelope, event_identity
from accord.serde import EventCodec
from accord.workflows import WorkflowEngine
from tests.unit.workflows.activation import ACTIVATION

SCHEMA = "orchestrator"
E = TypeVar("E", bound=Event)
_offsets = itertools.count()


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.fixture
async def engine(pool: asyncpg.Pool, codec: EventCodec) -> WorkflowEngine:
    e = WorkflowEngine([ACTIVATION], pool=pool, schema=SCHEMA, encode=codec.encode)
    await e.migrate()
    return e


def envelope(event: Event, *, offset: int | None = None, topic: str | None = None) -> Envelope:
    """An event as the runtime would hand it over after decoding (topic, key and ids from the event)."""
    event_id, event_type = event_identity(event)
    return Envelope(
        topic=topic or event.TOPIC,
        partition=0,
        offset=next(_offsets) if offset is None else offset,
        timestamp_ms=None,
        key=event.key(),
        event=event,
        event_id=event_id,
        event_type=event_type,
    )


async def rows(pool: asyncpg.Pool, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch(sql.replace("{s}", SCHEMA), *args)]


def fresh(cls: type[E], **fields: Any) -> E:
    """A valid event of `cls` with a new event id and the given fields."""
    event = sample_event(cls, minimal=True)
    meta = event.meta.model_copy(update={"event_id": uuid.uuid4()})
    return event.model_copy(update={"meta": meta, **fields})


def activated(contract: str, account: str) -> ContractActivated:
    return fresh(ContractActivated, contract_id=contract, account_id=account)


def customer(account: str, status: AccountStatus = AccountStatus.ACTIVE) -> CustomerAccountUpserted:
    return fresh(CustomerAccountUpserted, account_id=account, status=status)


def invoice(account: str, invoice_id: str) -> InvoiceIssued:
    return fresh(InvoiceIssued, account_id=account, invoice_id=invoice_id)
