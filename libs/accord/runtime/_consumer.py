"""Consume → decide → commit: the loop every accord service runs around its pure handlers.

Per batch, in this order (the order IS the guarantee — keep the numbered comments in step with it):

1. poll a batch of records (confluent-kafka consumer group, cooperative rebalancing, no auto-commit);
2. decode each through the registry codec (schema by id, cached); undecodable → set aside for the DLQ;
3. in ONE PostgreSQL transaction: load which keys are parked, which event ids are already processed and
   the state of every key in the batch (one query each); apply the handlers in order per key; write new
   state + processed event ids + outgoing events (outbox) + newly parked events; commit;
4. publish the dead letters of the batch to `<group>.dlq` and wait for the broker's acknowledgement;
5. commit the Kafka offsets — only now, after everything above is durable.

A crash before 3 commits redelivers the batch and nothing happened. A crash between 3 and 5 redelivers
events that the idempotency store then skips: at-least-once delivery, exactly-once effect. A crash between
4 and 5 may dead-letter a record twice (at-least-once to the DLQ, never zero times).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from accord.errors import PermanentError

from . import _metrics as m
from ._dlq import Provenance, dlq_topic
from ._model import DecodeError, Envelope, EventCodec, Service, event_identity
from ._store import DuplicateEvent, OutboxRow, ParkedRow, ProcessedRow, Repark, Store, UnitOfWork, Writes
from ._tracing import context_from_headers, traceparent_of, tracer

log = logging.getLogger("accord.runtime")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter. `attempts` in line before an event is parked."""

    attempts: int = 3
    base: float = 0.05
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class DeadLetter:
    """A record set aside for good, with what is needed to publish it and its provenance."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    error: BaseException
    attempts: int

    @classmethod
    def of_message(cls, msg: Message, error: BaseException) -> DeadLetter:
        ts_type, ts = msg.timestamp()
        topic, partition, offset = _where(msg)
        return cls(topic, partition, offset, ts if ts_type else None, msg.key(), msg.value(), _headers(msg), error, 1)

    @classmethod
    def of_envelope(cls, env: Envelope, error: BaseException, attempts: int = 1) -> DeadLetter:
        return cls(
            env.topic,
            env.partition,
            env.offset,
            env.timestamp_ms,
            env.key.encode(),
            env.raw_value,
            env.headers,
            error,
            attempts,
        )


class Outcome(enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    QUEUED = "queued"  # parked behind an earlier parked event of its key
    PARKED = "parked"  # retries spent
    FAILED = "failed"  # permanent error: dead letter
    NOT_ATTEMPTED = "not attempted"


@dataclass
class BatchResult:
    """What one batch did, for tests, logs and metrics."""

    outcomes: list[Outcome] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o is outcome)


def _where(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record; librdkafka sets all three on every non-error record."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def _headers(msg: Message) -> list[tuple[str, bytes | None]]:
    raw = msg.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


def _headers_text(headers: Sequence[tuple[str, bytes | None]] | None) -> list[tuple[str, str]]:
    return [(k, (v or b"").decode(errors="replace")) for k, v in headers or ()]


def _error_text(exc: BaseException) -> str:
    # The class and the exception's own diagnosis; never the record's values (they may be personal data).
    return f"{type(exc).__name__}: {exc}"[:1000]


def _is_retryable(exc: BaseException) -> bool:
    """Permanent errors say so; anything unexpected is retried and, if it persists, parked — never dropped."""
    if isinstance(exc, PermanentError):
        return False
    return bool(getattr(exc, "retryable", True))


def fetch(consumer: Consumer, batch_size: int, timeout: float) -> list[Message]:
    """Up to `batch_size` records: waits up to `timeout` for the first, then takes only what is already fetched.

    (`consume(n, timeout)` alone waits for the batch to fill, or for the whole timeout: at low traffic every hop
    would cost the poll timeout in latency.)"""
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(batch_size - 1, 0)] if batch_size > 1 else [first]


class Runtime:
    """Runs one `Service` against a consumer, a store and a codec."""

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
        self.service = service
        self.store = store
        self.codec = codec
        self.producer = producer  # dead letters only; the outbox relay publishes outgoing events
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._labels = {"service": service.name}
        # Labelled children resolved once: a labels() lookup per event costs more than the increment itself.
        self._handler_seconds = m.HANDLER_SECONDS.labels(**self._labels)
        self._processed: dict[str, Any] = {}

    def _processed_counter(self, topic: str) -> Any:
        counter = self._processed.get(topic)
        if counter is None:
            counter = self._processed[topic] = m.PROCESSED.labels(service=self.service.name, topic=topic)
        return counter

    # -- 2. decode ---------------------------------------------------------------------------------------

    def decode(self, msg: Message) -> Envelope:
        value = msg.value()
        if value is None:
            raise DecodeError("record has no value (a tombstone) on an event topic")
        key = msg.key()
        if key is None:
            raise DecodeError("record has no key; accord's event topics are keyed by aggregate id")
        topic, partition, offset = _where(msg)
        event = self.codec.decode(topic, value).event
        try:
            event_id, event_type = event_identity(event)
        except (KeyError, AttributeError) as exc:
            raise DecodeError(f"event has no meta.event_id/event_type ({exc})") from exc
        ts_type, ts = msg.timestamp()
        return Envelope(
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=ts if ts_type else None,
            key=key.decode(errors="replace"),
            event=event,
            event_id=event_id,
            event_type=event_type,
            headers=_headers(msg),
            raw_value=value,
        )

    # -- 3. decide, in one transaction -------------------------------------------------------------------

    async def apply(
        self, uow: UnitOfWork, envelopes: Sequence[Envelope], writes: Writes, *, stop_at_failure: bool = False
    ) -> list[tuple[Outcome, BaseException | None]]:
        """Apply the handlers in order; return each envelope's outcome (and error, if any).

        Events whose in-line retries are spent are parked in `writes`, and every later event of their key
        with them, so order per key holds while other keys go on. With `stop_at_failure` (re-trying one
        parked key's queue) the first event that fails again ends the run: the rest stay queued behind it.
        """
        keys = {env.key for env in envelopes}
        parked = set() if stop_at_failure else await uow.parked_keys(keys)
        done = await uow.processed({env.event_id for env in envelopes})
        # A parked event's offset may lie below a watermark (its neighbours were applied and pruned); it was
        # never applied itself, so the watermark does not speak for it.
        watermarks = {} if stop_at_failure else await uow.watermarks({(env.topic, env.partition) for env in envelopes})
        states = {k: self.service.load_state(v) for k, v in (await uow.load_states(keys)).items()}
        outcomes: list[tuple[Outcome, BaseException | None]] = []
        halted = False

        for env in envelopes:
            if halted:
                outcomes.append((Outcome.NOT_ATTEMPTED, None))
                continue
            if env.event_id in done or env.offset <= watermarks.get((env.topic, env.partition), -1):
                outcomes.append((Outcome.DUPLICATE, None))
                continue
            if env.key in parked:
                writes.parked.append(
                    self._parked_row(env, "WaitingBehindParkedEvent", "an earlier event of this key is parked", 0)
                )
                outcomes.append((Outcome.QUEUED, None))
                continue
            handler = self.service.handlers.get(env.event_type)
            if handler is None:
                outcomes.append((Outcome.IGNORED, None))
                continue
            outcome, error = await self._handle(env, handler, states, writes)
            halted = stop_at_failure and outcome in (Outcome.PARKED, Outcome.FAILED)
            if outcome is Outcome.PARKED:
                parked.add(env.key)
            if outcome is Outcome.PROCESSED:
                done.add(env.event_id)
            outcomes.append((outcome, error))
        return outcomes

    async def _handle(
        self, env: Envelope, handler: Any, states: dict[str, Any], writes: Writes
    ) -> tuple[Outcome, BaseException | None]:
        with tracer.start_as_current_span(
            f"process {env.topic}",
            context=context_from_headers(env.headers),  # the producer's span is the parent, not a link
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": env.topic,
                "messaging.destination.partition.id": str(env.partition),
                "messaging.kafka.offset": env.offset,
                "messaging.consumer.group.name": self.service.group,
                "accord.event_id": env.event_id,
                "accord.event_type": env.event_type,
            },
        ) as span:
            attempt = 0
            while True:
                attempt += 1
                started = time.perf_counter()
                try:
                    decision = handler(states.get(env.key), env)
                except Exception as exc:
                    self._handler_seconds.observe(time.perf_counter() - started)
                    if not _is_retryable(exc):
                        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                        return Outcome.FAILED, exc
                    if attempt >= self.retry.attempts:
                        span.set_status(Status(StatusCode.ERROR, f"parked: {type(exc).__name__}"))
                        writes.parked.append(self._parked_row(env, type(exc).__name__, _error_text(exc), attempt))
                        log.warning(
                            "parked event %s of key %s (%s[%d]@%d) after %d attempts: %s",
                            env.event_id,
                            env.key,
                            env.topic,
                            env.partition,
                            env.offset,
                            attempt,
                            _error_text(exc),
                        )
                        return Outcome.PARKED, exc
                    m.RETRIED.labels(**self._labels).inc()
                    # Backoff with jitter: a failing handler never spins the CPU.
                    await self.sleep(self.retry.delay(attempt))
                    continue
                self._handler_seconds.observe(time.perf_counter() - started)
                break
            writes.commands.extend(decision.commands)
            if decision.state is not None:
                states[env.key] = decision.state
                writes.states[env.key] = self.service.dump_state(decision.state)
            traceparent = traceparent_of(span)
            for out in decision.outputs:
                writes.outbox.append(
                    OutboxRow(
                        topic=out.topic,
                        key=out.key.encode(),
                        value=self.codec.encode(out.topic, out.event),
                        headers=list(out.headers),
                        traceparent=traceparent,
                    )
                )
            writes.processed.append(ProcessedRow(env.event_id, env.topic, env.partition, env.offset))
            if span.get_span_context().is_valid:
                writes.spans.append(span.get_span_context())
            self._processed_counter(env.topic).inc()
            return Outcome.PROCESSED, None

    def _parked_row(self, env: Envelope, error_class: str, error: str, attempts: int) -> ParkedRow:
        return ParkedRow(
            key=env.key,
            topic=env.topic,
            partition=env.partition,
            offset=env.offset,
            timestamp_ms=env.timestamp_ms,
            record_key=env.key.encode(),
            record_value=env.raw_value,
            headers=_headers_text(env.headers),
            error_class=error_class,
            error_message=error,
            attempts=attempts,
        )

    async def process_batch(self, messages: Sequence[Message]) -> BatchResult:
        """Steps 2 to 4 for one polled batch; returns the offsets to commit (step 5 is the caller's)."""
        result = BatchResult()
        envelopes: list[Envelope] = []
        # 2. Decode. A record that cannot be decoded is a dead letter, never a reason to stall the partition.
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error on %s[%s]: %s", msg.topic(), msg.partition(), err)
                continue
            topic, partition, offset = _where(msg)
            result.offsets[(topic, partition)] = max(result.offsets.get((topic, partition), -1), offset + 1)
            try:
                envelopes.append(self.decode(msg))
            except Exception as exc:
                if _is_retryable(exc):
                    # e.g. the registry unreachable while fetching a new schema id: not the record's fault.
                    raise
                result.dead_letters.append(DeadLetter.of_message(msg, exc))
        m.BATCH_SIZE.labels(**self._labels).observe(len(messages))

        # 3. One transaction for the whole batch; retried as a whole while the database is unavailable
        #    or a concurrent consumer (after a rebalance) recorded some of the same events first.
        attempt = 0
        while True:
            attempt += 1
            writes = Writes()
            try:
                started_ns = time.time_ns()
                async with self.store.unit_of_work(
                    consumer=self.service.group, aggregate=self.service.aggregate
                ) as uow:
                    outcomes = await self.apply(uow, envelopes, writes)
                    writes.handled = {tp: offset - 1 for tp, offset in result.offsets.items()}
                    await uow.write(writes)
                _commit_spans(writes, started_ns, time.time_ns())
                break
            except (DuplicateEvent, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                m.BATCH_RETRIES.labels(**self._labels).inc()
                delay = self.retry.delay(min(attempt, 10))
                log.warning(
                    "batch of %d retried in %.2fs (attempt %d): %s",
                    len(envelopes),
                    delay,
                    attempt,
                    _error_text(exc),
                )
                await self.sleep(delay)
        result.outcomes = [o for o, _ in outcomes]
        result.dead_letters += [
            DeadLetter.of_envelope(env, error)
            for env, (outcome, error) in zip(envelopes, outcomes, strict=True)
            if outcome is Outcome.FAILED and error is not None
        ]
        self._count(result)

        # 4. Dead letters, acknowledged by the broker before any offset moves past them.
        if result.dead_letters:
            await self.dead_letter(result.dead_letters)
        return result

    def _count(self, result: BatchResult) -> None:
        m.DEDUPLICATED.labels(**self._labels).inc(result.count(Outcome.DUPLICATE))
        m.IGNORED.labels(**self._labels).inc(result.count(Outcome.IGNORED))
        m.PARKED.labels(**self._labels).inc(result.count(Outcome.PARKED) + result.count(Outcome.QUEUED))

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        topic = dlq_topic(self.service.group)
        failed_at = datetime.now(UTC).isoformat()
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for letter in letters:
            provenance = Provenance(
                topic=letter.topic,
                partition=letter.partition,
                offset=letter.offset,
                timestamp_ms=letter.timestamp_ms,
                group=self.service.group,
                error_class=type(letter.error).__name__,
                error_message=_error_text(letter.error),
                attempts=letter.attempts,
                failed_at=failed_at,
            )
            log.error(
                "dead-lettered %s[%d]@%d to %s: %s",
                letter.topic,
                letter.partition,
                letter.offset,
                topic,
                provenance.error_message,
            )
            headers: list[tuple[str, str | bytes | None]] = [
                (k, v) for k, v in letter.headers if not k.startswith("accord.dlq.")
            ]
            headers += provenance.headers()
            self.producer.produce(
                topic,
                key=letter.key,
                value=letter.value,
                headers=headers,
                on_delivery=on_delivery,
            )
        remaining = await asyncio.to_thread(self.producer.flush, 30)
        if remaining or errors:
            # Not acknowledged: nothing after this may move past these records, so the caller retries.
            raise KafkaException(errors[0] if errors else KafkaError(KafkaError._TIMED_OUT))
        m.DEAD_LETTERED.labels(**self._labels).inc(len(letters))

    # -- parked keys --------------------------------------------------------------------------------------

    async def retry_parked(self, *, limit: int = 100) -> int:
        """Try each due parked key's queue again, in order; returns how many events were applied."""
        applied = 0
        for key in await self.store.parked_keys_due(consumer=self.service.group, limit=limit):
            applied += await self._retry_key(key)
        return applied

    async def _retry_key(self, key: str) -> int:
        writes = Writes()
        async with self.store.unit_of_work(consumer=self.service.group, aggregate=self.service.aggregate) as uow:
            queue = await uow.parked_queue(key)
            envelopes: list[Envelope] = []
            rows: list[ParkedRow] = []
            dead: list[DeadLetter] = []
            for row in queue:
                headers = [(k, v.encode()) for k, v in row.headers]
                try:
                    if row.record_value is None:
                        raise DecodeError("parked record has no value")
                    event = self.codec.decode(row.topic, row.record_value).event
                    event_id, event_type = event_identity(event)
                except Exception as exc:
                    if _is_retryable(exc):
                        return 0
                    dead.append(
                        DeadLetter(
                            row.topic,
                            row.partition,
                            row.offset,
                            row.timestamp_ms,
                            row.record_key,
                            row.record_value,
                            headers,
                            exc,
                            row.attempts,
                        )
                    )
                    assert row.id is not None
                    writes.unparked.append(row.id)
                    continue
                envelopes.append(
                    Envelope(
                        row.topic,
                        row.partition,
                        row.offset,
                        row.timestamp_ms,
                        key,
                        event,
                        event_id,
                        event_type,
                        headers,
                        row.record_value,
                    )
                )
                rows.append(row)
            outcomes = await self.apply(uow, envelopes, writes, stop_at_failure=True)
            new_parks = iter(writes.parked)
            writes.parked = []
            for env, row, (outcome, error) in zip(envelopes, rows, outcomes, strict=True):
                assert row.id is not None
                if outcome is Outcome.PARKED:
                    again = next(new_parks)
                    attempts = row.attempts + again.attempts
                    writes.reparked.append(
                        Repark(
                            row.id,
                            attempts,
                            again.error_message,
                            self.retry.delay(attempts) + self.retry.base * attempts,
                        )
                    )
                elif outcome is Outcome.FAILED and error is not None:
                    dead.append(DeadLetter.of_envelope(env, error, row.attempts + 1))
                    writes.unparked.append(row.id)
                elif outcome is not Outcome.NOT_ATTEMPTED:
                    writes.unparked.append(row.id)
            # Dead letters are acknowledged before the parked rows that held them are deleted.
            if dead:
                await self.dead_letter(dead)
            await uow.write(writes)
        applied = sum(1 for o, _ in outcomes if o is Outcome.PROCESSED)
        m.UNPARKED.labels(**self._labels).inc(applied)
        return applied

    # -- 1 and 5: the loop ------------------------------------------------------------------------------

    async def run(
        self, consumer: Consumer, stop: asyncio.Event, *, batch_size: int = 500, poll_timeout: float = 0.5
    ) -> None:
        """Poll, process, commit until `stop` is set; then finish the batch in hand and return."""
        while not stop.is_set():
            # 1. Poll (in a thread: librdkafka blocks; rebalance callbacks run here, between batches, so a
            #    revocation never interrupts a batch — everything durable is already committed).
            messages = await asyncio.to_thread(fetch, consumer, batch_size, poll_timeout)
            if not messages:
                continue
            result = await self.process_batch(messages)
            # 5. Offsets last.
            await self.commit(consumer, result.offsets)

    @staticmethod
    async def commit(consumer: Consumer, offsets: dict[tuple[str, int], int]) -> None:
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            await asyncio.to_thread(consumer.commit, offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partition away: its new owner re-reads from the last committed offset and
            # the idempotency store skips what we applied. Nothing is lost; log and go on.
            log.warning("offset commit failed (%s); the next owner will deduplicate", exc.args[0])


def _commit_spans(writes: Writes, started_ns: int, ended_ns: int) -> None:
    """The batch's one transaction, as a span in the trace of every event it applied (same start and end)."""
    for span_context in writes.spans:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(span_context))
        span = tracer.start_span(
            "commit batch",
            context=parent,
            kind=SpanKind.CLIENT,
            start_time=started_ns,
            attributes={
                "db.system.name": "postgresql",
                "db.operation.name": "COMMIT",
                "accord.batch.events": len(writes.processed),
                "accord.batch.outbox_rows": len(writes.outbox),
            },
        )
        span.end(end_time=ended_ns)


def consumer_config(bootstrap_servers: str, group: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "isolation.level": "read_committed",
        # A member that died (SIGKILL, lost host) holds its partitions until this expires: 10 s, not 45.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "log_level": 4,
        **(extra or {}),
    }


def current_span_traceparent() -> str | None:
    return traceparent_of(trace.get_current_span())
