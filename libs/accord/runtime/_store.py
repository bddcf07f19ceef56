"""The runtime's store port: idempotency, aggregate state, outbox and parked events, in ONE transaction.

`PostgresStore` is what ships; `MemoryStore` is its in-memory twin for fast unit tests of a service's
handlers. One contract suite (tests/…/test_store_contract.py) runs against both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from accord.migrations import migrate

from ._model import CommandSpec

MIGRATIONS = Path(__file__).parent / "migrations"


class DuplicateEvent(Exception):
    """Another transaction recorded one of these event ids first (a concurrent consumer after a rebalance).

    The batch's transaction is rolled back; running the batch again skips the events already applied.
    """


@dataclass(frozen=True, slots=True)
class ProcessedRow:
    event_id: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class OutboxRow:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, str]] = ()
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """A parked record: enough of it to apply it later, or to dead-letter it with its provenance."""

    key: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    record_key: bytes | None
    record_value: bytes | None
    headers: Sequence[tuple[str, str]]
    error_class: str
    error_message: str
    attempts: int
    id: int | None = None  # set once stored


@dataclass(frozen=True, slots=True)
class Repark:
    """A parked event that failed again: its new attempt count, error and when to try next."""

    id: int
    attempts: int
    error_message: str
    delay_seconds: float


@dataclass(slots=True)
class Writes:
    """Everything one batch changes; committed together or not at all."""

    states: dict[str, Any] = field(default_factory=dict)
    processed: list[ProcessedRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    parked: list[ParkedRow] = field(default_factory=list)
    unparked: list[int] = field(default_factory=list)
    reparked: list[Repark] = field(default_factory=list)
    #: SaaS commands the handlers recorded (accord.commands' table, same transaction)
    commands: list[CommandSpec] = field(default_factory=list)
    #: highest offset handled per (topic, partition) in this batch
    handled: dict[tuple[str, int], int] = field(default_factory=dict)
    #: span contexts of the events applied, so the commit shows up in each of their traces
    spans: list[Any] = field(default_factory=list)


class UnitOfWork(Protocol):
    async def parked_keys(self, keys: Iterable[str]) -> set[str]: ...

    async def processed(self, event_ids: Iterable[str]) -> set[str]: ...

    async def watermarks(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Highest pruned offset per (topic, partition): everything at or below it was applied already."""
        ...

    async def load_states(self, keys: Iterable[str]) -> dict[str, Any]: ...

    async def parked_queue(self, key: str) -> list[ParkedRow]:
        """The parked events of `key` in order, locked for this transaction (empty if another holds them)."""
        ...

    async def write(self, writes: Writes) -> None: ...


class Store(Protocol):
    def unit_of_work(self, *, consumer: str, aggregate: str) -> contextlib.AbstractAsyncContextManager[UnitOfWork]: ...

    async def parked_keys_due(self, *, consumer: str, limit: int) -> list[str]:
        """Keys whose first parked event is due for another attempt."""
        ...

    async def prune_processed(self, *, consumer: str, older_than_seconds: float) -> int:
        """Forget processed event ids older than the retention; returns how many were pruned."""
        ...


# -- PostgreSQL ----------------------------------------------------------------------------------------


