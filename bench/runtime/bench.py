"""Service runtime benchmark: the accord runtime against the loops a team could write instead.

    .venv/bin/python -m bench.runtime [--events N] [--quick] [--rounds 2] [--only a,b,c,d,e]

On one broker, one PostgreSQL and one registry (its own local stack in a temporary folder, or the ones in
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL / SCHEMA_REGISTRY_URL), N invoice-issued events (3 lines, taxed,
~750 B of Avro) are written to a 6-partition topic keyed by account; then each contender consumes them from
the start with its own consumer group and database schema, doing per event: decode, dedupe against the
idempotency table, update the account's state row, write an outbox row (an encoded JournalRequested),
commit the transaction, then the offsets:

    (a) raw confluent-kafka: decode → decide → encode → produce, no database (the ceiling);
    (b) hand-written confluent-kafka + asyncpg, one transaction per batch of 500;
    (c) accord's `Runtime.run` with `PostgresStore` (the outbox relay measured apart);
    (d) naive: the loop of (b) with one transaction per event;
    (e) a faust-streaming agent taking batches of 500 into the same database work as (b).

Contenders run in interleaved rounds (a b c d e, a b c d e, ...; 3 by default) and the best round of each is
reported, because the machine's cores are shared; (d), the slowest, consumes the first third of the topic
(at most 10,000 events), enough for its steady rate. Then the outbox relay alone (rows/s draining what (c) wrote), the
relay beside a running consumer (p99 commit-to-ack), and a cProfile of (c). Nothing is asserted: the
report, on stdout and in bench/results/runtime-<date>.md (+ .json), gives ratios and this machine's facts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import confluent_kafka
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from accord.events import InvoiceIssued, JournalRequested
from accord.serde import EventCodec

from . import contenders as c
from .workload import invoice_values, produce_input

RESULTS = Path(__file__).resolve().parents[1] / "results"
CONTENDERS = {
    "a": "(a) raw confluent-kafka consume → produce, no DB",
    "b": "(b) hand-written confluent-kafka + asyncpg, batched",
    "c": "(c) accord runtime (Runtime.run + PostgresStore)",
    "d": "(d) naive: one transaction per event",
    "e": "(e) faust-streaming agent, batched",
}
ENV_PARTS = {"kafka": "KAFKA_BOOTSTRAP_SERVERS", "postgres": "DATABASE_URL", "registry": "SCHEMA_REGISTRY_URL"}


def say(text: str) -> None:
    print(text, flush=True)


# -- infrastructure ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[dict[str, str], str]]:
    """(env, kafka version): the parts named in the environment as they are, the others started here."""
    if all(os.environ.get(v) for v in ENV_PARTS.values()):
        yield {v: os.environ[v] for v in ENV_PARTS.values()}, "external"
        return
    from accord.devstack import Stack

    home = Path(tempfile.mkdtemp(prefix="bench-runtime-stack-"))
    stack = Stack(home, parts=list(ENV_PARTS))
    try:
        say(f"starting Kafka, PostgreSQL and the registry in {home} ...")
        records = stack.up()
        env: dict[str, str] = {}
        for record in records.values():
            env.update(record.env)
        yield env, _kafka_version(records["kafka"])
    finally:
        stack.down()
        shutil.rmtree(home, ignore_errors=True)


def _kafka_version(record: Any) -> str:
    if record.external:
        return "external (version not known)"
    return str(record.version or "unknown")


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    for future in admin.delete_topics(names).values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)


def machine(database_url: str, kafka_version: str) -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"

    async def pg_version() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "python": platform.python_version(),
        "confluent-kafka": f"{version('confluent-kafka')} (librdkafka {confluent_kafka.libversion()[0]})",
        "asyncpg": version("asyncpg"),
        "fastavro": version("fastavro"),
        "pydantic": version("pydantic"),
        "faust-streaming": version("faust-streaming"),
        "postgresql": asyncio.run(pg_version()),
        "kafka": kafka_version,
        "kernel": platform.release(),
    }


# -- running ---------------------------------------------------------------------------------------------


def run_contender(key: str, setup: c.Setup, count: int) -> c.Run:
    if key == "a":
        run = c.raw_passthrough(setup, count)
    elif key == "b":
        run = asyncio.run(c.handwritten(setup, count))
    elif key == "c":
        run = asyncio.run(c.accord_runtime(setup, count))
    elif key == "d":
        run = asyncio.run(c.handwritten(setup, count, naive=True))
    else:
        run = asyncio.run(c.faust_agent(setup, count))
    run.loadavg = os.getloadavg()[0]
    return run


def profile_contender(run: Callable[[], c.Run], top: int = 25) -> dict[str, Any]:
    """cProfile of one contender's run: top functions by own time, and own time grouped by package."""
    # CPU time of the main thread: the other engineers' load on the shared cores does not inflate it.
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    result = run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in raw.values())
    groups: dict[str, float] = {}
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        label = _group(filename, func)
        groups[label] = groups.get(label, 0.0) + tottime
        rows.append((tottime, cumtime, ncalls, f"{_short(filename)}:{line}({func})"))
    rows.sort(reverse=True)
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(r"accord|bench|asyncpg/pool|asyncpg/connection", 30)
    return {
        "events": result.events,
        "seconds_profiled": result.seconds,
        "total_own_seconds": total,
        "by_package": sorted(((k, v, v / total) for k, v in groups.items()), key=lambda r: -r[1]),
        "top": rows[:top],
        "cumulative": out.getvalue(),
    }


