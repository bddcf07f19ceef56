"""A service process killed with SIGKILL at the worst moments loses nothing and duplicates no effect.

(a) inside the database transaction, (b) after the transaction committed but before the offsets did,
(c) the outbox relay after the broker acknowledged but before the rows were deleted. Each time the
process is started again and must converge: every event applied exactly once, every output published
(at least once: duplicates of (c) are absorbed downstream by their event ids).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from accord.events import UsageRecorded
from accord.runtime import schema_name
from accord.serde import EventCodec
from tests.support import ledger
from tests.support.harness import Harness, start_service

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.postgres]

KEYS = 10
PER_KEY = 30


@pytest.fixture
async def harness(
    kafka_bootstrap: str, db_url: str, registry_url: str, topic_factory, group_id: str
) -> AsyncIterator[Harness]:
    h = Harness(
        bootstrap=kafka_bootstrap,
        db_url=db_url,
        codec=EventCodec.connect(registry_url, auto_register=True),
        in_topic=topic_factory(partitions=3, prefix="usage"),
        out_topic=topic_factory(partitions=3, prefix="rated"),
        group=group_id,
        schema=schema_name(group_id),
    )
    await h.start()
    yield h
    await h.close()
    h.codec.registry.close()


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param("in-transaction:75", id="a-inside-db-transaction"),
        pytest.param("before-offset-commit:2", id="b-after-db-commit-before-offsets"),
        pytest.param("relay-after-ack:1", id="c-relay-after-ack-before-delete"),
    ],
)
async def test_sigkill_then_restart_loses_nothing_and_duplicates_no_effect(
    harness: Harness, registry_url: str, crash: str, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    events = [ledger.usage(f"acc-{k}", n) for n in range(PER_KEY) for k in range(KEYS)]
    harness.produce(events)
    harness.codec.schema_id(harness.out_topic, UsageRecorded)  # registers the output's subject, as a deploy would

    crashing = start_service(harness, registry_url, log, crash)
    try:
        crashing.wait(timeout=120)
    finally:
        if crashing.poll() is None:
            crashing.kill()
    assert crashing.returncode == -9, f"the service did not die at {crash}: {log.read_text()[-2000:]}"

    survivor = start_service(harness, registry_url, log)
    try:
        deadline = time.monotonic() + 120
        while not (await harness.count("processed_events") == len(events) and await harness.count("outbox") == 0):
            assert survivor.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "did not converge after the restart"
            time.sleep(0.2)
    finally:
        survivor.terminate()
        survivor.wait(timeout=30)
    assert survivor.returncode == 0, "SIGTERM should drain and exit cleanly"

    for k in range(KEYS):
        state = await harness.state(f"acc-{k}")
        assert state is not None
        assert state["count"] == PER_KEY, f"acc-{k}: {state['count']} effects for {PER_KEY} events"
        assert state["seen"] == [f"u-acc-{k}-{n}" for n in range(PER_KEY)], "order per key broken"
    outputs = harness.read_topic(harness.out_topic, min_count=len(events))
    ids = {ledger_id(m.value(), harness) for m in outputs}
    assert len(ids) == len(events), "an output event is missing"


def ledger_id(value: bytes, h: Harness) -> str:
    return str(h.codec.decode(h.out_topic, value).event.meta.event_id)
