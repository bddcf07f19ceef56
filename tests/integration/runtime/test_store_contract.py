"""One contract for the runtime's store, run against the in-memory twin and the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from accord.runtime import CommandSpec, MemoryStore, OutboxRow, ParkedRow, PostgresStore, Writes
from accord.runtime._store import DuplicateEvent, ProcessedRow, Repark
from tests.support.db import create_database, drop_database


class Boom(Exception):
    pass


@pytest.fixture(
    params=[pytest.param("memory", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server = request.getfixturevalue("database_url")
    url = await create_database(server)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    pg = PostgresStore(pool, "svc")
    await pg.migrate()
    yield pg
    await pool.close()
    await drop_database(server, url)


def processed(n: int) -> ProcessedRow:
    return ProcessedRow(str(uuid.UUID(int=n)), "t", 0, n)


def parked(key: str, offset: int) -> ParkedRow:
    return ParkedRow(key, "t", 0, offset, None, key.encode(), b"v", [("h", "1")], "TransientError", "down", 3)


async def test_processed_ids_are_remembered_per_consumer(store: Any) -> None:
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(processed=[processed(1), processed(2)]))
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        assert await uow.processed([str(uuid.UUID(int=n)) for n in (1, 2, 3)]) == {
            str(uuid.UUID(int=1)),
            str(uuid.UUID(int=2)),
        }
    async with store.unit_of_work(consumer="b", aggregate="x") as uow:
        assert await uow.processed([str(uuid.UUID(int=1))]) == set()


async def test_recording_an_event_twice_is_a_duplicate_and_writes_nothing(store: Any) -> None:
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(processed=[processed(1)]))
    with pytest.raises(DuplicateEvent):
        async with store.unit_of_work(consumer="a", aggregate="x") as uow:
            await uow.write(Writes(processed=[processed(1)], states={"k": {"n": 1}}))
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        assert await uow.load_states(["k"]) == {}


async def test_a_failed_unit_of_work_leaves_no_trace(store: Any) -> None:
    with pytest.raises(Boom):
        async with store.unit_of_work(consumer="a", aggregate="x") as uow:
            await uow.write(Writes(processed=[processed(1)], states={"k": {"n": 1}}, parked=[parked("k", 1)]))
            raise Boom
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        assert await uow.processed([str(uuid.UUID(int=1))]) == set()
        assert await uow.load_states(["k"]) == {}
        assert await uow.parked_keys(["k"]) == set()


async def test_states_are_kept_per_aggregate_and_replaced(store: Any) -> None:
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(states={"k1": {"n": 1}, "k2": {"n": 2}}))
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(states={"k1": {"n": 10}}))
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        assert await uow.load_states(["k1", "k2", "k3"]) == {"k1": {"n": 10}, "k2": {"n": 2}}
    async with store.unit_of_work(consumer="a", aggregate="other") as uow:
        assert await uow.load_states(["k1"]) == {}


async def test_parked_events_queue_in_order_and_leave_when_applied(store: Any) -> None:
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(parked=[parked("k", 5), parked("k", 7), parked("j", 1)]))
    assert sorted(await store.parked_keys_due(consumer="a", limit=10)) == ["j", "k"]
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        queue = await uow.parked_queue("k")
        assert [p.offset for p in queue] == [5, 7]
        assert queue[0].headers == [("h", "1")] and queue[0].record_value == b"v"
        assert queue[0].id is not None and queue[1].id is not None
        await uow.write(Writes(unparked=[queue[0].id], reparked=[Repark(queue[1].id, 4, "still down", 0.0)]))
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        queue = await uow.parked_queue("k")
        assert [(p.offset, p.attempts, p.error_message) for p in queue] == [(7, 4, "still down")]
        assert await uow.parked_keys(["k", "j", "z"]) == {"k", "j"}


async def test_outbox_rows_are_written_with_the_batch(store: Any) -> None:
    row = OutboxRow("out", b"k", b"\x00\x00\x00\x00\x01v", [("a", "b")], "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(outbox=[row, row]))
    if isinstance(store, MemoryStore):
        assert store.outbox == [row, row]
    else:
        rows = await store.pool.fetch("SELECT topic, key, value, headers, traceparent FROM svc.outbox ORDER BY id")
        assert [(r["topic"], r["key"], r["value"], r["traceparent"]) for r in rows] == [
            (row.topic, row.key, row.value, row.traceparent)
        ] * 2


async def test_pruned_ids_leave_a_watermark_per_partition(store: Any) -> None:
    rows = [ProcessedRow(str(uuid.UUID(int=n)), "t", n % 2, 10 + n) for n in range(6)]
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(processed=rows, handled={("t", 0): 14, ("t", 1): 12}))
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        await uow.write(Writes(handled={("t", 1): 15}))
    assert await store.prune_processed(consumer="a", older_than_seconds=-1) == 6
    assert await store.prune_processed(consumer="b", older_than_seconds=-1) == 0
    async with store.unit_of_work(consumer="a", aggregate="x") as uow:
        assert await uow.processed([r.event_id for r in rows]) == set()
        assert await uow.watermarks([("t", 0), ("t", 1), ("u", 0)]) == {("t", 0): 14, ("t", 1): 15}


async def test_commands_are_recorded_once_per_idempotency_key(store: Any) -> None:
    command = CommandSpec("erp", "post_journal", "je-1@evt-1", {"amount": "10.00"})
    for _ in range(2):  # a redelivered event records the same command again
        async with store.unit_of_work(consumer="a", aggregate="x") as uow:
            await uow.write(Writes(commands=[command]))
    if isinstance(store, MemoryStore):
        assert store.commands == [command]
    else:
        rows = await store.pool.fetch("SELECT system, kind, idempotency_key, payload FROM svc.commands")
        assert [(r["system"], r["kind"], r["idempotency_key"]) for r in rows] == [("erp", "post_journal", "je-1@evt-1")]