_GROUPS = [
    ("pydantic", "pydantic (event validation, model_dump)"),
    ("accord/events/_model.py", "accord.events validators (AvroDecimal.as_tuple, no_float)"),
    ("accord/serde.py", "accord.serde (incl. fastavro C code)"),
    ("fastavro", "fastavro (Python parts)"),
    ("bench/runtime/workload.py", "bench workload.py: decide(), and (b)'s own loop"),
    ("accord/events", "accord.events (other)"),
    ("opentelemetry", "opentelemetry (spans)"),
    ("prometheus_client", "prometheus_client (metrics)"),
    ("asyncpg", "asyncpg (Python parts)"),
    ("accord/runtime", "accord.runtime (own code)"),
    ("json", "json"),
    ("uuid", "uuid"),
    ("decimal", "decimal"),
    ("asyncio", "asyncio (event loop, to_thread)"),
    ("threading", "threading (to_thread hand-off)"),
    ("concurrent", "threading (to_thread hand-off)"),
]


def _group(filename: str, func: str) -> str:
    if "select" in func or ("poll" in func and filename == "~"):
        return "waiting (epoll: Kafka consume thread, PostgreSQL round trips)"
    for needle, label in _GROUPS:
        if needle in filename:
            return label
    if filename == "~":
        if "asyncpg" in func or "Protocol" in func:
            return "asyncpg (C parts)"
        if "confluent" in func or "cimpl" in func:
            return "confluent-kafka (C)"
        if "decimal" in func.lower() or "Decimal" in func or "as_tuple" in func:
            return "decimal"
        return f"builtins: {func}"[:80]
    return _short(filename)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "libs/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.replace(str(c.ROOT) + "/", "")


