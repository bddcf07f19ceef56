"""Benchmark of accord's schema registry: `GET /schemas/ids/{id}` and registration, requests/s and p99.

    .venv/bin/python bench/registry/bench_registry.py [--seconds 10] [--connections 32] [--schemas 200]

Starts its own registry process (on KAFKA_BOOTSTRAP_SERVERS, or on a Kafka of the local stack it starts
in a temporary folder and stops afterwards), registers `--schemas` schemas, then:

1. lookups: `--connections` keep-alive HTTP/1.1 connections, each sending `GET /schemas/ids/{id}` (ids in
   rotation) and reading the whole answer before the next, for `--seconds`;
2. registration: one client registering new schemas (each a new version of one subject, compatible) one
   after another, then the same schemas again (the "already registered" answer).

Load generation: a minimal asyncio HTTP/1.1 client in this process (raw sockets, no HTTP library, so the
generator costs as little CPU as possible). The machine's cores are shared, so by default the registry is
pinned to CPU 0 and the load generator to CPU 1 (`--no-pin` to let them float): the lookup figure is
then what one instance serves on one core. The figures are printed with the machine's facts; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?",
    }


@contextmanager
def kafka() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from accord.devstack import Stack

    with tempfile.TemporaryDirectory(prefix="bench-registry-") as home:
        stack = Stack(Path(home), parts=["kafka"], environ={})
        try:
            records = stack.up()
            yield records["kafka"].env["KAFKA_BOOTSTRAP_SERVERS"]
        finally:
            stack.down()


@contextmanager
def registry(bootstrap: str, port: int, cpu: int | None) -> Iterator[subprocess.Popen[bytes]]:
    topic = f"_schemas-bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ACCORD_REGISTRY_TOPIC": topic,
        "ACCORD_REGISTRY_ELECTION_TOPIC": f"{topic}-election",
        "ACCORD_REGISTRY_ELECTION_GROUP": f"{topic}-group",
        "ACCORD_REGISTRY_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "accord_registry", "--host", "127.0.0.1", "--port", str(port)]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"the registry exited: {err[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the registry did not start within 60s")
            time.sleep(0.1)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.delete_topics([topic, f"{topic}-election"]).values():
            try:
                future.result(timeout=30)
            except Exception as exc:  # leave a topic behind rather than hide the figures
                print(f"note: could not delete a bench topic: {exc}", file=sys.stderr)


def schema(i: int) -> str:
    fields = [{"name": "id", "type": "string"}] + [{"name": f"f{j}", "type": "long", "default": 0} for j in range(i)]
    return json.dumps({"type": "record", "name": "BenchEvent", "namespace": "accord.bench", "fields": fields})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def lookups(port: int, ids: list[int], connections: int, seconds: float) -> tuple[int, list[float], int]:
    """Closed-loop load: each connection sends the next request as soon as it has read the last answer."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def one(worker: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = worker
        try:
            while time.perf_counter() < stop_at:
                request = f"GET /schemas/ids/{ids[i % len(ids)]} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
                i += connections
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(connections)))
    elapsed = time.perf_counter() - began
    return int(len(latencies) / elapsed), latencies, errors


def registrations(port: int, count: int, start: int) -> tuple[float, list[float], float, list[float]]:
    base = f"http://127.0.0.1:{port}"
    new: list[float] = []
    again: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        began = time.perf_counter()
        for i in range(start, start + count):
            t = time.perf_counter()
            r = http.post("/subjects/bench-register-value/versions", json={"schema": schema(i)})
            new.append(time.perf_counter() - t)
            r.raise_for_status()
        new_rate = count / (time.perf_counter() - began)
        began = time.perf_counter()
        for i in range(start, start + count):
            t = time.perf_counter()
            r = http.post("/subjects/bench-register-value/versions", json={"schema": schema(i)})
            again.append(time.perf_counter() - t)
            r.raise_for_status()
        again_rate = count / (time.perf_counter() - began)
    return new_rate, new, again_rate, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--schemas", type=int, default=200)
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--no-pin", action="store_true", help="do not pin registry and load generator to CPUs")
    args = parser.parse_args()

    pin = (
        not args.no_pin
        and (os.cpu_count() or 1) >= 2
        and bool(subprocess.run(["which", "taskset"], capture_output=True).stdout)
    )
    facts = machine()
    from accord.devstack._base import free_port

    with kafka() as bootstrap:
        port = free_port()
        with registry(bootstrap, port, 0 if pin else None) as proc:
            if pin:
                os.sched_setaffinity(0, {1})
            ids = []
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for i in range(args.schemas):
                    r = http.post(f"/subjects/bench-{i}-value/versions", json={"schema": schema(i % 20)})
                    r.raise_for_status()
                    ids.append(r.json()["id"])
            ids = sorted(set(ids))
            run = asyncio.run
            try:
                import uvloop

                run = uvloop.run  # the generator's own loop costs less CPU with uvloop
            except ImportError:
                pass
            run(lookups(port, ids, args.connections, 1.0))  # warm up
            server = psutil.Process(proc.pid)
            server_cpu, own_cpu, wall = sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
            rate, lat, errors = run(lookups(port, ids, args.connections, args.seconds))
            wall = time.perf_counter() - wall
            server_share = (sum(server.cpu_times()[:2]) - server_cpu) / wall
            generator_share = (time.process_time() - own_cpu) / wall
            new_rate, new_lat, again_rate, again_lat = registrations(port, args.registrations, 20)

    print("accord schema registry benchmark")
    print(f"  machine: nproc={facts['nproc']}, cpu={facts['cpu']}, python {facts['python']}, kernel {facts['kernel']}")
    print(f"  load average before the run (other work on the machine): {facts['loadavg']}")
    where = "registry pinned to CPU 0, load generator to CPU 1" if pin else "registry and generator unpinned"
    print(f"  conditions: one registry instance, {where}; Kafka {bootstrap} (its broker shares the machine)")
    print(
        f"  GET /schemas/ids/{{id}}: {rate:,} requests/s over {args.seconds:.0f}s, {args.connections} keep-alive "
        f"connections, {len(ids)} ids; p50 {percentile(lat, 0.5) * 1e3:.2f} ms, "
        f"p99 {percentile(lat, 0.99) * 1e3:.2f} ms; non-200: {errors}"
    )
    print(
        f"    CPU while measuring: registry {server_share:.0%} of a core, load generator {generator_share:.0%} "
        "of a core (the side near 100% is the bottleneck; both well below 100% means other work held the CPUs)"
    )
    if server_share > 0:
        print(
            f"    per registry CPU-second: {rate / server_share:,.0f} lookups (what one dedicated core would serve "
            "if this held; derived, not measured)"
        )
    print(
        f"  POST /subjects/{{s}}/versions (new version, written to Kafka and read back): {new_rate:,.0f}/s, "
        f"p50 {percentile(new_lat, 0.5) * 1e3:.1f} ms, p99 {percentile(new_lat, 0.99) * 1e3:.1f} ms "
        f"({len(new_lat)} one after another)"
    )
    print(
        f"  POST /subjects/{{s}}/versions (already registered): {again_rate:,.0f}/s, "
        f"p50 {percentile(again_lat, 0.5) * 1e3:.1f} ms, p99 {percentile(again_lat, 0.99) * 1e3:.1f} ms"
    )
    print("  load generator: raw-socket HTTP/1.1 client on uvloop in the bench process (closed loop)")


if __name__ == "__main__":
    main()
