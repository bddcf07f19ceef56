"""The hub's three workflows on the real engine, PostgreSQL and registry: the connectors' answers are played by
the test (the connectors' own tests cover their side; the end-to-end test runs them all together)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from accord.casework import Verdict, decide_case
from accord.devstack import repo_root
from accord.events import (
    ContractActivated,
    ContractAmended,
    ContractCancelled,
    ContractLine,
    CustomerAccountUpserted,
    CustomerProvisionRequested,
    Event,
    ExceptionChanged,
    InvoiceIssued,
    JournalPosted,
    Money,
    ProvisioningCompleted,
    ProvisioningFailed,
    SourceSystem,
    SubscriptionProvisionRequested,
    TaxCalculated,
)
from accord.migrations import migrate
from accord.serde import EventCodec
from accord.workflows import WorkflowEngine
from accord_orchestrator.hub import HubConfig
from accord_orchestrator.workflows import workflows
from tests.integration.workflows.conftest import envelope, fresh

pytestmark = pytest.mark.postgres

SCHEMA = "orchestrator"
MIGRATIONS = "services/orchestrator/migrations"
CONFIG = HubConfig(credit_review_threshold=Decimal("100000"), retry_delays=[timedelta(0), timedelta(0)])


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.fixture
async def engine(pool: asyncpg.Pool, codec: EventCodec) -> WorkflowEngine:
    e = WorkflowEngine(workflows(CONFIG), pool=pool, schema=SCHEMA, encode=codec.encode)
    await e.migrate()
    async with pool.acquire() as conn:
        await migrate(conn, repo_root() / MIGRATIONS, schema=SCHEMA)
    return e


class Hub:
    """The engine plus what the test reads back: requests the hub sent, answered one by one."""

    def __init__(self, engine: WorkflowEngine, pool: asyncpg.Pool, codec: EventCodec) -> None:
        self.engine, self.pool, self.codec = engine, pool, codec
        self.seen = 0

    async def deliver(self, *events: Event) -> None:
        await self.engine.deliver([envelope(e) for e in events])

    async def sent(self) -> list[Any]:
        """The events the hub wrote to its outbox since the last call, decoded."""
        rows = await self.pool.fetch(
            f"SELECT id, topic, value FROM {SCHEMA}.outbox WHERE id > $1 ORDER BY id", self.seen
        )
        if rows:
            self.seen = rows[-1]["id"]
        return [self.codec.decode(r["topic"], r["value"]).event for r in rows]

    async def requests(self) -> list[Any]:
        return [e for e in await self.sent() if not isinstance(e, ExceptionChanged)]

    async def instance(self, workflow: str, key: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            f"SELECT step, status, state::text FROM {SCHEMA}.workflow_instances"
            " WHERE workflow = $1 AND correlation_key = $2",
            workflow,
            key,
        )
        assert row is not None, (workflow, key)
        return dict(row)

    async def cases(self) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in await self.pool.fetch(f"SELECT id::text, kind, state FROM {SCHEMA}.cases ORDER BY created_at")
        ]

    async def decide(self, case_id: str, verdict: Verdict) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await decide_case(
                conn, schema=SCHEMA, encode=self.codec.encode, case_id=case_id, verdict=verdict, actor="t"
            )
        decided = [e for e in await self.sent() if isinstance(e, ExceptionChanged)]
        await self.deliver(*decided)


@pytest.fixture
def hub(engine: WorkflowEngine, pool: asyncpg.Pool, codec: EventCodec) -> Hub:
    return Hub(engine, pool, codec)


def upserted(account: str, version: int = 1, **fields: Any) -> CustomerAccountUpserted:
    values = {
        "account_id": account,
        "crm_account_id": account,
        "name": "Acme GmbH",
        "country_code": "DE",
        "currency": "EUR",
        "tax_exempt": False,
        "tax_id": "DE123456789",
        "payment_method": "pm_card_visa",
        "legal_entity": "EU",
        **fields,
    }
    event = fresh(CustomerAccountUpserted, **values)
    return event.model_copy(update={"meta": event.meta.model_copy(update={"entity_version": version})})


def line(code: str, quantity: str, price: str) -> ContractLine:
    return ContractLine(
        line_id=f"l-{code}",
        product_code=code,
        quantity=Decimal(quantity),
        unit_price=Money(amount=Decimal(price), currency="EUR"),
        start_date=datetime.date(2026, 11, 1),
        end_date=datetime.date(2027, 10, 31),
    )


def activated(account: str, contract: str, value: str = "12000") -> ContractActivated:
    return fresh(
        ContractActivated,
        account_id=account,
        contract_id=contract,
        total_contract_value=Money(amount=Decimal(value), currency="EUR"),
        lines=[line("PLAT", "1", value)],
    )


def completed(request: Any, *ids: str) -> ProvisioningCompleted:
    return fresh(
        ProvisioningCompleted,
        request_id=request.request_id,
        workflow_id=request.workflow_id,
        account_id=request.account_id,
        target_system=getattr(request, "target_system", SourceSystem.BILLING),
        request_type=request.meta.event_type,
        system_ids=list(ids),
        created=True,
    )


def failed(request: Any, code: str, retryable: bool) -> ProvisioningFailed:
    return fresh(
        ProvisioningFailed,
        request_id=request.request_id,
        workflow_id=request.workflow_id,
        account_id=request.account_id,
        target_system=SourceSystem.BILLING,
        request_type=request.meta.event_type,
        error_code=code,
        error_message="the outcome of the last call is unknown",
        retryable=retryable,
    )


def invoice(account: str, contract: str, invoice_id: str, total: str) -> InvoiceIssued:
    event = fresh(InvoiceIssued, account_id=account, contract_id=contract, invoice_id=invoice_id)
    return event.model_copy(update={"total": Money(amount=Decimal(total), currency="EUR")})


def posted(invoice_id: str) -> JournalPosted:
    return fresh(JournalPosted, source_document_id=invoice_id, legal_entity="EU", erp_journal_id="je-1")


async def test_lead_to_customer_then_activation_to_posting(hub: Hub) -> None:
    acct = f"001{uuid.uuid4().hex[:8]}"
    await hub.deliver(upserted(acct))
    asks = await hub.requests()
    assert sorted(a.target_system.value for a in asks) == ["BILLING", "ERP"]
    assert all(isinstance(a, CustomerProvisionRequested) for a in asks)
    assert {(a.legal_entity, a.tax_exempt, a.payment_method) for a in asks} == {("EU", True, "pm_card_visa")}
    by_target = {a.target_system.value: a for a in asks}
    await hub.deliver(completed(by_target["BILLING"], "cus_1"), completed(by_target["ERP"], "77"))
    identity = dict(await hub.pool.fetchrow(f"SELECT * FROM {SCHEMA}.identity_map WHERE account_id = $1", acct))
    assert (identity["billing_customer_id"], identity["erp_customer_id"], identity["sync_state"]) == (
        "cus_1",
        "77",
        "synced",
    )

    # the same version again changes nothing; a newer one with the same master asks nothing either
    await hub.deliver(upserted(acct), upserted(acct, version=2))
    assert await hub.requests() == []

    contract = f"800{uuid.uuid4().hex[:8]}"
    await hub.deliver(activated(acct, contract))
    (sub,) = await hub.requests()
    assert isinstance(sub, SubscriptionProvisionRequested) and sub.action.value == "CREATE"
    # the usage line's zero invoice and the real first invoice arrive before billing's answer
    await hub.deliver(invoice(acct, contract, "in_0", "0"), invoice(acct, contract, "in_1", "12000"))
    await hub.deliver(posted("in_1"))  # and even the posting comes before the answer: the mailbox keeps it
    await hub.deliver(completed(sub, "sub_1"))
    done = await hub.instance("activation", contract)
    assert (done["step"], done["status"]) == ("done", "completed")
    assert await hub.cases() == []


async def test_activation_retries_a_failed_provisioning_then_a_person_decides(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    await hub.deliver(activated(acct, contract))
    (first,) = await hub.requests()
    await hub.deliver(failed(first, "in-doubt", retryable=True))
    assert (await hub.instance("activation", contract))["step"] == "retrying"
    assert await hub.engine.fire_due_timers() == 1
    (second,) = await hub.requests()
    assert second.request_id != first.request_id and second.meta.entity_version == 1
    await hub.deliver(failed(second, "in-doubt", retryable=True))
    await hub.engine.fire_due_timers()
    (third,) = await hub.requests()
    await hub.deliver(failed(third, "in-doubt", retryable=True))  # retries spent
    (case,) = await hub.cases()
    assert (case["kind"], case["state"]) == ("subscription-provisioning-failed", "open")
    await hub.decide(case["id"], Verdict.RETRY)
    (fourth,) = await hub.requests()
    await hub.deliver(completed(fourth, "sub_9"))
    assert (await hub.instance("activation", contract))["step"] == "await-first-invoice"


async def test_credit_review_above_the_threshold_waits_for_approval(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    await hub.deliver(activated(acct, contract, value="250000"))
    assert await hub.requests() == []
    (case,) = await hub.cases()
    assert case["kind"] == "credit-review"
    await hub.decide(case["id"], Verdict.APPROVE)
    (sub,) = await hub.requests()
    assert isinstance(sub, SubscriptionProvisionRequested)


async def test_an_invalid_account_raises_a_case_and_the_fix_in_the_crm_provisions_it(hub: Hub) -> None:
    acct = f"001{uuid.uuid4().hex[:8]}"
    await hub.deliver(upserted(acct, tax_id=None))
    assert await hub.requests() == []
    (case,) = await hub.cases()
    assert case["kind"] == "customer-master-invalid"
    await hub.deliver(upserted(acct, version=2))
    assert len(await hub.requests()) == 2


async def test_an_amendment_before_its_subscription_waits_and_asks_again(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    amended = fresh(ContractAmended, account_id=acct, contract_id=contract, amendment_id=f"a{uuid.uuid4().hex[:6]}")
    await hub.deliver(amended)
    (first,) = await hub.requests()
    assert first.action.value == "AMEND" and first.end_date == amended.co_term_end_date
    await hub.deliver(failed(first, "no-subscriptions", retryable=True))
    await hub.engine.fire_due_timers()
    (second,) = await hub.requests()
    await hub.deliver(completed(second, "sub_1"))
    assert (await hub.instance("amendment", amended.amendment_id))["status"] == "completed"


async def test_a_missing_customer_is_waited_for_not_escalated(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    await hub.deliver(activated(acct, contract))
    for _ in range(5):  # beyond the two configured delays: still waiting, at the last delay
        (request,) = await hub.requests()
        await hub.deliver(failed(request, "customer-missing", retryable=True))
        assert (await hub.instance("activation", contract))["step"] == "retrying"
        await hub.engine.fire_due_timers()
    assert await hub.cases() == []


def cancelled(account: str, contract: str) -> ContractCancelled:
    return fresh(ContractCancelled, account_id=account, contract_id=contract)


async def test_a_contract_cancelled_during_its_credit_review_is_never_provisioned(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    await hub.deliver(activated(acct, contract, value="250000"))
    await hub.deliver(cancelled(acct, contract))
    assert (await hub.instance("activation", contract))["step"] == "cancelled"
    (cancel,) = await hub.requests()  # the cancellation's own instance asks billing, which has nothing
    assert cancel.action.value == "CANCEL"
    await hub.deliver(failed(cancel, "no-subscriptions", retryable=True))
    assert (await hub.instance("amendment", f"cancel:{contract}"))["step"] == "nothing-to-cancel"


async def test_a_contract_cancelled_while_billing_creates_it_is_cancelled_after(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    await hub.deliver(activated(acct, contract))
    (create,) = await hub.requests()
    await hub.deliver(cancelled(acct, contract))
    (too_early,) = await hub.requests()
    await hub.deliver(failed(too_early, "no-subscriptions", retryable=True))
    await hub.deliver(completed(create, "sub_1", "sub_2"))
    (undo,) = await hub.requests()
    assert (undo.action.value, undo.contract_id) == ("CANCEL", contract)
    assert (await hub.instance("activation", contract))["step"] == "cancelled"


async def test_an_amendment_of_a_contract_cancelled_before_it_was_provisioned_ends(hub: Hub) -> None:
    acct, contract = f"001{uuid.uuid4().hex[:8]}", f"800{uuid.uuid4().hex[:8]}"
    amended = fresh(ContractAmended, account_id=acct, contract_id=contract, amendment_id=f"a{uuid.uuid4().hex[:6]}")
    await hub.deliver(amended)
    (first,) = await hub.requests()
    await hub.deliver(failed(first, "no-subscriptions", retryable=True))
    await hub.deliver(cancelled(acct, contract))
    assert (await hub.instance("amendment", amended.amendment_id))["step"] == "superseded"


def tax(account: str, document: str, taxable: str, amount: str) -> TaxCalculated:
    return fresh(
        TaxCalculated,
        account_id=account,
        document_id=document,
        taxable_amount=Money(amount=Decimal(taxable), currency="EUR"),
        tax_amount=Money(amount=Decimal(amount), currency="EUR"),
    )


async def test_tax_charged_to_a_reverse_charge_customer_is_a_case(hub: Hub) -> None:
    acct = f"001{uuid.uuid4().hex[:8]}"
    await hub.deliver(upserted(acct))  # German business of the Dutch entity: reverse charge
    await hub.requests()
    await hub.deliver(tax(acct, "in_ok", "100", "0"), tax(acct, "in_bad", "100", "19"))
    (case,) = await hub.cases()
    assert case["kind"] == "tax-mismatch"
    row = await hub.pool.fetchrow(
        f"SELECT invoice_id, evidence::text FROM {SCHEMA}.cases WHERE id = $1::uuid", case["id"]
    )
    assert row["invoice_id"] == "in_bad" and '"tax": "19' in row["evidence"]