# -- reporting -------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(
    args: argparse.Namespace,
    facts: dict[str, str],
    runs: dict[str, list[c.Run]],
    reference: c.Run | None,
    relay: dict[str, Any],
    profile: dict[str, Any] | None,
    load: dict[str, float],
    profile_b: dict[str, Any] | None = None,
    overhead: dict[str, float] | None = None,
) -> tuple[str, dict[str, Any]]:
    best = {k: max(v, key=lambda r: r.rate) for k, v in runs.items() if v}
    lines = [
        f"# Service runtime benchmark — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Workload: {args.events} InvoiceIssued events ({c.BATCH}-record polls, {args.accounts} accounts, "
        f"6 partitions, ~{args.value_size} B Avro each) → one JournalRequested outbox row per event; "
        f"idempotency row + state row (jsonb upsert) + outbox row per event. "
        f"Best of {args.rounds} interleaved rounds per contender.",
        "",
        "| contender | events | seconds | events/s (best) | every round | vs (b) | vs (c) | CPU µs/event |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    b_rate = best["b"].rate if "b" in best else None
    c_rate = best["c"].rate if "c" in best else None
    for key in CONTENDERS:
        if key not in best:
            continue
        r = best[key]
        every = ", ".join(f"{x.rate:,.0f}" for x in runs[key])
        lines.append(
            f"| {CONTENDERS[key]} | {r.events:,} | {r.seconds:.2f} | {r.rate:,.0f} | {every} | "
            f"{_ratio(r.rate, b_rate)} | {_ratio(r.rate, c_rate)} | {_cpu(r)} |"
        )
    if reference is not None:
        lines.append(
            f"| reference: decode + decide + encode only, in memory, no I/O | {reference.events:,} | "
            f"{reference.seconds:.2f} | {reference.rate:,.0f} | | {_ratio(reference.rate, b_rate)} | "
            f"{_ratio(reference.rate, c_rate)} | {_cpu(reference)} |"
        )
    lines += [
        "",
        "Each clock starts when the contender's first batch arrives (joining the group is not timed) and stops "
        "when its last batch's transaction and offset commit are done; (e)'s stops at its last transaction's "
        "commit, Faust committing offsets on its own schedule. (a) waits for the broker's acknowledgement of "
        "each batch's output before committing its offsets. CPU is the contender's process (all threads) "
        "over the timed span. The reference row is the CPU ceiling of one process for this workload with "
        "this codec: no Kafka, no database.",
    ]
    lines += ["", "## Against the aims (per process, this machine)", ""]
    if c_rate is not None:
        aims = [("(c) ≥ 20,000 events/s", c_rate >= 20_000, f"{c_rate:,.0f} events/s")]
        if b_rate:
            cpu_b, cpu_c = _least_cpu(runs["b"]), _least_cpu(runs["c"])
            by_cpu = (
                f"; by CPU per event (least of the rounds), (b)/(c) = {cpu_b / cpu_c:.2f}" if cpu_b and cpu_c else ""
            )
            aims.append(
                (
                    "(c) within 15% of (b)",
                    c_rate >= 0.85 * b_rate,
                    f"by events/s, (c)/(b) = {c_rate / b_rate:.2f}{by_cpu}",
                )
            )
        if "d" in best:
            aims.append(
                ("(c) ≥ 10 times (d)", c_rate >= 10 * best["d"].rate, f"(c)/(d) = {c_rate / best['d'].rate:.1f}")
            )
        if "e" in best:
            aims.append(("(c) ≥ 5 times (e)", c_rate >= 5 * best["e"].rate, f"(c)/(e) = {c_rate / best['e'].rate:.1f}"))
        for aim, met, figure in aims:
            lines.append(f"- {aim}: {'met' if met else 'NOT met'} ({figure})")
    if relay:
        lines += ["", "## Outbox relay", ""]
        if "drain" in relay:
            d = relay["drain"]
            lines.append(
                f"- alone, draining a backlog of {d['rows']:,} rows written by (c): {d['rate']:,.0f} rows/s "
                f"({d['seconds']:.2f} s; batches of 1000, idempotent producer, acks=all, lz4)"
            )
        if "live" in relay:
            live = relay["live"]
            lines.append(
                f"- beside a consumer running flat out ({live['events']:,} events, consumer at "
                f"{live['consumer_rate']:,.0f} events/s): commit-to-ack p50 {live['p50'] * 1000:.0f} ms, "
                f"p99 {live['p99'] * 1000:.0f} ms, max {live['max'] * 1000:.0f} ms over {live['rows']:,} rows "
                "(from the row's created_at, i.e. its transaction's start, to the broker's acknowledgement)"
            )
    if overhead:
        o = overhead
        lines += [
            "",
            "## What the runtime adds per event, without a profiler (CPU µs/event of one thread, no I/O, best of 5)",
            "",
            "| step | done directly | done by the runtime | the runtime adds |",
            "|---|---:|---:|---:|",
            f"| decode: `codec.decode` vs `Runtime.decode` (Envelope, headers, event identity) | "
            f"{o['decode_direct']:.0f} | {o['decode_runtime']:.0f} | {o['decode_runtime'] - o['decode_direct']:+.0f} |",
            f"| handle: handler + encode vs `Runtime.apply` on a MemoryStore | {o['direct']:.0f} | "
            f"{o['runtime']:.0f} | {o['runtime'] - o['direct']:+.0f} |",
            f"| … of which Prometheus metrics (2 `labels()` + observe/inc per event) | | | "
            f"{o['runtime'] - o['runtime_no_metrics']:+.0f} |",
            f"| … of which the OpenTelemetry span per event (no tracer provider configured) | | | "
            f"{o['runtime_no_metrics'] - o['runtime_no_metrics_no_tracing']:+.0f} |",
            f"| … the rest (bookkeeping, the MemoryStore's json of states) | | | "
            f"{o['runtime_no_metrics_no_tracing'] - o['direct']:+.0f} |",
        ]
    lines += [
        "",
        "## Noise",
        "",
        f"Load average (1 min) before: {load['before']:.2f}, after: {load['after']:.2f}; at the end of each run: "
        + "; ".join(f"{k} " + ", ".join(f"{r.loadavg:.1f}" for r in v) for k, v in runs.items())
        + ". The 2 cores are shared with other engineers' work, so figures move between rounds; "
        "compare the ratios of one run, not absolute figures across runs.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in facts.items()],
    ]
    if profile is not None:
        lines += [
            "",
            f"## Profile of (c): cProfile, {profile['events']:,} events, CPU time of the main thread "
            f"({profile['total_own_seconds']:.1f} s; librdkafka's threads and the to_thread calls are not in it)",
            "",
            "| where the main thread's time goes (own time, by package) | seconds | share |",
            "|---|---:|---:|",
            *[f"| {name} | {sec:.2f} | {share:.0%} |" for name, sec, share in profile["by_package"][:18]],
            "",
            *(_side_by_side(profile_b, profile) if profile_b else []),
            "Top functions of (c) by own time:",
            "",
            "| own s | cumulative s | calls | function |",
            "|---:|---:|---:|---|",
            *[f"| {t:.2f} | {cum:.2f} | {n:,} | `{f}` |" for t, cum, n, f in profile["top"]],
            "",
            "<details><summary>cumulative time, accord / bench / asyncpg</summary>",
            "",
            "```",
            profile["cumulative"].strip(),
            "```",
            "</details>",
        ]
    data = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(),
        "args": vars(args),
        "machine": facts,
        "runs": {k: [vars(r) | {"rate": r.rate} for r in v] for k, v in runs.items()},
        "best": {k: r.rate for k, r in best.items()},
        "reference_codec_only": reference.rate if reference else None,
        "relay": relay,
        "profile": {k: v for k, v in (profile or {}).items() if k != "cumulative"},
        "profile_b": {k: v for k, v in (profile_b or {}).items() if k != "cumulative"},
        "overhead_us_per_event": overhead,
        "load": load,
    }
    return "\n".join(lines) + "\n", data


