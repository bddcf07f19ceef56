"""The workflow engine's guarantees on a real PostgreSQL (and the real registry for the outbox's encoding):
one transition per event however often it is delivered, timers that fire once across two pollers, no lost
transition when a transaction is cut off, and compensation in reverse order."""

from __future__ import annotations

import asyncio
import json
from unittest.mock import ANY

import asyncpg
import pytest

from accord.casework import Verdict, decide_case
from accord.events import AccountStatus, ContractActivated, ExceptionChanged
from accord.serde import EventCodec
from accord.workflows import Started, Transition, Wait, Workflow, WorkflowEngine
from tests.unit.workflows.activation import ACTIVATION, CUSTOMER, invoice_wait

from .conftest import SCHEMA, activated, customer, envelope, invoice, rows

pytestmark = pytest.mark.postgres

INVOICE_DEADLINE = invoice_wait("acc-1").timer_name
ACTIVATED = ContractActivated.AVRO_NAME


async def instance(pool: asyncpg.Pool, contract: str) -> dict[str, object]:
    found = await rows(pool, "SELECT * FROM {s}.workflow_instances WHERE correlation_key = $1", contract)
    assert len(found) == 1, found
    return found[0]


async def history(pool: asyncpg.Pool, contract: str) -> list[tuple[str, str | None, str]]:
    return [
        (r["cause"], r["cause_ref"], r["step"])
        for r in await rows(
            pool,
            """SELECT h.* FROM {s}.workflow_history h JOIN {s}.workflow_instances i ON i.id = h.instance_id
               WHERE i.correlation_key = $1 ORDER BY h.id""",
            contract,
        )
    ]


async def commands(pool: asyncpg.Pool) -> list[str]:
    return [r["kind"] for r in await rows(pool, "SELECT kind FROM {s}.commands ORDER BY id")]


async def make_due(pool: asyncpg.Pool) -> None:
    """Time passes: every pending timer is due now."""
    await pool.execute(f"UPDATE {SCHEMA}.workflow_timers SET due_at = now() - interval '1 second'")


async def test_instance_waits_and_resumes_once_on_an_event_delivered_twice(
    engine: WorkflowEngine, pool: asyncpg.Pool
) -> None:
    start = envelope(activated("ctr-1", "acc-1"))
    started = await engine.deliver([start])
    assert len(started.started) == 1
    assert (await instance(pool, "ctr-1"))["status"] == "waiting"
    waits = await rows(pool, "SELECT event_type, correlation_key FROM {s}.workflow_waits")
    assert waits == [{"event_type": "accord.crm.CustomerAccountUpserted", "correlation_key": "acc-1"}]

    other = envelope(customer("acc-2"))  # another customer: nobody waits for it
    ready = envelope(customer("acc-1"))
    first = await engine.deliver([other, ready, ready])  # duplicated inside the batch
    second = await engine.deliver([ready])  # and redelivered later
    assert (first.transitions, first.duplicates) == (1, 1)
    assert (second.transitions, second.duplicates) == (0, 1)

    now = await instance(pool, "ctr-1")
    assert (now["step"], now["status"], now["version"]) == ("await-invoice", "waiting", 2)
    assert await history(pool, "ctr-1") == [
        ("started", start.event_id, "await-customer"),
        ("event", ready.event_id, "await-invoice"),
    ]
    assert await commands(pool) == ["reserve_plan", "provision_subscription"]
    timers = await rows(pool, "SELECT name FROM {s}.workflow_timers")
    assert timers == [{"name": INVOICE_DEADLINE}]  # the customer SLA went with its wait

    done = await engine.deliver([envelope(invoice("acc-1", "in-1"))])
    assert done.transitions == 1
    assert (await instance(pool, "ctr-1"))["status"] == "completed"
    outbox = await rows(pool, "SELECT topic FROM {s}.outbox")
    assert outbox == [{"topic": "erp.journal"}]
    assert await rows(pool, "SELECT * FROM {s}.workflow_waits") == []


