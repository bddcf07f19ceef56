"""Contender (e): a Faust agent doing the same work, run as its own worker process by the benchmark.

    BENCH_FAUST=<json settings> python -m bench.runtime.faust_worker

The agent takes the stream in batches (`take_events(500, within=0.1)`, the fair way to use Faust here: one
transaction per event would only measure the naive loop again) and hands each batch to the same
`apply_batch` as contender (b). Faust acknowledges the events of a batch when the next one is taken and
commits offsets itself every `broker_commit_every` events or `broker_commit_interval` seconds.
When the target count is reached the worker writes its timing to `result` and the parent stops it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import faust
from confluent_kafka.schema_registry import SchemaRegistryClient

from accord.events import InvoiceIssued, JournalRequested
from accord.serde import EventCodec

from .workload import apply_batch

settings: dict[str, Any] = json.loads(os.environ["BENCH_FAUST"])

app = faust.App(
    settings["group"],
    broker=f"kafka://{settings['bootstrap']}",
    store="memory://",
    web_enabled=False,
    topic_partitions=settings["partitions"],
    consumer_auto_offset_reset="earliest",
    datadir=settings["datadir"],
)
source = app.topic(settings["in_topic"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def invoices(stream: faust.StreamT[bytes]) -> None:
    codec = EventCodec(SchemaRegistryClient({"url": settings["registry"]}))
    codec.warm_up([(settings["in_topic"], InvoiceIssued), (settings["out_topic"], JournalRequested)])
    conn = await asyncpg.connect(settings["database_url"])
    target: int = settings["count"]
    done = 0
    started: float | None = None
    cpu = 0.0
    async for events in stream.take_events(500, within=0.1):  # type: ignore[attr-defined]
        if started is None:
            started, cpu = time.perf_counter(), time.process_time()
        records = [(e.message.topic, e.message.partition, e.message.offset, e.value) for e in events]
        await apply_batch(conn, settings["schema"], settings["group"], codec, settings["out_topic"], records)
        done += len(records)
        if done >= target:
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            # Written once, after the clock stopped.
            Path(settings["result"]).write_text(json.dumps({"events": done, "seconds": seconds, "cpu": cpu}))  # noqa: ASYNC240


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()
