"""Operator actions on a running accord: replay a consumer group, inspect and redrive dead letters.

Plain functions over confluent-kafka's clients, used by `accord replay` / `accord dlq` and by tests.
Every action is appended to the audit topic `accord.audit`.
"""

from ._audit import AUDIT_TOPIC, AuditRecord, audit, operator
from ._dlq import (
    DeadLetter,
    LetterRef,
    RedriveItem,
    RedriveReport,
    read_dead_letter,
    read_dead_letters,
    read_redriven,
    redrive,
    redriven_topic,
)
from ._kafka import OpsError, read_to_end
from ._replay import (
    PartitionMove,
    ReplayPlan,
    ReplayResult,
    Target,
    ToEarliest,
    ToOffset,
    ToTime,
    apply_replay,
    dry_run,
    plan_replay,
)

__all__ = [
    "AUDIT_TOPIC",
    "AuditRecord",
    "DeadLetter",
    "LetterRef",
    "OpsError",
    "PartitionMove",
    "RedriveItem",
    "RedriveReport",
    "ReplayPlan",
    "ReplayResult",
    "Target",
    "ToEarliest",
    "ToOffset",
    "ToTime",
    "apply_replay",
    "audit",
    "dry_run",
    "operator",
    "plan_replay",
    "read_dead_letter",
    "read_dead_letters",
    "read_redriven",
    "read_to_end",
    "redrive",
    "redriven_topic",
]
