"""Gap and order tracking of the CRM's change-data-capture stream. Pure: no I/O, the caller persists `state()`.

What counts as a gap, and what does not (read from the sandbox, as Salesforce documents):

- **Replay ids are not contiguous.** They are positions in one event log shared with other event kinds, so a
  jump from 41 to 57 proves nothing. Reading on from the last processed replay id (the pull path) is complete
  by construction; only an expired replay id (`INVALID_REPLAY_ID`) loses events, and the client answers it with
  a re-sync by query.
- **Sequence numbers within a transaction have holes** for objects that publish no events (OpportunityLineItem),
  so a hole there is not a loss either. The tracker records the holes per transactionKey (`holes()`), for the
  record, and checks only *order* within a transaction (a lower sequence after a higher one = reordered).
- **commitNumber** counts the org's transactions. On the push path (webhooks, which may be dropped, delayed or
  reordered) a commit number more than one above the highest seen means a transaction may be missing, and a
  replay id already processed is a duplicate. A possible loss says `Refetch(since_replay_id=N)`: read the
  replay since the last processed replay id. A commit that published nothing also leaves a hole, so a pull
  after a refetch is trusted and never asks again.
- **GAP_* events** carry no field values: the mapper reads the records (so nothing to refetch here) — except
  `GAP_OVERFLOW`, too many changes to describe: `Resync(since=commit time)` by query on LastModifiedDate.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .mapping import Header, parse_header


@dataclass(frozen=True, slots=True)
class Refetch:
    """Read the replay again after `since_replay_id` (the last processed one): events may have been missed."""

    since_replay_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Re-read changed records by query since `since`: the stream cannot describe what changed."""

    since: datetime.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Observation:
    header: Header
    duplicate: bool = False
    reordered: bool = False
    action: Refetch | Resync | None = None


@dataclass
class _Transaction:
    sequences: set[int] = field(default_factory=set)
    highest: int = 0


@dataclass
class CdcTracker:
    """Per channel (one replay stream): the last processed replay id and the highest commit number seen.

    `observe(event, pushed=...)` before mapping (it changes nothing), `processed(event)` once the mapped events
    are stored; an event observed but never processed (a mapping retried later) is not a duplicate.
    """

    channel: str
    last_replay_id: int | None = None
    highest_commit: int | None = None
    _transactions: dict[str, _Transaction] = field(default_factory=dict)
    _processed: set[int] = field(default_factory=set)

    def observe(self, event: Mapping[str, Any], *, pushed: bool) -> Observation:
        header = parse_header(event)
        commit = _commit_number(event)
        tx = self._transactions.get(header.transaction_key) or _Transaction()
        reordered = header.sequence < tx.highest
        duplicate = header.sequence in tx.sequences or (
            header.replay_id is not None
            and self.last_replay_id is not None
            and header.replay_id <= self.last_replay_id
            and (pushed or header.replay_id in self._processed)
        )
        action: Refetch | Resync | None = None
        if header.change_type == "GAP_OVERFLOW":
            since = datetime.datetime.fromtimestamp(header.commit_timestamp_ms / 1000, datetime.UTC)
            action = Resync(since, f"GAP_OVERFLOW on {header.entity} in transaction {header.transaction_key}")
        elif pushed and commit is not None and self.highest_commit is not None and commit > self.highest_commit + 1:
            missing = f"{self.highest_commit + 1}..{commit - 1}"
            action = Refetch(self.last_replay_id or -2, f"commit numbers {missing} not seen on {self.channel}")
        return Observation(header, duplicate=duplicate, reordered=reordered, action=action)

    def processed(self, event: Mapping[str, Any]) -> None:
        """The event's canonical events are stored: move the cursor (never backwards)."""
        header = parse_header(event)
        tx = self._transactions.setdefault(header.transaction_key, _Transaction())
        tx.sequences.add(header.sequence)
        tx.highest = max(tx.highest, header.sequence)
        commit = _commit_number(event)
        if commit is not None:
            self.highest_commit = commit if self.highest_commit is None else max(self.highest_commit, commit)
        replay = header.replay_id
        if replay is None:
            return
        self._processed.add(replay)
        if self.last_replay_id is None or replay > self.last_replay_id:
            self.last_replay_id = replay

    def holes(self, transaction_key: str) -> list[int]:
        """Sequence numbers of a transaction not seen (expected for objects that publish no events)."""
        tx = self._transactions.get(transaction_key)
        if tx is None:
            return []
        return [n for n in range(1, tx.highest) if n not in tx.sequences]

    def forget(self, transaction_key: str) -> None:
        """Drop a finished transaction's bookkeeping (memory stays bounded on a long-lived stream)."""
        self._transactions.pop(transaction_key, None)

    def state(self) -> dict[str, Any]:
        """What to persist between runs: restore with `CdcTracker(channel, **state)`."""
        return {"last_replay_id": self.last_replay_id, "highest_commit": self.highest_commit}


def _commit_number(event: Mapping[str, Any]) -> int | None:
    inner = event.get("payload") if isinstance(event.get("payload"), Mapping) else event
    assert isinstance(inner, Mapping)
    header = inner.get("ChangeEventHeader")
    value = header.get("commitNumber") if isinstance(header, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
