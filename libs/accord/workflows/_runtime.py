"""The engine inside the standard service host: a `Runtime` whose batches go to the workflow engine.

    class OrchestratorHost(ServiceHost):
        runtime_class = workflow_runtime([ACTIVATION, AMENDMENT])

    service = Service(name="orchestrator", topics=workflow_topics([ACTIVATION, AMENDMENT]), handlers={})

The host then runs everything as for any service — consumer loop with the offset commit last, outbox relay,
probes, metrics, idempotency retention, clean shutdown — and the engine's timers ride on the host's
one-second parked-retry tick. Steps 1, 2 and 5 of the runtime's order are the runtime's own (`Runtime.run`):
poll, decode, commit offsets; step 3 is the engine's one transaction (`WorkflowEngine.deliver`); step 4
publishes the batch's dead letters before any offset moves past them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from confluent_kafka import KafkaError, Message, Producer

from accord.errors import ConfigurationError, PermanentError
from accord.runtime import BatchResult, DeadLetter, EventCodec, PostgresStore, RetryPolicy, Runtime, Service, Store

from ._engine import WorkflowEngine
from ._model import Workflow

log = logging.getLogger("accord.workflows")


class WorkflowRuntime(Runtime):
    """A `Runtime` that hands each decoded batch to a `WorkflowEngine` (bind the workflows with
    `workflow_runtime`). Only `PostgresStore` fits: the engine writes its tables in the batch's transaction."""

    workflows: ClassVar[tuple[Workflow, ...]] = ()

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
            raise ConfigurationError("the workflow engine runs on PostgresStore only (its tables share its schema)")
        if not self.workflows:
            raise ConfigurationError("no workflows: build the runtime class with workflow_runtime([...])")
        self.engine = WorkflowEngine(
            self.workflows, pool=store.pool, schema=store.schema, encode=codec.encode, consumer=service.group
        )

    async def process_batch(self, messages: Sequence[Message]) -> BatchResult:
        """Steps 2 to 4 for one polled batch; returns the offsets to commit (step 5 is `Runtime.run`'s)."""
        result = BatchResult()
        envelopes = []
        # 2. Decode; a record that cannot be decoded is a dead letter, never a reason to stall the partition.
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error on %s[%s]: %s", msg.topic(), msg.partition(), err)
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None
            result.offsets[(topic, partition)] = max(result.offsets.get((topic, partition), -1), offset + 1)
            try:
                envelopes.append(self.decode(msg))
            except Exception as exc:
                if not isinstance(exc, PermanentError) and getattr(exc, "retryable", True):
                    raise  # e.g. the registry unreachable: not the record's fault; the batch is polled again
                result.dead_letters.append(DeadLetter.of_message(msg, exc))
        # 3. The engine's one transaction (idempotency rows, transitions, outbox).
        delivered = await self.engine.deliver(envelopes)
        result.outcomes = delivered.outcomes
        # 4. Dead letters, acknowledged by the broker before any offset moves past them.
        if result.dead_letters:
            await self.dead_letter(result.dead_letters)
        return result

    #: how long an event nobody waits for is kept for a wait declared later (see the engine's mailbox)
    mailbox_retention_seconds: ClassVar[float] = 7 * 86400
    _ticks = 0

    async def retry_parked(self, *, limit: int = 100) -> int:
        """The host calls this every second: parked events (the engine parks none) and, with them, due timers;
        every ten minutes, the mailbox's unclaimed events past their retention."""
        applied = await super().retry_parked(limit=limit)
        self._ticks += 1
        if self._ticks % 600 == 1:
            await self.engine.prune_mailbox(older_than_seconds=self.mailbox_retention_seconds)
        return applied + await self.engine.fire_due_timers(limit=limit)


def workflow_runtime(workflows: Sequence[Workflow]) -> type[WorkflowRuntime]:
    """A `WorkflowRuntime` class bound to `workflows`, for `ServiceHost.runtime_class`."""
    return type("BoundWorkflowRuntime", (WorkflowRuntime,), {"workflows": tuple(workflows)})
