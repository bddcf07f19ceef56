"""The ingest transaction: inbox row, mapping, last-writer-wins check and outbox rows, committed together.

For one verified delivery, in ONE PostgreSQL transaction:

1. insert the raw delivery into `ingest_inbox`; a unique violation on (source system, source event id)
   means it was received before: a no-op (DUPLICATE), nothing else runs;
2. load the mapper's context (the source's own tables), then run the pure mapper;
   a mapper error marks the row failed with the reason and stops (the delivery is kept, never lost);
3. when the mapped delivery is a snapshot of an entity, raise the entity's version in `ingest_versions`
   only if it is higher than the one seen; if not, the row is marked stale and nothing is emitted;
4. encode the canonical events (stable ids) and insert them into the runtime's `outbox`, then NOTIFY
   the relay; the row is marked processed.

The caller answers the sender only after the commit, so a crash before it makes the sender retry.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from accord.events import Event
from accord.migrations import migrate
from accord.runtime import EventCodec
from accord.runtime._store import outbox_channel
from accord.serde import EncodeError

from . import _metrics as m
from ._model import Delivery, EntityVersion, Ignored, Mapped, MappingError, Outcome, Source, Via, meta_of

log = logging.getLogger("accord.ingest")

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    source_event_id: str
    event_type: str
    reason: str | None = None
    events: tuple[Event, ...] = ()


async def migrate_ingest(conn: asyncpg.Connection, *, schema: str) -> None:
    """The ingest tables in the service's schema (the runtime's own migrations must have created `outbox`)."""
    await migrate(conn, MIGRATIONS, schema=schema)


def _with_stable_id(delivery: Delivery, event: Event) -> Event:
    # The id is the ingest's guarantee, not the mapper's: whatever it put there, a re-delivery gets the same.
    meta = meta_of(event).model_copy(update={"event_id": delivery.event_id(type(event))})
    return event.model_copy(update={"meta": meta})


async def ingest(
    conn: asyncpg.Connection,
    *,
    schema: str,
    source: Source,
    codec: EventCodec,
    raw_body: bytes,
    payload: Mapping[str, Any],
    via: Via = Via.WEBHOOK,
    received_at: datetime.datetime | None = None,
) -> Result:
    """Ingest one verified delivery in one transaction (a savepoint if `conn` is already in one).

    Raises MappingError when the body cannot even be identified (no event id): the caller rejects it.
    Database and registry outages propagate (nothing committed): the caller answers 5xx, the sender retries.
    """
    source_event_id, event_type = source.identify(payload)
    delivery = Delivery(
        source_system=source.name,
        source_event_id=source_event_id,
        event_type=event_type,
        payload=payload,
        received_at=received_at or datetime.datetime.now(datetime.UTC),
        via=via,
    )
    async with conn.transaction():
        # 1. The inbox row is the idempotency: a second insert of the same source event inserts nothing.
        inbox_id = await conn.fetchval(
            f"""INSERT INTO {schema}.ingest_inbox (source_system, source_event_id, event_type, via, raw_body,
                    received_at) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (source_system, source_event_id) DO NOTHING RETURNING id""",
            source.name,
            source_event_id,
            event_type,
            via.value,
            raw_body,
            delivery.received_at,
        )
        if inbox_id is None:
            m.DUPLICATE.labels(source.name).inc()
            return Result(Outcome.DUPLICATE, source_event_id, event_type)

        async def finish(outcome: Outcome, reason: str | None, emitted: int = 0) -> None:
            await conn.execute(
                f"UPDATE {schema}.ingest_inbox SET status = $2, reason = $3, emitted = $4 WHERE id = $1",
                inbox_id,
                outcome.value,
                reason,
                emitted,
            )

        # 2. Context, then the pure mapper. Any error of the mapper is permanent for this body.
        try:
            context = await source.context(conn, delivery) if source.context is not None else None
            result = source.mapper(delivery, context)
            events = (
                [e if source.keep_event_ids else _with_stable_id(delivery, e) for e in result.events]
                if isinstance(result, Mapped)
                else []
            )
            if isinstance(result, Mapped) and result.entities and len(result.entities) != len(events):
                raise MappingError(f"the mapper gave {len(result.entities)} entities for {len(events)} events")
            if len({meta_of(e).event_id for e in events}) != len(events):
                raise MappingError(f"the mapper made two events of one type from {source_event_id}")
        except Exception as exc:  # a mapper bug must not lose the delivery either
            if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
                raise  # the database, not the body: roll back, the sender retries
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("ingest %s %s (%s) failed to map: %s", source.name, source_event_id, event_type, reason)
            await finish(Outcome.FAILED, reason[:2000])
            m.FAILED.labels(source.name).inc()
            return Result(Outcome.FAILED, source_event_id, event_type, reason)
        if isinstance(result, Ignored):
            await finish(Outcome.IGNORED, result.reason)
            m.IGNORED.labels(source.name).inc()
            return Result(Outcome.IGNORED, source_event_id, event_type, result.reason)

        # 3. Last writer wins per entity: only a strictly higher version moves it (and emits).
        async def stale(e: EntityVersion) -> str | None:
            moved = await conn.fetchval(
                f"""INSERT INTO {schema}.ingest_versions (source_system, entity_type, entity_id, version,
                        source_event_id) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (source_system, entity_type, entity_id) DO UPDATE
                    SET version = excluded.version, source_event_id = excluded.source_event_id, updated_at = now()
                    WHERE ingest_versions.version < excluded.version
                    RETURNING version""",
                source.name,
                e.entity_type,
                e.entity_id,
                e.version,
                source_event_id,
            )
            if moved is not None:
                return None
            seen = await conn.fetchval(
                f"""SELECT version FROM {schema}.ingest_versions
                    WHERE source_system = $1 AND entity_type = $2 AND entity_id = $3""",
                source.name,
                e.entity_type,
                e.entity_id,
            )
            return f"{e.entity_type} {e.entity_id} version {e.version} is not newer than version {seen}"

        stale_reason: str | None = None
        partly_stale: str | None = None  # some of several entities stale: kept as the row's reason
        if result.entity is not None:
            stale_reason = await stale(result.entity)
        elif result.entities:
            kept: list[Event] = []
            reasons: list[str] = []
            for ev, entity in zip(events, result.entities, strict=True):
                why = None if entity is None else await stale(entity)
                if why is None:
                    kept.append(ev)
                else:
                    reasons.append(why)
            events = kept
            if reasons:
                stale_reason, partly_stale = ("; ".join(reasons), None) if not kept else (None, "; ".join(reasons))
        if stale_reason is not None:
            await finish(Outcome.STALE, stale_reason[:2000])
            m.STALE.labels(source.name).inc()
            return Result(Outcome.STALE, source_event_id, event_type, stale_reason)

        # 4. Encode and write the outbox; the relay publishes after the commit.
        try:
            rows = [(source.topic_of(ev), ev.key().encode(), codec.encode(source.topic_of(ev), ev)) for ev in events]
        except EncodeError as exc:
            reason = f"EncodeError: {exc}"
            await finish(Outcome.FAILED, reason[:2000])
            m.FAILED.labels(source.name).inc()
            return Result(Outcome.FAILED, source_event_id, event_type, reason)
        if rows:
            await conn.execute(
                f"""INSERT INTO {schema}.outbox (topic, key, value, headers)
                    SELECT t, k, v, $4::jsonb FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u(t, k, v)""",
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                json.dumps([["accord-source-event-id", source_event_id]]),
            )
            # Wakes the relay at once; it also polls, so a lost notification only delays.
            await conn.execute("SELECT pg_notify($1, '')", outbox_channel(schema))
        await finish(Outcome.PROCESSED, partly_stale[:2000] if partly_stale else None, len(rows))
    m.PROCESSED.labels(source.name).inc()
    for topic, _key, _value in rows:
        m.EMITTED.labels(source.name, topic).inc()
    return Result(Outcome.PROCESSED, source_event_id, event_type, None, tuple(events))


_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


def redact_headers(headers: Mapping[str, str], signature_header: str) -> dict[str, str]:
    """Headers safe to keep: credentials and the signature itself replaced by a marker."""
    hidden = _SECRET_HEADERS | {signature_header.lower()}
    return {k: ("[redacted]" if k.lower() in hidden else v) for k, v in headers.items()}


async def record_reject(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection,
    *,
    schema: str,
    source: str,
    reason: str,
    detail: str,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Keep a refused request's evidence (never its body: unverified, it may be anything)."""
    await pool_or_conn.execute(
        f"""INSERT INTO {schema}.ingest_rejects (source_system, reason, detail, headers, body_sha256, body_size)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6)""",
        source,
        reason,
        detail[:2000],
        json.dumps(dict(headers)),
        hashlib.sha256(body).hexdigest(),
        len(body),
    )
    m.REJECTED.labels(source, reason).inc()


async def load_cursor(conn: asyncpg.Pool | asyncpg.Connection, *, schema: str, source: str) -> str | None:
    value: str | None = await conn.fetchval(
        f"SELECT position FROM {schema}.ingest_cursors WHERE source_system = $1", source
    )
    return value


async def save_cursor(conn: asyncpg.Connection, *, schema: str, source: str, position: str) -> None:
    await conn.execute(
        f"""INSERT INTO {schema}.ingest_cursors (source_system, position) VALUES ($1, $2)
            ON CONFLICT (source_system) DO UPDATE SET position = excluded.position, updated_at = now()""",
        source,
        position,
    )
