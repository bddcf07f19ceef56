"""Inbound: CRM change events → canonical events on crm.accounts / crm.contracts, through accord.ingest.

Two ways in, one ingest path (inbox dedupe, last-writer-wins, outbox, all in one transaction):

- **push**: `POST /webhooks/crm` (signed `X-CRM-Signature`). The change is observed by the `CdcTracker`; a
  possible loss (a commit number skipped), a GAP_* event or a GAP_OVERFLOW wakes the catch-up (or queues a
  re-sync by query). An Account DELETE is not ingested from a webhook: whether it is a merge is told by the
  rest of its transaction, which only the replay has whole, so it is left to the catch-up (answered 202).
- **pull** (`CatchUp`): the replay after the stored cursor (the last replay id read in full) — periodically
  (webhooks can be dropped) and when the push path asks. INVALID_REPLAY_ID → re-sync by query on
  LastModifiedDate since the last good commit time, then the cursor moves to the tip read before the query.

The mapper stays pure: what it reads from the CRM is fetched BEFORE the ingest transaction (`prefetch`, which
runs `sync.map_with_client` to learn what it needs) and handed to it through the source's context loader;
no HTTP call runs inside a database transaction, and a CRM outage fails the delivery as retryable (503 to the
webhook sender; the poller tries again), never as a mapping failure.

Ids and versions are the mapper's (`mapping` documents both): the ingest keeps its event ids
(`keep_event_ids`) and checks last-writer-wins per event on `meta.entity_version` (`Mapped.from_meta`).
The inbox key of a change is `<transactionKey>:<sequenceNumber>/<first record id>`, the same by webhook and
by replay, so a change that came both ways is one delivery.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accord.errors import AccordError, TransientError
from accord.ingest import (
    Delivery,
    Ignored,
    Mapped,
    MapResult,
    Outcome,
    Source,
    Via,
    WebhookReceiver,
    ingest,
    json_body,
    load_cursor,
    record_reject,
    save_cursor,
)
from accord.ingest import MappingError as IngestMappingError
from accord.runtime import EventCodec
from accord.webhooks import CRM_SIGNATURE_HEADER, WebhookPayloadError, WebhookSignatureError, construct_event

from . import mapping
from .cdc import CdcTracker, Refetch, Resync
from .crm_client import CrmClient, CrmRejected, ReplayExpired
from .mapping import Ignore, Snapshot, entity_of, map_change, parse_header
from .sync import map_with_client, resync_changes, snapshot_for

log = logging.getLogger("accord_crm_connector.inbound")

SOURCE = "crm"
WEBHOOK_PATH = "/webhooks/crm"
#: what a re-sync by query reads (amendments as GAP_CREATE: a fact once created); lines travel in their contract
RESYNC_ENTITIES = ("Account", "Contract", "Amendment__c")
#: the replay id that reads from the earliest change retained
EARLIEST = -2

_prefetched: contextvars.ContextVar[Snapshot | None] = contextvars.ContextVar("crm_prefetched", default=None)


# -- the source -------------------------------------------------------------------------------------------


def identify(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(inbox key, event type) of a CDC event: `<transactionKey>:<seq>/<first record id>`, `<entity>/<change>`."""
    try:
        header = parse_header(payload)
    except mapping.MappingError as exc:
        raise IngestMappingError(f"not a CRM change event: {exc}") from None
    return f"{header.change_key}/{header.record_ids[0]}", f"{header.entity}/{header.change_type}"


def map_delivery(delivery: Delivery, snapshot: Snapshot | None) -> MapResult:
    """`mapping.map_change` over the prefetched snapshot, in accord.ingest's terms."""
    if snapshot is None:
        raise RuntimeError("no prefetched CRM records for this delivery: call it through CrmInbound")
    result = map_change(delivery.payload, snapshot)
    if isinstance(result, Ignore):
        return Ignored(result.reason)
    return Mapped.from_meta(result, entity_of)


async def _context(_conn: asyncpg.Connection, _delivery: Delivery) -> Snapshot | None:
    return _prefetched.get()


def crm_source(topics: Mapping[str, str] | None = None) -> Source:
    return Source(
        name=SOURCE,
        mapper=map_delivery,
        identify=identify,
        context=_context,
        topics=dict(topics or {}),
        keep_event_ids=True,
    )


