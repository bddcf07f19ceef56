"""The billing executor against the session's real sandbox (and PostgreSQL for the per-account lock): reading
back finds exactly what an earlier, unrecorded call applied, and running a command again creates nothing."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from accord.commands import Command, ManualClock, Status, TokenBucket
from accord.errors import InDoubtError, TransientError
from accord.events import (
    BillingFrequency,
    ContractLine,
    CustomerProvisionRequested,
    Meta,
    Money,
    ProrationPolicy,
    SourceSystem,
    SubscriptionAction,
    SubscriptionProvisionRequested,
)
from accord_billing_connector.executor import RETRY_LATER, BillingApi, BillingRefused, ProvisioningExecutor
from accord_billing_connector.handlers import decide

pytestmark = [pytest.mark.postgres]

API_KEY = "sk_test_billing_connector_executor"


@dataclass
class World:
    executor: ProvisioningExecutor
    sandbox: httpx.AsyncClient
    pool: asyncpg.Pool
    ns: str
    today: datetime.date


@pytest.fixture
async def world(sandbox_url: str, db_url: str) -> AsyncIterator[World]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    assert pool is not None
    async with httpx.AsyncClient(
        base_url=sandbox_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    ) as client:
        now = (await client.get("/admin/clock")).json()["now"]
        today = datetime.datetime.fromisoformat(now.replace("Z", "+00:00")).date()
        try:
            yield World(ProvisioningExecutor(BillingApi(client), pool=pool), client, pool, uuid.uuid4().hex[:10], today)
        finally:
            await pool.close()


def meta(cls: type[Any]) -> Meta:
    return Meta(
        event_id=uuid.uuid4(),
        event_type=cls.AVRO_NAME,
        occurred_at=datetime.datetime.now(datetime.UTC),
        source_system=SourceSystem.ACCORD,
        source_id="test",
        correlation_id="corr",
        entity_version=1,
    )


def as_command(request: Any, n: int = 1) -> Command:
    [spec] = decide(None, request, reply_topic="unused").commands
    return Command(n, spec.system, spec.kind, spec.key, spec.payload, 1, Status.PENDING)


def customer_command(w: World, account: str, **changes: Any) -> Command:
    fields: dict[str, Any] = {
        "meta": meta(CustomerProvisionRequested),
        "request_id": f"{w.ns}-{uuid.uuid4().hex[:6]}",
        "workflow_id": "wf",
        "account_id": account,
        "target_system": SourceSystem.BILLING,
        "name": f"Initech {w.ns}",
        "country_code": "NL",
        "currency": "EUR",
        "legal_entity": "EU",
        "tax_exempt": False,
        **changes,
    }
    return as_command(CustomerProvisionRequested(**fields))


def subscriptions_command(
    w: World, account: str, customer: str, action: SubscriptionAction, lines: list[ContractLine], **changes: Any
) -> Command:
    fields: dict[str, Any] = {
        "meta": meta(SubscriptionProvisionRequested),
        "request_id": f"{w.ns}-{uuid.uuid4().hex[:6]}",
        "workflow_id": "wf",
        "account_id": account,
        "action": action,
        "contract_id": f"800{w.ns}",
        "billing_customer_id": customer,
        "legal_entity": "EU",
        "currency": "EUR",
        "start_date": w.today,
        "end_date": w.today + datetime.timedelta(days=364),
        "lines": lines,
        "proration_policy": ProrationPolicy.NO_PRORATION,
        **changes,
    }
    return as_command(SubscriptionProvisionRequested(**fields))


def seat_line(w: World, quantity: int, frequency: BillingFrequency = BillingFrequency.MONTHLY) -> ContractLine:
    return ContractLine(
        line_id="L-SEAT",
        product_code="SEAT",
        quantity=Decimal(quantity),
        unit_price=Money(amount=Decimal("40"), currency="EUR"),
        start_date=w.today,
        end_date=w.today + datetime.timedelta(days=364),
        billing_frequency=frequency,
    )


async def customers(w: World, account: str) -> list[dict[str, Any]]:
    found = await w.sandbox.get(
        "/billing/v1/customers/search", params={"query": f"metadata['crm_account_id']:'{account}'"}
    )
    data: list[dict[str, Any]] = found.json()["data"]
    return data


async def test_a_customer_applied_but_not_recorded_is_read_back_not_created_again(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    command = customer_command(w, account, payment_method="pm_card_visa")
    assert await w.executor.read_back(command) is None  # billing has no trace yet: the worker will send it
    first = await w.executor.execute(command)  # its answer is "lost": the worker died before recording it
    assert first["created"] is True
    found = await w.executor.read_back(command)
    assert found == {"system_ids": first["system_ids"], "created": False}
    again = await w.executor.execute(command)
    assert again["system_ids"] == first["system_ids"]
    assert [c["id"] for c in await customers(w, account)] == first["system_ids"]


async def test_a_changed_customer_is_updated_in_place(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    first = await w.executor.execute(customer_command(w, account))
    changed = customer_command(w, account, name=f"Initech Renamed {w.ns}", tax_exempt=True, country_code="DE")
    assert await w.executor.read_back(changed) is None  # something to write
    result = await w.executor.execute(changed)
    assert result == {"system_ids": first["system_ids"], "created": False}
    [customer] = await customers(w, account)
    assert (customer["name"], customer["tax_exempt"], customer["address"]["country"]) == (
        f"Initech Renamed {w.ns}",
        "reverse",
        "DE",
    )
    other_currency = customer_command(w, account, currency="GBP")
    with pytest.raises(BillingRefused) as refused:
        await w.executor.execute(other_currency)
    assert refused.value.code == "currency-mismatch"


async def test_subscriptions_are_created_once_and_amended_by_difference(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    customer = (await w.executor.execute(customer_command(w, account, payment_method="pm_card_visa")))["system_ids"][0]
    create = subscriptions_command(
        w, account, customer, SubscriptionAction.CREATE, [seat_line(w, 3), seat_line(w, 1, BillingFrequency.ANNUAL)]
    )
    # Two lines of one product in two cadences: one subscription each.
    assert await w.executor.read_back(create) is None
    made = await w.executor.execute(create)
    assert made["created"] is True and len(made["system_ids"]) == 2
    assert await w.executor.read_back(create) == {"system_ids": made["system_ids"], "created": False}
    assert (await w.executor.execute(create))["system_ids"] == made["system_ids"]
    listed = (await w.sandbox.get("/billing/v1/subscriptions", params={"customer": customer})).json()["data"]
    assert sorted(s["id"] for s in listed) == sorted(made["system_ids"])

    amend = subscriptions_command(w, account, customer, SubscriptionAction.AMEND, [seat_line(w, 7)])
    assert await w.executor.read_back(amend) is None
    await w.executor.execute(amend)
    assert await w.executor.read_back(amend) is not None  # applied: nothing left to write
    monthly = next(
        s
        for s in (await w.sandbox.get("/billing/v1/subscriptions", params={"customer": customer})).json()["data"]
        if s["metadata"]["frequency"] == "Monthly"
    )
    assert [i["quantity"] for i in monthly["items"]["data"]] == [7]
    pending = (await w.sandbox.get("/billing/v1/invoiceitems", params={"customer": customer})).json()["data"]
    assert pending == []  # NO_PRORATION: proration_behavior none


async def test_an_amendment_of_a_contract_billing_never_had_is_refused(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    customer = (await w.executor.execute(customer_command(w, account)))["system_ids"][0]
    with pytest.raises(BillingRefused) as refused:
        await w.executor.execute(
            subscriptions_command(w, account, customer, SubscriptionAction.AMEND, [seat_line(w, 2)])
        )
    assert refused.value.code == "no-subscriptions" and refused.value.code in RETRY_LATER  # not yet, maybe later


async def test_one_account_is_provisioned_by_one_command_at_a_time(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    async with w.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"billing:{account}")
        try:
            with pytest.raises(TransientError):
                await w.executor.execute(customer_command(w, account))
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"billing:{account}")
    assert await customers(w, account) == []


async def test_without_a_customer_id_the_accounts_customer_is_found_or_missing_for_now(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    open_ended = {"billing_customer_id": None, "legal_entity": None}
    create = subscriptions_command(w, account, "unused", SubscriptionAction.CREATE, [seat_line(w, 2)], **open_ended)
    with pytest.raises(BillingRefused) as refused:
        await w.executor.execute(create)
    assert refused.value.code == "customer-missing" and refused.value.code in RETRY_LATER
    customer = (await w.executor.execute(customer_command(w, account, legal_entity="UK", currency="EUR")))[
        "system_ids"
    ][0]
    made = await w.executor.execute(create)
    [sub] = (await w.sandbox.get("/billing/v1/subscriptions", params={"customer": customer})).json()["data"]
    assert made["system_ids"] == [sub["id"]]
    assert sub["metadata"]["legal_entity"] == "UK"  # the customer's


async def test_a_write_applied_then_answered_504_is_in_doubt_and_read_back(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    customer = (await w.executor.execute(customer_command(w, account)))["system_ids"][0]
    # A fault on an endpoint only this test calls: the update of its own customer.
    endpoint = f"POST /billing/v1/customers/{customer}"
    knob = {"system": "billing", "endpoint": endpoint, "timeout_after_write_rate": 1.0}
    assert (await w.sandbox.put("/admin/faults", json=knob)).status_code == 200
    renamed = customer_command(w, account, name=f"Initech In Doubt {w.ns}")
    try:
        with pytest.raises(InDoubtError):
            await w.executor.execute(renamed)
    finally:
        await w.sandbox.delete("/admin/faults", params={"system": "billing", "endpoint": endpoint})
    # The worker's next attempt reads back: billing holds the change, so nothing is sent again.
    assert await w.executor.read_back(renamed) == {"system_ids": [customer], "created": False}
    [found] = await customers(w, account)
    assert found["name"] == f"Initech In Doubt {w.ns}"


async def test_a_429_is_retried_later_and_holds_the_bucket(world: World) -> None:
    w = world
    account = f"001{w.ns}"
    customer = (await w.executor.execute(customer_command(w, account)))["system_ids"][0]
    endpoint = f"POST /billing/v1/customers/{customer}"
    knob = {"system": "billing", "endpoint": endpoint, "rate_429": 1.0}
    assert (await w.sandbox.put("/admin/faults", json=knob)).status_code == 200
    bucket = TokenBucket(rate=100, burst=100, clock=ManualClock())
    executor = ProvisioningExecutor(BillingApi(w.sandbox, bucket=bucket), pool=w.pool)
    try:
        with pytest.raises(TransientError) as raised:
            await executor.execute(customer_command(w, account, name=f"Initech Throttled {w.ns}"))
    finally:
        await w.sandbox.delete("/admin/faults", params={"system": "billing", "endpoint": endpoint})
    assert raised.value.retry_after == 1.0 and not isinstance(raised.value, InDoubtError)
    assert bucket.tokens == 0  # the whole system's calls wait out Retry-After
    [found] = await customers(w, account)
    assert found["name"] == f"Initech {w.ns}"  # refused, not applied