class _PgUnitOfWork:
    def __init__(self, conn: asyncpg.Connection, schema: str, consumer: str, aggregate: str) -> None:
        self.conn = conn
        #: the batch's connection, inside its transaction: machinery built on the runtime (the workflow engine)
        #: writes its own tables through it, so they commit or roll back with the batch
        self.connection = conn
        self.schema = schema
        self.consumer = consumer
        self.aggregate = aggregate

    async def parked_keys(self, keys: Iterable[str]) -> set[str]:
        rows = await self.conn.fetch(
            f"SELECT DISTINCT key FROM {self.schema}.parked_events WHERE consumer = $1 AND key = ANY($2::text[])",
            self.consumer,
            list(keys),
        )
        return {r["key"] for r in rows}

    async def processed(self, event_ids: Iterable[str]) -> set[str]:
        rows = await self.conn.fetch(
            f"SELECT event_id::text FROM {self.schema}.processed_events"
            " WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
            self.consumer,
            list(event_ids),
        )
        return {r["event_id"] for r in rows}

    async def watermarks(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        wanted = list(partitions)
        rows = await self.conn.fetch(
            f"""SELECT topic, kafka_partition, kafka_offset FROM {self.schema}.pruned_watermarks
                WHERE consumer = $1 AND (topic, kafka_partition) IN
                      (SELECT * FROM unnest($2::text[], $3::int[]))""",
            self.consumer,
            [t for t, _ in wanted],
            [p for _, p in wanted],
        )
        return {(r["topic"], r["kafka_partition"]): r["kafka_offset"] for r in rows}

    async def load_states(self, keys: Iterable[str]) -> dict[str, Any]:
        rows = await self.conn.fetch(
            f"SELECT key, data FROM {self.schema}.aggregate_state WHERE aggregate = $1 AND key = ANY($2::text[])",
            self.aggregate,
            list(keys),
        )
        return {r["key"]: json.loads(r["data"]) for r in rows}

    async def parked_queue(self, key: str) -> list[ParkedRow]:
        rows = await self.conn.fetch(
            f"""SELECT * FROM {self.schema}.parked_events WHERE consumer = $1 AND key = $2
                ORDER BY id FOR UPDATE SKIP LOCKED""",
            self.consumer,
            key,
        )
        return [
            ParkedRow(
                key=r["key"],
                topic=r["topic"],
                partition=r["kafka_partition"],
                offset=r["kafka_offset"],
                timestamp_ms=r["kafka_timestamp"],
                record_key=r["record_key"],
                record_value=r["record_value"],
                headers=[tuple(h) for h in json.loads(r["headers"])],
                error_class=r["error_class"],
                error_message=r["error_message"],
                attempts=r["attempts"],
                id=r["id"],
            )
            for r in rows
        ]

    async def write(self, writes: Writes) -> None:
        s = self.schema
        if writes.handled:
            await self.conn.execute(
                f"""INSERT INTO {s}.handled_offsets (consumer, topic, kafka_partition, kafka_offset)
                    SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])
                    ON CONFLICT (consumer, topic, kafka_partition) DO UPDATE
                    SET kafka_offset = greatest(handled_offsets.kafka_offset, excluded.kafka_offset)""",
                self.consumer,
                [t for t, _ in writes.handled],
                [p for _, p in writes.handled],
                list(writes.handled.values()),
            )
        if writes.unparked:
            await self.conn.execute(f"DELETE FROM {s}.parked_events WHERE id = ANY($1::bigint[])", writes.unparked)
        for r in writes.reparked:
            await self.conn.execute(
                f"""UPDATE {s}.parked_events SET attempts = $2, error_message = $3,
                        next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1""",
                r.id,
                r.attempts,
                r.error_message,
                r.delay_seconds,
            )
        if writes.processed:
            try:
                await self.conn.execute(
                    f"""INSERT INTO {s}.processed_events (consumer, event_id, topic, kafka_partition, kafka_offset)
                        SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[])""",
                    self.consumer,
                    [p.event_id for p in writes.processed],
                    [p.topic for p in writes.processed],
                    [p.partition for p in writes.processed],
                    [p.offset for p in writes.processed],
                )
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateEvent(str(exc)) from exc
        if writes.states:
            await self.conn.execute(
                f"""INSERT INTO {s}.aggregate_state (aggregate, key, version, data)
                    SELECT $1, k, 1, d FROM unnest($2::text[], $3::jsonb[]) AS t(k, d)
                    ON CONFLICT (aggregate, key) DO UPDATE
                    SET data = excluded.data, version = aggregate_state.version + 1, updated_at = now()""",
                self.aggregate,
                list(writes.states),
                [json.dumps(v, separators=(",", ":"), default=str) for v in writes.states.values()],
            )
        if writes.outbox:
            await self.conn.execute(
                f"""INSERT INTO {s}.outbox (topic, key, value, headers, traceparent)
                    SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[], $5::text[])""",
                [o.topic for o in writes.outbox],
                [o.key for o in writes.outbox],
                [o.value for o in writes.outbox],
                [json.dumps([list(h) for h in o.headers]) for o in writes.outbox],
                [o.traceparent for o in writes.outbox],
            )
            # Wakes the relay at once; it also polls, so a lost notification only delays.
            await self.conn.execute("SELECT pg_notify($1, '')", outbox_channel(s))
        if writes.commands:
            # Imported here: accord.commands builds on the runtime (its worker wakes the relay).
            from accord.commands import enqueue

            for c in writes.commands:
                await enqueue(self.conn, schema=s, system=c.system, kind=c.kind, key=c.key, payload=c.payload)
        if writes.parked:
            await self.conn.executemany(
                f"""INSERT INTO {s}.parked_events (consumer, key, topic, kafka_partition, kafka_offset,
                        kafka_timestamp, record_key, record_value, headers, error_class, error_message, attempts)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12)""",
                [
                    (
                        self.consumer,
                        p.key,
                        p.topic,
                        p.partition,
                        p.offset,
                        p.timestamp_ms,
                        p.record_key,
                        p.record_value,
                        json.dumps([list(h) for h in p.headers]),
                        p.error_class,
                        p.error_message,
                        p.attempts,
                    )
                    for p in writes.parked
                ],
            )


def outbox_channel(schema: str) -> str:
    return f"accord_outbox_{schema}"


class PostgresStore:
    """The runtime's tables in the service's own schema, through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema

    async def migrate(self) -> None:
        """The runtime's tables and accord.commands' table (handlers record commands) in the service's schema."""
        from accord.commands import migrate_commands

        async with self.pool.acquire() as conn:
            await migrate(conn, MIGRATIONS, schema=self.schema)
            await migrate_commands(conn, schema=self.schema)

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, consumer: str, aggregate: str) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield _PgUnitOfWork(conn, self.schema, consumer, aggregate)

    async def prune_processed(self, *, consumer: str, older_than_seconds: float) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            # Watermark first, in the same transaction as the delete: never a moment when an id is gone
            # and its offset is not yet covered.
            await conn.execute(
                f"""INSERT INTO {self.schema}.pruned_watermarks (consumer, topic, kafka_partition, kafka_offset)
                    SELECT consumer, topic, kafka_partition, kafka_offset FROM {self.schema}.handled_offsets
                    WHERE consumer = $1
                    ON CONFLICT (consumer, topic, kafka_partition) DO UPDATE
                    SET kafka_offset = greatest(pruned_watermarks.kafka_offset, excluded.kafka_offset)""",
                consumer,
            )
            status = await conn.execute(
                f"""DELETE FROM {self.schema}.processed_events
                    WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2)""",
                consumer,
                older_than_seconds,
            )
        return int(status.split()[-1])

    async def parked_keys_due(self, *, consumer: str, limit: int) -> list[str]:
        rows = await self.pool.fetch(
            f"""SELECT key FROM (SELECT DISTINCT ON (key) key, next_attempt_at FROM {self.schema}.parked_events
                                 WHERE consumer = $1 ORDER BY key, id) heads
                WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $2""",
            consumer,
            limit,
        )
        return [r["key"] for r in rows]


