"""End-to-end benchmark of quote-to-cash: from a contract activated in the CRM to its journal posted in the ERP.

    .venv/bin/python -m bench.e2e [--rate 1] [--wave-interval 5] [--duration 60] [--saturation 200] [--seed 7]

On a stack of its own (its own home under /tmp, its own Kafka, PostgreSQL, registry, sandbox and the four accord
services as processes; nothing taken from the environment; stopped at the end even on failure), three phases:

1. fixed arrival rate: the sandbox's sales team closes a wave of `rate * wave-interval` customers every
   `wave-interval` seconds for `duration` seconds (one book in waves, `offset` after `offset`);
2. saturation: one wave of `saturation` customers at once, with the watermarks of every topic read before and
   after, each process's CPU time, and py-spy sampling the busiest accord service for `profile-seconds`;
3. the floor, measured in the same run: the accord services are stopped and the sandbox's own "full" generator
   writes the same book (same seed, same number of customers) directly into CRM, billing and ERP in process.

Latency per contract is read from the hub's tables: the activation instance's `activated_at` (the CRM's own
timestamp of the activation) to its `done` history row (the journal of its first invoice posted); the history's
rows give the time spent in every step. Nothing is asserted: the report, on stdout and in
bench/results/e2e-<date>.md (+ .json), gives the absolute figures, the ratios and this machine's facts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
import psutil
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from accord.cli.demo import PERSON_STEPS
from accord.devstack import Stack
from accord.devstack._stack import catalogue

from .stats import INGEST, Instance, Profile, parse_collapsed, stage_summaries, summary

RESULTS = Path(__file__).resolve().parents[1] / "results"
SERVICES = ("orchestrator", "crm-connector", "billing-connector", "erp-connector")
#: environment the stack must not inherit: every part is this benchmark's own
FOREIGN = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SCHEMA_REGISTRY_URL")


def say(text: str) -> None:
    print(text, flush=True)


# -- the stack -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def own_stack() -> Iterator[tuple[Stack, dict[str, str]]]:
    home = Path(tempfile.mkdtemp(prefix="bench-e2e-stack-"))
    environ = {k: v for k, v in os.environ.items() if k not in FOREIGN and not k.startswith("ACCORD_")}
    # no contract waits for a person: the benchmark measures the machines' part of the flow
    environ["ACCORD_ORCHESTRATOR_CREDIT_REVIEW_THRESHOLD"] = "1000000000000"
    stack = Stack(home, environ=environ)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        say(f"starting the whole stack in {home} ...")
        stack.up(progress=lambda part, phase, detail: say(f"  {part:<18} {phase} {detail}"), timeout=180)
        yield stack, stack.env()
    finally:
        say("stopping the stack ...")
        stack.down(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so that the stack's `finally` stops what it started


def generate(sandbox: str, *, customers: int, seed: int, namespace: str, mode: str, offset: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"customers": customers, "seed": seed, "namespace": namespace, "mode": mode}
    if offset:
        body["offset"] = offset
    response = httpx.post(f"{sandbox}/admin/generate", json=body, timeout=3600)
    if response.status_code >= 400:
        raise RuntimeError(f"the sandbox refused to generate {body}: {response.status_code} {response.text[:300]}")
    plan: dict[str, Any] = response.json()
    return plan


def contracts_of(plan: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(every contract of a sales plan, the first contract of each customer the plan does not cancel).

    A contract the sales team cancels right after activating it may reach accord already terminated (the CDC
    change carries the record as it is when read), and then no activation starts for it: it is not waited for."""
    expected = plan.get("expected", {}).values()
    return [c for e in expected for c in e["contracts"]], [e["contract_id"] for e in expected if not e["cancel"]]


# -- what the hub knows ----------------------------------------------------------------------------------------


def _when(value: Any) -> dt.datetime | None:
    if value in (None, "", "None"):
        return None
    text = str(value)
    if text.isdigit():
        stamp = dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC)
    else:
        stamp = dt.datetime.fromisoformat(text)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


