"""The billing connector's outbound side as its own process (`python -m accord_billing_connector`) on real parts:
the session's Kafka, PostgreSQL, schema registry and sandbox. The test produces provisioning requests to its
own topics (ACCORD_BILLING_TOPICS), then asserts on what billing holds (read through the sandbox's API) and on
the answers the process published, read back from Kafka.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from accord.devstack._base import free_port
from accord.events import (
    EVENTS,
    BillingFrequency,
    ContractLine,
    CustomerProvisionRequested,
    Event,
    Meta,
    Money,
    ProrationPolicy,
    ProvisioningCompleted,
    ProvisioningFailed,
    SourceSystem,
    SubscriptionAction,
    SubscriptionProvisionRequested,
)
from accord.runtime import producer_config
from accord.serde import EventCodec

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

API_KEY = "sk_test_billing_connector_provisioning"
REQUESTS = "q2c.provisioning"
Answer = ProvisioningCompleted | ProvisioningFailed


@dataclass
class Connector:
    """One test's world: its topics, its database, its sandbox client, and the connector process."""

    bootstrap: str
    db_url: str
    registry_url: str
    sandbox_url: str
    codec: EventCodec
    topics: dict[str, str]
    group: str
    log: Path
    ns: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    sandbox: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.sandbox = httpx.Client(
            base_url=self.sandbox_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        )

    @property
    def requests_topic(self) -> str:
        return self.topics[REQUESTS]

    # -- the process -------------------------------------------------------------------------------------

    def start(self, **env_extra: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.db_url,
            "SCHEMA_REGISTRY_URL": self.registry_url,
            "ACCORD_SANDBOX_URL": self.sandbox_url,
            "ACCORD_BILLING_API_KEY": API_KEY,
            "ACCORD_BILLING_WEBHOOK_SECRETS": "whsec_provisioning_tests",
            "ACCORD_BILLING_HTTP_PORT": str(self.port),
            "ACCORD_BILLING_TOPICS": json.dumps(self.topics),
            "ACCORD_BILLING_CONSUMER_GROUP": self.group,
            "ACCORD_BILLING_POLL_INTERVAL_SECONDS": "3600",  # inbound catch-up is not under test here
            "ACCORD_BILLING_COMMAND_RETRY_BASE_SECONDS": "0.2",
            **env_extra,
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "accord_billing_connector"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def healthy(self, within: float = 60) -> bool:
        """Whether /healthz answers ok before `within` seconds pass (the process started and serves)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.alive()
            try:
                return bool(httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).json()["status"] == "ok")
            except httpx.HTTPError:
                time.sleep(0.2)
        return False

    def alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    # -- requests in, answers out ------------------------------------------------------------------------

    def produce(self, *events: Event) -> None:
        producer = Producer(producer_config(self.bootstrap))
        for event in events:
            producer.produce(
                self.requests_topic, key=event.key().encode(), value=self.codec.encode(self.requests_topic, event)
            )
        assert producer.flush(30) == 0

    def answers(self) -> list[Answer]:
        """Every answer on the requests topic now (all partitions, from the beginning)."""
        topic = self.requests_topic
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "log_level": 3,
            }
        )
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Answer] = []
        at_end: set[int] = set()
        deadline = time.monotonic() + 30
        try:
            while len(at_end) < len(partitions) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                    continue
                event = self.codec.decode(topic, msg.value()).event
                if isinstance(event, ProvisioningCompleted | ProvisioningFailed):
                    out.append(event)
        finally:
            consumer.close()
        return out

    def wait_for_answers(self, request_ids: set[str], within: float = 120) -> dict[str, Answer]:
        deadline = time.monotonic() + within
        while True:
            self.alive()
            found = {a.request_id: a for a in self.answers() if a.request_id in request_ids}
            if set(found) == request_ids:
                return found
            assert time.monotonic() < deadline, f"no answer to {sorted(request_ids - set(found))}"
            time.sleep(0.5)

    # -- billing, through its API ------------------------------------------------------------------------

    def today(self) -> datetime.date:
        now = self.sandbox.get("/admin/clock").json()["now"]
        return datetime.datetime.fromisoformat(now.replace("Z", "+00:00")).date()

    def command_counts(self) -> Counter[str]:
        """The connector's commands by status, read from its table."""

        async def read() -> Counter[str]:
            conn = await asyncpg.connect(self.db_url)
            try:
                rows = await conn.fetch("SELECT status, count(*) AS n FROM billing_connector.commands GROUP BY 1")
            except asyncpg.UndefinedTableError:
                return Counter()
            finally:
                await conn.close()
            return Counter({r["status"]: r["n"] for r in rows})

        return asyncio.run(read())

    def known_account(self, customer_id: str) -> str | None:
        """The account the connector's inbound mapping links a billing customer to."""

        async def read() -> str | None:
            conn = await asyncpg.connect(self.db_url)
            try:
                value = await conn.fetchval(
                    "SELECT account_id FROM billing_connector.billing_customers WHERE customer_id = $1", customer_id
                )
            finally:
                await conn.close()
            return None if value is None else str(value)

        return asyncio.run(read())

    def customers_of(self, account_id: str) -> list[dict[str, Any]]:
        response = self.sandbox.get(
            "/billing/v1/customers/search", params={"query": f"metadata['crm_account_id']:'{account_id}'"}
        )
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def subscriptions_of(self, customer: str) -> list[dict[str, Any]]:
        response = self.sandbox.get("/billing/v1/subscriptions", params={"customer": customer, "limit": 100})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def create_customer(self, account_id: str) -> str:
        response = self.sandbox.post(
            "/billing/v1/customers",
            json={
                "name": f"Pre-existing {account_id}",
                "currency": "eur",
                "address": {"country": "DE"},
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
                "metadata": {"crm_account_id": account_id, "legal_entity": "EU"},
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["id"])


@pytest.fixture
def connector(
    kafka_bootstrap: str,
    db_url: str,
    registry_url: str,
    sandbox_url: str,
    topic_factory: Callable[..., str],
    group_id: str,
    tmp_path: Path,
) -> Iterator[Connector]:
    catalogue = [REQUESTS, "billing.subscriptions", "billing.invoices", "billing.payments", "billing.usage"]
    topics = {t: topic_factory(partitions=3, prefix=t.replace(".", "-")) for t in catalogue}
    with EventCodec.connect(registry_url, auto_register=True) as codec:
        # The subjects of this test's topics, registered as `accord schemas register` does for the catalogue's.
        for cls in EVENTS.values():
            if cls.TOPIC in topics:
                codec.schema_id(topics[cls.TOPIC], cls)
        c = Connector(kafka_bootstrap, db_url, registry_url, sandbox_url, codec, topics, group_id, tmp_path / "p.log")
        try:
            yield c
        finally:
            if c.process is not None:
                c.process.kill()
                c.process.wait(timeout=30)
            c.sandbox.close()


# -- request factories ---------------------------------------------------------------------------------------


def _meta(cls: type[Event], legal_entity: str = "EU") -> Meta:
    return Meta(
        event_id=uuid.uuid4(),
        event_type=cls.AVRO_NAME,
        occurred_at=datetime.datetime.now(datetime.UTC),
        source_system=SourceSystem.ACCORD,
        source_id="test",
        correlation_id="corr-test",
        causation_id=None,
        legal_entity=legal_entity,
        entity_version=1,
    )


def customer_request(account_id: str, request_id: str, **changes: Any) -> CustomerProvisionRequested:
    fields: dict[str, Any] = {
        "meta": _meta(CustomerProvisionRequested),
        "request_id": request_id,
        "workflow_id": f"wf-{account_id}",
        "account_id": account_id,
        "target_system": SourceSystem.BILLING,
        "name": f"Globex {account_id}",
        "country_code": "DE",
        "currency": "EUR",
        "legal_entity": "EU",
        "tax_exempt": True,
        "payment_method": "pm_card_visa",
        **changes,
    }
    return CustomerProvisionRequested(**fields)


def contract_line(
    line_id: str, product: str, quantity: int, price: str, start: datetime.date, **kw: Any
) -> ContractLine:
    return ContractLine(
        line_id=line_id,
        product_code=product,
        quantity=Decimal(quantity),
        unit_price=Money(amount=Decimal(price), currency="EUR"),
        start_date=start,
        end_date=start + datetime.timedelta(days=364),
        **kw,
    )


def subscription_request(
    account_id: str,
    request_id: str,
    customer: str,
    contract_id: str,
    action: SubscriptionAction,
    start: datetime.date,
    lines: list[ContractLine],
    **changes: Any,
) -> SubscriptionProvisionRequested:
    fields: dict[str, Any] = {
        "meta": _meta(SubscriptionProvisionRequested),
        "request_id": request_id,
        "workflow_id": f"wf-{account_id}",
        "account_id": account_id,
        "action": action,
        "contract_id": contract_id,
        "billing_customer_id": customer,
        "legal_entity": "EU",
        "currency": "EUR",
        "start_date": start,
        "end_date": start + datetime.timedelta(days=364),
        "lines": lines,
        "proration_policy": ProrationPolicy.PRORATE_DAILY,
        **changes,
    }
    return SubscriptionProvisionRequested(**fields)


def midnight(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp())


def items_by_product(sub: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["price"]["product"]: i for i in sub["items"]["data"]}


# -- the tests -----------------------------------------------------------------------------------------------


def test_requests_delivered_twice_provision_one_customer_and_one_set_of_subscriptions(connector: Connector) -> None:
    c = connector
    account = f"001{c.ns}"
    contract = f"800{c.ns}"
    today = c.today()
    c.start()
    try:
        assert c.healthy()
        # A customer request delivered twice, and one for the ERP the connector must leave alone.
        first = customer_request(account, f"{c.ns}-customer")
        c.produce(first, first, customer_request(account, f"{c.ns}-erp", target_system=SourceSystem.ERP))
        answer = c.wait_for_answers({first.request_id})[first.request_id]
        assert isinstance(answer, ProvisioningCompleted), answer
        assert answer.created is True and answer.target_system is SourceSystem.BILLING
        [customer] = c.customers_of(account)
        assert answer.system_ids == [customer["id"]]
        assert customer["metadata"] == {"crm_account_id": account, "legal_entity": "EU"}
        assert (customer["currency"], customer["address"]["country"], customer["tax_exempt"]) == (
            "eur",
            "DE",
            "reverse",
        )
        assert customer["invoice_settings"]["default_payment_method"] == "pm_card_visa"
        # ... and the inbound side knows whose customer it is from now on (its events map to the account).
        assert c.known_account(customer["id"]) == account

        # CREATE with annual, monthly and usage lines: delivered twice, and re-sent under a new event id.
        lines = [
            contract_line("L1", "PLAT", 1, "12000", today, billing_frequency=BillingFrequency.ANNUAL),
            contract_line("L2", "SEAT", 5, "40", today, billing_frequency=BillingFrequency.MONTHLY),
            contract_line("L3", "API", 0, "0.05", today, usage_based=True),
        ]
        create = subscription_request(
            account, f"{c.ns}-create", customer["id"], contract, SubscriptionAction.CREATE, today, lines
        )
        resent = create.model_copy(update={"meta": _meta(SubscriptionProvisionRequested)})
        c.produce(create, create, resent)
        created = c.wait_for_answers({create.request_id})[create.request_id]
        assert isinstance(created, ProvisioningCompleted), created
        subs = c.subscriptions_of(customer["id"])
        assert len(subs) == 3
        assert sorted(created.system_ids) == sorted(s["id"] for s in subs)
        by_frequency = {s["metadata"]["frequency"]: s for s in subs}
        assert set(by_frequency) == {"Annual", "Monthly", "Usage"}
        for s in subs:
            assert s["metadata"]["crm_contract_id"] == contract and s["metadata"]["legal_entity"] == "EU"
            assert s["start_date"] == midnight(today)
        recurring = {f: items_by_product(s) for f, s in by_frequency.items()}
        assert recurring["Annual"]["PLAT"]["price"]["recurring"]["interval"] == "year"
        assert (recurring["Monthly"]["SEAT"]["quantity"], recurring["Monthly"]["SEAT"]["price"]["unit_amount"]) == (
            5,
            4000,
        )
        assert recurring["Usage"]["API"]["price"]["recurring"]["usage_type"] == "metered"

        # A second customer request for the same account: the customer is updated, not duplicated.
        renamed = customer_request(account, f"{c.ns}-customer-2", name=f"Globex Renamed {c.ns}")
        c.produce(renamed)
        again = c.wait_for_answers({renamed.request_id})[renamed.request_id]
        assert isinstance(again, ProvisioningCompleted) and again.created is False
        [updated] = c.customers_of(account)
        assert again.system_ids == [customer["id"]] and updated["name"] == f"Globex Renamed {c.ns}"

        # AMEND: more seats, and an annual product added to the annual subscription.
        amend = subscription_request(
            account,
            f"{c.ns}-amend",
            customer["id"],
            contract,
            SubscriptionAction.AMEND,
            today,
            [
                contract_line("L2", "SEAT", 8, "40", today, billing_frequency=BillingFrequency.MONTHLY),
                contract_line("L4", "SUPP", 1, "3000", today, billing_frequency=BillingFrequency.ANNUAL),
            ],
        )
        c.produce(amend)
        amended = c.wait_for_answers({amend.request_id})[amend.request_id]
        assert isinstance(amended, ProvisioningCompleted) and amended.created is False, amended
        subs = {s["metadata"]["frequency"]: s for s in c.subscriptions_of(customer["id"])}
        assert len(subs) == 3
        assert items_by_product(subs["Monthly"])["SEAT"]["quantity"] == 8
        assert set(items_by_product(subs["Annual"])) == {"PLAT", "SUPP"}

        # A payment method billing does not know: refused, for good.
        refused = customer_request(f"{account}-b", f"{c.ns}-refused", payment_method="pm_card_unknown")
        c.produce(refused)
        failed = c.wait_for_answers({refused.request_id})[refused.request_id]
        assert isinstance(failed, ProvisioningFailed), failed
        assert (failed.error_code, failed.retryable) == ("resource_missing", False)
        assert "pm_card_unknown" not in failed.error_message
        assert c.customers_of(f"{account}-b") == []

        # CANCEL at the effective date, without proration.
        end = today + datetime.timedelta(days=20)
        cancel = subscription_request(
            account, f"{c.ns}-cancel", customer["id"], contract, SubscriptionAction.CANCEL, end, []
        )
        c.produce(cancel)
        canceled = c.wait_for_answers({cancel.request_id})[cancel.request_id]
        assert isinstance(canceled, ProvisioningCompleted), canceled
        subs_now = c.subscriptions_of(customer["id"])
        assert sorted(canceled.system_ids) == sorted(s["id"] for s in subs_now)
        assert {s["cancel_at"] for s in subs_now} == {midnight(end)}

        # Exactly one answer per request, and none for the ERP's request.
        counts = Counter(a.request_id for a in c.answers())
        asked = [first, create, renamed, amend, refused, cancel]
        assert counts == Counter({r.request_id: 1 for r in asked})
        assert len(c.customers_of(account)) == 1
        assert c.stop() == 0
    finally:
        if c.process is not None:
            c.stop(signal.SIGKILL)
    assert "billing connector stopped" in c.log.read_text()


def test_a_sigkill_mid_batch_then_a_restart_duplicates_nothing(connector: Connector) -> None:
    c = connector
    today = c.today()
    new_accounts = [f"001{c.ns}n{i}" for i in range(8)]
    booked = {f"001{c.ns}b{i}": "" for i in range(4)}
    for account in booked:
        booked[account] = c.create_customer(account)
    lines = [
        contract_line("L1", "PLAT", 1, "12000", today, billing_frequency=BillingFrequency.ANNUAL),
        contract_line("L2", "SEAT", 3, "40", today, billing_frequency=BillingFrequency.MONTHLY),
    ]
    requests: list[Event] = [customer_request(a, f"{c.ns}-{a}") for a in new_accounts]
    requests += [
        subscription_request(a, f"{c.ns}-{a}", cus, f"800{a}", SubscriptionAction.CREATE, today, lines)
        for a, cus in booked.items()
    ]
    ids = {r.request_id for r in requests}  # type: ignore[attr-defined]
    first_wave, second_wave = requests[: len(new_accounts)], requests[len(new_accounts) :]
    c.produce(*first_wave)
    # Slow enough to be killed mid-way; a short call timeout so the killed calls' leases lapse soon.
    slow = {"ACCORD_BILLING_RATE_LIMIT_PER_SECOND": "2", "ACCORD_BILLING_RATE_LIMIT_BURST": "1"}
    c.start(ACCORD_BILLING_COMMAND_TIMEOUT_SECONDS="4", ACCORD_BILLING_COMMAND_CONCURRENCY="4", **slow)
    deadline = time.monotonic() + 120
    # Killed while calls are in flight (claimed, running) and after some have finished; the second wave is
    # produced just before, so the consumer may be in the middle of its batch too.
    while not ((counts := c.command_counts())["running"] >= 1 and counts["succeeded"] >= 2):
        c.alive()
        assert time.monotonic() < deadline, f"the connector did not get going: {counts}"
        time.sleep(0.05)
    c.produce(*second_wave)
    assert c.stop(signal.SIGKILL) == -signal.SIGKILL
    at_kill = c.command_counts()
    assert at_kill["running"] >= 1 and at_kill["succeeded"] < len(first_wave), at_kill

    c.start(ACCORD_BILLING_COMMAND_TIMEOUT_SECONDS="4")
    try:
        answers = c.wait_for_answers(ids, within=180)
    finally:
        assert c.stop() == 0
    assert all(isinstance(a, ProvisioningCompleted) for a in answers.values()), answers
    for account in new_accounts:
        customers = c.customers_of(account)
        assert len(customers) == 1, f"{account}: {len(customers)} customers"
        assert answers[f"{c.ns}-{account}"].system_ids == [customers[0]["id"]]
    for account, customer in booked.items():
        subs = c.subscriptions_of(customer)
        assert sorted(s["metadata"]["frequency"] for s in subs) == ["Annual", "Monthly"], account
        assert sorted(answers[f"{c.ns}-{account}"].system_ids) == sorted(s["id"] for s in subs)
    # The relay may publish an answer twice across a crash (at least once), but never two different answers.
    by_request: dict[str, set[uuid.UUID]] = {}
    for a in c.answers():
        by_request.setdefault(a.request_id, set()).add(a.meta.event_id)
    assert all(len(event_ids) == 1 for event_ids in by_request.values()), by_request
