"""The outbox relay: publishes rows written in handlers' transactions, in order, at least once.

1. one relay per service schema is active at a time (a PostgreSQL advisory lock), so id order is key order;
2. it claims the oldest rows with `FOR UPDATE SKIP LOCKED`, publishes them with an idempotent producer, each
   as a child span of the span that wrote the row, with that trace's `traceparent` in the record headers;
3. it waits for the broker's acknowledgement of every record;
4. it deletes the rows in the same transaction that claimed them, so the table stays bounded.

A crash between 3 and 4 publishes the rows again: duplicates downstream, absorbed by the consumers'
idempotency store; never a lost event. LISTEN/NOTIFY wakes the relay at once; it polls as a fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import asyncpg
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry.trace import SpanKind
from prometheus_client import Histogram

from . import _metrics as m
from ._store import outbox_channel
from ._tracing import TRACEPARENT, context_from_traceparent, traceparent_of, tracer

log = logging.getLogger("accord.relay")

COMMIT_TO_ACK = Histogram(
    "accord_outbox_commit_to_ack_seconds",
    "From the outbox row's commit to the broker's acknowledgement",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def producer_config(bootstrap_servers: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Idempotent producer: no duplicates from its own retries, and order kept per partition."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "log_level": 4,
        **(extra or {}),
    }


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        producer: Producer,
        *,
        service: str,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set. Waits for the relay lock first: only one relay per schema publishes."""
        async with self.pool.acquire() as conn:
            # 1. Session-level advisory lock, held on this connection for as long as the relay runs.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"accord.relay.{self.schema}"):
                if await _wait(stop, self.poll_interval):
                    return
            await conn.add_listener(outbox_channel(self.schema), self._notified)
            try:
                while not stop.is_set():
                    published = await self.publish_once()
                    if published >= self.batch_size:
                        continue  # more is waiting
                    self._wake.clear()
                    wake = asyncio.ensure_future(self._wake.wait())
                    stopping = asyncio.ensure_future(stop.wait())
                    await asyncio.wait({wake, stopping}, timeout=self.poll_interval, return_when="FIRST_COMPLETED")
                    wake.cancel()
                    stopping.cancel()
            finally:
                with contextlib.suppress(asyncpg.InterfaceError, OSError):
                    await conn.remove_listener(outbox_channel(self.schema), self._notified)
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"accord.relay.{self.schema}")

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """One claim-publish-acknowledge-delete round; returns the number of rows published."""
        async with self.pool.acquire() as conn, conn.transaction():
            # 2. Claim the oldest rows.
            rows = await conn.fetch(
                f"""SELECT id, topic, key, value, headers, traceparent, extract(epoch FROM created_at) AS created
                    FROM {self.schema}.outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.batch_size,
            )
            if not rows:
                return 0
            errors: list[KafkaError] = []
            acked: list[float] = []

            def on_delivery(err: KafkaError | None, _msg: Message) -> None:
                if err is not None:
                    errors.append(err)
                else:
                    acked.append(time.time())

            for row in rows:
                headers: list[tuple[str, str | bytes | None]] = [(k, v.encode()) for k, v in json.loads(row["headers"])]
                with tracer.start_as_current_span(
                    f"publish {row['topic']}",
                    context=context_from_traceparent(row["traceparent"]),
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": row["topic"],
                        "messaging.operation.type": "send",
                        "accord.outbox_id": row["id"],
                    },
                ) as span:
                    traceparent = traceparent_of(span)
                    if traceparent:
                        headers.append((TRACEPARENT, traceparent.encode()))
                    self.producer.produce(
                        row["topic"], key=row["key"], value=row["value"], headers=headers, on_delivery=on_delivery
                    )
            # 3. Every record acknowledged, or the transaction rolls back and the rows stay for the next round.
            remaining = await asyncio.to_thread(self.producer.flush, 30)
            if remaining or errors:
                raise KafkaException(errors[0] if errors else KafkaError(KafkaError._TIMED_OUT))
            # 4. Gone from the outbox in the claiming transaction.
            await conn.execute(
                f"DELETE FROM {self.schema}.outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        latency = COMMIT_TO_ACK.labels(service=self.service)
        for row, ack in zip(rows, acked, strict=False):
            latency.observe(max(0.0, ack - float(row["created"])))
        m.OUTBOX_PUBLISHED.labels(service=self.service).inc(len(rows))
        return len(rows)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, returning True at once if `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
