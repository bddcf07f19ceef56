"""The billing connector's outbound story: provisioning requests in, billing commands out, results back as events.

- customer-provision-requested (target BILLING) and subscription-provision-requested on `q2c.provisioning` →
  one command per request id (`provisioning.plan`), recorded in the batch's transaction; a request that can
  never succeed as written → `ProvisioningFailed` (not retryable) at once. Requests for other systems and
  every other event on the topic (the connectors' own answers among them) are not this service's business.
- the command's outcome (the worker's `on_result`, in the transaction that closes the command) →
  `ProvisioningCompleted` or `ProvisioningFailed`, through the outbox.

State per account (the topic's key): the request ids already taken, so a request re-sent under a new event id
is answered once, not commanded twice. Handlers are pure and deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from accord.casework import write_outbox
from accord.commands import Command, OnResult, Outcome, Status
from accord.events import CustomerProvisionRequested, Event, ProvisioningCompleted, SubscriptionProvisionRequested
from accord.runtime import CommandSpec, Decision, Envelope, Outgoing, Service

from .executor import RETRY_LATER
from .provisioning import (
    CUSTOMER_KIND,
    REQUEST_TOPIC,
    SYSTEM,
    Planned,
    Refused,
    command_key,
    completed,
    failed,
    plan,
    reply_context,
)

#: request ids remembered per account: a re-send older than that many later requests would be commanded
#: again, and the command's key (the request id) then makes it a no-op
REMEMBERED = 500
_CODE = re.compile(r"\[([A-Za-z0-9_.\-]+)\]")


def decide(state: Mapping[str, Any] | None, event: Any, *, reply_topic: str) -> Decision[dict[str, Any]]:
    decided = plan(event)
    if decided is None:
        return Decision()
    taken: dict[str, str] = dict((state or {}).get("requests", {}))
    if event.request_id in taken:
        return Decision()  # the same request again (another event id): answered once, by its first command
    taken[event.request_id] = str(event.meta.event_id)
    new_state = {"requests": dict(list(taken.items())[-REMEMBERED:])}
    reply = reply_context(event)
    if isinstance(decided, Refused):
        answer = failed(reply, code=decided.code, message=decided.message, retryable=False, now=event.meta.occurred_at)
        return Decision(state=new_state, outputs=[Outgoing(reply_topic, answer.key(), answer)])
    assert isinstance(decided, Planned)
    command = CommandSpec(SYSTEM, decided.kind, command_key(event.request_id), {**decided.payload, "reply": reply})
    return Decision(state=new_state, commands=[command])


def result_event(command: Command, outcome: Outcome, *, now: datetime) -> Event:
    """The answer a finished command stands for."""
    reply = command.payload["reply"]
    if outcome.status is Status.SUCCEEDED and outcome.result is not None:
        ids = [str(i) for i in outcome.result.get("system_ids", [])]
        created = bool(outcome.result.get("created")) and not outcome.read_back
        return completed(reply, system_ids=ids, created=created, now=now)
    error = outcome.error or "no answer from billing"
    if outcome.status is Status.IN_DOUBT:
        message = f"in doubt: the last call to billing may have been applied; read back before retrying ({error})"
        return failed(reply, code="in-doubt", message=message, retryable=True, now=now)
    if error.startswith("retries spent"):
        return failed(reply, code="retries-exhausted", message=error, retryable=True, now=now)
    found = _CODE.search(error)
    code = found.group(1) if found else "refused"
    return failed(reply, code=code, message=error, retryable=code in RETRY_LATER, now=now)


def on_result(
    schema: str, encode: Callable[[str, Any], bytes], *, reply_topic: str, clock: Callable[[], datetime]
) -> OnResult:
    """The worker's `on_result`: the answer into the outbox, in the transaction that closes the command."""

    async def record(conn: asyncpg.Connection, command: Command, outcome: Outcome) -> None:
        event = result_event(command, outcome, now=clock())
        await write_outbox(conn, schema, [(reply_topic, event.key(), encode(reply_topic, event))])
        if isinstance(event, ProvisioningCompleted) and command.kind == CUSTOMER_KIND:
            await remember_customer(conn, schema, event.system_ids[0], command.payload)

    return record


async def remember_customer(
    conn: asyncpg.Connection, schema: str, customer_id: str, payload: Mapping[str, Any]
) -> None:
    """The customer → account link for the inbound mapping, known from the moment billing has the customer
    (its customer.* events may come later, or before the catch-up cursor). Version 0: any event's wins."""
    customer = payload["customer"]
    await conn.execute(
        f"""INSERT INTO {schema}.billing_customers (customer_id, account_id, legal_entity, country, tax_exempt, version)
            VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (customer_id) DO NOTHING""",
        customer_id,
        customer["metadata"]["crm_account_id"],
        customer["metadata"]["legal_entity"],
        customer["address"]["country"],
        customer["tax_exempt"],
    )


def service(*, name: str = "billing_connector", topics: Mapping[str, str] | None = None) -> Service:
    """The consumer of provisioning requests; `topics` maps catalogue topics to the ones to use instead."""
    topic = dict(topics or {}).get(REQUEST_TOPIC, REQUEST_TOPIC)

    def handler(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide(state, envelope.event, reply_topic=topic)

    return Service(
        name=name,
        topics=[topic],
        handlers={cls.AVRO_NAME: handler for cls in (CustomerProvisionRequested, SubscriptionProvisionRequested)},
        aggregate="provisioning_requests",
    )


__all__ = ["decide", "on_result", "result_event", "service"]
