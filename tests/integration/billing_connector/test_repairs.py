"""REDRIVE_POSTING on real parts: the billing connector's own process (`python -m accord_billing_connector`) with the
session's Kafka, PostgreSQL, schema registry and sandbox. The test makes billing documents through the sandbox's
billing API while the connector is down (so the ordinary flow never told them), starts it, publishes the
reconciler's repair requests to its own `recon.repairs` topic, and reads what the connector published back from
Kafka; then it publishes the same requests again and sees nothing more.

The second test pins the property that makes the repair safe, on the ERP connector's decider and its executor
against the sandbox ERP: a document re-sent under a new event is upserted under its externalId (one entry), and a
document never seen is posted.
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
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from accord.commands import Command, Status
from accord.devstack._base import free_port
from accord.events import (
    EVENTS,
    CreditNoteIssued,
    DatePeriod,
    Event,
    InvoiceIssued,
    InvoiceLine,
    InvoiceVoided,
    Meta,
    Money,
    PaymentCollected,
    PaymentRefunded,
    RepairAction,
    RepairRequested,
    SourceSystem,
)
from accord.ingest import stable_event_id
from accord.runtime import producer_config
from accord.serde import EventCodec
from accord_billing_connector.mapping import entity_version
from accord_billing_connector.repairs import REDRIVE_KIND
from accord_erp_connector.erp_client import RECORD, ErpClient, JournalExecutor
from accord_erp_connector.handlers import KIND, ConnectorConfig, decide
from accord_erp_connector.posting import AccountCode, ChartOfAccounts, LegalEntity, PostingRules, Role

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]

API_KEY = "sk_test_billing_connector_repairs"
REPAIRS = "recon.repairs"
PUBLISHED = ("billing.invoices", "billing.payments")


@dataclass
class Connector:
    """One test's world: its topics, its database, its sandbox client, and the connector process."""

    bootstrap: str
    db_url: str
    sandbox_url: str
    registry_url: str
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

    # -- the process -------------------------------------------------------------------------------------

    def start(self) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.db_url,
            "SCHEMA_REGISTRY_URL": self.registry_url,
            "ACCORD_SANDBOX_URL": self.sandbox_url,
            "ACCORD_BILLING_API_KEY": API_KEY,
            "ACCORD_BILLING_WEBHOOK_SECRETS": "whsec_repairs_tests",
            "ACCORD_BILLING_HTTP_PORT": str(self.port),
            "ACCORD_BILLING_TOPICS": json.dumps(self.topics),
            "ACCORD_BILLING_CONSUMER_GROUP": self.group,
            # The catch-up starts after billing's newest event and runs once: only the repair tells the documents.
            "ACCORD_BILLING_POLL_INTERVAL_SECONDS": "3600",
            "ACCORD_BILLING_COMMAND_RETRY_BASE_SECONDS": "0.2",
            "ACCORD_BILLING_COMMAND_MAX_ATTEMPTS": "3",
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "accord_billing_connector"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def healthy(self, within: float = 60) -> bool:
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

    # -- Kafka ---------------------------------------------------------------------------------------------

    def produce(self, *requests: RepairRequested) -> None:
        topic = self.topics[REPAIRS]
        producer = Producer(producer_config(self.bootstrap))
        for r in requests:
            producer.produce(topic, key=r.key().encode(), value=self.codec.encode(topic, r))
        assert producer.flush(30) == 0

    def published(self, account_id: str) -> list[Event]:
        """Every event of `account_id` on this test's billing topics now (all partitions, from the beginning)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": 3,
            }
        )
        topics = [self.topics[t] for t in PUBLISHED]
        assignment = [
            TopicPartition(t, p, 0) for t in topics for p in consumer.list_topics(t, timeout=10).topics[t].partitions
        ]
        consumer.assign(assignment)
        out: list[Event] = []
        at_end: set[tuple[str, int]] = set()
        deadline = time.monotonic() + 30
        try:
            while len(at_end) < len(assignment) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add((msg.topic(), msg.partition()))
                    continue
                if msg.key() == account_id.encode():
                    out.append(self.codec.decode(msg.topic(), msg.value()).event)
        finally:
            consumer.close()
        assert len(at_end) == len(assignment), "the billing topics could not be read to their end"
        return out

    # -- the connector's tables ----------------------------------------------------------------------------

    def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.db_url)
            try:
                return list(await conn.fetch(sql, *args))
            except asyncpg.UndefinedTableError:
                return []
            finally:
                await conn.close()

        return asyncio.run(run())

    def redrives(self) -> dict[str, str]:
        """The re-drive commands' statuses, by key."""
        rows = self.query(
            "SELECT idempotency_key, status FROM billing_connector.commands WHERE kind = $1", REDRIVE_KIND
        )
        return {r["idempotency_key"]: r["status"] for r in rows}

    def settled(self, keys: int, within: float = 120) -> dict[str, str]:
        """Wait until `keys` re-drive commands are recorded and final, and the outbox is published."""
        deadline = time.monotonic() + within
        while True:
            self.alive()
            commands = self.redrives()
            final = all(s in ("succeeded", "failed") for s in commands.values())
            unpublished = self.query("SELECT count(*) AS n FROM billing_connector.outbox")
            if len(commands) >= keys and final and unpublished and unpublished[0]["n"] == 0:
                return commands
            assert time.monotonic() < deadline, f"re-drives not settled: {commands}"
            time.sleep(0.3)

    # -- billing, through its API ----------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.sandbox.post(f"/billing/v1{path}", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str) -> dict[str, Any]:
        response = self.sandbox.get(f"/billing/v1{path}")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def invoice(self, customer: str, amount: int, *, finalize: bool = True) -> dict[str, Any]:
        self.post("/invoiceitems", {"customer": customer, "amount": amount, "currency": "eur", "description": "Work"})
        invoice = self.post("/invoices", {"customer": customer, "auto_advance": False})
        if finalize:
            invoice = self.post(f"/invoices/{invoice['id']}/finalize", {"auto_advance": False})
        return invoice


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
    # One partition for the requests: a request published later is consumed later (the test's sentinel relies on it).
    topics = {REPAIRS: topic_factory(partitions=1, prefix="recon-repairs")}
    for t in ("q2c.provisioning", "billing.subscriptions", "billing.invoices", "billing.payments", "billing.usage"):
        topics[t] = topic_factory(partitions=3, prefix=t.replace(".", "-"))
    with EventCodec.connect(registry_url, auto_register=True) as codec:
        # The subjects of this test's topics, registered as `accord schemas register` does for the catalogue's.
        for cls in EVENTS.values():
            if cls.TOPIC in topics:
                codec.schema_id(topics[cls.TOPIC], cls)
        c = Connector(kafka_bootstrap, db_url, sandbox_url, registry_url, codec, topics, group_id, tmp_path / "p.log")
        try:
            yield c
        finally:
            if c.process is not None:
                c.process.kill()
                c.process.wait(timeout=30)
            c.sandbox.close()