async def test_a_start_event_delivered_twice_starts_one_instance(engine: WorkflowEngine, pool: asyncpg.Pool) -> None:
    start = envelope(activated("ctr-1", "acc-1"))
    again = envelope(activated("ctr-1", "acc-1"))  # another event (new id) for the same contract
    await engine.deliver([start])
    await engine.deliver([start, again])
    assert len(await rows(pool, "SELECT * FROM {s}.workflow_instances")) == 1
    assert await commands(pool) == ["reserve_plan"]


async def test_a_timer_fires_exactly_once_with_two_competing_pollers(
    engine: WorkflowEngine, db_url: str, codec: EventCodec, pool: asyncpg.Pool
) -> None:
    n = 30
    await engine.deliver([envelope(activated(f"ctr-{i}", f"acc-{i}")) for i in range(n)])
    await make_due(pool)
    other_pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        rival = WorkflowEngine([ACTIVATION], pool=other_pool, schema=SCHEMA, encode=codec.encode)

        async def drain(e: WorkflowEngine) -> int:
            total = 0
            while fired := await e.fire_due_timers(limit=3):
                total += fired
                await asyncio.sleep(0)
            return total

        counts = await asyncio.gather(drain(engine), drain(rival), drain(engine), drain(rival))
    finally:
        await other_pool.close()
    # A poller that skipped a locked instance may stop early; one more pass picks up anything left.
    counts.append(await engine.fire_due_timers(limit=n))
    assert sum(counts) == n
    per_instance = await rows(
        pool, "SELECT instance_id, count(*) AS n FROM {s}.workflow_history WHERE cause = 'timer' GROUP BY 1"
    )
    assert len(per_instance) == n and {r["n"] for r in per_instance} == {1}
    cases = await rows(pool, "SELECT kind FROM {s}.cases")
    assert [c["kind"] for c in cases] == ["customer-master-missing"] * n
    assert await engine.fire_due_timers() == 0


async def test_a_timer_whose_wait_was_satisfied_does_not_fire(engine: WorkflowEngine, pool: asyncpg.Pool) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    timer = (await rows(pool, "SELECT * FROM {s}.workflow_timers"))[0]
    await engine.deliver([envelope(customer("acc-1"))])
    # A customer-SLA timer still pending after its wait was satisfied (as if declared again by mistake):
    await pool.execute(
        f"INSERT INTO {SCHEMA}.workflow_timers (instance_id, name, due_at) VALUES ($1, 'customer-sla', now())",
        timer["instance_id"],
    )
    await make_due(pool)
    await engine.fire_due_timers()
    assert await rows(pool, "SELECT * FROM {s}.workflow_timers") == []
    steps = [h for h in await history(pool, "ctr-1") if h[0] == "timer"]
    # Only the invoice SLA changed anything: the stale customer SLA was a no-op (or cancelled first).
    assert steps == [("timer", INVOICE_DEADLINE, "await-invoice")]
    cases = await rows(pool, "SELECT kind FROM {s}.cases")
    assert [c["kind"] for c in cases] == ["invoice-sla-breached"]