# -- in memory ------------------------------------------------------------------------------------------


class _MemoryUnitOfWork:
    def __init__(self, store: MemoryStore, consumer: str, aggregate: str) -> None:
        self.store = store
        self.consumer = consumer
        self.aggregate = aggregate
        self.pending: Writes | None = None

    async def parked_keys(self, keys: Iterable[str]) -> set[str]:
        return {p.key for c, p in self.store.parked if c == self.consumer} & set(keys)

    async def processed(self, event_ids: Iterable[str]) -> set[str]:
        return {e for e in event_ids if (self.consumer, e) in self.store.processed_ids}

    async def watermarks(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {
            tp: self.store.watermarks[(self.consumer, *tp)]
            for tp in partitions
            if (self.consumer, *tp) in self.store.watermarks
        }

    async def load_states(self, keys: Iterable[str]) -> dict[str, Any]:
        return {
            k: json.loads(self.store.states[(self.aggregate, k)])
            for k in keys
            if (self.aggregate, k) in self.store.states
        }

    async def parked_queue(self, key: str) -> list[ParkedRow]:
        return [p for c, p in self.store.parked if c == self.consumer and p.key == key]

    async def write(self, writes: Writes) -> None:
        for p in writes.processed:
            if (self.consumer, p.event_id) in self.store.processed_ids:
                raise DuplicateEvent(f"event {p.event_id} already processed by {self.consumer}")
        self.pending = writes


class MemoryStore:
    """The in-memory twin of PostgresStore: same contract, no database. For unit tests only."""

    def __init__(self) -> None:
        self.processed_ids: set[tuple[str, str]] = set()
        #: (consumer, event_id) -> (topic, partition, offset), for pruning
        self.processed_at: dict[tuple[str, str], tuple[str, int, int]] = {}
        self.watermarks: dict[tuple[str, str, int], int] = {}
        self.handled: dict[tuple[str, str, int], int] = {}
        self.states: dict[tuple[str, str], str] = {}
        self.outbox: list[OutboxRow] = []
        self.commands: list[CommandSpec] = []
        self.parked: list[tuple[str, ParkedRow]] = []
        self._next_id = 0

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, consumer: str, aggregate: str) -> AsyncIterator[UnitOfWork]:
        uow = _MemoryUnitOfWork(self, consumer, aggregate)
        yield uow
        # Reached only when the block did not raise: the in-memory "commit".
        writes = uow.pending
        if writes is None:
            return
        self.processed_ids.update((consumer, p.event_id) for p in writes.processed)
        self.processed_at.update({(consumer, p.event_id): (p.topic, p.partition, p.offset) for p in writes.processed})
        for (topic, partition), offset in writes.handled.items():
            where = (consumer, topic, partition)
            self.handled[where] = max(self.handled.get(where, -1), offset)
        for key, value in writes.states.items():
            self.states[(aggregate, key)] = json.dumps(value, separators=(",", ":"), default=str)
        self.outbox.extend(writes.outbox)
        # Idempotent by key, as the real table's unique constraint makes it.
        known = {c.key for c in self.commands}
        self.commands.extend(c for c in writes.commands if c.key not in known)
        gone = set(writes.unparked)
        self.parked = [(c, p) for c, p in self.parked if p.id not in gone]
        for r in writes.reparked:
            self.parked = [
                (
                    c,
                    dataclasses.replace(p, attempts=r.attempts, error_message=r.error_message) if p.id == r.id else p,
                )
                for c, p in self.parked
            ]
        for p in writes.parked:
            self._next_id += 1
            self.parked.append((consumer, dataclasses.replace(p, id=self._next_id)))

    async def prune_processed(self, *, consumer: str, older_than_seconds: float) -> int:
        """In memory there is no clock: everything recorded so far counts as older than the retention."""
        pruned = [(c, e) for c, e in self.processed_ids if c == consumer]
        for c, e in pruned:
            self.processed_at.pop((c, e))
            self.processed_ids.discard((c, e))
        for key, offset in self.handled.items():
            if key[0] == consumer:
                self.watermarks[key] = max(self.watermarks.get(key, -1), offset)
        return len(pruned)

    async def parked_keys_due(self, *, consumer: str, limit: int) -> list[str]:
        keys: list[str] = []
        for c, p in self.parked:
            if c == consumer and p.key not in keys:
                keys.append(p.key)
        return keys[:limit]
