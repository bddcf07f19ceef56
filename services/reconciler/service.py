"""The reconciler inside the standard service host: a `Runtime` whose batches become observations.

    class ReconcilerHost(ServiceHost):
        runtime_class = reconciler_runtime(policy, dry_run=False)

The host runs it as any service (consumer loop with the offset commit last, outbox relay, probes, metrics,
idempotency retention, clean shutdown). Per batch, in its one transaction: the runtime's idempotency check, each
event → observations (`model.observe`), the engine's writes (states, deadlines, findings, cases, the outbox), the
processed event ids. The host's one-second tick runs the sweeper: the keys whose deadline has passed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from confluent_kafka import Producer

from accord.errors import ConfigurationError
from accord.events import (
    ContractActivated,
    ExceptionChanged,
    InvoiceIssued,
    JournalPosted,
    PaymentCollected,
    PeriodStatusChanged,
    SubscriptionProvisioned,
)
from accord.runtime import EventCodec, Outcome, PostgresStore, RetryPolicy, Runtime, Service, Store, UnitOfWork, Writes
from accord.runtime._store import ProcessedRow

from . import metrics
from .engine import Reconciler, Report
from .model import Observation, observe
from .rules import Policy

log = logging.getLogger("accord_reconciler")
NAME = "reconciler"

#: every commercial topic the rules compare, the ERP's periods, and the exception queue (a person's verdict)
TOPICS = tuple(
    dict.fromkeys(
        e.TOPIC
        for e in (
            ContractActivated,
            SubscriptionProvisioned,
            InvoiceIssued,
            PaymentCollected,
            JournalPosted,
            PeriodStatusChanged,
            ExceptionChanged,
        )
    )
)


def service(topics: Mapping[str, str] | None = None, *, name: str = NAME) -> Service:
    """The reconciler's subscriptions, under the topics in use (`topics` renames catalogue topics)."""
    names = dict(topics or {})
    return Service(name=name, topics=tuple(names.get(t, t) for t in TOPICS), handlers={})


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ReconcilerRuntime(Runtime):
    """A `Runtime` that hands each decoded batch's observations to the engine (bind the policy with
    `reconciler_runtime`). Only `PostgresStore` fits: the engine writes its tables in the batch's transaction."""

    policy: ClassVar[Policy] = Policy()
    dry_run: ClassVar[bool] = False
    sweep_batch: ClassVar[int] = 500
    topics: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        service: Service,
        *,
        store: Store,
        codec: EventCodec,
        producer: Producer,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(service, store=store, codec=codec, producer=producer, retry=retry, sleep=sleep)
        if not isinstance(store, PostgresStore):
            raise ConfigurationError("the reconciler runs on PostgresStore only (its tables share its schema)")
        self.pg = store
        self.engine = Reconciler(
            schema=store.schema, policy=self.policy, encode=codec.encode, dry_run=self.dry_run, topics=self.topics
        )
        self.clock: Callable[[], datetime.datetime] = utcnow  # tests move time by replacing it
        self.last: Report = Report()
        self._ticks = 0

    async def apply(
        self, uow: UnitOfWork, envelopes: Sequence[Any], writes: Writes, *, stop_at_failure: bool = False
    ) -> list[tuple[Outcome, BaseException | None]]:
        conn = uow.connection  # type: ignore[attr-defined]
        done = await uow.processed({env.event_id for env in envelopes})
        watermarks = await uow.watermarks({(env.topic, env.partition) for env in envelopes})
        now = self.clock()
        observations: list[Observation] = []
        outcomes: list[tuple[Outcome, BaseException | None]] = []
        for env in envelopes:
            if env.event_id in done or env.offset <= watermarks.get((env.topic, env.partition), -1):
                outcomes.append((Outcome.DUPLICATE, None))
                continue
            event = env.event
            try:
                if isinstance(event, PeriodStatusChanged):
                    await self.engine.set_period(conn, event.legal_entity, event.period, event.status, now)
                    found: list[Observation] = []
                elif isinstance(event, ExceptionChanged):
                    await self.engine.case_changed(conn, event, now)
                    found = []
                else:
                    found = observe(event, observed_at=now)
            except Exception as exc:  # a rule's bug or an event it cannot read: a dead letter, not a stall
                outcomes.append((Outcome.FAILED, exc))
                continue
            observations.extend(found)
            done.add(env.event_id)
            writes.processed.append(ProcessedRow(env.event_id, env.topic, env.partition, env.offset))
            outcomes.append((Outcome.PROCESSED, None))
        self.last = await self.engine.observe(conn, observations, now)
        return outcomes

    async def retry_parked(self, *, limit: int = 100) -> int:
        """The host calls this every second: the due deadlines, then (every 5 s) the gauges."""
        applied = await super().retry_parked(limit=limit)
        async with self.pg.pool.acquire() as conn:
            while True:
                async with conn.transaction():
                    report = await self.engine.sweep(conn, self.clock(), limit=self.sweep_batch)
                if report.keys < self.sweep_batch:
                    break
            self._ticks += 1
            if self._ticks % 5 == 1:
                await metrics.refresh(conn, self.pg.schema)
        return applied


def reconciler_runtime(
    policy: Policy, *, dry_run: bool = False, sweep_batch: int = 500, topics: Mapping[str, str] | None = None
) -> type[ReconcilerRuntime]:
    """A `ReconcilerRuntime` class bound to `policy`, for `ServiceHost.runtime_class`."""
    return type(
        "BoundReconcilerRuntime",
        (ReconcilerRuntime,),
        {"policy": policy, "dry_run": dry_run, "sweep_batch": sweep_batch, "topics": dict(topics or {})},
    )
