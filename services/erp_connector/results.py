"""What each finished command becomes, in the transaction that closes it (the worker's `on_result`).

- `erp/post_journal`: `JournalPosted`, or `JournalRejected`; a refusal of its period (PERIOD_CLOSED/LOCKED) goes to
  the closed-period policy instead (`holds.after_refusal`: rerouted, or held);
- `erp/upsert_customer`: exactly one `ProvisioningCompleted` or `ProvisioningFailed` for its request_id;
- `accord/hold_journal`: the held entry kept and its case opened (`holds.hold`);
- `accord/stage_entry` (SUMMARIZED): the entry staged for its period's summary (`summaries.stage`);
- `accord/read_back` (the reconciler's READ_BACK): the in-doubt journal command made due again (`repairs.read_back`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from accord.commands import Command, Outcome, Status

from . import holds, repairs, summaries
from .handlers import (
    CUSTOMER_KIND,
    HOLD_KIND,
    KIND,
    READ_BACK_KIND,
    STAGE_KIND,
    provisioning_result,
    result_event,
)
from .holds import Calendar, Outbox
from .posting import ClosedPeriodPolicy


class CommandResults:
    def __init__(
        self, outbox: Outbox, *, calendar: Calendar, policy: ClosedPeriodPolicy, clock: Callable[[], datetime]
    ) -> None:
        self.outbox = outbox
        self.calendar = calendar
        self.policy = policy
        self.clock = clock

    async def __call__(self, conn: asyncpg.Connection, command: Command, outcome: Outcome) -> None:
        now = self.clock()
        if command.kind == HOLD_KIND:
            reason = str(command.payload.get("reason") or "period closed")
            await holds.hold(
                conn, self.outbox, command.payload, reason=reason, key=command.key, now=now, emit_rejected=False
            )
            return
        if command.kind == STAGE_KIND:
            await summaries.stage(conn, self.outbox.schema, command.payload)
            return
        if command.kind == READ_BACK_KIND:
            await repairs.read_back(conn, self.outbox.schema, command.payload)
            return
        if command.kind == CUSTOMER_KIND:
            await self.outbox.write(conn, provisioning_result(command, outcome, now=now))
            return
        if command.kind == KIND and outcome.status is Status.FAILED:
            refused = await holds.after_refusal(
                conn, self.outbox, command, outcome, calendar=self.calendar, policy=self.policy, now=now
            )
            if refused:
                return
        await self.outbox.write(conn, result_event(command, outcome, now=now))
