"""The runtime's decisions on a batch, with the in-memory store and a stand-in codec (pure logic)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from accord.events import UsageRecorded
from accord.runtime import Envelope, MemoryStore, Outcome, RetryPolicy, Runtime, Writes
from tests.support import ledger
from tests.support.fake_codec import FakeCodec

pytestmark = pytest.mark.unit


def envelope(event: UsageRecorded, offset: int) -> Envelope:
    return Envelope(
        topic="billing.usage",
        partition=0,
        offset=offset,
        timestamp_ms=None,
        key=event.account_id,
        event=event,
        event_id=str(event.meta.event_id),
        event_type=event.meta.event_type,
        raw_value=FakeCodec().encode("", event),
    )


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def runtime() -> Runtime:
    ledger.FLAKY_BROKEN["value"] = True
    service = ledger.make_service("ledger", "billing.usage", "billing.rated")
    return Runtime(
        service,
        store=MemoryStore(),
        codec=FakeCodec(),
        producer=None,  # type: ignore[arg-type]
        retry=RetryPolicy(attempts=3),
        sleep=no_sleep,
    )


async def apply(runtime: Runtime, events: Sequence[Envelope]) -> tuple[list[Outcome], Writes]:
    writes = Writes()
    store: Any = runtime.store
    async with store.unit_of_work(consumer="ledger", aggregate="usage") as uow:
        outcomes = await runtime.apply(uow, events, writes)
        await uow.write(writes)
    return [o for o, _ in outcomes], writes


async def test_each_event_applied_once_even_when_delivered_twice(runtime: Runtime) -> None:
    first = [envelope(ledger.usage("acc-1", n), n) for n in range(3)]
    outcomes, writes = await apply(runtime, [*first, first[1]])
    assert outcomes == [Outcome.PROCESSED] * 3 + [Outcome.DUPLICATE]
    assert writes.states["acc-1"]["count"] == 3
    assert len(writes.outbox) == 3
    again, writes = await apply(runtime, first)  # a replay of the whole batch
    assert again == [Outcome.DUPLICATE] * 3
    assert writes.outbox == [] and writes.states == {}


async def test_a_permanent_error_fails_only_that_event(runtime: Runtime) -> None:
    events = [
        envelope(ledger.usage("acc-1", 0), 0),
        envelope(ledger.usage("acc-1", 1, meter=ledger.POISON), 1),
        envelope(ledger.usage("acc-1", 2), 2),
    ]
    outcomes, writes = await apply(runtime, events)
    assert outcomes == [Outcome.PROCESSED, Outcome.FAILED, Outcome.PROCESSED]
    assert writes.states["acc-1"]["count"] == 2


async def test_a_parked_key_queues_its_later_events_while_other_keys_flow(runtime: Runtime) -> None:
    events = [
        envelope(ledger.usage("acc-1", 0), 0),
        envelope(ledger.usage("acc-1", 1, meter=ledger.FLAKY), 1),
        envelope(ledger.usage("acc-2", 0), 2),
        envelope(ledger.usage("acc-1", 2), 3),
    ]
    outcomes, writes = await apply(runtime, events)
    assert outcomes == [Outcome.PROCESSED, Outcome.PARKED, Outcome.PROCESSED, Outcome.QUEUED]
    assert [(p.key, p.offset, p.attempts) for p in writes.parked] == [("acc-1", 1, 3), ("acc-1", 3, 0)]

    # A later batch: acc-1 is still parked, so its new event queues too; acc-2 goes on.
    outcomes, _ = await apply(runtime, [envelope(ledger.usage("acc-1", 3), 4), envelope(ledger.usage("acc-2", 1), 5)])
    assert outcomes == [Outcome.QUEUED, Outcome.PROCESSED]

    # While still broken, a retry re-parks the head and applies nothing behind it.
    assert await runtime.retry_parked() == 0
    store: Any = runtime.store
    assert [p.offset for _, p in store.parked] == [1, 3, 4]
    assert store.parked[0][1].attempts == 6

    # Once the cause is fixed, the queue drains in order.
    ledger.FLAKY_BROKEN["value"] = False
    assert await runtime.retry_parked() == 3
    assert store.parked == []
    async with store.unit_of_work(consumer="ledger", aggregate="usage") as uow:
        state = (await uow.load_states(["acc-1"]))["acc-1"]
    assert state["seen"] == ["u-acc-1-0", "u-acc-1-1", "u-acc-1-2", "u-acc-1-3"]


async def test_events_without_a_handler_are_ignored_not_failed(runtime: Runtime) -> None:
    event = ledger.usage("acc-1", 0)
    other = envelope(event, 0)
    other = Envelope(**{**{f: getattr(other, f) for f in other.__slots__}, "event_type": "accord.crm.Other"})
    outcomes, writes = await apply(runtime, [other])
    assert outcomes == [Outcome.IGNORED]
    assert writes.processed == []
