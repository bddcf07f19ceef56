"""The operator audit trail: one JSON line per operator action on the topic `accord.audit`.

Who acted is taken on trust from ACCORD_OPERATOR, else $USER: operator authentication proper arrives with
the console. The trail records intent and outcome, never record contents (keys and values may be personal
data): dead letters are named by topic, partition and offset.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from ._kafka import OpsError, ensure_topic

AUDIT_TOPIC = "accord.audit"


def operator(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    who = env.get("ACCORD_OPERATOR") or env.get("USER")
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = "unknown"
    return who


@dataclass(frozen=True)
class AuditRecord:
    who: str
    what: str
    args: Mapping[str, Any]
    result: str
    at: str
    host: str

    @classmethod
    def now(cls, *, who: str, what: str, args: Mapping[str, Any], result: str) -> AuditRecord:
        return cls(who, what, dict(args), result, datetime.now(UTC).isoformat(), socket.gethostname())

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "who": self.who,
                "what": self.what,
                "args": self.args,
                "result": self.result,
                "at": self.at,
                "host": self.host,
            },
            sort_keys=True,
            default=str,
        ).encode()


def ensure_audit_topic(admin: AdminClient) -> None:
    # Kept for a year: the trail must outlive the incidents it explains.
    ensure_topic(admin, AUDIT_TOPIC, config={"cleanup.policy": "delete", "retention.ms": str(365 * 86_400_000)})


def produce_audit(producer: Producer, record: AuditRecord) -> None:
    """Queue `record` on `producer` (inside its transaction, when it has one)."""
    producer.produce(AUDIT_TOPIC, key=record.what.encode(), value=record.to_json())


def audit(config: Mapping[str, Any], record: AuditRecord) -> None:
    """Append `record` to the trail and wait for the broker's acknowledgement; OpsError if it is not stored."""
    ensure_audit_topic(AdminClient(dict(config)))
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({**config, "enable.idempotence": True})
    producer.produce(AUDIT_TOPIC, key=record.what.encode(), value=record.to_json(), on_delivery=on_delivery)
    remaining = producer.flush(30)
    producer.close()
    if remaining or errors:
        reason = errors[0].str() if errors else "no acknowledgement within 30 s"
        raise OpsError(f"the audit record for {record.what!r} was not stored on {AUDIT_TOPIC!r}: {reason}")
