"""PostgreSQL state: records as JSON documents, counters, events and the webhook outbox.

Writes of one simulated system run one at a time (an asyncio lock per system, one process) inside one
database transaction: a record, the events it caused and their outbox rows commit together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from accord.migrations import migrate

MIGRATIONS = Path(__file__).parent / "migrations"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def open_pool(database_url: str, schema: str) -> asyncpg.Pool:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, MIGRATIONS, schema=schema)
    finally:
        await conn.close()

    # search_path as a server setting, not a SET: the pool's RESET ALL on release would undo a SET.
    pool: asyncpg.Pool = await asyncpg.create_pool(
        database_url,
        min_size=2,
        max_size=10,
        init=_init_connection,
        server_settings={"search_path": f"{schema},public"},
    )
    return pool


class Clock:
    """Sandbox time: the wall clock plus an offset the operator advances (persisted in `settings`)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset, UTC)

    async def load(self, pool: asyncpg.Pool) -> None:
        value = await pool.fetchval("SELECT value FROM settings WHERE key = 'clock_offset'")
        self.offset = float(value) if value is not None else 0.0

    async def advance(self, pool: asyncpg.Pool, seconds: float) -> datetime:
        self.offset += seconds
        await pool.execute(
            "INSERT INTO settings (key, value) VALUES ('clock_offset', $1) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            self.offset,
        )
        return self.now()


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def unix(ts: datetime) -> int:
    return int(ts.timestamp())


@dataclass
class Tx:
    """One write transaction of one system: helpers over the connection, stamped with sandbox time."""

    conn: asyncpg.Connection
    system: str
    now: datetime
    #: CDC: commit timestamp and transaction key shared by every change of this transaction
    transaction_key: str = ""
    sequence: int = 0
    emitted: list[dict[str, Any]] = field(default_factory=list)
    #: CRM record changes of this transaction, turned into change events when it ends
    changes: list[dict[str, Any]] = field(default_factory=list)

    async def next_number(self, name: str) -> int:
        value: int = await self.conn.fetchval(
            "INSERT INTO counters (name, value) VALUES ($1, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
            name,
        )
        return value

    async def get(self, kind: str, id_: str, *, deleted: bool = False) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            "SELECT data FROM records WHERE system = $1 AND kind = $2 AND id = $3 AND (deleted = false OR $4)",
            self.system,
            kind,
            id_,
            deleted,
        )
        return None if row is None else dict(row["data"])

    async def by_external_id(self, kind: str, external_id: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            "SELECT data FROM records WHERE system = $1 AND kind = $2 AND external_id = $3 AND NOT deleted",
            self.system,
            kind,
            external_id,
        )
        return None if row is None else dict(row["data"])

    async def insert(self, kind: str, id_: str, data: dict[str, Any], *, external_id: str | None = None) -> None:
        await self.conn.execute(
            "INSERT INTO records (system, kind, id, external_id, data, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $6)",
            self.system,
            kind,
            id_,
            external_id,
            data,
            self.now,
        )

    async def update(
        self, kind: str, id_: str, data: dict[str, Any], *, touch: bool = True, external_id: str | None = None
    ) -> None:
        """Replace a record's data; `external_id`, when given, replaces its external id too."""
        await self.conn.execute(
            "UPDATE records SET data = $4, updated_at = CASE WHEN $6 THEN $5 ELSE updated_at END, "
            "external_id = coalesce($7, external_id) WHERE system = $1 AND kind = $2 AND id = $3",
            self.system,
            kind,
            id_,
            data,
            self.now,
            touch,
            external_id,
        )

    async def delete(self, kind: str, id_: str) -> None:
        await self.conn.execute(
            "UPDATE records SET deleted = true, updated_at = $4 WHERE system = $1 AND kind = $2 AND id = $3",
            self.system,
            kind,
            id_,
            self.now,
        )

    async def find(self, kind: str, match: dict[str, Any]) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT data FROM records WHERE system = $1 AND kind = $2 AND data @> $3 AND NOT deleted "
            "ORDER BY created_at, id",
            self.system,
            kind,
            match,
        )
        return [dict(r["data"]) for r in rows]

    async def emit(self, type_: str, event_id: str, payload: dict[str, Any]) -> int:
        """Record an event and queue one delivery per active subscriber of this system."""
        seq: int = await self.conn.fetchval(
            "INSERT INTO events (system, id, type, created_at, payload) VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            self.system,
            event_id,
            type_,
            self.now,
            payload,
        )
        await self.conn.execute(
            "INSERT INTO outbox (subscriber_id, event_seq, next_attempt_at) "
            "SELECT id, $2, $3 FROM subscribers WHERE system = $1 AND active",
            self.system,
            seq,
            self.now,
        )
        self.emitted.append(payload)
        return seq


