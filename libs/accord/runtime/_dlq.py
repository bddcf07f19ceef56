"""The dead-letter contract: topic `<group>.dlq`, the original key and value untouched, provenance in headers.

Any tool (kcat, the Confluent CLI, `accord dlq`) can read where a record came from and why it was set aside.
Error messages are diagnoses of the record's form (bad magic byte, unknown schema id 42, field 'amount'
missing), never copies of its values: dead letters must not carry personal data beyond the record itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"

H_TOPIC = "accord.dlq.origin.topic"
H_PARTITION = "accord.dlq.origin.partition"
H_OFFSET = "accord.dlq.origin.offset"
H_TIMESTAMP = "accord.dlq.origin.timestamp"  # the origin record's timestamp, ms since the epoch
H_GROUP = "accord.dlq.group"
H_ERROR_CLASS = "accord.dlq.error.class"
H_ERROR_MESSAGE = "accord.dlq.error.message"
H_ATTEMPTS = "accord.dlq.attempts"
H_FAILED_AT = "accord.dlq.failed_at"  # ISO 8601 UTC
PROVENANCE_HEADERS = (
    H_TOPIC,
    H_PARTITION,
    H_OFFSET,
    H_TIMESTAMP,
    H_GROUP,
    H_ERROR_CLASS,
    H_ERROR_MESSAGE,
    H_ATTEMPTS,
    H_FAILED_AT,
)
#: set on a record re-published by `accord dlq redrive`, naming the dead letter it came from
H_REDRIVEN_FROM = "accord.dlq.redriven_from"


def dlq_topic(group: str) -> str:
    return f"{group}{DLQ_SUFFIX}"


@dataclass(frozen=True)
class Provenance:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    group: str
    error_class: str
    error_message: str
    attempts: int
    failed_at: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (H_TOPIC, self.topic.encode()),
            (H_PARTITION, str(self.partition).encode()),
            (H_OFFSET, str(self.offset).encode()),
            (H_TIMESTAMP, str(self.timestamp_ms if self.timestamp_ms is not None else "").encode()),
            (H_GROUP, self.group.encode()),
            (H_ERROR_CLASS, self.error_class.encode()),
            (H_ERROR_MESSAGE, self.error_message[:1000].encode()),
            (H_ATTEMPTS, str(self.attempts).encode()),
            (H_FAILED_AT, self.failed_at.encode()),
        ]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes | None]] | None) -> Provenance:
        """Read provenance back; raises KeyError naming the header a record lacks."""
        values = {name: (value or b"").decode(errors="replace") for name, value in headers or []}
        timestamp = values[H_TIMESTAMP]
        return cls(
            topic=values[H_TOPIC],
            partition=int(values[H_PARTITION]),
            offset=int(values[H_OFFSET]),
            timestamp_ms=int(timestamp) if timestamp else None,
            group=values[H_GROUP],
            error_class=values[H_ERROR_CLASS],
            error_message=values[H_ERROR_MESSAGE],
            attempts=int(values[H_ATTEMPTS]),
            failed_at=values[H_FAILED_AT],
        )
