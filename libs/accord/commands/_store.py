"""The `commands` table: record a command in the handler's transaction; claim, finish and reschedule it.

Every statement qualifies the table with the service's schema, as the runtime's store does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg

from accord.errors import AccordError, ConfigurationError
from accord.migrations import Migration, migrate

MIGRATIONS = Path(__file__).parent / "migrations"


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"


class CommandConflict(AccordError):
    """The idempotency key is taken by a different command: two different intents share one key."""

    def __init__(self, key: str, existing: str) -> None:
        super().__init__(
            f"idempotency key {key!r} already names another command ({existing}); derive keys from what "
            "makes the command unique (event id + kind), so the same key always means the same command"
        )
        self.key = key


@dataclass(frozen=True)
class Command:
    id: int
    system: str
    kind: str
    key: str
    payload: Mapping[str, Any]
    attempts: int  # calls started, this one included
    previous: Status  # the status it was claimed from
    claimed_at: float = 0.0  # time.monotonic() when this worker's claim returned

    @property
    def in_doubt(self) -> bool:
        """An earlier call may have been applied (it timed out after sending, or its worker died)."""
        return self.previous in (Status.IN_DOUBT, Status.RUNNING)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Command:
        return cls(
            id=row["id"],
            system=row["system"],
            kind=row["kind"],
            key=row["idempotency_key"],
            payload=json.loads(row["payload"]),
            attempts=row["attempts"],
            previous=Status(row["previous"]),
        )


def checked_schema(schema: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ConfigurationError(f"schema name {schema!r} must be a lower-case SQL identifier")
    return schema


def commands_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which `enqueue` wakes the workers of `schema`."""
    return f"accord_commands_{schema}"


async def migrate_commands(conn: asyncpg.Connection, *, schema: str) -> list[Migration]:
    """Create the `commands` table in `schema` (beside the runtime's tables; versions 1001+)."""
    return await migrate(conn, MIGRATIONS, schema=checked_schema(schema))


async def enqueue(
    conn: asyncpg.Connection,
    *,
    schema: str,
    system: str,
    kind: str,
    key: str,
    payload: Mapping[str, Any],
) -> bool:
    """Record a command, inside the caller's transaction; True if new, False if this key was recorded before.

    Recording the same command twice (a redelivered event) is a no-op. The same key for a different
    command is a bug in the caller and raises CommandConflict rather than dropping one of them.
    """
    s = checked_schema(schema)
    body = json.dumps(payload, sort_keys=True, default=str)
    row = await conn.fetchrow(
        f"""INSERT INTO {s}.commands (system, kind, idempotency_key, payload)
            VALUES ($1, $2, $3, $4::jsonb)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id""",
        system,
        kind,
        key,
        body,
    )
    if row is not None:
        # Delivered at commit, and only if the handler's transaction commits: wakes the workers at once.
        await conn.execute("SELECT pg_notify($1, '')", commands_channel(s))
        return True
    same = await conn.fetchrow(
        f"""SELECT system = $2 AND kind = $3 AND payload = $4::jsonb AS same, system, kind
            FROM {s}.commands WHERE idempotency_key = $1""",
        key,
        system,
        kind,
        body,
    )
    if same is not None and not same["same"]:
        raise CommandConflict(key, f"{same['system']}/{same['kind']} with another payload")
    return False


async def claim(conn: asyncpg.Connection, schema: str, *, limit: int, lease: float) -> list[Command]:
    """Take up to `limit` due commands for this worker: pending or in doubt and due, or running with a lapsed
    lease (their worker died). Rows other workers are claiming are skipped, never waited for."""
    rows = await conn.fetch(
        f"""WITH due AS (
                SELECT id, status FROM {schema}.commands
                WHERE (status IN ('pending', 'in_doubt') AND next_attempt_at <= now())
                   OR (status = 'running' AND lease_until < now())
                ORDER BY next_attempt_at, id
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
            UPDATE {schema}.commands c
               SET status = 'running', attempts = c.attempts + 1,
                   lease_until = now() + make_interval(secs => $2), updated_at = now()
              FROM due WHERE c.id = due.id
            RETURNING c.id, c.system, c.kind, c.idempotency_key, c.payload::text AS payload, c.attempts,
                      due.status AS previous""",
        limit,
        lease,
    )
    now = time.monotonic()
    return sorted((replace(Command.from_row(r), claimed_at=now) for r in rows), key=lambda c: c.id)


async def renew(conn: asyncpg.Connection, schema: str, command: Command, *, lease: float) -> bool:
    """Extend this worker's claim right before calling out; False if the claim was lost meanwhile."""
    done = await conn.execute(
        f"""UPDATE {schema}.commands SET lease_until = now() + make_interval(secs => $3), updated_at = now()
            WHERE id = $1 AND attempts = $2 AND status = 'running'""",
        command.id,
        command.attempts,
        lease,
    )
    return bool(done == "UPDATE 1")


async def finish(
    conn: asyncpg.Connection,
    schema: str,
    command: Command,
    *,
    status: Status,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    delay: float | None = None,
) -> bool:
    """Record this attempt's outcome; False (and nothing written) if another worker owns the command now.

    `delay` (seconds) reschedules it; None leaves it off the schedule (done, or waiting for a person).
    """
    done = await conn.execute(
        f"""UPDATE {schema}.commands
               SET status = $3, result = COALESCE($4::jsonb, result), last_error = $5, lease_until = NULL,
                   next_attempt_at = CASE WHEN $6::float8 IS NULL THEN 'infinity'::timestamptz
                                          ELSE now() + make_interval(secs => $6::float8) END,
                   updated_at = now()
             WHERE id = $1 AND attempts = $2 AND status = 'running'""",
        command.id,
        command.attempts,
        status.value,
        None if result is None else json.dumps(result, sort_keys=True, default=str),
        error,
        delay,
    )
    return bool(done == "UPDATE 1")