class Store:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock
        self._locks = {name: asyncio.Lock() for name in ("crm", "billing", "erp", "admin")}

    @contextlib.asynccontextmanager
    async def tx(self, system: str) -> AsyncIterator[Tx]:
        async with self._locks[system], self.pool.acquire() as conn, conn.transaction():
            yield Tx(conn=conn, system=system, now=self.clock.now())

    async def get(self, system: str, kind: str, id_: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT data FROM records WHERE system = $1 AND kind = $2 AND id = $3 AND NOT deleted",
            system,
            kind,
            id_,
        )
        return None if row is None else dict(row["data"])

    async def page(
        self,
        system: str,
        kind: str,
        *,
        match: dict[str, Any] | None = None,
        modified_since: datetime | None = None,
        created_gte: datetime | None = None,
        after_id: str | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int = 100,
        include_deleted: bool = False,
    ) -> tuple[list[dict[str, Any]], bool, int]:
        """One page: (records, has_more, total).

        Ordered by (updated_at, id) ascending, the order a "modified since" poller needs, or newest
        created first (Stripe's lists) when `newest_first`. `after_id` is a cursor: the page starts after
        that record in the chosen order; `offset` is NetSuite's offset paging.
        """
        col = "created_at" if newest_first else "updated_at"
        where = ["system = $1", "kind = $2"]
        args: list[Any] = [system, kind]
        if not include_deleted:
            where.append("NOT deleted")
        if match:
            args.append(match)
            where.append(f"data @> ${len(args)}")
        if modified_since is not None:
            args.append(modified_since)
            where.append(f"updated_at >= ${len(args)}")
        if created_gte is not None:
            args.append(created_gte)
            where.append(f"created_at >= ${len(args)}")
        base = " AND ".join(where)
        total: int = await self.pool.fetchval(f"SELECT count(*) FROM records WHERE {base}", *args)
        if after_id is not None:
            args.append(after_id)
            cmp = "<" if newest_first else ">"
            base += (
                f" AND ({col}, id) {cmp} (SELECT {col}, id FROM records r2 WHERE r2.system = $1 "
                f"AND r2.kind = $2 AND r2.id = ${len(args)})"
            )
        direction = "DESC" if newest_first else "ASC"
        args += [limit + 1, offset]
        rows = await self.pool.fetch(
            f"SELECT data, deleted FROM records WHERE {base} ORDER BY {col} {direction}, id {direction} "
            f"LIMIT ${len(args) - 1} OFFSET ${len(args)}",
            *args,
        )
        items = [dict(r["data"], **({"deleted": True} if r["deleted"] else {})) for r in rows[:limit]]
        return items, len(rows) > limit, total

    async def get_setting(self, key: str, default: Any = None) -> Any:
        value = await self.pool.fetchval("SELECT value FROM settings WHERE key = $1", key)
        return default if value is None else value

    async def put_setting(self, key: str, value: Any) -> None:
        await self.pool.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
            key,
            value,
        )


def days(n: float) -> timedelta:
    return timedelta(days=n)
