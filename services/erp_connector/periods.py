"""The period calendar from the ERP itself: `accountingPeriod` polled by lastModifiedDate, one
`PeriodStatusChanged` on `erp.periods` per change, and the decider's calendar kept current.

Per poll, in this order:
1. read the periods modified ON_OR_AFTER the last modification seen (at start: every period, once);
2. in ONE transaction: compare each with `periods` (the calendar as last seen); for each change, the new row and
   `PeriodStatusChanged` into the outbox, and, when a period reopened, its held entries released (`holds`);
3. only then update the in-memory calendar the decider reads.

A crash before 2 commits reads the same periods again; a period seen twice with the same status is no change, so
each change is published once. ON_OR_AFTER (not AFTER) because several periods may share the last timestamp.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from accord.events import DatePeriod, Meta, PeriodStatus, PeriodStatusChanged, SourceSystem

from . import holds
from .erp_client import ErpClient
from .handlers import derived_id, with_period
from .holds import Calendar, Outbox
from .posting import PeriodState

log = logging.getLogger("accord.erp_connector")

#: the ERP's period status → the event's
STATUSES = {"open": PeriodStatus.OPEN, "ar_locked": PeriodStatus.CLOSING, "closed": PeriodStatus.CLOSED}
_STATES = {"open": PeriodState.OPEN, "ar_locked": PeriodState.AR_LOCKED, "closed": PeriodState.CLOSED}


@dataclass(frozen=True)
class PeriodRecord:
    """One ERP accounting period, reduced to what the calendar needs."""

    erp_id: str
    legal_entity: str
    period: str  # YYYY-MM
    start: date
    end: date
    status: str  # open | ar_locked | closed
    last_modified: datetime


def period_record(raw: Mapping[str, Any], entities: Mapping[str, str]) -> PeriodRecord | None:
    """The period of a raw `accountingPeriod`, or None when it cannot be one of the calendar (its subsidiary has
    no externalId, so no legal entity code; a status the ERP added later)."""
    subsidiary = str((raw.get("subsidiary") or {}).get("id") or "")
    entity = entities.get(subsidiary)
    status = str(raw.get("status") or "")
    if entity is None or status not in STATUSES:
        return None
    start = date.fromisoformat(str(raw["startDate"]))
    return PeriodRecord(
        erp_id=str(raw["id"]),
        legal_entity=entity,
        period=f"{start.year:04d}-{start.month:02d}",
        start=start,
        end=date.fromisoformat(str(raw["endDate"])),
        status=status,
        last_modified=datetime.fromisoformat(str(raw["lastModifiedDate"]).replace("Z", "+00:00")),
    )


def status_event(record: PeriodRecord, version: int) -> PeriodStatusChanged:
    """The event of one change; its id derives from the change, so publishing it again is the same event."""
    change = f"{record.legal_entity}/{record.period}/{record.status}/{record.last_modified.isoformat()}"
    return PeriodStatusChanged(
        meta=Meta(
            event_id=derived_id("period", change),
            event_type=PeriodStatusChanged.AVRO_NAME,
            occurred_at=record.last_modified,
            source_system=SourceSystem.ERP,
            source_id=record.erp_id,
            correlation_id=f"period:{record.legal_entity}/{record.period}",
            causation_id=None,
            legal_entity=record.legal_entity,
            entity_version=version,
        ),
        legal_entity=record.legal_entity,
        period=record.period,
        dates=DatePeriod(start_date=record.start, end_date=record.end),
        status=STATUSES[record.status],
    )


class PeriodPoller:
    def __init__(
        self,
        client: ErpClient,
        pool: asyncpg.Pool,
        outbox: Outbox,
        calendar: Calendar,
        *,
        release: bool = True,
        full_reload_seconds: float = 600.0,
    ) -> None:
        self.client = client
        self.full_reload_seconds = full_reload_seconds
        self._loaded_at = 0.0
        self.pool = pool
        self.outbox = outbox
        self.calendar = calendar
        self.release = release
        self.entities: dict[str, str] = {}  # subsidiary internal id → legal entity code (its externalId)
        self.cursor: datetime | None = None

    async def _refresh_entities(self) -> None:
        for sub in await self.client.records("subsidiary"):
            if sub.get("externalId"):
                self.entities[str(sub["id"])] = str(sub["externalId"])

    async def load(self) -> int:
        """At start: the whole calendar, once (what changed while this process was away is published now)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT legal_entity, period, status FROM {self.outbox.schema}.periods")
        for row in rows:
            self.calendar.set(row["legal_entity"], row["period"], _STATES[row["status"]])
        self._loaded_at = time.monotonic()
        return await self._apply(await self.client.records("accountingPeriod"))

    async def poll(self) -> int:
        """The periods modified since the last seen modification; returns how many changed."""
        # Now and then the whole calendar again: a change stamped behind the cursor (the ERP's clock moved back)
        # is caught within `full_reload_seconds`, never missed for good.
        if self.cursor is None or time.monotonic() - self._loaded_at > self.full_reload_seconds:
            return await self.load()
        q = f'lastModifiedDate ON_OR_AFTER "{self.cursor.isoformat()}"'
        return await self._apply(await self.client.records("accountingPeriod", q=q))

    async def _apply(self, raw: list[dict[str, Any]]) -> int:
        # 1. Periods of subsidiaries not met before: the subsidiaries again (a new legal entity).
        if any(str((r.get("subsidiary") or {}).get("id")) not in self.entities for r in raw):
            await self._refresh_entities()
        records = [r for r in (period_record(x, self.entities) for x in raw) if r is not None]
        changed: list[PeriodStatusChanged] = []
        released = 0
        # 2. One transaction: the rows, the events, the releases.
        async with self.pool.acquire() as conn, conn.transaction():
            for rec in records:
                row = await conn.fetchrow(
                    f"""INSERT INTO {self.outbox.schema}.periods AS p
                            (legal_entity, period, status, erp_id, last_modified)
                        VALUES ($1, $2, $3, $4, $5)
                        ON CONFLICT (legal_entity, period) DO UPDATE
                            SET status = excluded.status, erp_id = excluded.erp_id,
                                last_modified = excluded.last_modified, version = p.version + 1
                            WHERE p.status <> excluded.status
                        RETURNING version,
                            (SELECT status FROM {self.outbox.schema}.periods
                             WHERE legal_entity = $1 AND period = $2) AS before""",
                    rec.legal_entity,
                    rec.period,
                    rec.status,
                    rec.erp_id,
                    rec.last_modified,
                )
                if row is None:
                    continue  # seen before with this status: no change
                event = status_event(rec, int(row["version"]))
                await self.outbox.write(conn, event)
                changed.append(event)
                if self.release and rec.status == "open" and row["before"] not in (None, "open"):
                    released += await holds.release_period(conn, self.outbox, rec.legal_entity, rec.period)
        # 3. The decider's calendar, once the transaction is durable.
        for event in changed:
            self.calendar.current = with_period(self.calendar.current, event)
        if records:
            latest = max(r.last_modified for r in records)
            self.cursor = latest if self.cursor is None else max(self.cursor, latest)
        if changed:
            log.info("%d period status change(s) published, %d held entries released", len(changed), released)
        return len(changed)


async def run_poller(
    poller: PeriodPoller, stop: Callable[[], bool], wait: Callable[[float], Any], interval: float
) -> None:
    """Poll until stopped; an ERP or database failure is logged and tried again at the next interval."""
    while not stop():
        try:
            await poller.poll()
        except Exception as exc:  # one failed poll never ends the process; the next one retries
            log.warning("polling the ERP's accounting periods failed, will retry: %s: %s", type(exc).__name__, exc)
        await wait(interval)
