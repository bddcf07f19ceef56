"""The contenders, each consuming the input topic from the start with its own group and schema.

Every contender's clock starts when its first batch of records arrives (joining the group is not timed)
and stops once the last record's effects are durable and its offsets committed. All confluent-kafka
consumers use the runtime's own `consumer_config` (read_committed, cooperative-sticky, no auto-commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.trace import INVALID_SPAN

import accord.runtime._relay as relay_module
from accord.events import InvoiceIssued, JournalRequested
from accord.runtime import (
    BatchResult,
    Decision,
    Envelope,
    OutboxRelay,
    Outgoing,
    PostgresStore,
    Runtime,
    Service,
    consumer_config,
    producer_config,
)
from accord.serde import EventCodec

from .workload import AGGREGATE, apply_batch, apply_one, decide, read_invoice

BATCH = 500
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Setup:
    bootstrap: str
    database_url: str
    registry: str
    in_topic: str
    out_topic: str
    partitions: int

    def codec(self) -> EventCodec:
        codec = EventCodec(SchemaRegistryClient({"url": self.registry}))
        # Both schema ids resolved now: no HTTP call inside any timed section.
        codec.warm_up([(self.in_topic, InvoiceIssued), (self.out_topic, JournalRequested)])
        return codec


@dataclass
class Run:
    contender: str
    events: int
    seconds: float
    #: CPU seconds of this process (all its threads) over the same span; None when not measured
    cpu: float | None = None
    loadavg: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _name(prefix: str) -> str:
    return f"bench_{prefix}_{uuid.uuid4().hex[:8]}"


def _records(messages: Sequence[Message]) -> list[tuple[str, int, int, bytes]]:
    out = []
    for m in messages:
        if m.error() is None:
            topic, partition, offset, value = m.topic(), m.partition(), m.offset(), m.value()
            assert topic is not None and partition is not None and offset is not None and value is not None
            out.append((topic, partition, offset, value))
    return out


def _offsets(records: Sequence[tuple[str, int, int, bytes]]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for topic, partition, offset, _ in records:
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset + 1)
    return [TopicPartition(t, p, o) for (t, p), o in last.items()]


def _consumer(setup: Setup, group: str) -> Consumer:
    consumer = Consumer(consumer_config(setup.bootstrap, group))
    consumer.subscribe([setup.in_topic])
    return consumer


async def make_schema(setup: Setup, schema: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(setup.database_url, min_size=2, max_size=4)
    assert pool is not None
    await PostgresStore(pool, schema).migrate()
    return pool


async def drop_schema(setup: Setup, schema: str) -> None:
    conn = await asyncpg.connect(setup.database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def count_rows(setup: Setup, schema: str, table: str) -> int:
    conn = await asyncpg.connect(setup.database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}"))
    finally:
        await conn.close()


# -- (a) raw confluent-kafka: consume → decode → decide → encode → produce, no database ----------------


def raw_passthrough(setup: Setup, count: int) -> Run:
    codec = setup.codec()
    consumer = _consumer(setup, _name("a"))
    producer = Producer(producer_config(setup.bootstrap))
    states: dict[str, Any] = {}
    done = 0
    started: float | None = None
    try:
        while done < count:
            messages = consumer.consume(BATCH, 0.5)
            if not messages:
                continue
            if started is None:
                started, cpu = time.perf_counter(), time.process_time()
            records = _records(messages)
            for topic, _, _, value in records:
                event = read_invoice(codec, topic, value)
                state, journal = decide(states.get(event.account_id), event)
                states[event.account_id] = state
                producer.produce(
                    setup.out_topic, key=journal.key().encode(), value=codec.encode(setup.out_topic, journal)
                )
            # The batch's output acknowledged before its offsets move: the same at-least-once as the others.
            if producer.flush(30):
                raise RuntimeError("(a): the broker did not acknowledge the output")
            consumer.commit(offsets=_offsets(records), asynchronous=False)
            done += len(records)
        assert started is not None
        return Run("a", done, time.perf_counter() - started, cpu=time.process_time() - cpu)
    finally:
        consumer.close()


# -- (b) hand-written confluent-kafka + asyncpg, one transaction per batch ------------------------------


async def handwritten(setup: Setup, count: int, *, naive: bool = False) -> Run:
    """(b), or with `naive` (d): the same loop, one transaction per event."""
    tag = "d" if naive else "b"
    schema = _name(tag)
    group = schema
    pool = await make_schema(setup, schema)
    codec = setup.codec()
    consumer = _consumer(setup, group)
    done = 0
    started: float | None = None
    try:
        async with pool.acquire() as conn:
            while done < count:
                messages = await asyncio.to_thread(consumer.consume, BATCH, 0.5)
                if not messages:
                    continue
                if started is None:
                    started, cpu = time.perf_counter(), time.process_time()
                records = _records(messages)
                if naive:
                    for record in records:
                        await apply_one(conn, schema, group, codec, setup.out_topic, record)
                else:
                    await apply_batch(conn, schema, group, codec, setup.out_topic, records)
                await asyncio.to_thread(consumer.commit, offsets=_offsets(records), asynchronous=False)
                done += len(records)
        assert started is not None
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        outbox = await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox")
        return Run(tag, done, seconds, cpu=cpu, extra={"outbox_rows": outbox})
    finally:
        await asyncio.to_thread(consumer.close)
        await pool.close()
        await drop_schema(setup, schema)


# -- (c) the accord runtime ----------------------------------------------------------------------------


def journal_service(group: str, in_topic: str, out_topic: str) -> Service:
    def on_invoice(state: dict[str, Any] | None, env: Envelope) -> Decision[dict[str, Any]]:
        new_state, journal = decide(state, env.event)
        return Decision(state=new_state, outputs=[Outgoing(out_topic, journal.key(), journal)])

    return Service(name=group, topics=[in_topic], handlers={InvoiceIssued.AVRO_NAME: on_invoice}, aggregate=AGGREGATE)


class TimedRuntime(Runtime):
    """The real runtime, stopped after `target` records; notes when the first batch arrived."""

    target = 0
    seen = 0
    started: float | None = None
    cpu = 0.0
    stop: asyncio.Event

    async def process_batch(self, messages: Sequence[Message]) -> BatchResult:
        if self.started is None:
            self.started, self.cpu = time.perf_counter(), time.process_time()
        result = await super().process_batch(messages)
        self.seen += sum(1 for m in messages if m.error() is None)
        if self.seen >= self.target:
            self.stop.set()  # run() still commits this batch's offsets, then returns
        return result


async def accord_runtime(setup: Setup, count: int, *, keep: bool = False, relay: bool = False) -> Run:
    """(c): `Runtime.run` with `PostgresStore`, as `ServiceHost` wires it (pool of 4, batches of 500).

    With `keep` the schema (and its outbox) is left for the relay measurement; with `relay` an
    `OutboxRelay` runs beside the consumer, as in a service process, and its commit-to-ack latencies
    are recorded.
    """
    schema = _name("c")
    pool = await make_schema(setup, schema)
    stop = asyncio.Event()
    runtime = TimedRuntime(
        journal_service(schema, setup.in_topic, setup.out_topic),
        store=PostgresStore(pool, schema),
        codec=setup.codec(),
        producer=Producer(producer_config(setup.bootstrap)),
    )
    runtime.target, runtime.stop = count, stop
    consumer = _consumer(setup, schema)
    extra: dict[str, Any] = {"schema": schema}
    try:
        if relay:
            latencies, published = await _with_relay(setup, pool, schema, runtime, consumer, count)
            extra.update(latencies=latencies, relay_published=published)
        else:
            await runtime.run(consumer, stop, batch_size=BATCH)
        assert runtime.started is not None
        seconds, cpu = time.perf_counter() - runtime.started, time.process_time() - runtime.cpu
        extra["outbox_rows"] = await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox")
        return Run("c", runtime.seen, seconds, cpu=cpu, extra=extra)
    finally:
        await asyncio.to_thread(consumer.close)
        await pool.close()
        if not keep:
            await drop_schema(setup, schema)


class _Recorder:
    """Stands in for the relay's commit-to-ack histogram to keep every observation (exact percentiles)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def labels(self, **_: str) -> _Recorder:
        return self

    def observe(self, value: float) -> None:
        self.values.append(value)


