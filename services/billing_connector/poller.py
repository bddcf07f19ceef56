"""Catch-up: list the billing events since the last one seen (`GET /billing/v1/events?ending_before=…`) and
feed each, oldest first, through the same ingest as a webhook. An event the webhook already delivered is a
duplicate no-op (same inbox key), so running the poller after downtime never emits twice.

The cursor (the id of the last event listed) is stored in `ingest_cursors` in the same transaction as the
event it points at: a crash loses no event and re-ingests at most the one in flight (a duplicate).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import asyncpg
import httpx

from accord.ingest import Outcome, Source, Via, ingest, json_body, load_cursor, save_cursor
from accord.runtime import EventCodec

log = logging.getLogger("accord_billing_connector.poller")
#: the cursor of a poller that started before billing had any event: everything counts, from the first one
FROM_START = "@start"


class CatchUpPoller:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        schema: str,
        source: Source,
        codec: EventCodec,
        client: httpx.AsyncClient,
        page_size: int = 100,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.source = source
        self.codec = codec
        self.client = client
        self.page_size = page_size

    async def start_from(self, event_id: str) -> None:
        """Set the cursor: the next run lists what came after `event_id`."""
        async with self.pool.acquire() as conn:
            await save_cursor(conn, schema=self.schema, source=self.source.name, position=event_id)

    async def start_from_latest(self) -> str | None:
        """With no cursor yet: start after the newest event now (older history is a backfill, not catch-up).
        With no event at all yet, start at the beginning (`FROM_START`): the first events are not skipped."""
        page = await self._get({"limit": 1})
        newest = str(page["data"][0]["id"]) if page["data"] else FROM_START
        await self.start_from(newest)
        return newest

    async def _oldest(self) -> str | None:
        """The id of the oldest event there is (pages from the newest towards it: only used once, at start)."""
        oldest, after = None, None
        while True:
            page = await self._get({"limit": 100, **({"starting_after": after} if after else {})})
            if not page["data"]:
                return oldest
            oldest = after = str(page["data"][-1]["id"])
            if not page.get("has_more"):
                return oldest

    async def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.get("/billing/v1/events", params=params)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def run_once(self) -> Counter[str]:
        """Ingest everything after the cursor; returns how many deliveries had each outcome."""
        outcomes: Counter[str] = Counter()
        cursor = await load_cursor(self.pool, schema=self.schema, source=self.source.name)
        if cursor is None:
            await self.start_from_latest()
            return outcomes
        if cursor == FROM_START:
            # Events may exist by now: ingest the oldest, then go on after it as usual.
            first = await self._oldest()
            if first is None:
                return outcomes
            response = await self.client.get(f"/billing/v1/events/{first}")
            response.raise_for_status()
            event = response.json()
            async with self.pool.acquire() as conn, conn.transaction():
                result = await ingest(
                    conn,
                    schema=self.schema,
                    source=self.source,
                    codec=self.codec,
                    raw_body=json_body(event),
                    payload=event,
                    via=Via.POLL,
                )
                cursor = first
                await save_cursor(conn, schema=self.schema, source=self.source.name, position=cursor)
            outcomes[result.outcome.value] += 1
        while True:
            page = await self._get({"ending_before": cursor, "limit": self.page_size})
            # Newest first within the page: ingest oldest first, so versions arrive in order.
            for event in reversed(page["data"]):
                async with self.pool.acquire() as conn, conn.transaction():
                    result = await ingest(
                        conn,
                        schema=self.schema,
                        source=self.source,
                        codec=self.codec,
                        raw_body=json_body(event),
                        payload=event,
                        via=Via.POLL,
                    )
                    cursor = str(event["id"])
                    await save_cursor(conn, schema=self.schema, source=self.source.name, position=cursor)
                outcomes[result.outcome.value] += 1
            if not page.get("has_more") or not page["data"]:
                break
        if outcomes:
            log.info("billing catch-up: %s", dict(outcomes))
        return outcomes


__all__ = ["CatchUpPoller", "Outcome"]
