"""The command worker on real PostgreSQL against a real HTTP server: one effect per command, whatever fails."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from accord.commands import (
    Command,
    CommandConflict,
    CommandWorker,
    HttpExecutor,
    ManualClock,
    Outcome,
    RetryPolicy,
    TokenBucket,
    enqueue,
    migrate_commands,
)
from accord.commands._store import claim
from accord.errors import PermanentError
from accord.migrations import migrate
from accord.runtime._store import MIGRATIONS as RUNTIME_MIGRATIONS
from tests.integration.commands.conftest import SCHEMA
from tests.integration.commands.saas_server import FakeSaas

pytestmark = pytest.mark.postgres

RESULTS_TOPIC = "billing.command-results"


class Ceiling(random.Random):
    """Full jitter's worst case, so a schedule can be asserted exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def read_back_count() -> float:
    labels = {"service": SCHEMA, "system": "billing", "outcome": "read_back"}
    return REGISTRY.get_sample_value("accord_commands_total", labels) or 0.0


async def record_result(conn: asyncpg.Connection, command: Command, outcome: Outcome) -> None:
    """What a service does: its result event into the outbox, in the transaction that closes the command."""
    value = json.dumps(
        {
            "status": outcome.status.value,
            "result": outcome.result,
            "error": outcome.error,
            "read_back": outcome.read_back,
        }
    ).encode()
    await conn.execute(
        f"INSERT INTO {SCHEMA}.outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4::jsonb)",
        RESULTS_TOPIC,
        command.key.encode(),
        value,
        json.dumps([["accord.command.id", str(command.id)]]),
    )


@pytest.fixture
async def client(saas: FakeSaas) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=saas.url, timeout=httpx.Timeout(2.0)) as client:
        yield client


@pytest.fixture
def make_worker(pool: asyncpg.Pool, client: httpx.AsyncClient) -> Callable[..., CommandWorker]:
    def make(**options: Any) -> CommandWorker:
        executor = HttpExecutor(client, path="/v1/objects", read_back_path="/v1/objects/by-key/{key}")
        defaults: dict[str, Any] = {
            "executors": {"billing/create_object": executor},
            "on_result": record_result,
            "retry": RetryPolicy(max_attempts=5, base=0.5, cap=10),
            "call_timeout": 5.0,
            "rng": Ceiling(),
        }
        return CommandWorker(pool, SCHEMA, **(defaults | options))

    return make