async def _with_relay(
    setup: Setup, pool: asyncpg.Pool, schema: str, runtime: TimedRuntime, consumer: Consumer, count: int
) -> tuple[list[float], int]:
    recorder = _Recorder()
    original = relay_module.COMMIT_TO_ACK
    relay_module.COMMIT_TO_ACK = recorder  # type: ignore[assignment]
    relay_stop = asyncio.Event()
    relay = OutboxRelay(pool, schema, Producer(producer_config(setup.bootstrap)), service=schema, poll_interval=0.2)
    relay_task = asyncio.create_task(relay.run(relay_stop))
    try:
        await runtime.run(consumer, runtime.stop, batch_size=BATCH)
        # The relay publishes the last rows a moment after the consumer stops; poll for them.
        while len(recorder.values) < count and not relay_task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        relay_stop.set()
        await relay_task
        relay_module.COMMIT_TO_ACK = original
    return recorder.values, len(recorder.values)


async def relay_drain(setup: Setup, schema: str, rows: int) -> Run:
    """The outbox relay alone, publishing a backlog of `rows` rows that (c) wrote; rows/s."""

    class Timed(OutboxRelay):
        published = 0
        started: float | None = None

        async def publish_once(self) -> int:
            if self.started is None:
                self.started = time.perf_counter()
            n = await super().publish_once()
            self.published += n
            if self.published >= rows:
                stop.set()
            return n

    stop = asyncio.Event()
    pool = await asyncpg.create_pool(setup.database_url, min_size=2, max_size=4)
    assert pool is not None
    relay = Timed(pool, schema, Producer(producer_config(setup.bootstrap)), service=schema)
    try:
        await relay.run(stop)
        assert relay.started is not None
        return Run("relay", relay.published, time.perf_counter() - relay.started)
    finally:
        await pool.close()
        await drop_schema(setup, schema)


