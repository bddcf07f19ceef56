"""The runtime's guarantees on the real broker, database and registry: exactly one effect, dead letters with
provenance, order per key across a parked key, and replay without new effects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from accord.runtime import Provenance, dlq_topic
from accord.serde import EventCodec
from tests.support import ledger
from tests.support.harness import Harness

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def accord(*args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    """The `accord` command as an operator runs it, against the test's broker."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "ACCORD_OPERATOR": "test-operator"}
    return subprocess.run(
        [sys.executable, "-m", "accord.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
async def harness(
    kafka_bootstrap: str, db_url: str, registry_url: str, topic_factory, group_id: str
) -> AsyncIterator[Harness]:
    ledger.FLAKY_BROKEN["value"] = True
    ledger.POISON_REJECTED["value"] = True
    h = Harness(
        bootstrap=kafka_bootstrap,
        db_url=db_url,
        codec=EventCodec.connect(registry_url, auto_register=True),
        in_topic=topic_factory(partitions=3, prefix="usage"),
        out_topic=topic_factory(partitions=3, prefix="rated"),
        group=group_id,
    )
    await h.start()
    yield h
    await h.close()
    h.codec.registry.close()


async def test_duplicate_delivery_and_replay_have_exactly_one_effect(harness: Harness) -> None:
    events = [ledger.usage(f"acc-{k}", n) for k in range(5) for n in range(20)]
    harness.produce(events)
    harness.produce(events[:30])  # the same events again: a producer retrying after a lost acknowledgement

    async def all_applied() -> bool:
        return await harness.count("processed_events") == 100 and await harness.count("outbox") == 0

    await harness.run_until(all_applied)
    for k in range(5):
        state = await harness.state(f"acc-{k}")
        assert state is not None and state["count"] == 20
    outputs = harness.read_topic(harness.out_topic, min_count=100)
    assert len(outputs) == 100

    # Replay, as an operator does it: `accord replay` moves the group back to the earliest offsets.
    replay = accord(
        "replay", "--group", harness.group, "--topic", harness.in_topic, "--to-earliest", bootstrap=harness.bootstrap
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert all(offset == 0 for offset in harness.committed().values())

    async def caught_up() -> bool:
        return harness.committed() == harness.end_offsets()

    await harness.run_until(caught_up)
    assert await harness.count("processed_events") == 100
    for k in range(5):
        state = await harness.state(f"acc-{k}")
        assert state is not None and state["count"] == 20
    assert len(harness.read_topic(harness.out_topic, min_count=100)) == 100

    # Retention prunes every processed id; a replay reaching back beyond it is still applied zero times.
    assert await harness.store.prune_processed(consumer=harness.group, older_than_seconds=-1) == 100
    replay = accord("replay", "-g", harness.group, "-t", harness.in_topic, "--to-earliest", bootstrap=harness.bootstrap)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    await harness.run_until(caught_up)
    assert await harness.count("processed_events") == 0
    for k in range(5):
        state = await harness.state(f"acc-{k}")
        assert state is not None and state["count"] == 20
    assert len(harness.read_topic(harness.out_topic, min_count=100)) == 100


async def test_poison_records_are_dead_lettered_with_provenance_and_the_partition_moves_on(harness: Harness) -> None:
    good = [ledger.usage("acc-1", n) for n in range(5)]
    poison = ledger.usage("acc-1", 99, meter=ledger.POISON)
    harness.produce(good[:2])
    harness.produce([], raw=[(b"acc-1", b"\x07not avro at all")])
    harness.produce([poison, *good[2:]])

    async def caught_up() -> bool:
        return harness.committed() == harness.end_offsets()

    await harness.run_until(caught_up)
    state = await harness.state("acc-1")
    assert state is not None and state["count"] == 5

    letters = harness.read_topic(dlq_topic(harness.group), min_count=2)
    assert len(letters) == 2
    provenance = [Provenance.from_headers(m.headers()) for m in letters]
    assert {p.topic for p in provenance} == {harness.in_topic}
    assert sorted(p.error_class for p in provenance) == ["DecodeError", "PermanentError"]
    assert all(p.group == harness.group and p.attempts == 1 for p in provenance)
    undecodable = next(m for m, p in zip(letters, provenance, strict=True) if p.error_class == "DecodeError")
    assert undecodable.value() == b"\x07not avro at all" and undecodable.key() == b"acc-1"
    assert "magic" in Provenance.from_headers(undecodable.headers()).error_message.lower()

    # The cause is fixed; the dead letter goes back to its origin topic and is applied exactly once,
    # even when redriven twice.
    ledger.POISON_REJECTED["value"] = False
    # `accord dlq redrive`, run twice by a nervous operator, re-publishes the rejected record once.
    for _ in range(2):
        redrive = accord(
            "dlq", "redrive", "-g", harness.group, "--error-class", "PermanentError", bootstrap=harness.bootstrap
        )
        assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    # The origin topic holds the 7 records produced and exactly one redriven copy.
    assert len(harness.read_topic(harness.in_topic, min_count=8)) == 8, redrive.stdout
    assert "1 already redriven" in redrive.stdout

    async def redriven_applied() -> bool:
        state = await harness.state("acc-1")
        return state is not None and state["count"] == 6

    # (Offsets are not compared here: the redrive is transactional, and its commit marker takes an offset.)
    await harness.run_until(redriven_applied)
    state = await harness.state("acc-1")
    assert state is not None and state["seen"][-1] == "u-acc-1-99"
    assert await harness.count("processed_events") == 6


async def test_order_per_key_holds_across_a_parked_key_while_other_keys_flow(harness: Harness) -> None:
    # All on one key per account; acc-1's second event fails transiently until the cause is fixed.
    harness.produce([ledger.usage("acc-1", 0), ledger.usage("acc-1", 1, meter=ledger.FLAKY)])
    harness.produce([ledger.usage("acc-2", n) for n in range(3)])
    harness.produce([ledger.usage("acc-1", n) for n in range(2, 5)])

    async def caught_up() -> bool:
        return harness.committed() == harness.end_offsets()

    await harness.run_until(caught_up)
    acc1, acc2 = await harness.state("acc-1"), await harness.state("acc-2")
    assert acc2 is not None and acc2["count"] == 3  # the other key flowed
    assert acc1 is not None and acc1["seen"] == ["u-acc-1-0"]  # nothing of acc-1 overtook the parked event
    assert await harness.count("parked_events") == 4

    ledger.FLAKY_BROKEN["value"] = False
    assert await harness.runtime.retry_parked() == 4
    acc1 = await harness.state("acc-1")
    assert acc1 is not None and acc1["seen"] == [f"u-acc-1-{n}" for n in range(5)]
    assert await harness.count("parked_events") == 0
