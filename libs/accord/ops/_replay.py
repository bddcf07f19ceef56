"""Reset a consumer group's committed offsets on one topic: to an offset, a point in time, or the earliest.

What Kafka allows decides the shape: the broker only accepts offsets from an admin client for a group with
no live members. For a classic group with members it answers UNKNOWN_MEMBER_ID per partition, whatever the
client wants. So `replay` refuses up front while members are live, and with `force=True` it still asks and
reports the broker's answer per partition honestly; the only real way is to stop the group's consumers
(or wait `session.timeout.ms` after a crash) and run it again.

After the broker acknowledges, the group's offsets are read back: a partition whose offset is not the one
asked for (a member on its way out committed over it) is reported as failed, never as moved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from ._kafka import OpsError, partitions_of


@dataclass(frozen=True)
class ToOffset:
    offset: int

    def describe(self) -> str:
        return f"offset {self.offset}"


@dataclass(frozen=True)
class ToTime:
    at: datetime  # timezone-aware

    def describe(self) -> str:
        return f"time {self.at.isoformat()}"


@dataclass(frozen=True)
class ToEarliest:
    def describe(self) -> str:
        return "earliest"


Target = ToOffset | ToTime | ToEarliest


@dataclass(frozen=True)
class PartitionMove:
    partition: int
    before: int | None  # committed offset, None when the group has none on this partition
    after: int
    earliest: int
    latest: int
    note: str = ""  # why `after` is not exactly what was asked (clamped, no record at that time)
    error: str = ""  # the broker's refusal, when applying failed for this partition

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def to_reread(self) -> int:
        """Records the group will read again (positive) or skip (negative) compared to its commit."""
        return (self.latest if self.before is None else self.before) - self.after


@dataclass(frozen=True)
class ReplayPlan:
    group: str
    topic: str
    target: Target
    state: str  # the group's state as the broker reports it (EMPTY, STABLE, DEAD = unknown group …)
    members: tuple[str, ...]  # live members' client id @ host
    moves: tuple[PartitionMove, ...]

    @property
    def has_members(self) -> bool:
        return bool(self.members)


@dataclass(frozen=True)
class ReplayResult:
    plan: ReplayPlan
    applied: bool  # False for a dry run or a refusal
    moves: tuple[PartitionMove, ...]

    @property
    def failed(self) -> tuple[PartitionMove, ...]:
        return tuple(m for m in self.moves if m.error)

    def summary(self) -> str:
        moved = [m for m in self.moves if m.changed and not m.error]
        reread = sum(m.to_reread for m in moved)
        verb = "moved" if self.applied else "would move"
        text = (
            f"group {self.plan.group!r} on {self.plan.topic!r} to {self.plan.target.describe()}: "
            f"{len(moved)} of {len(self.moves)} partition(s) {verb}, {reread:+d} record(s) to re-read"
        )
        if self.failed:
            text += f"; {len(self.failed)} partition(s) refused by the broker"
        return text + ("" if self.applied else " (nothing changed)")


def _offsets(admin: AdminClient, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
    futures = admin.list_offsets({TopicPartition(topic, p): spec for p in partitions}, request_timeout=15)
    return {tp.partition: future.result().offset for tp, future in futures.items()}


def _committed(admin: AdminClient, group: str, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    answer = admin.list_consumer_group_offsets([request], request_timeout=15)[group].result()
    return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in answer.topic_partitions or []}


def plan_replay(
    admin: AdminClient, *, group: str, topic: str, target: Target, partitions: Sequence[int] | None = None
) -> ReplayPlan:
    """Where each partition's committed offset is and where `target` puts it; changes nothing."""
    existing = partitions_of(admin, topic)
    chosen = sorted(set(partitions)) if partitions else existing
    unknown = [p for p in chosen if p not in existing]
    if unknown:
        raise OpsError(f"topic {topic!r} has partitions {existing}; there is no partition {unknown[0]}")
    if isinstance(target, ToOffset) and target.offset < 0:
        raise OpsError(f"--to-offset must be 0 or more, not {target.offset}")

    description = admin.describe_consumer_groups([group], request_timeout=15)[group].result()
    members = tuple(f"{m.client_id}@{m.host}" for m in description.members)
    state = description.state.name if description.state is not None else "UNKNOWN"

    committed = _committed(admin, group, topic, chosen)

    earliest = _offsets(admin, topic, chosen, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
    latest = _offsets(admin, topic, chosen, OffsetSpec.latest())  # type: ignore[no-untyped-call]
    at_time: dict[int, int] = {}
    if isinstance(target, ToTime):
        at_time = _offsets(admin, topic, chosen, OffsetSpec.for_timestamp(int(target.at.timestamp() * 1000)))

    moves = []
    for p in chosen:
        note = ""
        if isinstance(target, ToEarliest):
            after = earliest[p]
        elif isinstance(target, ToTime):
            after = at_time[p]
            if after < 0:
                # No record at or after that time: the group starts after everything there is, like Kafka's tool.
                after, note = latest[p], "no record at or after that time: end of partition"
        else:
            after = target.offset
            if after < earliest[p]:
                after, note = earliest[p], f"{target.offset} is before the earliest offset: clamped"
            elif after > latest[p]:
                after, note = latest[p], f"{target.offset} is past the end: clamped"
        moves.append(PartitionMove(p, committed.get(p), after, earliest[p], latest[p], note))
    return ReplayPlan(group, topic, target, state, members, tuple(moves))


def apply_replay(admin: AdminClient, plan: ReplayPlan, *, force: bool = False) -> ReplayResult:
    """Commit the plan's offsets for the group; refuses (OpsError) while it has live members unless `force`."""
    if plan.has_members and not force:
        raise OpsError(
            f"group {plan.group!r} has {len(plan.members)} live member(s) ({', '.join(plan.members)}): "
            "Kafka only accepts new offsets for a group with no members. Stop its consumers and run this again "
            "(or pass --force to ask the broker anyway; it refuses while the members are there)"
        )
    request = ConsumerGroupTopicPartitions(
        plan.group, [TopicPartition(plan.topic, m.partition, m.after) for m in plan.moves]
    )
    answer = admin.alter_consumer_group_offsets([request], request_timeout=15)[plan.group].result()
    errors: Mapping[int, Any] = {tp.partition: tp.error for tp in answer.topic_partitions or [] if tp.error}
    # Read back what the group now has: an acknowledged commit can still be overwritten at once by a
    # member that was on its way out, and the operator must not be told "moved" then.
    now = _committed(admin, plan.group, plan.topic, [m.partition for m in plan.moves])
    moves = []
    for move in plan.moves:
        error = errors.get(move.partition)
        if error is not None:
            reason = f"{error.name()}: {error.str()}"
            if error.name() in {"UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "STALE_MEMBER_EPOCH"}:
                reason += " (the group has live members; stop them first)"
            move = replace(move, error=reason)
        elif now.get(move.partition) != move.after:
            move = replace(
                move,
                error=f"acknowledged, but the group's offset reads {now.get(move.partition)}: "
                "a member committed over it; stop the group's consumers and run this again",
            )
        moves.append(move)
    return ReplayResult(plan, applied=True, moves=tuple(moves))


def dry_run(plan: ReplayPlan) -> ReplayResult:
    return ReplayResult(plan, applied=False, moves=plan.moves)
