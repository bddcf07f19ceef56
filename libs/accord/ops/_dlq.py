"""Dead letters: list them, show one, and redrive chosen ones to the topic they came from.

A dead letter is named by its place in the dead-letter topic, `<partition>:<offset>` (or just `<offset>`
for partition 0). Redrive re-publishes the original key, value and headers (minus the provenance headers,
plus `accord.dlq.redriven_from = <dlq topic>:<partition>:<offset>`) to the origin topic and partition.

Redriving twice publishes once. In ONE Kafka transaction redrive writes
1. the re-published records to their origin topics,
2. one marker per dead letter to the compacted topic `<group>.dlq.redriven` (key = the dead letter's name),
3. the audit record;
and it reads the markers only after `init_transactions()`, which fences and aborts any earlier redrive of
the same group still in flight. So a dead letter is either redriven and marked, or neither, and two
operators redriving the same group at once cannot both publish it.

Note: a redriven record lands at the END of its origin partition, after the key's later events. The
consumer's idempotency store skips it if it was in fact applied; ordering against newer events of the same
key is the operator's call, as with any replay.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from accord.runtime._dlq import H_REDRIVEN_FROM, PROVENANCE_HEADERS, Provenance, dlq_topic

from ._audit import AuditRecord, audit, ensure_audit_topic, produce_audit
from ._kafka import OpsError, ensure_topic, partitions_of, read_one, read_to_end, topic_exists

REDRIVEN_SUFFIX = ".redriven"


def redriven_topic(dlq: str) -> str:
    return f"{dlq}{REDRIVEN_SUFFIX}"


@dataclass(frozen=True, order=True)
class LetterRef:
    """Where a dead letter sits in its dead-letter topic."""

    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> LetterRef:
        partition, _, offset = text.rpartition(":")
        try:
            ref = cls(int(partition) if partition else 0, int(offset))
        except ValueError:
            raise OpsError(f"dead letter {text!r} is not <offset> or <partition>:<offset> (e.g. 42 or 1:42)") from None
        if ref.partition < 0 or ref.offset < 0:
            raise OpsError(f"dead letter {text!r}: partition and offset are 0 or more")
        return ref

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True)
class DeadLetter:
    dlq: str
    ref: LetterRef
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    provenance: Provenance | None  # None when the record lacks the provenance headers
    timestamp_ms: int | None

    @property
    def name(self) -> str:
        """`<dlq topic>:<partition>:<offset>`, the value of `accord.dlq.redriven_from`."""
        return f"{self.dlq}:{self.ref}"

    def other_headers(self) -> list[tuple[str, bytes]]:
        """The record's own headers: without provenance, and without an earlier redrive's mark."""
        drop = {*PROVENANCE_HEADERS, H_REDRIVEN_FROM}
        return [(k, v) for k, v in self.headers if k not in drop]

    @classmethod
    def from_message(cls, message: Message) -> DeadLetter:
        raw = message.headers() or []
        items = list(raw.items()) if isinstance(raw, dict) else raw
        headers = tuple((k, v.encode() if isinstance(v, str) else (v or b"")) for k, v in items)
        try:
            provenance: Provenance | None = Provenance.from_headers(headers)
        except (KeyError, ValueError):
            provenance = None
        _, timestamp = message.timestamp()
        return cls(
            dlq=message.topic() or "",
            ref=LetterRef(message.partition() or 0, message.offset() or 0),
            key=message.key(),
            value=message.value(),
            headers=headers,
            provenance=provenance,
            timestamp_ms=timestamp if timestamp > 0 else None,
        )


def read_dead_letters(
    config: Mapping[str, Any], dlq: str, *, limit: int | None = None, error_class: str | None = None
) -> tuple[list[DeadLetter], int]:
    """The newest `limit` dead letters of `dlq` (all when None), oldest first, and how many the topic holds."""
    admin = AdminClient(dict(config))
    if not topic_exists(admin, dlq):
        raise OpsError(
            f"there is no dead-letter topic {dlq!r}: nothing was dead-lettered there yet, or the name is wrong"
        )
    partitions = partitions_of(admin, dlq)
    start: dict[int, int] | None = None
    probe = Consumer({**config, "group.id": "accord-ops-probe", "enable.auto.commit": False})
    try:
        marks = {p: probe.get_watermark_offsets(TopicPartition(dlq, p), timeout=15) for p in partitions}
    finally:
        probe.close()
    total = sum(high - low for low, high in marks.values())
    if limit is not None and error_class is None:
        # Only the tail of each partition can hold the newest `limit`.
        start = {p: max(low, high - limit) for p, (low, high) in marks.items()}
    letters = [DeadLetter.from_message(m) for m in read_to_end(config, dlq, start=start)]
    if error_class is not None:
        letters = [x for x in letters if x.provenance is not None and x.provenance.error_class == error_class]
    letters.sort(key=lambda x: (x.timestamp_ms or 0, x.ref))
    if limit is not None:
        letters = letters[-limit:] if limit > 0 else []
    return letters, total


def read_dead_letter(config: Mapping[str, Any], dlq: str, ref: LetterRef) -> DeadLetter:
    """One dead letter; OpsError naming the place when there is none."""
    admin = AdminClient(dict(config))
    partitions = partitions_of(admin, dlq)
    if ref.partition not in partitions:
        raise OpsError(f"{dlq!r} has partitions {partitions}; there is no partition {ref.partition}")
    message = read_one(config, dlq, ref.partition, ref.offset)
    if message is not None:
        return DeadLetter.from_message(message)
    raise OpsError(
        f"there is no dead letter at {dlq}:{ref} (deleted by retention, or past the end): "
        f"`accord dlq list --topic {dlq}` shows what is there"
    )


def read_redriven(config: Mapping[str, Any], dlq: str) -> set[str]:
    """Names of the dead letters of `dlq` already redriven, from the markers topic."""
    topic = redriven_topic(dlq)
    if not topic_exists(AdminClient(dict(config)), topic):
        return set()  # nothing was ever redriven (and a dry run creates nothing)
    return {(m.key() or b"").decode() for m in read_to_end(config, topic)}


@dataclass(frozen=True)
class RedriveItem:
    letter: DeadLetter
    outcome: str  # "redriven", "would redrive", "already redriven", "no provenance", "origin topic missing"


@dataclass
class RedriveReport:
    group: str
    dlq: str
    dry_run: bool
    items: list[RedriveItem] = field(default_factory=list)
    missing: list[LetterRef] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)

    def summary(self) -> str:
        done = self.count("would redrive" if self.dry_run else "redriven")
        text = (
            f"{'would redrive' if self.dry_run else 'redrove'} {done} dead letter(s) of {self.dlq!r}; "
            f"{self.count('already redriven')} already redriven, {self.count('no provenance')} without provenance"
        )
        if self.count("origin topic missing"):
            text += f", {self.count('origin topic missing')} whose origin topic no longer exists"
        if self.missing:
            text += f", {len(self.missing)} not found ({', '.join(map(str, self.missing))})"
        return text


def _select(
    letters: Sequence[DeadLetter], refs: Sequence[LetterRef] | None, error_class: str | None
) -> tuple[list[DeadLetter], list[LetterRef]]:
    if refs is not None:
        by_ref = {x.ref: x for x in letters}
        return [by_ref[r] for r in sorted(set(refs)) if r in by_ref], [r for r in refs if r not in by_ref]
    if error_class is not None:
        return [x for x in letters if x.provenance is not None and x.provenance.error_class == error_class], []
    return list(letters), []


def redrive(
    config: Mapping[str, Any],
    *,
    group: str,
    refs: Sequence[LetterRef] | None = None,
    error_class: str | None = None,
    all_letters: bool = False,
    dry_run: bool = False,
    who: str,
    timeout: float = 30.0,
) -> RedriveReport:
    """Re-publish the chosen dead letters of `<group>.dlq` to their origin (see the module's docstring)."""
    if sum((refs is not None, error_class is not None, all_letters)) != 1:
        raise OpsError("choose the dead letters with exactly one of --offset, --error-class or --all")
    dlq = dlq_topic(group)
    admin = AdminClient(dict(config))
    dlq_partitions = partitions_of(admin, dlq)
    report = RedriveReport(group, dlq, dry_run)
    args = {
        "group": group,
        "offsets": [str(r) for r in refs] if refs is not None else None,
        "error_class": error_class,
        "all": all_letters,
        "dry_run": dry_run,
    }

    if dry_run:
        _choose(config, admin, report, dlq_partitions, refs, error_class, done=read_redriven(config, dlq))
        audit(config, AuditRecord.now(who=who, what="dlq.redrive", args=args, result=report.summary()))
        return report

    ensure_audit_topic(admin)
    ensure_topic(admin, redriven_topic(dlq), config={"cleanup.policy": "compact"})
    producer = Producer(
        {
            **config,
            "transactional.id": f"accord.dlq.redrive.{group}",
            "enable.idempotence": True,
            "transaction.timeout.ms": int(timeout * 2000),
        }
    )
    # No delivery callbacks: commit_transaction() flushes and fails if any record failed. (A callback that
    # runs while the producer is being fenced surfaces as a SystemError in confluent-kafka 2.16.)
    try:
        # Fences (and aborts) any redrive of this group still in flight, BEFORE the markers are read.
        producer.init_transactions(timeout)
        origin_partitions = _choose(
            config, admin, report, dlq_partitions, refs, error_class, done=read_redriven(config, dlq)
        )
        record = AuditRecord.now(who=who, what="dlq.redrive", args=args, result=report.summary())
        producer.begin_transaction()
        for item in report.items:
            if item.outcome != "redriven":
                continue
            letter = item.letter
            assert letter.provenance is not None
            origin = letter.provenance
            headers: list[tuple[str, str | bytes | None]] = [
                *letter.other_headers(),
                (H_REDRIVEN_FROM, letter.name.encode()),
            ]
            # Back to the partition it came from, so the key's order there is kept (when it still exists);
            # -1 lets the partitioner place it by key.
            partition = origin.partition if origin.partition in origin_partitions[origin.topic] else -1
            producer.produce(
                origin.topic,
                key=letter.key,
                value=letter.value,
                partition=partition,
                headers=headers,
            )
            marker = {
                "origin": f"{origin.topic}:{origin.partition}:{origin.offset}",
                "by": who,
                "at": datetime.now(UTC).isoformat(),
            }
            producer.produce(redriven_topic(dlq), key=letter.name.encode(), value=json.dumps(marker).encode())
        produce_audit(producer, record)
        producer.commit_transaction(timeout)
    except KafkaException as exc:
        error = exc.args[0]
        if not error.fatal():
            # If the abort fails too, the transaction times out on the broker and is aborted there.
            with contextlib.suppress(KafkaException):
                producer.abort_transaction(timeout)
            producer.close()
        # A fatal error (fenced by a newer redrive) leaves nothing to abort, and confluent-kafka 2.16's close()
        # then fails with a SystemError: the producer is left to the garbage collector.
        raise OpsError(f"redrive of {dlq!r} was rolled back, nothing was published: {error.str()}") from exc
    producer.close()  # not left to the garbage collector, which may keep it connecting after we are done
    return report


def _choose(
    config: Mapping[str, Any],
    admin: AdminClient,
    report: RedriveReport,
    dlq_partitions: Sequence[int],
    refs: Sequence[LetterRef] | None,
    error_class: str | None,
    *,
    done: set[str],
) -> dict[str, list[int]]:
    """Fill `report` with the chosen dead letters and what redrive does with each; the origin partitions."""
    dlq = report.dlq
    if refs is not None:
        # Only the named ones: a dead-letter topic can be long.
        wanted = sorted(r for r in set(refs) if r.partition in dlq_partitions)
        found = {r: read_one(config, dlq, r.partition, r.offset) for r in wanted}
        letters = [DeadLetter.from_message(m) for m in found.values() if m is not None]
    else:
        letters, _ = read_dead_letters(config, dlq)
    chosen, report.missing = _select(letters, refs, error_class)
    origin_partitions: dict[str, list[int]] = {}
    for letter in chosen:
        if letter.provenance is None:
            report.items.append(RedriveItem(letter, "no provenance"))
        elif letter.name in done:
            report.items.append(RedriveItem(letter, "already redriven"))
        else:
            origin_topic = letter.provenance.topic
            if origin_topic not in origin_partitions:
                exists = topic_exists(admin, origin_topic)
                origin_partitions[origin_topic] = partitions_of(admin, origin_topic) if exists else []
            if not origin_partitions[origin_topic]:
                report.items.append(RedriveItem(letter, "origin topic missing"))
                continue
            report.items.append(RedriveItem(letter, "would redrive" if report.dry_run else "redriven"))
    return origin_partitions