async def _instances(database_url: str, contracts: list[str]) -> list[Instance]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT i.id, i.correlation_key, i.status, i.step, i.state->>'activated_at' AS activated_at,
                      h.step AS h_step, h.at
               FROM orchestrator.workflow_instances i
               LEFT JOIN orchestrator.workflow_history h ON h.instance_id = i.id
               WHERE i.workflow = 'activation' AND i.correlation_key = ANY($1::text[])
               ORDER BY i.id, h.id""",
            contracts,
        )
    finally:
        await conn.close()
    found: dict[Any, Instance] = {}
    for r in rows:
        inst = found.get(r["id"])
        if inst is None:
            inst = found[r["id"]] = Instance(r["correlation_key"], r["status"], r["step"], _when(r["activated_at"]))
        if r["h_step"] is not None:
            inst.history.append((r["h_step"], r["at"]))
    return list(found.values())


async def _progress(database_url: str, contracts: list[str]) -> tuple[Counter[str], int]:
    conn = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT to_regclass('orchestrator.workflow_instances') IS NOT NULL"):
            return Counter(), 0
        rows = await conn.fetch(
            "SELECT step, count(*) AS n FROM orchestrator.workflow_instances WHERE workflow = 'activation'"
            " AND correlation_key = ANY($1::text[]) GROUP BY 1",
            contracts,
        )
        last = await conn.fetchval(
            "SELECT coalesce(max(h.id), 0) FROM orchestrator.workflow_history h JOIN orchestrator.workflow_instances i"
            " ON i.id = h.instance_id WHERE i.workflow = 'activation' AND i.correlation_key = ANY($1::text[])",
            contracts,
        )
        return Counter({r["step"]: r["n"] for r in rows}), int(last)
    finally:
        await conn.close()


def settle(env: dict[str, str], contracts: list[str], primary: int, *, quiet: float, timeout: float) -> Counter[str]:
    """Wait until every contract's activation is done (or waits for a person), or nothing moved for `quiet` s."""
    started = time.monotonic()
    last, since, shown = -1, time.monotonic(), 0.0
    while True:
        steps, history = asyncio.run(_progress(env["DATABASE_URL"], contracts))
        total = sum(steps.values())
        in_flight = sum(n for s, n in steps.items() if s != "done" and s not in PERSON_STEPS)
        if history != last:
            last, since = history, time.monotonic()
        now = time.monotonic()
        if now - shown >= 10:
            say(f"    {now - started:5.0f}s  activations {total} (of ≥ {primary}): {dict(sorted(steps.items()))}")
            shown = now
        if total >= primary and in_flight == 0:
            return steps
        if now - since >= quiet:
            say(f"    nothing moved for {quiet:.0f}s: {in_flight} activation(s) still in flight, going on")
            return steps
        if now - started >= timeout:
            say(f"    timeout after {timeout:.0f}s: {in_flight} activation(s) still in flight, going on")
            return steps
        time.sleep(1.0)


async def _webhooks(database_url: str, since: dt.datetime) -> dict[str, Any]:
    """The sandbox's webhook deliveries of events created since `since`, per receiving system: how many, and how
    long each waited in the sandbox's outbox (event created → the dispatcher's tick that delivered it)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT s.system, o.status, e.type, extract(epoch FROM o.delivered_at - e.created_at)::float8 AS lag,
                      e.created_at, o.delivered_at
               FROM sandbox.outbox o JOIN sandbox.subscribers s ON s.id = o.subscriber_id
               JOIN sandbox.events e ON e.seq = o.event_seq
               WHERE e.created_at >= $1""",
            since,
        )
    finally:
        await conn.close()
    out: dict[str, Any] = {}
    for system in sorted({r["system"] for r in rows}):
        mine = [r for r in rows if r["system"] == system]
        done = [r for r in mine if r["status"] == "delivered"]
        first = min((r["created_at"] for r in mine), default=None)
        last = max((r["delivered_at"] for r in done), default=None)
        seconds = (last - first).total_seconds() if first and last else math.nan
        out[system] = {
            "events": len(mine),
            "delivered": len(done),
            "not_delivered": dict(Counter(r["status"] for r in mine if r["status"] != "delivered")),
            "per_s": len(done) / seconds if seconds else math.nan,
            "lag": summary([r["lag"] for r in done]),
            "types": dict(Counter(r["type"] for r in mine).most_common(8)),
        }
    return out