async def prefetch(event: Mapping[str, Any], client: CrmClient, snapshot: Snapshot) -> Snapshot:
    """Read from the CRM what mapping `event` needs, into `snapshot`.

    The CRM's errors propagate (TransientError: try again later; CrmRejected: our credentials or request are
    refused, fix and retry): the delivery is not stored. A mapping error does not: the mapper raises it again
    inside the ingest, which keeps the delivery as failed with the reason.
    """
    try:
        await map_with_client(event, client, snapshot)
    except (TransientError, CrmRejected):
        raise
    except Exception as exc:  # the mapper's own error: recorded by the ingest, not here
        log.debug("prefetch of a CRM change stopped at a mapping error: %s", exc)
    return snapshot


@dataclass(frozen=True)
class Cursor:
    """The pull position: the last replay id read in full, and the commit time of that change (for a re-sync)."""

    replay_id: int
    commit_ms: int

    def dump(self) -> str:
        return json.dumps({"replay_id": self.replay_id, "commit_ms": self.commit_ms})

    @classmethod
    def load(cls, text: str) -> Cursor:
        data = json.loads(text)
        return cls(int(data["replay_id"]), int(data["commit_ms"]))


# -- the inbound service ----------------------------------------------------------------------------------


class CrmInbound:
    """The webhook endpoint and the catch-up of one CRM org (one replay stream)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        schema: str,
        codec: EventCodec,
        client: CrmClient,
        secrets: Sequence[str],
        topics: Mapping[str, str] | None = None,
        tolerance: int = 300,
        start_replay_id: int | None = None,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.codec = codec
        self.client = client
        self.source = crm_source(topics)
        self.secrets = list(secrets)
        self.tolerance = tolerance
        self.start_replay_id = start_replay_id
        self.receiver = WebhookReceiver(
            pool=pool,
            schema=schema,
            source=self.source,
            codec=codec,
            secrets=self.secrets,
            signature_header=CRM_SIGNATURE_HEADER,
            tolerance=tolerance,
        )
        self.tracker = CdcTracker(SOURCE)
        self.wake = asyncio.Event()
        self.resyncs: list[datetime.datetime] = []
        self._pull = asyncio.Lock()

    # -- push -----------------------------------------------------------------------------------------

    async def _known(self, source_event_id: str) -> bool:
        found = await self.pool.fetchval(
            f"SELECT 1 FROM {self.schema}.ingest_inbox WHERE source_system = $1 AND source_event_id = $2",
            SOURCE,
            source_event_id,
        )
        return found is not None

    def _act(self, action: Refetch | Resync | None, reason: str) -> None:
        if isinstance(action, Resync):
            self.resyncs.append(action.since)
        if action is not None or reason:
            log.info("crm catch-up requested: %s", action.reason if action is not None else reason)
            self.wake.set()

    async def handle(self, request: Request) -> Response:
        """`POST /webhooks/crm`: verify, observe, prefetch, then the library's receiver ingests."""
        body = await request.body()
        try:
            payload = construct_event(
                body, request.headers.get(CRM_SIGNATURE_HEADER), self.secrets, tolerance=self.tolerance
            )
            header = parse_header(payload)
        except (WebhookSignatureError, WebhookPayloadError, mapping.MappingError):
            return await self.receiver.handle(request)  # it refuses the request and records why
        observation = self.tracker.observe(payload, pushed=True)
        self._act(observation.action, "GAP event" if header.change_type.startswith("GAP_") else "")
        if header.entity == "Account" and header.change_type == "DELETE":
            self.wake.set()
            return JSONResponse(
                {"received": header.change_key, "outcome": "deferred", "reason": "a merge is read from the replay"},
                status_code=202,
            )
        source_event_id, _ = identify(payload)
        snapshot: Snapshot | None = None
        if not await self._known(source_event_id):
            try:
                snapshot = await prefetch(payload, self.client, snapshot_for(self.client.client_id, [payload]))
            except AccordError as exc:
                log.warning("crm webhook %s not ingested, the CRM could not be read: %s", source_event_id, exc)
                return JSONResponse(
                    {"title": "Try again later", "status": 503, "detail": f"the CRM could not be read: {exc}"},
                    status_code=503,
                    media_type="application/problem+json",
                )
        token = _prefetched.set(snapshot)
        try:
            response = await self.receiver.handle(request)
        finally:
            _prefetched.reset(token)
        if response.status_code == 200:
            self.tracker.processed(payload)
        return response

    # -- pull -----------------------------------------------------------------------------------------

    async def cursor(self) -> Cursor | None:
        text = await load_cursor(self.pool, schema=self.schema, source=SOURCE)
        return None if text is None else Cursor.load(text)

    async def _save(self, conn: asyncpg.Connection, cursor: Cursor) -> None:
        await save_cursor(conn, schema=self.schema, source=SOURCE, position=cursor.dump())

    async def _ingest(self, conn: asyncpg.Connection, event: Mapping[str, Any], snapshot: Snapshot | None) -> Outcome:
        token = _prefetched.set(snapshot)
        try:
            result = await ingest(
                conn,
                schema=self.schema,
                source=self.source,
                codec=self.codec,
                raw_body=json_body(event),
                payload=event,
                via=Via.POLL,
            )
        finally:
            _prefetched.reset(token)
        return result.outcome

    async def catch_up(self) -> Counter[str]:
        """Everything after the cursor through the ingest (one pull at a time); re-syncs asked for first."""
        async with self._pull:
            return await self._catch_up()

    async def _catch_up(self) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        while self.resyncs:
            outcomes += await self.resync(self.resyncs.pop(0))
        cursor = await self.cursor()
        if cursor is None:
            start = self.start_replay_id
            if start is None:
                start = await self.client.latest_replay_id()  # a new connector starts at the tip
            async with self.pool.acquire() as conn:
                now_ms = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
                await self._save(conn, Cursor(start, now_ms))
            log.info("crm catch-up starts after replay id %s", start)
            if self.start_replay_id is None:
                return outcomes
            cursor = Cursor(start, now_ms)
        try:
            events = await self.client.all_changes(cursor.replay_id)
        except ReplayExpired as exc:
            # What expired is read by query (records changed since the last good change); what is still retained
            # is then replayed from the earliest: already-seen changes are duplicates, older states are stale.
            log.warning("crm replay id %s expired (%s): re-sync by query", cursor.replay_id, exc)
            since = datetime.datetime.fromtimestamp(cursor.commit_ms / 1000, datetime.UTC)
            outcomes += await self.resync(since)
            async with self.pool.acquire() as conn:
                await self._save(conn, Cursor(EARLIEST, cursor.commit_ms))
            return outcomes
        base = snapshot_for(self.client.client_id, events)
        for event in events:
            try:
                header = parse_header(event)
            except mapping.MappingError as exc:
                cursor = await self._set_aside(event, cursor, str(exc))
                outcomes["rejected"] += 1
                continue
            observation = self.tracker.observe(event, pushed=False)
            if isinstance(observation.action, Resync):
                outcomes += await self.resync(observation.action.since)
            snapshot: Snapshot | None = None
            if not await self._known(identify(event)[0]):
                snapshot = await prefetch(event, self.client, base)
            moved = Cursor(header.replay_id or cursor.replay_id, header.commit_timestamp_ms or cursor.commit_ms)
            async with self.pool.acquire() as conn, conn.transaction():
                outcome = await self._ingest(conn, event, snapshot)
                await self._save(conn, moved)  # the cursor moves with the change it points at
            cursor = moved
            self.tracker.processed(event)
            outcomes[outcome.value] += 1
        # The tracker's memory of processed changes is only needed between two pulls: keep it bounded.
        self.tracker = CdcTracker(SOURCE, **self.tracker.state())
        if outcomes:
            log.info("crm catch-up: %s", dict(outcomes))
        return outcomes

    async def _set_aside(self, event: Mapping[str, Any], cursor: Cursor, reason: str) -> Cursor:
        """A replayed event that is no change event: kept as a reject (with its replay id), cursor past it, so one
        bad event never stops the stream."""
        inner = event.get("event")
        replay = inner.get("replayId") if isinstance(inner, Mapping) else None
        moved = Cursor(replay if isinstance(replay, int) else cursor.replay_id, cursor.commit_ms)
        log.warning("crm replay event %s set aside: %s", replay, reason)
        async with self.pool.acquire() as conn, conn.transaction():
            await record_reject(
                conn,
                schema=self.schema,
                source=SOURCE,
                reason="payload",
                detail=f"replay id {replay}: {reason}",
                headers={"via": Via.POLL.value},
                body=json_body(event),
            )
            await self._save(conn, moved)
        return moved

    async def resync(self, since: datetime.datetime) -> Counter[str]:
        """Records changed since `since`, by query, each as a GAP_UPDATE of itself through the ingest."""
        outcomes: Counter[str] = Counter()
        for event, snapshot in await resync_changes(self.client, RESYNC_ENTITIES, since=since):
            await prefetch(event, self.client, snapshot)
            async with self.pool.acquire() as conn:
                outcome = await self._ingest(conn, event, snapshot)
            outcomes[outcome.value] += 1
        log.info("crm re-sync since %s: %s", since.isoformat(), dict(outcomes))
        return outcomes

    async def run(self, stop: asyncio.Event, *, interval: float) -> None:
        """Catch up every `interval` seconds, and at once when the push path asks, until `stop`."""
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.catch_up()
            except (AccordError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("crm catch-up failed, will retry: %s", exc)
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