def _side_by_side(b: dict[str, Any], c_: dict[str, Any]) -> list[str]:
    """Main-thread own time per event, (b) against (c), by package: where (c)'s extra time goes."""
    per_b = {name: sec / b["events"] * 1e6 for name, sec, _ in b["by_package"]}
    per_c = {name: sec / c_["events"] * 1e6 for name, sec, _ in c_["by_package"]}
    names = sorted(set(per_b) | set(per_c), key=lambda n: -abs(per_c.get(n, 0) - per_b.get(n, 0)))
    lines = [
        f"Main-thread CPU time per event, µs, under cProfile: (b) on {b['events']:,} events against (c) "
        f"on {c_['events']:,} (profiling inflates both alike; the difference is what (c) adds):",
        "",
        "| package | (b) µs/event | (c) µs/event | (c) minus (b) |",
        "|---|---:|---:|---:|",
    ]
    for name in names[:16]:
        b_us, c_us = per_b.get(name, 0.0), per_c.get(name, 0.0)
        lines.append(f"| {name} | {b_us:.0f} | {c_us:.0f} | {c_us - b_us:+.0f} |")
    total_b, total_c = sum(per_b.values()), sum(per_c.values())
    lines += [f"| **all** | {total_b:.0f} | {total_c:.0f} | {total_c - total_b:+.0f} |", ""]
    return lines


def _least_cpu(runs: list[c.Run]) -> float | None:
    """The least CPU per event over the rounds: the figure the shared cores disturb least."""
    values = [r.cpu / r.events for r in runs if r.cpu is not None and r.events]
    return min(values) if values else None


def _cpu(run: c.Run) -> str:
    """CPU time of the contender's process (every thread) per event, over its timed span."""
    return f"{run.cpu / run.events * 1e6:,.0f}" if run.cpu is not None and run.events else "—"


def _ratio(rate: float, base: float | None) -> str:
    return f"{rate / base:.2f}x" if base else "—"


