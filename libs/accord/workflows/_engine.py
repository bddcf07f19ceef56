"""The workflow engine: persists instances, waits, timers and history, and applies each transition in ONE
PostgreSQL transaction together with the runtime's idempotency row and outbox rows.

Delivering a batch of events (`deliver`, or `WorkflowRuntime` from Kafka), in this order — the order is the guarantee:

1. open one transaction on the service's schema (the runtime's `PostgresStore.unit_of_work`);
2. skip events whose id is already in `processed_events` (or below the pruned watermark);
3. per event, in order: start the instances it starts (one per (workflow, key)), then route it to every
   instance waiting on (event type, correlation key); each instance row is locked (`FOR UPDATE`) while
   its decider runs, and the transition — state, step, waits, timers, history, commands, cases and
   outbox rows — is written on the same connection;
4. record the processed event ids and handled offsets (`uow.write`) and commit;
5. (Kafka, `WorkflowRuntime`) publish the batch's dead letters, then commit the offsets.

A crash before 4 commits loses nothing (the batch is redelivered and nothing of it was kept); a crash after
it redelivers events that step 2 skips. Timers (`fire_due_timers`) take the instance lock first and delete
the timer row in the transaction that applies it, so each fires once even with several engine processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from accord import casework, commands
from accord.casework import CaseworkError, Encode, Verdict
from accord.commands import CommandConflict
from accord.errors import ConfigurationError, PermanentError
from accord.events import EVENTS, ExceptionChanged
from accord.migrations import migrate
from accord.runtime import Envelope, PostgresStore, Writes
from accord.runtime import Outcome as RecordOutcome
from accord.runtime._store import MIGRATIONS as RUNTIME_MIGRATIONS
from accord.runtime._store import DuplicateEvent, ProcessedRow

from ._model import (
    CaseDecided,
    EventArrived,
    Outcome,
    Started,
    Status,
    TimerFired,
    Transition,
    Trigger,
    Workflow,
)

log = logging.getLogger("accord.workflows")

MIGRATIONS = Path(__file__).parent / "migrations"
EXCEPTION_CHANGED = ExceptionChanged.AVRO_NAME
_RETRY_BATCH = (
    DuplicateEvent,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
)
_VERDICTS = {"RESOLVED": Verdict.APPROVE, "DISMISSED": Verdict.REJECT, "RETRYING": Verdict.RETRY}


class WorkflowDefinitionError(PermanentError):
    """A definition contradicts itself (e.g. waits for an event type it does not correlate)."""


@dataclass
class Delivered:
    """What one `deliver` did, for tests and logs."""

    duplicates: int = 0
    started: list[str] = field(default_factory=list)  # instance ids
    transitions: int = 0
    #: per envelope, in order: processed or duplicate (the runtime's outcomes, for its batch result)
    outcomes: list[RecordOutcome] = field(default_factory=list)


def workflow_topics(workflows: Sequence[Workflow]) -> list[str]:
    """The topics carrying the events the workflows start on or wait for, and the case decisions."""
    types = {EXCEPTION_CHANGED}
    for w in workflows:
        types |= set(w.starts_on) | set(w.correlate)
    unknown = sorted(t for t in types if t not in EVENTS)
    if unknown:
        raise ConfigurationError(f"workflow event types not in the catalogue: {', '.join(unknown)}")
    return sorted({EVENTS[t].TOPIC for t in types})


def field_of(event: Any, name: str) -> Any:
    """A field of an event, whether a generated model or a plain dict."""
    return event[name] if isinstance(event, Mapping) else getattr(event, name)


class WorkflowEngine:
    """Runs workflow definitions over one PostgreSQL schema (the orchestrator's), beside the runtime's tables."""

    def __init__(
        self,
        workflows: Sequence[Workflow],
        *,
        pool: asyncpg.Pool,
        schema: str,
        encode: Encode,
        consumer: str = "orchestrator",
    ) -> None:
        names = [w.name for w in workflows]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"two workflow definitions share a name: {sorted(names)}")
        self.workflows = {w.name: w for w in workflows}
        self.pool = pool
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
            raise ConfigurationError(f"schema name {schema!r} must be a lower-case SQL identifier")
        self.schema = schema
        self.encode = encode
        self.consumer = consumer
        self.store = PostgresStore(pool, self.schema)

    def topics(self) -> list[str]:
        """The topics to subscribe to (see `workflow_topics`)."""
        return workflow_topics(list(self.workflows.values()))

    async def migrate(self) -> None:
        """The runtime's tables (outbox, idempotency), commands (1001+), workflows (2001+), casework (3001+)."""
        async with self.pool.acquire() as conn:
            for folder in (RUNTIME_MIGRATIONS, commands.MIGRATIONS, MIGRATIONS, casework.MIGRATIONS):
                await migrate(conn, folder, schema=self.schema)

    # -- starting and delivering -----------------------------------------------------------------------

    async def start(self, workflow: str, key: str, input: Mapping[str, Any]) -> str | None:
        """Start an instance by hand (not from an event); None if one exists for (workflow, key) already."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._start(conn, self._workflow(workflow), key, input, None)

    async def deliver(self, envelopes: Sequence[Envelope]) -> Delivered:
        """Steps 1-4 for decoded events: exactly one effect per event id, however often it is delivered."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._deliver_once(envelopes)
            except _RETRY_BATCH as exc:
                # A concurrent consumer (after a rebalance) recorded some of these first, two engines locked
                # the same instances in opposite orders, or the database went away: nothing of the batch was
                # kept, so running it again is safe (the events already applied are skipped).
                delay = min(5.0, 0.05 * 2 ** min(attempt, 7)) * random.uniform(0.5, 1.0)
                log.warning(
                    "workflow batch of %d retried in %.2fs (attempt %d): %s", len(envelopes), delay, attempt, exc
                )
                await asyncio.sleep(delay)

    async def _deliver_once(self, envelopes: Sequence[Envelope]) -> Delivered:
        result = Delivered()
        writes = Writes()
        # 1. One transaction, on the runtime's store.
        async with self.store.unit_of_work(consumer=self.consumer, aggregate="workflows") as uow:
            conn = _connection(uow)
            # 2. Skip what was applied already.
            done = await uow.processed({e.event_id for e in envelopes})
            marks = await uow.watermarks({(e.topic, e.partition) for e in envelopes})
            for env in envelopes:
                handled = writes.handled.get((env.topic, env.partition), -1)
                writes.handled[(env.topic, env.partition)] = max(handled, env.offset)
                if env.event_id in done or env.offset <= marks.get((env.topic, env.partition), -1):
                    result.duplicates += 1
                    result.outcomes.append(RecordOutcome.DUPLICATE)
                    continue
                done.add(env.event_id)
                # 3. Start, then route.
                await self._on_event(conn, env, result)
                writes.processed.append(ProcessedRow(env.event_id, env.topic, env.partition, env.offset))
                result.outcomes.append(RecordOutcome.PROCESSED)
            # 4. Idempotency rows with the transitions; commit.
            await uow.write(writes)
        return result

    async def _on_event(self, conn: asyncpg.Connection, env: Envelope, result: Delivered) -> None:
        for wf in self.workflows.values():
            starter = wf.starts_on.get(env.event_type)
            if starter is not None:
                started = await self._start(conn, wf, starter(env.event), wf.start_input(env.event), env.event_id)
                if started is not None:
                    result.started.append(started)
        if env.event_type == EXCEPTION_CHANGED:
            verdict = _VERDICTS.get(str(getattr(field_of(env.event, "status"), "value", field_of(env.event, "status"))))
            if verdict is None:
                return  # OPEN / ACKNOWLEDGED: nothing for a workflow to do yet
            case_id = str(field_of(env.event, "exception_id"))
            trigger: Trigger = CaseDecided(case_id, str(field_of(env.event, "kind")), verdict)
            for row in await self._waiting(conn, EXCEPTION_CHANGED, {case_id}):
                # The decision is taken: this wait is over (a retry that fails again raises the case again).
                await conn.execute(
                    f"DELETE FROM {self.schema}.workflow_waits WHERE instance_id = $1 AND event_type = $2"
                    " AND correlation_key = $3",
                    row["id"],
                    EXCEPTION_CHANGED,
                    case_id,
                )
                if await self._apply(conn, row, trigger, "decision", case_id):
                    result.transitions += 1
            return
        keys = {env.key}
        correlated: set[str] = set()  # the keys workflows give this event (what the mailbox keeps it under)
        for wf in self.workflows.values():
            if env.event_type in wf.correlate:
                key = wf.correlate[env.event_type](env.event)
                if key:
                    correlated.add(str(key))
        keys |= correlated
        claimed = False
        for row in await self._waiting(conn, env.event_type, keys):
            waiting = self.workflows.get(row["workflow"])
            if waiting is None:
                continue
            key = waiting.correlate[env.event_type](env.event) if env.event_type in waiting.correlate else env.key
            if key != row["wait_key"]:
                continue
            arrived = EventArrived(env.event_type, key, env.event, env.event_id)
            if await self._apply(conn, row, arrived, "event", env.event_id):
                result.transitions += 1
                claimed = True
        if not claimed and correlated:
            await self._post(conn, env, correlated)

    async def _post(self, conn: asyncpg.Connection, env: Envelope, keys: set[str]) -> None:
        """Keep an event nobody waits for yet, under each correlation key, for a wait declared later."""
        event = env.event
        body = event if isinstance(event, Mapping) else event.model_dump(mode="json")
        await conn.executemany(
            f"""INSERT INTO {self.schema}.workflow_mailbox (event_type, correlation_key, event_id, event)
                VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING""",
            [(env.event_type, key, env.event_id, json.dumps(body, default=str)) for key in sorted(keys)],
        )

    async def _collect(self, conn: asyncpg.Connection, instance_id: uuid.UUID) -> bool:
        """Hand the instance the oldest kept event it now waits for, if any; True if one was handed over."""
        s = self.schema
        found = await conn.fetchrow(
            f"""DELETE FROM {s}.workflow_mailbox m USING {s}.workflow_waits w
                WHERE w.instance_id = $1 AND m.event_type = w.event_type AND m.correlation_key = w.correlation_key
                  AND (m.event_type, m.correlation_key, m.event_id) = (
                      SELECT m2.event_type, m2.correlation_key, m2.event_id
                      FROM {s}.workflow_mailbox m2 JOIN {s}.workflow_waits w2
                        ON m2.event_type = w2.event_type AND m2.correlation_key = w2.correlation_key
                      WHERE w2.instance_id = $1 ORDER BY m2.arrived_at, m2.event_id LIMIT 1)
                RETURNING m.event_type, m.correlation_key, m.event_id, m.event""",
            instance_id,
        )
        if found is None:
            return False
        # The same event kept under another key of this type is the same fact: one delivery only.
        await conn.execute(
            f"DELETE FROM {s}.workflow_mailbox WHERE event_type = $1 AND event_id = $2",
            found["event_type"],
            found["event_id"],
        )
        row = await conn.fetchrow(
            f"SELECT *, NULL::text AS wait_key FROM {s}.workflow_instances WHERE id = $1 FOR UPDATE", instance_id
        )
        data = json.loads(found["event"])
        cls = EVENTS.get(found["event_type"])
        event = cls.model_validate(data) if cls is not None else data
        arrived = EventArrived(found["event_type"], found["correlation_key"], event, found["event_id"])
        await self._apply(conn, row, arrived, "event", found["event_id"])
        return True

    async def prune_mailbox(self, *, older_than_seconds: float) -> int:
        """Forget kept events nobody waited for within the retention; returns how many."""
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                f"DELETE FROM {self.schema}.workflow_mailbox WHERE arrived_at < now() - make_interval(secs => $1)",
                older_than_seconds,
            )
        return int(status.split()[-1])

    async def _waiting(self, conn: asyncpg.Connection, event_type: str, keys: set[str]) -> list[asyncpg.Record]:
        """Unfinished instances waiting on (event_type, any of keys), locked, in creation order."""
        return list(
            await conn.fetch(
                f"""SELECT i.*, w.correlation_key AS wait_key
                    FROM {self.schema}.workflow_waits w JOIN {self.schema}.workflow_instances i ON i.id = w.instance_id
                    WHERE w.event_type = $1 AND w.correlation_key = ANY($2::text[])
                      AND i.status IN ('running', 'waiting')
                    ORDER BY i.created_at, i.id
                    FOR UPDATE OF i""",
                event_type,
                sorted(keys),
            )
        )

    async def _start(
        self, conn: asyncpg.Connection, wf: Workflow, key: str, input: Mapping[str, Any], event_id: str | None
    ) -> str | None:
        row = await conn.fetchrow(
            f"""INSERT INTO {self.schema}.workflow_instances (id, workflow, correlation_key, step, status)
                VALUES ($1, $2, $3, 'start', 'running')
                ON CONFLICT (workflow, correlation_key) DO NOTHING
                RETURNING *, NULL::text AS wait_key""",
            uuid.uuid4(),
            wf.name,
            key,
        )
        if row is None:
            return None
        await self._apply(conn, row, Started(dict(input), event_id), "started", event_id, fresh=True)
        return str(row["id"])

    # -- timers --------------------------------------------------------------------------------------------

    async def fire_due_timers(self, *, limit: int = 100) -> int:
        """Fire the timers that are due (each exactly once across engine processes); returns how many fired."""
        fired = 0
        async with self.pool.acquire() as conn, conn.transaction():
            due = await conn.fetch(
                f"""SELECT instance_id, name FROM {self.schema}.workflow_timers WHERE due_at <= now()
                    ORDER BY due_at LIMIT $1""",
                limit,
            )
            for timer in due:
                # Instance first (the order every path takes), skipping one another process is working on.
                row = await conn.fetchrow(
                    f"""SELECT *, NULL::text AS wait_key FROM {self.schema}.workflow_instances
                        WHERE id = $1 FOR UPDATE SKIP LOCKED""",
                    timer["instance_id"],
                )
                if row is None:
                    continue
                # Under the instance lock: the row is still there only if nobody fired or cancelled it.
                gone = await conn.fetchval(
                    f"""DELETE FROM {self.schema}.workflow_timers WHERE instance_id = $1 AND name = $2
                        AND due_at <= now() RETURNING name""",
                    timer["instance_id"],
                    timer["name"],
                )
                if gone is None:
                    continue
                fired += 1
                await self._apply(conn, row, TimerFired(timer["name"]), "timer", timer["name"])
        return fired

    async def run_timers(self, stop: asyncio.Event, *, interval: float = 1.0, limit: int = 100) -> None:
        """Poll for due timers until `stop` is set (the periodic task beside the consumer)."""
        while not stop.is_set():
            try:
                fired = await self.fire_due_timers(limit=limit)
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("timer poll failed, trying again: %s", exc)
                fired = 0
            if fired < limit:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    # -- one transition ------------------------------------------------------------------------------------

    def _workflow(self, name: str) -> Workflow:
        try:
            return self.workflows[name]
        except KeyError:
            raise ConfigurationError(f"no workflow {name!r}; known: {', '.join(sorted(self.workflows))}") from None

    async def _apply(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        trigger: Trigger,
        cause: str,
        cause_ref: str | None,
        *,
        fresh: bool = False,
    ) -> bool:
        """Run the decider on a locked instance and persist what it decided; False if nothing changed."""
        if Status(row["status"]).finished:
            return False  # e.g. a timer of a completed instance: a no-op
        wf = self.workflows.get(row["workflow"])
        if wf is None:
            log.warning("instance %s is of unknown workflow %r; left as it is", row["id"], row["workflow"])
            return False
        state = None if fresh else json.loads(row["state"])
        try:
            transition = wf.decide(state, trigger)
        except Exception as exc:
            await self._fail(conn, row, exc, cause, cause_ref)
            return True
        if transition is None:
            return False
        try:
            # A savepoint: effects that cannot be written (an event the registry refuses, a command key reused
            # for another command) undo only this transition, and the instance fails with the diagnosis.
            async with conn.transaction():
                await self._persist(conn, row, wf, trigger, transition, cause, cause_ref, fresh=fresh)
        except (PermanentError, CommandConflict, CaseworkError) as exc:
            await self._fail(conn, row, exc, cause, cause_ref)
            return True
        if transition.waits and not Status(_status(transition)).finished:
            await self._collect(conn, row["id"])  # an awaited event that came early
        return True

    async def _persist(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        wf: Workflow,
        trigger: Trigger,
        transition: Transition,
        cause: str,
        cause_ref: str | None,
        *,
        fresh: bool,
    ) -> None:
        instance_id = str(row["id"])
        unrouted = sorted({w.event_type for w in transition.waits} - set(wf.correlate))
        if unrouted:
            raise WorkflowDefinitionError(
                f"workflow {wf.name} waits for {', '.join(unrouted)} at step {transition.step}, which its "
                "definition does not list in `correlate`: no topic would deliver it"
            )
        version = row["version"] + (0 if fresh else 1)
        s = self.schema
        completed = json.loads(row["completed_steps"])
        if transition.completed is not None:
            completed.append(
                {
                    "name": transition.completed.name,
                    "compensation": [_command_json(c) for c in transition.completed.compensation],
                }
            )
        for command in transition.commands:
            await commands.enqueue(
                conn, schema=s, system=command.system, kind=command.kind, key=command.key, payload=command.payload
            )
        await casework.write_outbox(conn, s, [(o.topic, o.key, self.encode(o.topic, o.event)) for o in transition.emit])
        case_ids = []
        for spec in transition.cases:
            raised = await casework.raise_case(
                conn,
                schema=s,
                encode=self.encode,
                kind=spec.kind,
                reason=spec.reason,
                subject=spec.subject,
                evidence=spec.evidence,
                severity=spec.severity,
                legal_entity=spec.legal_entity,
                workflow_id=instance_id,
                due_in=spec.due_in,
                actor=f"workflow:{wf.name}",
                related_event_id=trigger.event_id if isinstance(trigger, EventArrived) else None,
            )
            case_ids.append(raised.case.id)
        status = _status(transition)
        if status.finished or transition.outcome is Outcome.COMPENSATE:
            await conn.execute(f"DELETE FROM {s}.workflow_waits WHERE instance_id = $1", row["id"])
            await conn.execute(f"DELETE FROM {s}.workflow_timers WHERE instance_id = $1", row["id"])
        else:
            # Declarative waits and timers; case waits stay until the case is decided.
            await conn.execute(
                f"DELETE FROM {s}.workflow_waits WHERE instance_id = $1 AND event_type <> $2",
                row["id"],
                EXCEPTION_CHANGED,
            )
            waits = [(w.event_type, w.key) for w in transition.waits] + [(EXCEPTION_CHANGED, c) for c in case_ids]
            await conn.executemany(
                f"""INSERT INTO {s}.workflow_waits (instance_id, event_type, correlation_key) VALUES ($1, $2, $3)
                    ON CONFLICT DO NOTHING""",
                [(row["id"], t, k) for t, k in waits],
            )
            timers = [(t.name, t.after) for t in transition.timers]
            timers += [(w.timer_name, w.deadline) for w in transition.waits if w.deadline is not None]
            await conn.execute(
                f"DELETE FROM {s}.workflow_timers WHERE instance_id = $1 AND NOT (name = ANY($2::text[]))",
                row["id"],
                [name for name, _ in timers],
            )
            await conn.executemany(
                f"""INSERT INTO {s}.workflow_timers (instance_id, name, due_at)
                    VALUES ($1, $2, now() + make_interval(secs => $3))
                    ON CONFLICT (instance_id, name) DO NOTHING""",
                [(row["id"], name, after.total_seconds()) for name, after in timers],
            )
            # Waiting if anything is pending: this transition's waits and timers, or an earlier undecided case.
            pending = await conn.fetchval(
                f"""SELECT EXISTS (SELECT 1 FROM {s}.workflow_waits WHERE instance_id = $1)
                        OR EXISTS (SELECT 1 FROM {s}.workflow_timers WHERE instance_id = $1)""",
                row["id"],
            )
            status = Status.WAITING if pending else Status.RUNNING
        effects = {
            "emitted": [
                type(o.event).__name__ if not isinstance(o.event, Mapping) else o.topic for o in transition.emit
            ],
            "commands": [c.key for c in transition.commands],
            "waits": [f"{w.event_type}:{w.key}" for w in transition.waits],
            "timers": [t.name for t in transition.timers],
            "cases": case_ids,
            "completed": None if transition.completed is None else transition.completed.name,
        }
        await self._history(conn, row["id"], version, cause, cause_ref, transition.step, status, effects)
        if transition.outcome is Outcome.COMPENSATE:
            # Undo the completed steps, last first; each recorded in history.
            for step in reversed(completed):
                for command in step["compensation"]:
                    await commands.enqueue(conn, schema=s, **command)
                await self._history(
                    conn,
                    row["id"],
                    version,
                    "compensation",
                    step["name"],
                    transition.step,
                    Status.COMPENSATING,
                    {"commands": [c["key"] for c in step["compensation"]]},
                )
            status = Status.COMPENSATED
        if status.finished:
            await casework.close_retried(
                conn,
                schema=s,
                encode=self.encode,
                workflow_id=instance_id,
                actor=f"workflow:{wf.name}",
                note=f"workflow {status.value} at step {transition.step}",
            )
        await conn.execute(
            f"""UPDATE {s}.workflow_instances SET step = $2, status = $3, state = $4::jsonb,
                    completed_steps = $5::jsonb, version = $6, updated_at = now(), last_error = NULL
                WHERE id = $1""",
            row["id"],
            transition.step,
            status.value,
            json.dumps(dict(transition.state), default=str),
            json.dumps(completed),
            version,
        )

    async def _fail(
        self, conn: asyncpg.Connection, row: asyncpg.Record, exc: Exception, cause: str, cause_ref: str | None
    ) -> None:
        """A decider that raises is a bug, not weather: the instance fails and a person gets a case."""
        error = f"{type(exc).__name__}: {exc}"[:1000]
        log.error("workflow %s instance %s failed on %s %s: %s", row["workflow"], row["id"], cause, cause_ref, error)
        s = self.schema
        await conn.execute(f"DELETE FROM {s}.workflow_waits WHERE instance_id = $1", row["id"])
        await conn.execute(f"DELETE FROM {s}.workflow_timers WHERE instance_id = $1", row["id"])
        await conn.execute(
            f"""UPDATE {s}.workflow_instances SET status = 'failed', last_error = $2, version = version + 1,
                    updated_at = now() WHERE id = $1""",
            row["id"],
            error,
        )
        await self._history(
            conn, row["id"], row["version"] + 1, "error", cause_ref, row["step"], Status.FAILED, {"error": error}
        )
        await casework.raise_case(
            conn,
            schema=s,
            encode=self.encode,
            kind="workflow-failed",
            reason=f"workflow {row['workflow']} failed at step {row['step']}",
            subject={"workflow_id": str(row["id"])},
            evidence={"workflow": row["workflow"], "step": row["step"], "cause": cause, "last_error": error},
            workflow_id=str(row["id"]),
            actor=f"workflow:{row['workflow']}",
        )

    async def _history(
        self,
        conn: asyncpg.Connection,
        instance_id: uuid.UUID,
        version: int,
        cause: str,
        cause_ref: str | None,
        step: str,
        status: Status,
        effects: Mapping[str, Any],
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {self.schema}.workflow_history
                    (instance_id, version, cause, cause_ref, step, status, effects)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)""",
            instance_id,
            version,
            cause,
            cause_ref,
            step,
            status.value,
            json.dumps(effects, default=str),
        )


def _status(t: Transition) -> Status:
    """The status an outcome leads to; CONTINUE is refined to waiting/running once the waits are written."""
    if t.outcome is Outcome.COMPLETE:
        return Status.COMPLETED
    if t.outcome is Outcome.FAIL:
        return Status.FAILED
    if t.outcome is Outcome.COMPENSATE:
        return Status.COMPENSATING
    return Status.RUNNING


def _command_json(c: Any) -> dict[str, Any]:
    return {"system": c.system, "kind": c.kind, "key": c.key, "payload": dict(c.payload)}


def _connection(uow: object) -> asyncpg.Connection:
    # PostgresStore's unit of work offers its connection (inside the batch's transaction) as `connection`,
    # so the engine's own tables commit or roll back with the batch. The in-memory twin has none.
    conn = getattr(uow, "connection", None)
    if not isinstance(conn, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy):
        raise ConfigurationError(
            "the workflow engine needs the runtime's PostgresStore (a unit of work with a connection)"
        )
    return conn  # a pool's proxy behaves as the connection
