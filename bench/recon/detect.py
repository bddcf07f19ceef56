"""Time to detect: from a divergence being due (its SLA passed, or its contradiction seen and settled) to its finding
published, on the reconciler process, for a book from the divergence injector.

    .venv/bin/python -m bench.recon.detect [--customers 2000] [--per-class 100] [--seed 7]

A stack of its own (Kafka, PostgreSQL, the registry, the orchestrator to prepare topics and schemas, and the
reconciler with short SLAs), the injector's book published to the real topics with delivery noise, then every
finding's `detected_at - first_seen` from the reconciler's table, per class. The sweeper looks for due deadlines
every second: that interval is the baseline the figures are compared with (a divergence due just after a sweep
waits up to one interval). Nothing is asserted; the report goes to stdout and bench/results/recon-detect-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Producer

from accord.devstack import Stack
from accord.runtime import producer_config
from accord.serde import EventCodec
from accord_reconciler.injector import Book, noisy, per_class

from .bench import machine

RESULTS = Path(__file__).resolve().parents[1] / "results"
SWEEP_SECONDS = 1.0  # the host's tick that runs the sweeper
FOREIGN = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SCHEMA_REGISTRY_URL")
SETTINGS = {
    "ACCORD_RECONCILER_SLA_SECONDS": json.dumps({"journal": 30, "contract": 30}),
    "ACCORD_RECONCILER_SETTLE_SECONDS": "5",
    "ACCORD_RECONCILER_IN_DOUBT_GRACE_SECONDS": "5",
    "ACCORD_RECONCILER_REPAIR_TIMEOUT_SECONDS": "3600",
}


def say(text: str) -> None:
    print(text, flush=True)


async def _value(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def wait(what: str, done: Any, timeout: float) -> float:
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"gave up waiting: {what}")
        time.sleep(0.5)
    return time.monotonic() - started


def run(customers: int, per: int, seed: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="bench-recon-detect-"))
    environ = {k: v for k, v in os.environ.items() if k not in FOREIGN and not k.startswith("ACCORD_")}
    environ.update(SETTINGS)
    stack = Stack(home, parts=["kafka", "postgres", "registry", "orchestrator", "reconciler"], environ=environ)
    try:
        say(f"starting kafka, postgres, registry, orchestrator, reconciler in {home} ...")
        stack.up(progress=lambda part, phase, detail: say(f"  {part:<14} {phase} {detail}"), timeout=240)
        env = stack.env()
        url = env["DATABASE_URL"]
        book = Book.generate(customers=customers, per_class=per, seed=seed, run=f"b{seed}")
        events = noisy(book.events, random.Random(seed), duplicates=0.2)
        distinct = len({e.meta.event_id for e in events})  # type: ignore[attr-defined]
        say(f"publishing {len(events)} records ({distinct} events, {len(book.expected)} divergences injected)")
        started = time.monotonic()
        with EventCodec.connect(env["SCHEMA_REGISTRY_URL"]) as codec:
            producer = Producer(producer_config(env["KAFKA_BOOTSTRAP_SERVERS"]))
            for n, e in enumerate(events):
                producer.produce(e.TOPIC, key=e.key().encode(), value=codec.encode(e.TOPIC, e))
                if n % 1000 == 0:
                    producer.poll(0)
            producer.flush(60)
        consumed = wait(
            "the reconciler to consume the book",
            lambda: asyncio.run(_value(url, "SELECT count(*) FROM reconciler.processed_events")) >= distinct,
            600,
        )
        say(f"consumed {consumed:.1f} s after the last publish ({time.monotonic() - started:.1f} s after the first)")
        wait(
            "every injected divergence to be found",
            lambda: asyncio.run(_value(url, "SELECT count(*) FROM reconciler.findings")) >= len(book.expected),
            600,
        )
        time.sleep(3)  # anything found after the expected count would be a false positive: let it show
        rows = asyncio.run(
            _rows(
                url,
                """SELECT finding_class, key, extract(epoch FROM detected_at - first_seen) AS seconds
                   FROM reconciler.findings""",
            )
        )
    finally:
        say("stopping the stack ...")
        stack.down(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
    found = {(r["key"], r["finding_class"]) for r in rows}
    expected = {(k, c.value) for k, c in book.expected}
    by_class: dict[str, list[float]] = {}
    for r in rows:
        by_class.setdefault(r["finding_class"], []).append(float(r["seconds"]))
    everything = sorted(s for v in by_class.values() for s in v)
    return {
        "customers": customers,
        "injected": per_class(book.expected),
        "findings": len(rows),
        "missed": len(expected - found),
        "false_positives": len(found - expected),
        "all": _stats(everything),
        "by_class": {c: _stats(sorted(v)) for c, v in sorted(by_class.items())},
    }


def _q(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(_q(values, 0.5), 3),
        "p99": round(_q(values, 0.99), 3),
        "max": round(values[-1], 3) if values else float("nan"),
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def report(result: dict[str, Any]) -> str:
    now = datetime.datetime.now(datetime.UTC)
    lines = [
        f"# Reconciler time to detect — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Book: {result['customers']:,} customers from the divergence injector, "
        f"{sum(result['injected'].values())} divergences ({_counts(result['injected'])}), "
        "20% of records delivered twice, topics in a random order. Reconciler: SLAs 30 s, settle 5 s, in-doubt grace "
        f"5 s. Found {result['findings']}: {result['missed']} missed, {result['false_positives']} false positives.",
        "",
        "Time to detect = the finding's publication (`detected_at`) minus the moment it became due (`first_seen`: the",
        "SLA passed, or the contradiction settled). Baseline: the sweeper's interval, 1 s.",
        "",
        "| class | findings | p50 s | p99 s | max s | p50 / sweep interval |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in [("all", result["all"]), *result["by_class"].items()]:
        lines.append(f"| {name} | {s['n']} | {s['p50']} | {s['p99']} | {s['max']} | {s['p50'] / SWEEP_SECONDS:.2f}x |")
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args.customers, args.per_class, args.seed)
    text = report(result)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    day = datetime.datetime.now(datetime.UTC).date().isoformat()
    (RESULTS / f"recon-detect-{day}.md").write_text(text)
    (RESULTS / f"recon-detect-{day}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
