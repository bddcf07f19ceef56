"""A state reconciliation: each system's read API → snapshot rows → SQL candidates → the rules on those keys only.

    result = await state_run(pool, engine, sources, since=None, dry_run=False, progress=print)

Changes made outside the event flow (a person editing the ERP, a webhook never delivered) are found here: the
snapshot of each system is summarized like accord's event view (`views.view_rows`), loaded with COPY, and SQL names
the keys where a system disagrees with another or with what the events said (`views.candidates`). Only those keys
go through the Python rules, with the snapshot's observations added to the stream's (`Reconciler.observe_snapshot`),
so a run over a large book costs one pass of SQL plus the rules on its few divergent keys.

A dry run does all of it in a transaction that is rolled back: it reports what it would find and decide, and leaves
no trace but its `runs` row.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from .engine import Reconciler, Report
from .model import MatchState, Observation, Relation, System
from .snapshots import Snapshot
from .views import candidates, drop_snapshot, load_snapshot, summarize


class Source(Protocol):
    def pull(self, since: datetime.datetime | None = None, snapshot: Snapshot | None = None) -> Any: ...


@dataclass
class RunResult:
    run_id: uuid.UUID
    dry_run: bool
    since: datetime.datetime | None
    snapshots: list[Snapshot] = field(default_factory=list)
    candidates: Counter[str] = field(default_factory=Counter)  # reason → keys
    report: Report = field(default_factory=Report)

    @property
    def until(self) -> datetime.datetime | None:
        """The next run's `since`: the oldest of the systems' newest change stamps (none is skipped)."""
        stamps = [s.until for s in self.snapshots if s.until is not None]
        return min(stamps, default=self.since)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "dry_run": self.dry_run,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "read": [s.describe() for s in self.snapshots],
            "candidates": dict(self.candidates),
            "keys_evaluated": self.report.keys,
            "opened": dict(self.report.opened),
            "closed": self.report.closed,
            "escalated": self.report.escalated,
            "repairs": dict(self.report.repairs),
        }


async def last_until(conn: asyncpg.Connection, schema: str) -> datetime.datetime | None:
    """Where the last finished (not dry) run got to: the default `since` of the next one."""
    value = await conn.fetchval(
        f"""SELECT summary->>'until' FROM {schema}.runs WHERE finished_at IS NOT NULL AND NOT dry_run
            ORDER BY finished_at DESC LIMIT 1"""
    )
    return None if value is None else datetime.datetime.fromisoformat(value)


async def state_run(
    pool: asyncpg.Pool,
    engine: Reconciler,
    sources: Mapping[System, Source],
    *,
    since: datetime.datetime | None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _: None,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> RunResult:
    """Pull every source (changed since `since`, or everything), compare, evaluate the candidates."""
    result = RunResult(run_id=uuid.uuid4(), dry_run=dry_run, since=since)
    schema = engine.s
    async with pool.acquire() as conn:
        await conn.execute(
            f"INSERT INTO {schema}.runs (run_id, started_at, since, dry_run) VALUES ($1, $2, $3, $4)",
            result.run_id,
            now(),
            since,
            dry_run,
        )
    observations: dict[str, list[Observation]] = {}
    for system, source in sources.items():
        snapshot = Snapshot.start(system, since)
        async for o in source.pull(since, snapshot):
            observations.setdefault(o.key, []).append(o)
        result.snapshots.append(snapshot)
        progress(snapshot.describe())
    # A full read says what each system holds of the relations its reader covers (billing's documents and payment
    # outcomes, the ERP's postings, the CRM's account status): for those a record the view has and the read lacks is
    # gone. Contracts, amendments and subscriptions are not read, so they are judged by the event view alone.
    covered: dict[System, set[Any]] = {
        System.ERP: {System.ERP},
        System.BILLING: {(System.BILLING, Relation.JOURNAL), (System.BILLING, Relation.ACCOUNT)},
        System.CRM: {(System.CRM, Relation.ACCOUNT)},
    }
    complete = {c for s in result.snapshots if since is None for c in covered.get(s.system, set())}
    run_engine = Reconciler(
        schema=schema, policy=engine.policy, encode=engine.encode, dry_run=dry_run, topics=engine.topics
    )
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            rows = summarize(MatchState.empty(key).add(*obs) for key, obs in observations.items())
            await load_snapshot(conn, schema, result.run_id, rows)
            await conn.execute(f"ANALYZE {schema}.snapshot_rows")
            found = await candidates(
                conn,
                schema,
                result.run_id,
                tolerance=engine.policy.amount_tolerance,
                complete=complete,
                base_currencies=engine.policy.base_currencies,
            )
            result.candidates.update(c.reason.value for c in found)
            progress(f"{len(rows)} snapshot rows, {len(found)} candidate keys: {dict(result.candidates) or 'none'}")
            result.report = await run_engine.observe_snapshot(
                conn, {c.key: observations.get(c.key, []) for c in found}, now()
            )
            await drop_snapshot(conn, schema, result.run_id)
        except BaseException:
            await tx.rollback()
            raise
        if dry_run:
            await tx.rollback()
        else:
            await tx.commit()
        await conn.execute(
            f"UPDATE {schema}.runs SET finished_at = $2, summary = $3::jsonb WHERE run_id = $1",
            result.run_id,
            now(),
            json.dumps(result.summary()),
        )
    return result