def repair(entity_type: str, entity_id: str, **changes: Any) -> RepairRequested:
    repair_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "meta": Meta(
            event_id=uuid.UUID(repair_id),  # as the reconciler makes them: the event id is the repair id
            event_type=RepairRequested.AVRO_NAME,
            occurred_at=datetime.datetime.now(datetime.UTC),
            source_system=SourceSystem.ACCORD,
            source_id=repair_id,
            correlation_id=f"finding-{entity_id}",
            causation_id=None,
            legal_entity="EU",
            entity_version=1,
        ),
        "repair_id": repair_id,
        "divergence_key": f"journal:EU/{entity_id}:missing",
        "divergence_id": f"div-{entity_id}",
        "action": RepairAction.REDRIVE_POSTING,
        "target_system": SourceSystem.BILLING,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "account_id": None,
        "detail": f"the ERP has no posting of {entity_type} {entity_id}",
        **changes,
    }
    return RepairRequested(**fields)


def told(events: list[Event]) -> Counter[tuple[str, str]]:
    """(event type, document id) of each event: what was told, how many times."""

    def document(e: Event) -> str:
        for name in ("credit_note_id", "refund_id", "payment_id", "invoice_id", "document_id"):
            if isinstance(getattr(e, name, None), str):
                return str(getattr(e, name))
        raise AssertionError(e)

    return Counter((type(e).__name__, document(e)) for e in events)