# -- main ------------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=None, help="events to pre-produce and consume (default 30000)")
    p.add_argument("--quick", action="store_true", help="a short run: 6000 events, no live relay run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is reported")
    p.add_argument("--only", default="abcde", help="contenders to run, e.g. 'bc'")
    p.add_argument(
        "--naive-events", type=int, default=None, help="events for (d), the slowest (default: a third, ≤ 10000)"
    )
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--profile-events", type=int, default=None, help="events for the profile of (c); 0: none")
    p.add_argument("--no-relay", action="store_true", help="skip the outbox relay measurements")
    p.add_argument("--no-write", action="store_true", help="print only; write nothing to bench/results")
    args = p.parse_args(argv)
    if args.events is None:
        args.events = 6000 if args.quick else 30_000
    if args.profile_events is None:
        args.profile_events = min(args.events, 3000 if args.quick else 10_000)
    args.only = [k for k in CONTENDERS if k in args.only.replace(",", "")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with infrastructure() as (env, kafka_version):
        bootstrap, database_url, registry = (env[v] for v in ENV_PARTS.values())
        run_id = uuid.uuid4().hex[:8]
        in_topic, out_topic = f"bench.runtime.{run_id}.invoices", f"bench.runtime.{run_id}.journal"
        create_topics(bootstrap, [in_topic, out_topic], partitions=6)
        try:
            setup = c.Setup(bootstrap, database_url, registry, in_topic, out_topic, partitions=6)
            _main(args, setup, database_url, kafka_version, load_before, started)
        finally:
            delete_topics(bootstrap, [in_topic, out_topic])


def _main(
    args: argparse.Namespace, setup: c.Setup, database_url: str, kafka_version: str, load_before: float, t: float
) -> None:
    facts = machine(database_url, kafka_version)
    with EventCodec(SchemaRegistryClient({"url": setup.registry}), auto_register=True) as writer:
        writer.warm_up([(setup.in_topic, InvoiceIssued), (setup.out_topic, JournalRequested)])
        say(f"writing {args.events:,} invoices to {setup.in_topic} ...")
        produced = time.perf_counter()
        size = produce_input(setup.bootstrap, writer, setup.in_topic, args.events, args.accounts)
        args.value_size = size // args.events
        say(f"  written in {time.perf_counter() - produced:.1f}s ({args.value_size} B a value)")
        sample = [v for _, v in invoice_values(writer, setup.in_topic, min(args.events, 3000), args.accounts)]
    reference = c.codec_only(setup, sample)
    say(f"reference: decode + decide + encode alone: {reference.rate:,.0f} events/s")
    overhead = c.handle_overhead(setup, sample[:2000]) if "c" in args.only else None
    if overhead:
        say("runtime overhead, µs/event: " + ", ".join(f"{k} {v:.0f}" for k, v in overhead.items()))

    runs: dict[str, list[c.Run]] = {k: [] for k in args.only}
    naive = min(args.naive_events or max(1, min(args.events // 3, 10_000)), args.events)
    for round_no in range(1, args.rounds + 1):
        for key in args.only:
            count = naive if key == "d" else args.events
            run = run_contender(key, setup, count)
            runs[key].append(run)
            say(
                f"round {round_no} {CONTENDERS[key]}: {run.events:,} events in {run.seconds:.2f}s = "
                f"{run.rate:,.0f} events/s, CPU {_cpu(run)} µs/event (load {run.loadavg:.1f})"
            )

    relay: dict[str, Any] = {}
    if "c" in args.only and not args.no_relay:
        say("outbox relay: draining a backlog written by (c) ...")
        kept = asyncio.run(c.accord_runtime(setup, args.events, keep=True))
        drained = asyncio.run(c.relay_drain(setup, kept.extra["schema"], int(kept.extra["outbox_rows"])))
        relay["drain"] = {"rows": drained.events, "seconds": drained.seconds, "rate": drained.rate}
        say(f"  {drained.events:,} rows in {drained.seconds:.2f}s = {drained.rate:,.0f} rows/s")
        if not args.quick:
            count = min(args.events, 20_000)
            say(f"outbox relay beside a running consumer ({count:,} events) ...")
            live = asyncio.run(c.accord_runtime(setup, count, relay=True))
            values = live.extra["latencies"]
            relay["live"] = {
                "events": live.events,
                "consumer_rate": live.rate,
                "rows": len(values),
                "p50": statistics.median(values) if values else float("nan"),
                "p99": percentile(values, 99),
                "max": max(values, default=float("nan")),
            }
            say(f"  commit-to-ack p99 {relay['live']['p99'] * 1000:.0f} ms over {len(values):,} rows")

    profile = profile_b = None
    if "c" in args.only and args.profile_events > 0:
        n = args.profile_events
        say(f"profiling (b) and (c) on {n:,} events ...")
        profile_b = profile_contender(lambda: asyncio.run(c.handwritten(setup, n)))
        profile = profile_contender(lambda: asyncio.run(c.accord_runtime(setup, n)))

    load = {"before": load_before, "after": os.getloadavg()[0], "wall_seconds": time.monotonic() - t}
    text, data = report(args, facts, runs, reference, relay, profile, load, profile_b, overhead)
    say("")
    say(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = RESULTS / f"runtime-{datetime.datetime.now(datetime.UTC):%Y-%m-%d}"
        stem.with_suffix(".md").write_text(text)
        stem.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        say(f"written to {stem}.md and .json (whole run {load['wall_seconds']:.0f}s)")


if __name__ == "__main__":
    main(sys.argv[1:])
