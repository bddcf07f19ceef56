"""`accord replay` against a real broker: before/after per partition, resets that consumers then see."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from accord.cli import app
from accord.ops import (
    OpsError,
    ToEarliest,
    ToOffset,
    ToTime,
    apply_replay,
    dry_run,
    plan_replay,
)
from tests.integration.ops.audit_trail import audit_records

pytestmark = pytest.mark.kafka

PARTITIONS = 3
PER_PARTITION = 10
# Record i of each partition has timestamp BASE_MS + i s. Recent on purpose: records older than the topic's
# retention (7 days by default) are deleted at the broker's next retention check, active segment included.
BASE_MS = (int(time.time()) - 3600) * 1000


def consume(bootstrap: str, topic: str, group: str, expected: int, *, idle_polls: int = 6) -> list[tuple[int, int]]:
    """(partition, offset) of what the group reads from its committed offsets; commits what it read."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[tuple[int, int]] = []
    idle = 0
    try:
        # Waits for `expected`, then a few idle polls more, so reading too much would be seen too.
        while idle < idle_polls or len(seen) < expected:
            message = consumer.poll(1.0)
            if message is None or message.error():
                idle += 1
                if idle > 30:
                    break
                continue
            idle = 0 if len(seen) < expected else idle
            seen.append((message.partition() or 0, message.offset() or 0))
        if seen:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return seen


@pytest.fixture
def seeded(kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str) -> tuple[str, str]:
    """A topic of 3 partitions of 10 records, fully read and committed by `group_id`, whose consumers have left."""
    topic = topic_factory(partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, key=f"k{i}", value=b"v", partition=p, timestamp=BASE_MS + i * 1000)
    assert producer.flush(30) == 0
    assert len(consume(kafka_bootstrap, topic, group_id, PARTITIONS * PER_PARTITION, idle_polls=1)) == 30
    # The consumer has left once the coordinator says so, not when close() returns.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    deadline = time.monotonic() + 30
    while admin.describe_consumer_groups([group_id])[group_id].result().members and time.monotonic() < deadline:
        time.sleep(0.1)
    return topic, group_id


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    answer = admin.list_consumer_group_offsets([request])[group].result()
    return {tp.partition: tp.offset for tp in answer.topic_partitions or []}