async def _pg_writes(database_url: str) -> dict[str, int]:
    """Rows inserted + updated + deleted so far per schema (the statistics collector), and commits."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT schemaname, sum(n_tup_ins + n_tup_upd + n_tup_del)::bigint AS n FROM pg_stat_user_tables GROUP BY 1"
        )
        commits = await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    finally:
        await conn.close()
    return {**{r["schemaname"]: int(r["n"]) for r in rows}, "(commits)": int(commits)}


# -- the broker and the processes ----------------------------------------------------------------------------


def topic_records(bootstrap: str) -> dict[str, int]:
    """Records written so far to every topic of the broker (its high watermarks), internal topics left out."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    topics = admin.list_topics(timeout=10).topics
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-e2e-watermarks", "log_level": 4})
    counts: dict[str, int] = {}
    try:
        for name, meta in sorted(topics.items()):
            if name.startswith("_"):
                continue
            counts[name] = sum(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] for p in meta.partitions
            )
    finally:
        consumer.close()
    return counts


def _cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    with contextlib.suppress(psutil.Error):
        t = proc.cpu_times()
        total += t.user + t.system + t.children_user + t.children_system  # children_*: the exited ones it reaped
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
    return total


def cpu_times(stack: Stack) -> dict[str, float]:
    """CPU seconds (user + system, with the process's children) of every part of the stack so far."""
    out = {}
    for name, record in stack.records().items():
        proc = record.process()
        if proc is not None:
            out[name] = _cpu_seconds(proc)
    return out


@dataclass
class ProfileResult:
    process: str = ""
    pid: int = 0
    cpu_percent: dict[str, float] = field(default_factory=dict)  # every part over the choosing window
    seconds: float = 0.0
    profile: Profile | None = None
    error: str = ""


def profile_busiest(stack: Stack, *, delay: float, seconds: float, out: Path, result: ProfileResult) -> None:
    """After `delay`, find the accord service using the most CPU (over 3 s) and sample it with py-spy."""
    try:
        time.sleep(delay)
        procs = {n: r.process() for n, r in stack.records().items()}
        live = {n: p for n, p in procs.items() if p is not None}
        before = {n: _cpu_seconds(p) for n, p in live.items()}
        time.sleep(3.0)
        result.cpu_percent = {n: round(100 * (_cpu_seconds(p) - before[n]) / 3.0, 1) for n, p in live.items()}
        candidates = {n: result.cpu_percent.get(n, 0.0) for n in SERVICES if n in live}
        result.process = max(candidates, key=lambda n: candidates[n])
        result.pid = live[result.process].pid
        spy = Path(sys.executable).parent / "py-spy"
        if not spy.exists():
            found = shutil.which("py-spy")
            if found is None:
                result.error = "py-spy is not installed (pip install 'accord[bench]'): CPU time per process only"
                return
            spy = Path(found)
        command = [str(spy), "record", "--pid", str(result.pid), "--duration", str(int(seconds)), "--rate", "100"]
        command += ["--format", "raw", "--nonblocking", "--output", str(out)]
        say(f"  py-spy: sampling {result.process} (pid {result.pid}) for {seconds:.0f}s")
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        result.seconds = time.monotonic() - started
        if done.returncode != 0 or not out.exists():
            result.error = f"py-spy could not sample (exit {done.returncode}): {(done.stderr or done.stdout)[-400:]}"
            return
        result.profile = parse_collapsed(out.read_text())
    except Exception as exc:  # the profile is evidence, not the run: report why it is missing
        result.error = f"profiling failed: {type(exc).__name__}: {exc}"


# -- the phases ------------------------------------------------------------------------------------------------


def latency_report(instances: list[Instance]) -> dict[str, Any]:
    latencies = [x for x in (i.latency for i in instances) if x is not None]
    steps = Counter(i.step for i in instances)
    return {
        "instances": len(instances),
        "done": len(latencies),
        "steps": dict(sorted(steps.items())),
        "latency": summary(latencies),
        "stages": stage_summaries(instances),
    }