async def test_a_transaction_cut_off_mid_way_loses_no_transition(
    engine: WorkflowEngine, pool: asyncpg.Pool, db_url: str
) -> None:
    start = envelope(activated("ctr-1", "acc-1"))
    blocker = await asyncpg.connect(db_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        # The engine's transaction gets as far as the history insert and blocks there: mid-transition.
        await blocker.execute(f"LOCK TABLE {SCHEMA}.workflow_history IN EXCLUSIVE MODE")
        task = asyncio.create_task(engine.deliver([start]))
        for _ in range(500):
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting, "the engine never reached the locked table"
        task.cancel()  # the crash
        with pytest.raises(asyncio.CancelledError):
            await task
        await tx.rollback()
    finally:
        await blocker.close()
    assert await rows(pool, "SELECT * FROM {s}.workflow_instances") == []
    assert await rows(pool, "SELECT * FROM {s}.processed_events") == []
    assert await rows(pool, "SELECT * FROM {s}.commands") == []
    again = await engine.deliver([start])  # the redelivery after the crash
    assert len(again.started) == 1
    assert [h[0] for h in await history(pool, "ctr-1")] == ["started"]


async def test_rejection_compensates_completed_steps_in_reverse_order(
    engine: WorkflowEngine, pool: asyncpg.Pool, codec: EventCodec
) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    await engine.deliver([envelope(customer("acc-1"))])  # reserve, then provision done
    await make_due(pool)
    assert await engine.fire_due_timers() == 1  # the invoice SLA: a case for a person
    case = (await rows(pool, "SELECT id::text, kind FROM {s}.cases"))[0]
    assert case["kind"] == "invoice-sla-breached"

    async with pool.acquire() as conn, conn.transaction():
        await decide_case(
            conn, schema=SCHEMA, encode=codec.encode, case_id=case["id"], verdict=Verdict.REJECT, actor="alice"
        )
    # The decision travels as ExceptionChanged through the outbox; deliver the very row the relay would publish.
    row = (await rows(pool, "SELECT value FROM {s}.outbox WHERE topic = $1 ORDER BY id DESC", ExceptionChanged.TOPIC))[
        0
    ]
    decided = codec.decode(ExceptionChanged.TOPIC, row["value"]).event
    assert isinstance(decided, ExceptionChanged)
    result = await engine.deliver([envelope(decided)])
    assert result.transitions == 1

    final = await instance(pool, "ctr-1")
    assert (final["step"], final["status"]) == ("rejected", "compensated")
    assert await commands(pool) == ["reserve_plan", "provision_subscription", "cancel_subscription", "release_plan"]
    assert [h for h in await history(pool, "ctr-1") if h[0] in ("decision", "compensation")] == [
        ("decision", case["id"], "rejected"),
        ("compensation", "provision", "rejected"),
        ("compensation", "reserve", "rejected"),
    ]
    assert await rows(pool, "SELECT * FROM {s}.workflow_waits") == []
    assert json.loads(str(final["completed_steps"]))[0]["name"] == "reserve"


async def test_an_inactive_customer_waits_for_the_operator_and_approval_continues(
    engine: WorkflowEngine, pool: asyncpg.Pool, codec: EventCodec
) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    await engine.deliver([envelope(customer("acc-1", AccountStatus.INACTIVE))])
    case = (await rows(pool, "SELECT id::text, kind, evidence FROM {s}.cases"))[0]
    assert case["kind"] == "customer-master-invalid"
    assert json.loads(case["evidence"]) == {"crm": {"account_id": "acc-1", "status": "INACTIVE"}}
    assert (await instance(pool, "ctr-1"))["step"] == "customer-review"
    opened = (await rows(pool, "SELECT value FROM {s}.outbox WHERE topic = $1", ExceptionChanged.TOPIC))[0]
    assert (
        await engine.deliver([envelope(codec.decode(ExceptionChanged.TOPIC, opened["value"]).event)])
    ).transitions == 0

    async with pool.acquire() as conn, conn.transaction():
        await decide_case(
            conn, schema=SCHEMA, encode=codec.encode, case_id=case["id"], verdict=Verdict.APPROVE, actor="alice"
        )
    row = (await rows(pool, "SELECT value FROM {s}.outbox WHERE topic = $1 ORDER BY id DESC", ExceptionChanged.TOPIC))[
        0
    ]
    assert (await engine.deliver([envelope(codec.decode(ExceptionChanged.TOPIC, row["value"]).event)])).transitions == 1
    assert (await instance(pool, "ctr-1"))["step"] == "await-invoice"
    assert await commands(pool) == ["reserve_plan", "provision_subscription"]


async def decided(pool: asyncpg.Pool, codec: EventCodec, case_id: str, verdict: Verdict) -> ExceptionChanged:
    """An operator's verdict, and the ExceptionChanged it wrote to the outbox (as the relay would publish it)."""
    async with pool.acquire() as conn, conn.transaction():
        await decide_case(conn, schema=SCHEMA, encode=codec.encode, case_id=case_id, verdict=verdict, actor="alice")
    row = (await rows(pool, "SELECT value FROM {s}.outbox WHERE topic = $1 ORDER BY id DESC", ExceptionChanged.TOPIC))[
        0
    ]
    event = codec.decode(ExceptionChanged.TOPIC, row["value"]).event
    assert isinstance(event, ExceptionChanged)
    return event


async def test_retry_reruns_the_step_and_the_case_closes_when_the_workflow_finishes(
    engine: WorkflowEngine, pool: asyncpg.Pool, codec: EventCodec
) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    await engine.deliver([envelope(customer("acc-1", AccountStatus.INACTIVE))])
    case_id = (await rows(pool, "SELECT id::text FROM {s}.cases"))[0]["id"]

    await engine.deliver([envelope(await decided(pool, codec, case_id, Verdict.RETRY))])
    assert (await instance(pool, "ctr-1"))["step"] == "await-customer"  # the step runs again
    await engine.deliver([envelope(customer("acc-1", AccountStatus.INACTIVE))])  # and fails the same way
    cases = await rows(pool, "SELECT id::text, state FROM {s}.cases")
    assert cases == [{"id": case_id, "state": "open"}]  # the same case, open again

    await engine.deliver([envelope(await decided(pool, codec, case_id, Verdict.RETRY))])
    await engine.deliver([envelope(customer("acc-1"))])  # fixed in the CRM meanwhile
    await engine.deliver([envelope(invoice("acc-1", "in-1"))])
    assert (await instance(pool, "ctr-1"))["status"] == "completed"
    actions = await rows(
        pool, "SELECT action, actor FROM {s}.case_actions WHERE case_id = $1::uuid ORDER BY id", case_id
    )
    assert [a["action"] for a in actions] == ["raised", "retried", "raised-again", "retried", "resolved-by-workflow"]
    assert (await rows(pool, "SELECT state FROM {s}.cases"))[0]["state"] == "resolved"


def _broken(state: object, trigger: object) -> Transition | None:
    if isinstance(trigger, Started):
        return Transition(state={}, step="await-customer", waits=[Wait(CUSTOMER, "acc-1")])
    raise ValueError("no rule for this customer status")


async def test_a_decider_that_raises_fails_its_instance_and_opens_a_case(
    engine: WorkflowEngine, pool: asyncpg.Pool, codec: EventCodec
) -> None:
    broken = WorkflowEngine(
        [
            Workflow(
                "broken",
                _broken,
                starts_on={ACTIVATED: lambda e: str(e.contract_id)},
                correlate={CUSTOMER: lambda e: str(e.account_id)},
            )
        ],
        pool=pool,
        schema=SCHEMA,
        encode=codec.encode,
    )
    await broken.deliver([envelope(activated("ctr-1", "acc-1"))])
    result = await broken.deliver([envelope(customer("acc-1")), envelope(customer("acc-1"))])
    assert result.transitions == 1  # failed once; a failed instance waits for nothing more
    failed = await instance(pool, "ctr-1")
    assert (failed["status"], failed["last_error"]) == ("failed", "ValueError: no rule for this customer status")
    assert [h[0] for h in await history(pool, "ctr-1")] == ["started", "error"]
    case = (await rows(pool, "SELECT kind, evidence FROM {s}.cases"))[0]
    assert case["kind"] == "workflow-failed"
    assert json.loads(case["evidence"])["last_error"] == "ValueError: no rule for this customer status"
    assert await rows(pool, "SELECT * FROM {s}.workflow_waits") == []


async def test_an_effect_that_cannot_be_written_undoes_only_its_transition(
    engine: WorkflowEngine, pool: asyncpg.Pool
) -> None:
    # Another command already holds the key this workflow's first step uses: a bug the engine must not hide.
    await pool.execute(
        f"""INSERT INTO {SCHEMA}.commands (system, kind, idempotency_key, payload)
            VALUES ('crm', 'something_else', 'ctr-1:reserve', '{{}}')"""
    )
    other = envelope(activated("ctr-2", "acc-2"))
    await engine.deliver([envelope(activated("ctr-1", "acc-1")), other])
    failed = await instance(pool, "ctr-1")
    assert failed["status"] == "failed" and "ctr-1:reserve" in str(failed["last_error"])
    assert await rows(pool, "SELECT * FROM {s}.workflow_timers WHERE instance_id = $1", failed["id"]) == []
    assert (await instance(pool, "ctr-2"))["status"] == "waiting"  # the rest of the batch went on


async def test_a_wait_no_topic_would_deliver_fails_the_instance_with_the_diagnosis(
    pool: asyncpg.Pool, codec: EventCodec, engine: WorkflowEngine
) -> None:
    careless = WorkflowEngine(
        [Workflow("careless", _broken, starts_on={ACTIVATED: lambda e: str(e.contract_id)})],  # no correlate
        pool=pool,
        schema=SCHEMA,
        encode=codec.encode,
    )
    await careless.deliver([envelope(activated("ctr-1", "acc-1"))])
    failed = await instance(pool, "ctr-1")
    assert failed["status"] == "failed"
    assert "does not list in `correlate`" in str(failed["last_error"])
    assert await rows(pool, "SELECT * FROM {s}.workflow_waits") == []


async def test_two_engines_delivering_the_same_event_at_once_make_one_transition(
    engine: WorkflowEngine, pool: asyncpg.Pool, db_url: str, codec: EventCodec
) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    ready = envelope(customer("acc-1"))
    other_pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        rival = WorkflowEngine([ACTIVATION], pool=other_pool, schema=SCHEMA, encode=codec.encode)
        # e.g. a rebalance: the old and the new owner of the partition both process the record
        results = await asyncio.gather(engine.deliver([ready]), rival.deliver([ready]))
    finally:
        await other_pool.close()
    assert sorted(r.transitions for r in results) == [0, 1]
    assert [h[0] for h in await history(pool, "ctr-1")] == ["started", "event"]
    assert await commands(pool) == ["reserve_plan", "provision_subscription"]


async def test_a_timer_cut_off_mid_firing_fires_once_afterwards(
    engine: WorkflowEngine, pool: asyncpg.Pool, db_url: str
) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    await make_due(pool)
    blocker = await asyncpg.connect(db_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(f"LOCK TABLE {SCHEMA}.workflow_history IN EXCLUSIVE MODE")
        task = asyncio.create_task(engine.fire_due_timers())
        for _ in range(500):
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting, "the timer never reached the locked table"
        task.cancel()  # the engine process dies while firing
        with pytest.raises(asyncio.CancelledError):
            await task
        await tx.rollback()
    finally:
        await blocker.close()
    assert [r["name"] for r in await rows(pool, "SELECT name FROM {s}.workflow_timers")] == ["customer-sla"]
    assert await engine.fire_due_timers() == 1  # after the restart
    assert await engine.fire_due_timers() == 0
    assert [h[0] for h in await history(pool, "ctr-1")] == ["started", "timer"]


async def test_an_awaited_event_that_came_early_is_handed_over_when_the_wait_is_declared(
    engine: WorkflowEngine, pool: asyncpg.Pool
) -> None:
    await engine.deliver([envelope(activated("ctr-1", "acc-1"))])
    early = envelope(invoice("acc-1", "in-1"))  # the invoice is consumed before the customer master
    kept = await engine.deliver([early])
    assert kept.transitions == 0
    assert await rows(pool, "SELECT event_id, correlation_key FROM {s}.workflow_mailbox") == [
        {"event_id": early.event_id, "correlation_key": "acc-1"}
    ]

    await engine.deliver([envelope(customer("acc-1"))])  # now the instance waits for the invoice: it has it
    now = await instance(pool, "ctr-1")
    assert (now["step"], now["status"]) == ("done", "completed")
    assert await history(pool, "ctr-1") == [
        ("started", ANY, "await-customer"),
        ("event", ANY, "await-invoice"),
        ("event", early.event_id, "done"),
    ]
    assert await rows(pool, "SELECT * FROM {s}.workflow_mailbox") == []
    assert await engine.prune_mailbox(older_than_seconds=0) == 0


async def test_kept_events_nobody_waited_for_are_pruned_after_the_retention(
    engine: WorkflowEngine, pool: asyncpg.Pool
) -> None:
    await engine.deliver([envelope(invoice("acc-9", "in-9"))])
    assert await engine.prune_mailbox(older_than_seconds=3600) == 0
    assert await engine.prune_mailbox(older_than_seconds=0) == 1
    assert await rows(pool, "SELECT * FROM {s}.workflow_mailbox") == []
