"""The reconciler's READ_BACK repair: the in-doubt journal command handed back to the command worker's own read-back.

A `post_journal` command whose last call may have been applied ends `in_doubt` (retries spent) and its result path
publishes `JournalRejected` "in doubt …". The reconciler, seeing that, asks for a READ_BACK (`handlers.
decide_repair` records one `accord/read_back` command per repair_id). When that command closes, in its transaction
(`results.CommandResults`), `read_back` here makes the in-doubt command due again with a fresh budget of attempts.
The worker then does what it does with any in-doubt command (accord.commands, step 3): it reads the entry back by
its externalId first; found → SUCCEEDED with what the ERP holds, not found → the stored payload posted again (an
upsert by externalId, so a second post is harmless). Either way the command closes through the normal result path:
`JournalPosted`, with the event id it would have had had the first call answered (derived from the command's key),
and the reconciler sees the systems agree. Nothing here calls the ERP: there is one read-back, the worker's.

Which command, by `choose` (pure): of the journal commands for the externalId (a document re-sent under a new
event has several), the newest one not refused decides: in doubt → read back; succeeded → the entry is posted and
its JournalPosted published, nothing to do; pending or running → the worker has it in hand. Every one refused for
good, or none here → logged, nothing done (the reconciler tries again after its timeout, then hands it to a person).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg

from accord.commands import Status

from .handlers import KIND, SYSTEM

log = logging.getLogger("accord.erp_connector")


class Verdict(StrEnum):
    READ_BACK = "read_back"  # the newest in-doubt command is due again: the worker reads back, then finishes it
    ALREADY_POSTED = "already_posted"  # a command for the entry succeeded: its JournalPosted is out
    IN_PROGRESS = "in_progress"  # a command for the entry is pending or running: the worker has it in hand
    FAILED = "failed"  # every command for the entry was refused for good: reading back cannot finish it
    UNKNOWN = "unknown"  # this connector never requested an entry with that externalId


@dataclass(frozen=True)
class Choice:
    verdict: Verdict
    command_id: int | None = None  # the command made due again (READ_BACK) or the one that decided the verdict


def choose(commands: Sequence[tuple[int, Status]]) -> Choice:
    """What a READ_BACK does, from the (id, status) of the journal commands for its externalId: the newest one not
    refused decides (it carries the latest request for the entry; a document re-sent is a newer command)."""
    live = sorted(((cid, status) for cid, status in commands if status is not Status.FAILED), reverse=True)
    if not live:
        refused = max((cid for cid, _ in commands), default=None)
        return Choice(Verdict.UNKNOWN) if refused is None else Choice(Verdict.FAILED, refused)
    cid, status = live[0]
    if status is Status.SUCCEEDED:
        return Choice(Verdict.ALREADY_POSTED, cid)
    if status is Status.IN_DOUBT:
        return Choice(Verdict.READ_BACK, cid)
    return Choice(Verdict.IN_PROGRESS, cid)


async def read_back(conn: asyncpg.Connection, schema: str, payload: Mapping[str, Any]) -> Choice:
    """Carry out one READ_BACK (in the transaction closing its `read_back` command): the in-doubt journal command
    for `payload["external_id"]` made due now, as an in-doubt command, with its attempts counted afresh."""
    external_id = str(payload["external_id"])
    rows = await conn.fetch(
        f"""SELECT id, status FROM {schema}.commands
            WHERE system = $1 AND kind = $2 AND payload->>'external_id' = $3""",
        SYSTEM,
        KIND,
        external_id,
    )
    choice = choose([(int(r["id"]), Status(r["status"])) for r in rows])
    repair = f"repair {payload['repair_id']} ({payload['divergence_key']})"
    if choice.verdict is Verdict.READ_BACK:
        # `attempts` is only the claim's fencing token while running; the row is not running now, so counting
        # afresh is safe, and gives the read-back the whole retry budget rather than one try.
        await conn.execute(
            f"""UPDATE {schema}.commands
                   SET next_attempt_at = now(), attempts = 0, updated_at = now(),
                       last_error = 'read back again on ' || $2 || '; last: ' || coalesce(last_error, '')
                 WHERE id = $1 AND status = 'in_doubt'""",
            choice.command_id,
            repair,
        )
        log.info("%s: journal entry %s in doubt; command %s is read back again", repair, external_id, choice.command_id)
    elif choice.verdict in (Verdict.ALREADY_POSTED, Verdict.IN_PROGRESS):
        log.info(
            "%s: journal entry %s is %s (command %s): nothing to do",
            repair,
            external_id,
            choice.verdict.value,
            choice.command_id,
        )
    elif choice.verdict is Verdict.FAILED:
        log.warning(
            "%s not carried out: the ERP refused journal entry %s for good (command %s), it is not in doubt; "
            "the finding needs a person",
            repair,
            external_id,
            choice.command_id,
        )
    else:
        log.warning(
            "%s not carried out: this connector (schema %s) never requested a journal entry with externalId %s; "
            "check the connector the reconciler's finding names",
            repair,
            schema,
            external_id,
        )
    return choice