# -- (e) faust-streaming ---------------------------------------------------------------------------------


async def faust_agent(setup: Setup, count: int, *, limit: float = 600) -> Run:
    schema = _name("e")
    pool = await make_schema(setup, schema)
    await pool.close()
    result = Path(tempfile.mkdtemp(prefix="bench-faust-")) / "result.json"
    settings = {
        "group": schema,
        "bootstrap": setup.bootstrap,
        "registry": setup.registry,
        "database_url": setup.database_url,
        "in_topic": setup.in_topic,
        "out_topic": setup.out_topic,
        "partitions": setup.partitions,
        "schema": schema,
        "count": count,
        "result": str(result),
        "datadir": str(result.parent / "data"),
    }
    log = result.with_name("worker.log")
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, outside the timed section
            [sys.executable, "-m", "bench.runtime.faust_worker"],
            cwd=ROOT,
            env={**os.environ, "BENCH_FAUST": json.dumps(settings), "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + limit
        while not result.exists():
            if worker.poll() is not None:
                raise RuntimeError(f"(e): the Faust worker exited with {worker.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"(e): the Faust worker did not finish in {limit:.0f}s; see {log}")
            await asyncio.sleep(0.2)
        data = json.loads(result.read_text())
        return Run("e", int(data["events"]), float(data["seconds"]), cpu=float(data["cpu"]))
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
        await drop_schema(setup, schema)
        shutil.rmtree(result.parent, ignore_errors=True)


# -- reference: the CPU cost of the shared work alone, no I/O ----------------------------------------------


def codec_only(setup: Setup, values: Sequence[bytes]) -> Run:
    """decode + decide + encode of `values` in a loop, in memory: this process's ceiling for the workload."""
    codec = setup.codec()
    states: dict[str, Any] = {}
    started, cpu = time.perf_counter(), time.process_time()
    for value in values:
        event = read_invoice(codec, setup.in_topic, value)
        state, journal = decide(states.get(event.account_id), event)
        states[event.account_id] = state
        codec.encode(setup.out_topic, journal)
    return Run("codec", len(values), time.perf_counter() - started, cpu=time.process_time() - cpu)


# -- where (c)'s per-event time goes, without a profiler's distortion ---------------------------------------


class _NoMetric:
    def labels(self, *_: Any, **__: Any) -> _NoMetric:
        return self

    def observe(self, _: float) -> None:
        pass

    def inc(self, _: float = 1) -> None:
        pass


def handle_overhead(setup: Setup, values: Sequence[bytes], rounds: int = 5) -> dict[str, float]:
    """µs per event, no I/O, best of `rounds`: `Runtime.decode` against `codec.decode`; the
    runtime's step 3 (`Runtime.apply` on a MemoryStore) against calling the same handler and encoding its
    output directly; and `apply` again with the runtime's metrics, then also its tracing, replaced by no-ops,
    to tell what each costs. CPU time, not wall clock. The MemoryStore's own work (json of the states) is in
    the runtime figures."""
    import accord.runtime._consumer as consumer_module
    from accord.runtime import MemoryStore, Writes

    codec = setup.codec()
    service = journal_service("overhead", setup.in_topic, setup.out_topic)
    handler = service.handlers[InvoiceIssued.AVRO_NAME]
    envelopes = []
    for i, value in enumerate(values):
        event = read_invoice(codec, setup.in_topic, value)
        envelopes.append(
            Envelope(
                setup.in_topic, 0, i, None, event.account_id, event, str(event.meta.event_id), event.meta.event_type
            )
        )
    runtime = Runtime(service, store=MemoryStore(), codec=codec, producer=Producer(producer_config(setup.bootstrap)))

    def direct() -> None:
        states: dict[str, Any] = {}
        for env in envelopes:
            decision = handler(states.get(env.key), env)
            states[env.key] = decision.state
            for out in decision.outputs:
                codec.encode(out.topic, out.event)

    async def via_runtime() -> None:
        store = MemoryStore()  # fresh: nothing processed yet
        for start in range(0, len(envelopes), BATCH):
            async with store.unit_of_work(consumer="overhead", aggregate=AGGREGATE) as uow:
                writes = Writes()
                await runtime.apply(uow, envelopes[start : start + BATCH], writes)
                await uow.write(writes)

    def cpu_us(action: Any) -> float:
        # CPU time of this thread: the other engineers' load on the shared cores counts less than in wall time.
        started = time.thread_time()
        action()
        return (time.thread_time() - started) / len(envelopes) * 1e6

    messages = [
        Message(topic=setup.in_topic, partition=0, offset=i, key=env.key.encode(), value=value, timestamp=(1, 0))
        for i, (env, value) in enumerate(zip(envelopes, values, strict=True))
    ]

    class NoTracer:
        def start_as_current_span(self, *_: Any, **__: Any) -> Any:
            return contextlib.nullcontext(INVALID_SPAN)

    metrics = consumer_module.__dict__["m"]
    no_metrics = type("NoMetrics", (), {k: _NoMetric() for k in dir(metrics) if k.isupper()})
    originals = {name: consumer_module.__dict__[name] for name in ("m", "tracer", "context_from_headers")}
    samples: dict[str, list[float]] = {}
    try:
        # Interleaved rounds (every variant once per round, the best of each kept), so a burst of load from
        # others hits all variants alike. The module's globals are swapped for no-ops and put back.
        for _ in range(rounds):
            _patch(consumer_module, **originals)
            variants = {
                "decode_direct": lambda: [codec.decode(setup.in_topic, v) for v in values],
                "decode_runtime": lambda: [runtime.decode(m) for m in messages],
                "direct": direct,
                "runtime": lambda: asyncio.run(via_runtime()),
            }
            for name, action in variants.items():
                samples.setdefault(name, []).append(cpu_us(action))
            _patch(consumer_module, m=no_metrics)
            samples.setdefault("runtime_no_metrics", []).append(cpu_us(lambda: asyncio.run(via_runtime())))
            _patch(consumer_module, tracer=NoTracer(), context_from_headers=lambda _: None)
            samples.setdefault("runtime_no_metrics_no_tracing", []).append(cpu_us(lambda: asyncio.run(via_runtime())))
    finally:
        _patch(consumer_module, **originals)
    out = {name: min(values) for name, values in samples.items()}
    return out


def _patch(module: Any, **values: Any) -> None:
    for name, value in values.items():
        setattr(module, name, value)