def repaired_id(request: RepairRequested, billing_event: str, cls: type[Event]) -> uuid.UUID:
    return stable_event_id("billing", f"accord-repair:{request.repair_id}:{billing_event}", cls.AVRO_NAME)


def test_repair_requests_republish_the_documents_from_billing_once(connector: Connector) -> None:
    c = connector
    account = f"001{c.ns}"
    customer = c.post(
        "/customers",
        {
            "name": f"Repair {account}",
            "currency": "eur",
            "address": {"country": "DE"},
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
            "metadata": {"crm_account_id": account, "legal_entity": "EU"},
        },
    )["id"]
    # Billing's documents, made before the connector runs: the ordinary flow never told any of them.
    paid = c.invoice(customer, 10000)
    paid = c.post(f"/invoices/{paid['id']}/pay", {})
    charge = paid["charge"]
    refund = c.post("/refunds", {"charge": charge, "amount": 1000})
    note = c.post("/credit_notes", {"invoice": paid["id"], "amount": 500, "reason": "order_change"})
    void = c.invoice(customer, 2000)
    void = c.post(f"/invoices/{void['id']}/void", {})
    draft = c.invoice(customer, 3000, finalize=False)
    newest = c.get("/events?limit=1")["data"][0]  # billing's position after the last change of these documents

    requests = {
        "invoice": repair("invoice", paid["id"]),
        "payment": repair("payment", charge),
        "refund": repair("refund", refund["id"]),
        "credit_note": repair("credit_note", note["id"]),
        "void": repair("invoice", void["id"]),
    }
    refused = {
        "draft": repair("invoice", draft["id"]),
        "gone": repair("invoice", f"in_{c.ns}missing"),
    }
    not_ours = [
        repair("account", account, action=RepairAction.RESYNC_CRM_STATUS, target_system=SourceSystem.CRM),
        repair("invoice", paid["id"], action=RepairAction.READ_BACK, target_system=SourceSystem.ERP),
    ]
    c.start()
    try:
        assert c.healthy()
        c.produce(*requests.values(), *refused.values(), *not_ours)
        commands = c.settled(len(requests) + len(refused))
        assert Counter(commands.values()) == Counter({"succeeded": len(requests), "failed": len(refused)}), commands

        events = c.published(account)
        expected = Counter(
            {
                ("InvoiceIssued", paid["id"]): 1,
                ("TaxCalculated", paid["id"]): 1,
                ("PaymentCollected", charge): 1,
                ("PaymentRefunded", refund["id"]): 1,
                ("CreditNoteIssued", note["id"]): 1,
                ("InvoiceIssued", void["id"]): 1,
                ("TaxCalculated", void["id"]): 1,
                ("InvoiceVoided", void["id"]): 1,
            }
        )
        assert told(events) == expected
        by_type = {(type(e).__name__, told([e]).most_common(1)[0][0][1]): e for e in events}

        # What billing holds now, told the way mapping.py tells a delivery; ids from the repair, caused by it.
        issued = by_type[("InvoiceIssued", paid["id"])]
        assert isinstance(issued, InvoiceIssued)
        assert (issued.total.amount, issued.tax_total.amount, issued.total.currency) == (
            Decimal(paid["total"]).scaleb(-2),
            Decimal(paid["tax"]).scaleb(-2),
            "EUR",
        )
        assert issued.invoice_number == paid["number"] and issued.account_id == account
        assert issued.meta.event_id == repaired_id(requests["invoice"], "invoice.finalized", InvoiceIssued)
        collected = by_type[("PaymentCollected", charge)]
        assert isinstance(collected, PaymentCollected)
        assert (collected.amount.amount, collected.invoice_id) == (Decimal(paid["amount_paid"]).scaleb(-2), paid["id"])
        assert collected.meta.event_id == repaired_id(
            requests["payment"], "invoice.payment_succeeded", PaymentCollected
        )
        refunded = by_type[("PaymentRefunded", refund["id"])]
        assert isinstance(refunded, PaymentRefunded)
        assert (refunded.amount.amount, refunded.payment_id) == (Decimal("10.00"), charge)
        credited = by_type[("CreditNoteIssued", note["id"])]
        assert isinstance(credited, CreditNoteIssued)
        assert (credited.total.amount, credited.invoice_id) == (Decimal("5.00"), paid["id"])
        voided = by_type[("InvoiceVoided", void["id"])]
        # what remained due: the credit note's customer credit was applied when this invoice was finalized
        remaining = Decimal(void["amount_remaining"]).scaleb(-2)
        assert isinstance(voided, InvoiceVoided) and voided.voided_amount.amount == remaining
        assert voided.meta.occurred_at == datetime.datetime.fromtimestamp(
            void["status_transitions"]["voided_at"], datetime.UTC
        )
        causes = {e.meta.causation_id for e in events}  # type: ignore[attr-defined]
        assert causes == {str(requests[k].meta.event_id) for k in requests}
        # Each at billing's position when it was read: one version for a document's events.
        versions = {e.meta.entity_version for e in events}  # type: ignore[attr-defined]
        assert min(versions) >= entity_version(newest)  # ranked after every change billing reported of them
        assert by_type[("InvoiceIssued", void["id"])].meta.entity_version == voided.meta.entity_version  # type: ignore[attr-defined]

        # The refused ones are logged with the reason, and told nothing.
        log = c.log.read_text()
        for name, code in (("draft", "not-finalized"), ("gone", "resource_missing")):
            r = refused[name]
            line = next((ln for ln in log.splitlines() if r.repair_id in ln and "not done" in ln), "")
            assert f"[{code}]" in line and r.entity_id in line, (name, log[-3000:])
        assert customer not in log and f"Repair {account}" not in log

        # Again: the same requests redelivered, and one re-sent under a new event id. Then a new repair of the
        # payment, published last on the one partition: once it is told, every request before it was consumed.
        resent = requests["invoice"].model_copy(
            update={"meta": requests["invoice"].meta.model_copy(update={"event_id": uuid.uuid4()})}
        )
        sentinel = repair("payment", charge)
        c.produce(*requests.values(), *refused.values(), resent, sentinel)
        c.settled(len(requests) + len(refused) + 2)
        again = c.published(account)
        assert told(again) == expected + Counter({("PaymentCollected", charge): 1})
        [newest] = [e for e in again if e.meta.causation_id == str(sentinel.meta.event_id)]  # type: ignore[attr-defined]
        assert newest.meta.event_id == repaired_id(sentinel, "invoice.payment_succeeded", PaymentCollected)  # type: ignore[attr-defined]
        inbox = c.query(
            "SELECT status, count(*) AS n FROM billing_connector.ingest_inbox "
            "WHERE source_event_id LIKE 'accord-repair:%' GROUP BY 1"
        )
        assert {r["status"]: r["n"] for r in inbox} == {"processed": 7}
        assert c.stop() == 0
    finally:
        if c.process is not None:
            c.stop(signal.SIGKILL)
    assert "billing connector stopped" in c.log.read_text()