def test_dry_run_shows_before_and_after_and_changes_nothing(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    result = dry_run(plan_replay(admin, group=group, topic=topic, target=ToEarliest()))

    assert [(m.partition, m.before, m.after) for m in result.moves] == [(0, 10, 0), (1, 10, 0), (2, 10, 0)]
    assert result.plan.members == ()
    assert "would move" in result.summary() and "+30 record(s)" in result.summary()
    assert committed(kafka_bootstrap, group, topic) == {0: 10, 1: 10, 2: 10}
    assert consume(kafka_bootstrap, topic, group, 0, idle_polls=3) == []


def test_reset_to_earliest_rereads_everything(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    result = apply_replay(admin, plan_replay(admin, group=group, topic=topic, target=ToEarliest()))

    assert result.failed == ()
    assert committed(kafka_bootstrap, group, topic) == {0: 0, 1: 0, 2: 0}
    seen = consume(kafka_bootstrap, topic, group, 30)
    assert sorted(seen) == [(p, o) for p in range(PARTITIONS) for o in range(PER_PARTITION)]


def test_reset_one_partition_to_an_offset(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    plan = plan_replay(admin, group=group, topic=topic, target=ToOffset(7), partitions=[1])
    assert [(m.partition, m.before, m.after) for m in plan.moves] == [(1, 10, 7)]
    apply_replay(admin, plan)

    assert committed(kafka_bootstrap, group, topic) == {0: 10, 1: 7, 2: 10}
    assert sorted(consume(kafka_bootstrap, topic, group, 3)) == [(1, 7), (1, 8), (1, 9)]


def test_reset_to_a_time_finds_the_first_record_at_or_after_it(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    at = datetime.fromtimestamp((BASE_MS + 5_500) / 1000, UTC)  # between records 5 and 6
    apply_replay(admin, plan_replay(admin, group=group, topic=topic, target=ToTime(at)))

    assert committed(kafka_bootstrap, group, topic) == {0: 6, 1: 6, 2: 6}
    assert sorted(consume(kafka_bootstrap, topic, group, 12)) == [(p, o) for p in range(3) for o in range(6, 10)]


def test_offsets_outside_the_partition_are_clamped_and_said_so(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    plan = plan_replay(admin, group=group, topic=topic, target=ToOffset(99), partitions=[0])
    assert plan.moves[0].after == 10
    assert "clamped" in plan.moves[0].note
    future = datetime.fromtimestamp((BASE_MS + 3_600_000) / 1000, UTC)
    plan = plan_replay(admin, group=group, topic=topic, target=ToTime(future), partitions=[2])
    assert plan.moves[0].after == 10 and "no record" in plan.moves[0].note


def test_unknown_topic_and_partition_are_diagnosed(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    with pytest.raises(OpsError, match="does not exist"):
        plan_replay(admin, group=group, topic=f"no-such-{uuid.uuid4().hex}", target=ToEarliest())
    with pytest.raises(OpsError, match="no partition 7"):
        plan_replay(admin, group=group, topic=topic, target=ToEarliest(), partitions=[7])


def test_refuses_while_the_group_has_a_live_member(kafka_bootstrap: str, seeded: tuple[str, str]) -> None:
    topic, group = seeded
    member = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    member.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.5)
        assert member.assignment(), "the live member never joined"
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        plan = plan_replay(admin, group=group, topic=topic, target=ToEarliest())
        assert len(plan.members) == 1

        with pytest.raises(OpsError, match="live member"):
            apply_replay(admin, plan)
        # --force asks anyway; Kafka refuses an admin commit for a group with members, and we say so.
        forced = apply_replay(admin, plan, force=True)
        assert len(forced.failed) == PARTITIONS
        assert all("UNKNOWN_MEMBER_ID" in m.error for m in forced.failed)
        assert committed(kafka_bootstrap, group, topic) == {0: 10, 1: 10, 2: 10}

        # The command line says the same, and the refusal is audited like any other action.
        who = f"op-{uuid.uuid4().hex[:8]}"
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "ACCORD_OPERATOR": who, "COLUMNS": "200"}
        args = ["replay", "--group", group, "--topic", topic, "--to-earliest"]
        refused = CliRunner().invoke(app, args, env=env)
        assert isinstance(refused.exception, OpsError) and "Stop its consumers" in str(refused.exception)
        forced_cli = CliRunner().invoke(app, [*args, "--force"], env=env)
        assert forced_cli.exit_code == 1
        assert "UNKNOWN_MEMBER_ID" in forced_cli.output and "3 partition(s) refused by the broker" in forced_cli.output
        results = [r["result"] for r in audit_records(kafka_bootstrap, who, 2)]
        assert len(results) == 2 and results[0].startswith("refused: ") and "refused by the broker" in results[1]
    finally:
        member.close()


def test_cli_dry_run_prints_a_table_and_a_summary_and_audits(
    kafka_bootstrap: str, seeded: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = seeded
    who = f"op-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ACCORD_OPERATOR", who)
    result = CliRunner().invoke(
        app, ["replay", "--group", group, "--topic", topic, "--to-offset", "4", "--dry-run"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "committed before" in result.output
    assert "0 of 3" not in result.output and "3 of 3 partition(s) would move, +18 record(s)" in result.output
    assert committed(kafka_bootstrap, group, topic) == {0: 10, 1: 10, 2: 10}

    bad = CliRunner().invoke(app, ["replay", "--group", group, "--topic", topic, "--to-earliest", "--to-offset", "1"])
    assert isinstance(bad.exception, OpsError) and "exactly one of" in str(bad.exception)

    mine = audit_records(kafka_bootstrap, who, 1)
    assert [r["what"] for r in mine] == ["replay"]
    assert mine[0]["args"]["dry_run"] is True and mine[0]["args"]["group"] == group
    assert "would move" in mine[0]["result"]