def span(instances: list[Instance]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(first CRM activation, last journal posted) of the instances."""
    firsts = [i.activated_at for i in instances if i.activated_at is not None]
    lasts = [d for d in (i.done_at for i in instances) if d is not None]
    return (min(firsts) if firsts else None), (max(lasts) if lasts else None)


def fixed_rate(stack: Stack, env: dict[str, str], args: argparse.Namespace, tag: str) -> dict[str, Any]:
    per_wave = max(1, round(args.rate * args.wave_interval))
    waves = max(1, round(args.duration / args.wave_interval))
    ns = f"fx-{tag}"
    say(f"phase 1: fixed arrival rate, {per_wave} customer(s) every {args.wave_interval:g}s, {waves} waves ({ns})")
    contracts: list[str] = []
    primary: list[str] = []
    lags: list[float] = []
    cpu0 = cpu_times(stack)
    t0 = time.monotonic()
    for i in range(waves):
        due = t0 + i * args.wave_interval
        time.sleep(max(0.0, due - time.monotonic()))
        lags.append(time.monotonic() - due)
        plan = generate(
            env["ACCORD_SANDBOX_URL"], customers=per_wave, seed=args.seed + 1, namespace=ns, mode="sales",
            offset=i * per_wave,
        )  # fmt: skip
        every, firsts = contracts_of(plan)
        contracts += every
        primary += firsts
    offered_seconds = time.monotonic() - t0
    say(f"  {waves * per_wave} customers offered in {offered_seconds:.1f}s; waiting for the flow to settle ...")
    steps = settle(env, contracts, len(primary), quiet=args.quiet, timeout=args.timeout)
    cpu1 = cpu_times(stack)
    instances = asyncio.run(_instances(env["DATABASE_URL"], contracts))
    first, last = span(instances)
    activations = sorted(i.activated_at for i in instances if i.activated_at is not None)
    arrival = (
        (len(activations) - 1) / (activations[-1] - activations[0]).total_seconds()
        if len(activations) > 1 and activations[-1] > activations[0]
        else math.nan
    )
    return {
        "namespace": ns,
        "customers": waves * per_wave,
        "waves": waves,
        "per_wave": per_wave,
        "wave_interval_s": args.wave_interval,
        "offered_rate_per_s": per_wave / args.wave_interval,
        "activation_rate_per_s": arrival,
        "wave_start_lag_s": summary(lags),
        "offered_seconds": offered_seconds,
        "contracts": len(contracts),
        "final_steps": dict(sorted(steps.items())),
        "span_s": (last - first).total_seconds() if first and last else math.nan,
        "cpu_s": {n: cpu1.get(n, 0.0) - cpu0.get(n, 0.0) for n in cpu1},
        **latency_report(instances),
    }


def saturation(stack: Stack, env: dict[str, str], args: argparse.Namespace, tag: str, work: Path) -> dict[str, Any]:
    ns = f"sat-{tag}"
    say(f"phase 2: saturation, one wave of {args.saturation} customers ({ns})")
    before = topic_records(env["KAFKA_BOOTSTRAP_SERVERS"])
    writes0 = asyncio.run(_pg_writes(env["DATABASE_URL"]))
    cpu0 = cpu_times(stack)
    prof = ProfileResult()
    profiler = threading.Thread(
        target=profile_busiest,
        kwargs={
            "stack": stack, "delay": args.profile_delay, "seconds": args.profile_seconds,
            "out": work / "py-spy.raw", "result": prof,
        },
        daemon=True,
    )  # fmt: skip
    wall0 = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    profiler.start()
    plan = generate(env["ACCORD_SANDBOX_URL"], customers=args.saturation, seed=args.seed, namespace=ns, mode="sales")
    generated = time.monotonic() - t0
    cpu_gen = cpu_times(stack)
    contracts, primary = contracts_of(plan)
    say(f"  the sales team's {args.saturation} customers were in the CRM after {generated:.1f}s; settling ...")
    steps = settle(env, contracts, len(primary), quiet=args.quiet, timeout=args.timeout)
    profiler.join(timeout=args.profile_seconds + 120)
    after = topic_records(env["KAFKA_BOOTSTRAP_SERVERS"])
    cpu1 = cpu_times(stack)
    writes1 = asyncio.run(_pg_writes(env["DATABASE_URL"]))
    webhooks = asyncio.run(_webhooks(env["DATABASE_URL"], wall0))
    instances = asyncio.run(_instances(env["DATABASE_URL"], contracts))
    first, last = span(instances)
    seconds = (last - first).total_seconds() if first and last else math.nan
    activations = [i.activated_at for i in instances if i.activated_at is not None]
    tail = (last - max(activations)).total_seconds() if last and activations else math.nan
    wall = (last - wall0).total_seconds() if last else math.nan
    topics = {t: after.get(t, 0) - before.get(t, 0) for t in after}
    return {
        "namespace": ns,
        "customers": args.saturation,
        "contracts": len(contracts),
        "plan": {k: plan.get(k) for k in ("contracts", "amendments", "renewals", "cancellations", "cards")},
        "generate_s": generated,
        "final_steps": dict(sorted(steps.items())),
        "span_s": seconds,  # first CRM activation → last journal posted
        "wall_s": wall,  # the generate call's start → last journal posted
        "tail_s": tail,  # last CRM activation → last journal posted: how far accord is behind the arrivals
        "customers_per_s": args.saturation / seconds if seconds else math.nan,
        "contracts_done_per_s": sum(1 for i in instances if i.done_at) / seconds if seconds else math.nan,
        "topics": {t: {"records": n, "per_s": n / seconds if seconds else math.nan} for t, n in topics.items() if n},
        "events_total": sum(topics.values()),
        "cpu_s": {n: cpu1.get(n, 0.0) - cpu0.get(n, 0.0) for n in cpu1},
        "cpu_during_generation_s": {n: cpu_gen.get(n, 0.0) - cpu0.get(n, 0.0) for n in cpu_gen},
        "pg_writes": {k: v - writes0.get(k, 0) for k, v in sorted(writes1.items()) if v - writes0.get(k, 0)},
        "webhooks": webhooks,
        "profile": asdict(prof),
        **latency_report(instances),
    }


def baseline(stack: Stack, env: dict[str, str], args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """The floor: accord's services stopped, the sandbox writes the same book into all three systems itself."""
    say("phase 3: the floor — accord stopped; the sandbox's own 'full' generator writes the same book")
    known = catalogue()
    records = stack.records()
    for name in SERVICES:  # so that nothing ingests the baseline's book or competes for the CPU
        if name in records:
            known[name].stop(records[name], 30)
    ns = f"full-{tag}"
    cpu0 = cpu_times(stack)
    t0 = time.monotonic()
    plan = generate(env["ACCORD_SANDBOX_URL"], customers=args.saturation, seed=args.seed, namespace=ns, mode="full")
    seconds = time.monotonic() - t0
    cpu1 = cpu_times(stack)
    return {
        "namespace": ns,
        "customers": plan.get("customers"),
        "seconds": seconds,
        "customers_per_s": args.saturation / seconds,
        "plan": {k: plan.get(k) for k in ("subscriptions", "amendments", "renewals", "cancellations", "invoices")},
        "cpu_s": {n: cpu1.get(n, 0.0) - cpu0.get(n, 0.0) for n in cpu1},
    }


# -- the machine and the report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown")
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
        kb = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        ram = f"{int(kb.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _latency_rows(phase: dict[str, Any]) -> list[str]:
    rows = [
        "| stage | n | p50 s | p90 s | p99 s | max s | share of total time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total = sum(s["total"] for s in phase["stages"].values()) or math.nan
    lat = phase["latency"]
    rows.append(
        f"| **activated → journal posted** | {int(lat['n'])} | {_f(lat['p50'])} | {_f(lat['p90'])} | "
        f"{_f(lat['p99'])} | {_f(lat['max'])} | |"
    )
    for stage, s in phase["stages"].items():
        rows.append(
            f"| {stage} | {int(s['n'])} | {_f(s['p50'])} | {_f(s['p90'])} | {_f(s['p99'])} | {_f(s['max'])} | "
            f"{_f(100 * s['total'] / total, 0)}% |"
        )
    return rows


def _cpu_rows(phase: dict[str, Any], seconds: float) -> list[str]:
    gen_s, during = phase["generate_s"], phase["cpu_during_generation_s"]
    rows = [
        "| process | CPU s | CPU s per customer | share of one core over the span | of which while the sales "
        f"team generated ({_f(gen_s, 1)} s) | share of one core then |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, cpu in sorted(phase["cpu_s"].items(), key=lambda kv: -kv[1]):
        rows.append(
            f"| {name} | {_f(cpu, 1)} | {_f(cpu / phase['customers'], 3)} | "
            f"{_f(100 * cpu / seconds if seconds else math.nan, 0)}% | {_f(during.get(name), 1)} | "
            f"{_f(100 * during.get(name, math.nan) / gen_s, 0)}% |"
        )
    total = sum(phase["cpu_s"].values())
    rows.append(
        f"| **all** | {_f(total, 1)} | {_f(total / phase['customers'], 3)} | "
        f"{_f(100 * total / seconds if seconds else math.nan, 0)}% | {_f(sum(during.values()), 1)} | "
        f"{_f(100 * sum(during.values()) / gen_s, 0)}% |"
    )
    return rows


def dominant(phase: dict[str, Any]) -> tuple[str, float]:
    stages = phase["stages"]
    if not stages:
        return "-", math.nan
    total = sum(s["total"] for s in stages.values())
    name = max(stages, key=lambda k: stages[k]["total"])
    return name, 100 * stages[name]["total"] / total if total else math.nan


def render(result: dict[str, Any]) -> str:
    fx, sat, base, m = result["fixed"], result["saturation"], result["baseline"], result["machine"]
    lines = [f"# End-to-end benchmark (quote-to-cash) — {result['started']}", ""]
    lines += [
        "Everything on this one machine: its own Kafka, PostgreSQL, registry, sandbox (CRM, billing, ERP) and the "
        "four accord services, each its own process, default settings except a credit-review threshold no contract "
        "reaches. Latency is per activated contract, from the CRM's activation timestamp to the hub's `done` "
        "transition (the first invoice's journal posted in the ERP); stages are the hub's workflow history "
        f"({INGEST!r} = CDC webhook → crm_connector → Kafka → hub). Command: `{result['command']}`.",
        "",
        "## Summary",
        "",
        "| figure | fixed rate | saturation |",
        "|---|---:|---:|",
        f"| customers | {fx['customers']} ({fx['per_wave']} every {fx['wave_interval_s']:g} s) | "
        f"{sat['customers']} at once |",
        f"| activated contracts seen / done | {fx['instances']} / {fx['done']} | {sat['instances']} / {sat['done']} |",
        f"| offered rate, customers/s | {_f(fx['offered_rate_per_s'])} | - |",
        f"| CRM activations/s observed | {_f(fx['activation_rate_per_s'])} | - |",
        f"| latency p50 / p90 / p99 / max, s | {_f(fx['latency']['p50'])} / {_f(fx['latency']['p90'])} / "
        f"{_f(fx['latency']['p99'])} / {_f(fx['latency']['max'])} | {_f(sat['latency']['p50'])} / "
        f"{_f(sat['latency']['p90'])} / {_f(sat['latency']['p99'])} / {_f(sat['latency']['max'])} |",
        f"| first activation → last journal, s | {_f(fx['span_s'])} | {_f(sat['span_s'])} |",
        f"| last activation → last journal, s | - | {_f(sat['tail_s'])} |",
        f"| throughput, customers/s | - | {_f(sat['customers_per_s'])} |",
        f"| throughput, contracts done/s | - | {_f(sat['contracts_done_per_s'])} |",
        f"| events through all topics, /s | - | "
        f"{_f(sat['events_total'] / sat['span_s'] if sat['span_s'] else math.nan, 1)} |",
        "",
        "## Against the floor (same run, same book)",
        "",
        f"The floor: with accord's services stopped, the sandbox's own `full` generator wrote the same "
        f"{base['customers']} customers (seed {result['args']['seed']}) into CRM, billing and ERP in process "
        f"in **{_f(base['seconds'])} s** ({_f(base['customers_per_s'])} customers/s): the systems' own API work "
        "with no integration (it does not post journals; accord does).",
        "",
        "| | seconds | customers/s | vs the floor |",
        "|---|---:|---:|---:|",
        f"| floor: sandbox `full` mode, in process | {_f(base['seconds'])} | {_f(base['customers_per_s'])} | 1.00x |",
        f"| sales team only (`sales` mode, CRM side) | {_f(sat['generate_s'])} | "
        f"{_f(sat['customers'] / sat['generate_s'])} | {_f(sat['generate_s'] / base['seconds'])}x |",
        f"| accord: sales call start → last journal posted | {_f(sat['wall_s'])} | "
        f"{_f(sat['customers'] / sat['wall_s'] if sat['wall_s'] else math.nan)} | "
        f"{_f(sat['wall_s'] / base['seconds'])}x |",
        f"| accord: first activation → last journal posted | {_f(sat['span_s'])} | "
        f"{_f(sat['customers_per_s'])} | {_f(sat['span_s'] / base['seconds'])}x |",
        "",
        "## Fixed arrival rate: where the time goes",
        "",
        *_latency_rows(fx),
        "",
        f"Wave start lag behind schedule: p50 {_f(fx['wave_start_lag_s']['p50'])} s, max "
        f"{_f(fx['wave_start_lag_s']['max'])} s (a wave's generate call blocks until its customers are in the CRM). "
        f"Final steps: {fx['final_steps']}.",
        "",
        "## Saturation: where the time goes",
        "",
        *_latency_rows(sat),
        "",
        f"Final steps: {sat['final_steps']}. Plan: {sat['plan']}.",
        "",
        "### Records per topic (watermarks before/after; per second over first activation → last journal)",
        "",
        "| topic | records | per s |",
        "|---|---:|---:|",
    ]
    for topic, t in sorted(sat["topics"].items()):
        lines.append(f"| {topic} | {t['records']:,} | {_f(t['per_s'], 1)} |")
    lines += [
        "",
        "### Webhook deliveries by the sandbox (events created since the saturation wave began)",
        "",
        "| to | events | delivered | not delivered | delivered/s | outbox wait p50 s | p90 s | p99 s | max s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
        *[
            f"| {system} | {w['events']:,} | {w['delivered']:,} | {w['not_delivered'] or '-'} | {_f(w['per_s'], 1)} | "
            f"{_f(w['lag']['p50'])} | {_f(w['lag']['p90'])} | {_f(w['lag']['p99'])} | {_f(w['lag']['max'])} |"
            for system, w in sat["webhooks"].items()
        ],
        "",
        "The wait is from the event's creation to the start of the dispatcher tick that delivered it "
        "(the sandbox stamps `delivered_at` with the tick's start; deliveries are serial, 20 rows a tick).",
        "",
        *[
            f"- {system}, most frequent types: " + ", ".join(f"{t} {n:,}" for t, n in w.get("types", {}).items())
            for system, w in sat["webhooks"].items()
        ],
        "",
        "### Rows written per PostgreSQL schema during saturation (pg_stat_user_tables: inserts + updates + deletes)",
        "",
        "| schema | rows | per customer |",
        "|---|---:|---:|",
        *[
            f"| {k} | {v:,} | {_f(v / sat['customers'], 1)} |"
            for k, v in sorted(sat["pg_writes"].items(), key=lambda kv: -kv[1])
        ],
        "",
        f"### CPU time per process during saturation (span {_f(sat['span_s'])} s; {m['cores']} cores)",
        "",
        *_cpu_rows(sat, sat["span_s"]),
        "",
    ]
    lines += _bottleneck(result)
    lines += [
        "",
        "## Noise",
        "",
        f"Load average (1 min) at the start: {result['load'][0]:.2f}, before saturation: {result['load'][1]:.2f}, "
        f"at the end: {result['load'][2]:.2f}. The cores are shared with other engineers' work (their stacks, "
        "tests): compare ratios within one run, not absolute figures across runs.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in m.items()],
        "",
    ]
    return "\n".join(lines)


def _bottleneck(result: dict[str, Any]) -> list[str]:
    sat = result["saturation"]
    prof = sat["profile"]
    stage, share = dominant(sat)
    fx_stage, fx_share = dominant(result["fixed"])
    accord_cpu = {n: c for n, c in sat["cpu_s"].items() if n in SERVICES}
    busiest = max(sat["cpu_s"], key=lambda n: sat["cpu_s"][n]) if sat["cpu_s"] else "-"
    busiest_accord = max(accord_cpu, key=lambda n: accord_cpu[n]) if accord_cpu else "-"
    all_cpu = sum(sat["cpu_s"].values())
    ceiling = int(result["machine"]["cores"]) * sat["customers"] / all_cpu if all_cpu else math.nan
    lines = [
        "## The bottleneck",
        "",
        f"- Dominant stage at saturation: **{stage}** ({_f(share, 0)}% of all contract-seconds); at the fixed "
        f"rate: **{fx_stage}** ({_f(fx_share, 0)}%).",
        f"- Most CPU during saturation: **{busiest}** ({_f(sat['cpu_s'].get(busiest), 1)} s); of accord's "
        f"services: **{busiest_accord}** ({_f(accord_cpu.get(busiest_accord), 1)} s).",
        f"- The stack's processes together used {_f(sum(sat['cpu_s'].values()) / sat['span_s'], 2)} of "
        f"{result['machine']['cores']} cores over the span ("
        f"{_f(sum(sat['cpu_during_generation_s'].values()) / sat['generate_s'], 2)} while the sales team "
        f"generated): {_f(sum(sat['cpu_s'].values()) / sat['customers'], 3)} CPU s per customer, so this machine "
        f"cannot carry more than about {_f(ceiling, 2)} "
        "customers/s whatever the pipeline's shape (other engineers' work shares the cores too).",
    ]
    if prof["cpu_percent"]:
        shares = ", ".join(f"{n} {v:.0f}%" for n, v in sorted(prof["cpu_percent"].items(), key=lambda kv: -kv[1]))
        lines.append(f"- CPU over the 3 s window that chose the process to profile: {shares}.")
    if prof["error"]:
        lines.append(f"- Profile: {prof['error']}")
    if prof["profile"]:
        p = prof["profile"]
        lines += [
            "",
            f"### py-spy: {prof['process']} (pid {prof['pid']}), {p['samples']:,} on-CPU samples over "
            f"{_f(prof['seconds'], 0)} s at 100 Hz (`--nonblocking`, idle not sampled)",
            "",
            "| top of stack (self) | samples | share |",
            "|---|---:|---:|",
            *[f"| `{fn}` | {n:,} | {_f(100 * n / p['samples'], 1)}% |" for fn, n in p["self_top"]],
            "",
            "| anywhere in the stack (inclusive) | samples | share |",
            "|---|---:|---:|",
            *[f"| `{fn}` | {n:,} | {_f(100 * n / p['samples'], 1)}% |" for fn, n in p["inclusive_top"]],
            "",
            "| owner of the top frame | samples | share |",
            "|---|---:|---:|",
            *[f"| {mod} | {n:,} | {_f(100 * n / p['samples'], 1)}% |" for mod, n in p["modules"]],
            "",
            "py-spy's idle detection is not exact with `--nonblocking`: `EpollSelector.select` is the event loop "
            "waiting, count it as idle.",
            "",
            "Hottest stacks (innermost last, asyncio plumbing left out):",
            "",
            *[f"- {n:,} samples: `{stack}`" for stack, n in p["stacks"]],
        ]
    return lines


# -- main ------------------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument("--rate", type=float, default=1.0, help="fixed arrival rate, customers/s (default 1)")
    p.add_argument("--wave-interval", type=float, default=5.0, help="seconds between waves (default 5)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of fixed-rate arrivals (default 60)")
    p.add_argument("--saturation", type=int, default=200, help="customers in the saturation wave (default 200)")
    p.add_argument("--seed", type=int, default=7, help="seed of the books (default 7)")
    p.add_argument("--quiet", type=float, default=30.0, help="a phase ends after this many s without progress")
    p.add_argument("--timeout", type=float, default=900.0, help="longest wait for a phase to settle, s")
    p.add_argument("--profile-delay", type=float, default=8.0, help="s into saturation before choosing whom to profile")
    p.add_argument("--profile-seconds", type=float, default=15.0, help="py-spy sampling time, s")
    p.add_argument("--no-save", action="store_true", help="print the report only, write nothing to bench/results")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.wave_interval <= 0 or args.duration <= 0 or args.saturation < 1:
        p.error("--rate, --wave-interval, --duration and --saturation must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    started = dt.datetime.now(dt.UTC)
    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-work-"))
    load = [os.getloadavg()[0]]
    try:
        with own_stack() as (stack, env):
            fx = fixed_rate(stack, env, args, tag)
            load.append(os.getloadavg()[0])
            sat = saturation(stack, env, args, tag, work)
            base = baseline(stack, env, args, tag)
        load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.e2e " + " ".join(argv if argv is not None else sys.argv[1:]),
        "args": vars(args),
        "machine": machine(),
        "load": load,
        "fixed": fx,
        "saturation": sat,
        "baseline": base,
    }
    stem = RESULTS / f"e2e-{started.date().isoformat()}"
    if not args.no_save:  # the figures first: a report that fails to render must not lose them
        RESULTS.mkdir(exist_ok=True)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str, allow_nan=True) + "\n")
    text = render(result)
    say("")
    say(text)
    if not args.no_save:
        stem.with_suffix(".md").write_text(text)
        say(f"written {stem}.md and {stem}.json")
