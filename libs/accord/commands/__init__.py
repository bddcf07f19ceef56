"""Side effects on SaaS systems, made outside handlers: a handler records a command, a worker executes it.

    async with conn.transaction():               # the handler's transaction
        await enqueue(conn, schema="billing_connector", system="billing", kind="create_customer",
                      key=f"{event_id}:create_customer", payload={...})

    worker = CommandWorker(pool, "billing_connector",
                           executors={"billing/create_customer": HttpExecutor(client, path="/v1/customers")},
                           rate_limits={"billing": TokenBucket(rate=25, burst=25)},
                           on_result=record_result_event)   # writes the result event into the outbox
    await worker.run()

The `commands` table comes from `migrate_commands(conn, schema=...)` (migrations 1001+, beside the
runtime's 0001+ in the same schema).
"""

from ._bucket import Clock, ManualClock, MonotonicClock, TokenBucket
from ._http import HttpExecutor, classify, parse_retry_after, send
from ._store import MIGRATIONS, Command, CommandConflict, Status, enqueue, migrate_commands
from ._worker import CommandWorker, Executor, OnResult, Outcome, RetryPolicy

__all__ = [
    "MIGRATIONS",
    "Clock",
    "Command",
    "CommandConflict",
    "CommandWorker",
    "Executor",
    "HttpExecutor",
    "ManualClock",
    "MonotonicClock",
    "OnResult",
    "Outcome",
    "RetryPolicy",
    "Status",
    "TokenBucket",
    "classify",
    "enqueue",
    "migrate_commands",
    "parse_retry_after",
    "send",
]