async def add(pool: asyncpg.Pool, key: str, payload: Mapping[str, Any] | None = None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await enqueue(
            conn, schema=SCHEMA, system="billing", kind="create_object", key=key, payload=payload or {"n": key}
        )


async def row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    found = await pool.fetchrow(
        f"""SELECT *, extract(epoch FROM next_attempt_at - updated_at) AS wait
            FROM {SCHEMA}.commands WHERE idempotency_key = $1""",
        key,
    )
    assert found is not None
    return found


async def outbox(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT key, value, headers FROM {SCHEMA}.outbox ORDER BY id")
    return [{"key": r["key"].decode(), **json.loads(r["value"])} for r in rows]


async def fast_forward(pool: asyncpg.Pool) -> None:
    """Time passes: every scheduled retry and every lease is due now (instead of sleeping for it)."""
    await pool.execute(
        f"""UPDATE {SCHEMA}.commands SET next_attempt_at = now(), lease_until = now() - interval '1 second'
            WHERE status IN ('pending', 'in_doubt', 'running') AND next_attempt_at < 'infinity'"""
    )


async def eventually(condition: Callable[[], bool], *, within: float = 30.0) -> None:
    """Wait (bounded) for something another task makes true; the test asserts on it, not on the wait."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.02)


async def drain(worker: CommandWorker, pool: asyncpg.Pool, *, rounds: int = 20) -> None:
    for _ in range(rounds):
        if await worker.run_once() == 0:
            left = await pool.fetchval(
                f"SELECT count(*) FROM {SCHEMA}.commands WHERE status IN ('pending', 'running', 'in_doubt')"
                " AND next_attempt_at < 'infinity'"
            )
            if left == 0:
                return
            await fast_forward(pool)
    raise AssertionError("commands still open after the rounds allowed")


async def test_runtime_and_commands_migrations_share_one_schema(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        runtime = [m.version for m in await migrate(conn, RUNTIME_MIGRATIONS, schema="svc")]
        assert runtime[0] == 1 and max(runtime) < 1000  # the runtime's series stays below the commands'
        assert [m.version for m in await migrate_commands(conn, schema="svc")] == [1001]
        assert await migrate(conn, RUNTIME_MIGRATIONS, schema="svc") == []
        assert await migrate_commands(conn, schema="svc") == []
        versions = await conn.fetch("SELECT version FROM svc.schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [*runtime, 1001]
        assert await conn.fetchval(
            "SELECT to_regclass('svc.commands') IS NOT NULL AND to_regclass('svc.outbox') IS NOT NULL"
        )
    finally:
        await conn.close()


async def test_enqueue_belongs_to_the_handlers_transaction_and_is_idempotent(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                assert await enqueue(conn, schema=SCHEMA, system="billing", kind="k", key="rolled-back", payload={})
                raise RuntimeError("the handler failed")
        async with conn.transaction():
            assert await enqueue(conn, schema=SCHEMA, system="billing", kind="k", key="evt-1:k", payload={"a": 1})
            assert not await enqueue(conn, schema=SCHEMA, system="billing", kind="k", key="evt-1:k", payload={"a": 1})
        with pytest.raises(CommandConflict, match="evt-1:k"):
            await enqueue(conn, schema=SCHEMA, system="billing", kind="k", key="evt-1:k", payload={"a": 2})
    keys = await pool.fetch(f"SELECT idempotency_key, status FROM {SCHEMA}.commands")
    assert [(r["idempotency_key"], r["status"]) for r in keys] == [("evt-1:k", "pending")]


async def test_success_closes_the_command_and_writes_the_result_event_together(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    await add(pool, "ok-1", {"amount": "12.50"})
    assert await make_worker().run_once() == 1

    command = await row(pool, "ok-1")
    assert (command["status"], command["attempts"]) == ("succeeded", 1)
    assert json.loads(command["result"])["payload"] == {"amount": "12.50"}
    assert saas.effects == [("ok-1", {"amount": "12.50"})]
    assert [(e["key"], e["status"], e["read_back"]) for e in await outbox(pool)] == [("ok-1", "succeeded", False)]
    assert await make_worker().run_once() == 0  # nothing left to do


async def test_server_errors_retry_with_backoff_and_one_effect(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    saas.script["flaky"] = ["503", "503"]
    worker = make_worker()
    await add(pool, "flaky")

    assert await worker.run_once() == 1
    first = await row(pool, "flaky")
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert "HTTP 503" in first["last_error"]
    assert first["wait"] == pytest.approx(0.5, abs=0.05)  # full jitter's ceiling: base * 2^0
    assert await worker.run_once() == 0  # not due yet: no tight loop

    await fast_forward(pool)
    assert await worker.run_once() == 1
    assert (await row(pool, "flaky"))["wait"] == pytest.approx(1.0, abs=0.05)  # base * 2^1
    await drain(worker, pool)

    final = await row(pool, "flaky")
    assert (final["status"], final["attempts"]) == ("succeeded", 3)
    assert saas.writes["flaky"] == 3 and saas.effects_for("flaky") == 1
    assert [e["status"] for e in await outbox(pool)] == ["succeeded"]


async def test_429_retry_after_is_honoured_for_the_command_and_its_system(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=100, burst=100, clock=clock)
    saas.script["limited"] = ["429:30"]
    worker = make_worker(rate_limits={"billing": bucket}, retry=RetryPolicy(base=0.01))
    await add(pool, "limited")

    assert await worker.run_once() == 1
    command = await row(pool, "limited")
    assert command["status"] == "pending" and "HTTP 429" in command["last_error"]
    assert command["wait"] >= 30  # Retry-After beats the 10 ms backoff
    assert await worker.run_once() == 0
    assert saas.writes["limited"] == 1

    # The whole system is held for 30 s: the next token comes no sooner.
    before = clock.now()
    await bucket.acquire()
    assert clock.now() - before >= 30

    await fast_forward(pool)
    assert await worker.run_once() == 1
    assert (await row(pool, "limited"))["status"] == "succeeded"
    assert saas.effects_for("limited") == 1


@pytest.mark.parametrize("step", ["apply_then_timeout", "apply_then_504"])
async def test_in_doubt_reads_back_before_retrying_and_never_writes_twice(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker], step: str
) -> None:
    saas.script["doubt"] = [step]  # the server does NOT dedupe: only the read-back prevents a 2nd effect
    worker = make_worker(call_timeout=1.0, lease=10.0)
    await add(pool, "doubt")

    assert await worker.run_once() == 1
    command = await row(pool, "doubt")
    assert command["status"] == "in_doubt", command["last_error"]
    assert saas.effects_for("doubt") == 1 and saas.reads["doubt"] == 0

    await fast_forward(pool)
    assert await worker.run_once() == 1
    command = await row(pool, "doubt")
    assert (command["status"], command["attempts"]) == ("succeeded", 2)
    assert saas.writes["doubt"] == 1 and saas.reads["doubt"] == 1 and saas.effects_for("doubt") == 1
    assert [(e["status"], e["read_back"]) for e in await outbox(pool)] == [("succeeded", True)]


async def test_in_doubt_but_never_applied_is_sent_again_after_the_read_back(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    saas.script["lost"] = ["hang_then_nothing"]
    worker = make_worker(call_timeout=1.0, lease=10.0)
    await add(pool, "lost")
    await drain(worker, pool)

    assert (await row(pool, "lost"))["status"] == "succeeded"
    assert saas.writes["lost"] == 2 and saas.reads["lost"] == 1 and saas.effects_for("lost") == 1


async def test_a_failing_read_back_keeps_the_command_in_doubt(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    saas.script["unsure"] = ["apply_then_504"]
    saas.read_script["unsure"] = ["503", "503"]
    worker = make_worker()
    await add(pool, "unsure")
    await drain(worker, pool)

    command = await row(pool, "unsure")
    assert (command["status"], command["attempts"]) == ("succeeded", 4)
    assert saas.writes["unsure"] == 1 and saas.reads["unsure"] == 3 and saas.effects_for("unsure") == 1


async def test_a_permanent_error_fails_at_once_with_its_reason(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    saas.script["bad"] = ["400"]
    worker = make_worker()
    await add(pool, "bad")
    assert await worker.run_once() == 1
    await fast_forward(pool)
    assert await worker.run_once() == 0

    command = await row(pool, "bad")
    assert (command["status"], command["attempts"]) == ("failed", 1)
    assert "HTTP 400" in command["last_error"] and "amount must be positive" in command["last_error"]
    assert "alice" not in command["last_error"]  # the problem's detail may carry personal data
    assert saas.writes["bad"] == 1 and saas.effects == []
    events = await outbox(pool)
    assert [(e["status"], "HTTP 400" in e["error"]) for e in events] == [("failed", True)]


async def test_the_token_bucket_limits_the_call_rate(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    worker = make_worker(rate_limits={"billing": bucket}, concurrency=10)
    for i in range(11):
        await add(pool, f"bulk-{i}")

    assert await worker.run_once() == 10
    assert await worker.run_once() == 1
    assert len(saas.effects) == 11 and bucket.granted == 11
    # 3 at once, then 2 per second: the 11th call cannot have started before 4 s of (injected) time.
    assert clock.now() == pytest.approx(4.0)


async def test_a_crash_mid_call_then_a_restart_still_makes_one_effect(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    saas.script["crash"] = ["apply_then_hang"]
    read_backs = read_back_count()
    await add(pool, "crash")
    first = make_worker(call_timeout=30.0, poll_interval=0.05)
    task = asyncio.create_task(first.run())
    await eventually(lambda: saas.effects_for("crash") == 1)
    task.cancel()  # the worker dies while the call is in flight, after the system applied it
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await row(pool, "crash"))["status"] == "running"

    second = make_worker()
    assert await second.run_once() == 0  # the dead worker's lease still holds
    await fast_forward(pool)  # … until it lapses
    assert await second.run_once() == 1

    command = await row(pool, "crash")
    assert (command["status"], command["attempts"]) == ("succeeded", 2)
    assert saas.writes["crash"] == 1 and saas.reads["crash"] == 1 and saas.effects_for("crash") == 1
    assert [(e["status"], e["read_back"]) for e in await outbox(pool)] == [("succeeded", True)]
    assert read_back_count() == read_backs + 1


async def test_a_claim_lost_while_waiting_for_a_token_is_not_called(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    stolen: list[Command] = []

    class SlowTokens(ManualClock):
        """While the worker waits for a token, its lease lapses and another worker takes the command."""

        async def sleep(self, seconds: float) -> None:
            await super().sleep(seconds)
            if not stolen:
                await asyncio.sleep(0.3)  # real time, so the waiting worker must renew before it calls
                await fast_forward(pool)
                async with pool.acquire() as conn:
                    stolen.extend(await claim(conn, SCHEMA, limit=1, lease=60))

    bucket = TokenBucket(rate=1, burst=1, clock=SlowTokens())
    await bucket.acquire()  # empty: the worker will wait
    worker = make_worker(rate_limits={"billing": bucket}, call_timeout=1.0, lease=2.1)
    await add(pool, "contested")

    assert await worker.run_once() == 1
    assert [c.key for c in stolen] == ["contested"] and stolen[0].in_doubt
    assert saas.writes["contested"] == 0  # the first worker saw its claim gone and sent nothing
    command = await row(pool, "contested")
    assert (command["status"], command["attempts"]) == ("running", 2)  # the new owner's claim stands
    assert await outbox(pool) == []


async def test_two_workers_never_run_the_same_command(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    for i in range(30):
        await add(pool, f"shared-{i}")
    a, b = make_worker(concurrency=3), make_worker(concurrency=3)
    for _ in range(20):
        counts = await asyncio.gather(a.run_once(), b.run_once())
        if sum(counts) == 0:
            break
    assert sorted(saas.writes.values()) == [1] * 30 and len(saas.effects) == 30
    assert len(await outbox(pool)) == 30


async def test_run_stops_cleanly_and_finishes_what_it_started(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    for i in range(5):
        await add(pool, f"run-{i}")
    worker = make_worker(poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    await eventually(lambda: len(saas.effects) == 5)
    worker.stop()
    await task
    # Stopping lets calls in flight close their commands: every effect has its result event.
    assert len(await outbox(pool)) == 5
    assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.commands WHERE status = 'succeeded'") == 5


async def test_run_wakes_on_enqueue_without_waiting_for_its_poll(
    pool: asyncpg.Pool, saas: FakeSaas, make_worker: Callable[..., CommandWorker]
) -> None:
    worker = make_worker(poll_interval=300.0)  # polling alone would not see the command within the test
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.2)  # let it claim nothing and start waiting
        await add(pool, "notified")
        await eventually(lambda: saas.effects_for("notified") == 1, within=20.0)
    finally:
        worker.stop()
        await task
    assert (await row(pool, "notified"))["status"] == "succeeded"


class Scripted:
    """An executor raising what it is told to: for the classification rules, without HTTP."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.read_backs = 0

    async def execute(self, command: Command) -> Mapping[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"done": command.key}

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        self.read_backs += 1
        return None


async def test_unclassified_errors_are_in_doubt_and_spent_retries_end_the_command(pool: asyncpg.Pool) -> None:
    executor = Scripted(KeyError("bug"), KeyError("bug"))
    worker = CommandWorker(
        pool,
        SCHEMA,
        executors={"billing": executor},
        on_result=record_result,
        retry=RetryPolicy(max_attempts=2, base=0.01),
    )
    await add(pool, "bug")
    await drain(worker, pool)

    command = await row(pool, "bug")
    assert (command["status"], command["attempts"]) == ("in_doubt", 2)  # for a person: it may have applied
    assert "retries spent" in command["last_error"] and "KeyError" in command["last_error"]
    assert executor.read_backs == 1  # the 2nd attempt read back before calling again
    assert [e["status"] for e in await outbox(pool)] == ["in_doubt"]


async def test_without_an_executor_a_command_fails_saying_what_is_missing(pool: asyncpg.Pool) -> None:
    worker = CommandWorker(pool, SCHEMA, executors={"crm": Scripted(PermanentError("x"))}, on_result=record_result)
    await add(pool, "orphan")
    assert await worker.run_once() == 1
    command = await row(pool, "orphan")
    assert command["status"] == "failed" and "no executor for billing/create_object" in command["last_error"]