# -- the ERP side: why re-driving a posted document is safe ------------------------------------------------

ACCOUNTS = {
    Role.RECEIVABLE: ("1100", "AcctRec"),
    Role.CASH: ("1000", "Bank"),
    Role.REVENUE: ("4000", "Income"),
    Role.TAX_PAYABLE: ("2200", "OthCurrLiab"),
    Role.REFUNDS: ("4900", "Income"),
    Role.ROUNDING: ("7990", "Expense"),
}


@pytest.fixture
async def erp(sandbox_url: str) -> AsyncIterator[tuple[ErpClient, PostingRules, LegalEntity]]:
    """A fresh subsidiary (EUR) and chart of accounts of this test's own, through the sandbox ERP's API."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as http:
        client = ErpClient(http, client_id="accord-erp-connector", client_secret="s3cret")
        tag = uuid.uuid4().hex[:8]
        entity = LegalEntity(f"R{tag}")
        await client.upsert("subsidiary", entity, {"name": f"Repair {tag} B.V.", "country": "NL", "currency": "EUR"})
        codes = {}
        for role, (number, kind) in ACCOUNTS.items():
            code = f"r{tag}-{number}"
            body = {"acctNumber": number, "acctName": f"{role.value} {tag}", "acctType": kind}
            await client.upsert("account", code, body)
            codes[role] = AccountCode(code)
        rules = PostingRules(charts={entity: ChartOfAccounts(codes)}, base_currencies={entity: "EUR"})
        yield client, rules, entity


def invoice_issued(invoice_id: str, entity: str, *, version: int, day: datetime.date) -> InvoiceIssued:
    eur = "EUR"
    line = InvoiceLine(
        line_id=f"{invoice_id}-1",
        description="Work",
        quantity=Decimal(1),
        unit_price=Money(amount=Decimal("100.00"), currency=eur),
        amount=Money(amount=Decimal("100.00"), currency=eur),
        period=DatePeriod(start_date=day, end_date=day),
        proration=False,
        taxes=[],
    )
    return InvoiceIssued(
        meta=Meta(
            event_id=uuid.uuid4(),
            event_type=InvoiceIssued.AVRO_NAME,
            occurred_at=datetime.datetime.now(datetime.UTC),
            source_system=SourceSystem.BILLING,
            source_id=f"evt-{uuid.uuid4().hex[:8]}",
            correlation_id="acc-1",
            causation_id=None,
            legal_entity=entity,
            entity_version=version,
        ),
        account_id="acc-1",
        invoice_id=invoice_id,
        invoice_number=f"INV-{invoice_id}",
        issue_date=day,
        due_date=day,
        lines=[line],
        subtotal=Money(amount=Decimal("100.00"), currency=eur),
        tax_total=Money(amount=Decimal(0), currency=eur),
        total=Money(amount=Decimal("100.00"), currency=eur),
        amount_due=Money(amount=Decimal("100.00"), currency=eur),
    )


async def test_the_erp_connector_upserts_a_redriven_document_and_posts_a_never_seen_one(
    erp: tuple[ErpClient, PostingRules, LegalEntity],
) -> None:
    client, rules, entity = erp
    config = ConnectorConfig(rules=rules)
    executor = JournalExecutor(client)
    day = datetime.date.fromisoformat((await client.http.get("/admin/clock")).json()["now"][:10])

    async def post(state: dict[str, Any] | None, event: InvoiceIssued) -> tuple[dict[str, Any], dict[str, Any]]:
        decision = decide(state, event, config)
        [command] = decision.commands
        assert command.kind == KIND
        result = await executor.execute(
            Command(1, command.system, command.kind, command.key, command.payload, 1, Status.PENDING)
        )
        assert decision.state is not None
        return decision.state, dict(result)

    async def entries(external_id: str) -> list[dict[str, Any]]:
        q = f"externalId EQUAL {external_id}"
        response = await client.http.get(f"{RECORD}/journalEntry", params={"q": q}, auth=client.auth)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    # Posted by the ordinary flow, then told again by a re-drive (a new event, billing's newer position).
    state, first = await post(None, invoice_issued(f"in_{uuid.uuid4().hex[:8]}", entity, version=10, day=day))
    original = next(iter(state["invoices"]))
    redriven = invoice_issued(original, entity, version=99, day=day)
    state, second = await post(state, redriven)
    assert second["external_id"] == first["external_id"] and second["erp_id"] == first["erp_id"]
    assert [e["id"] for e in await entries(first["external_id"])] == [first["erp_id"]]
    full = await client.get("journalEntry", f"eid:{first['external_id']}")
    assert full is not None and str(full["custbody_accord_version"]) == "99"  # the entry says what it reflects now
    assert Decimal(str(full["total"])) == Decimal("100.00")

    # A document the ERP never saw: posted by the re-drive like any other.
    _, fresh = await post(state, invoice_issued(f"in_{uuid.uuid4().hex[:8]}", entity, version=7, day=day))
    assert fresh["external_id"] != first["external_id"]
    assert [e["id"] for e in await entries(fresh["external_id"])] == [fresh["erp_id"]] != [first["erp_id"]]
