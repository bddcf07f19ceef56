"""The ERP client and journal executor against the real sandbox process (and, for in-doubt writes, a real
CommandWorker on PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import json
import random
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import fastavro
import pytest

from accord.commands import Command, CommandWorker, Outcome, RetryPolicy, Status, TokenBucket, enqueue
from accord.errors import InDoubtError, TransientError
from accord.events import (
    DatePeriod,
    Event,
    InvoiceIssued,
    InvoiceLine,
    JournalPosted,
    JournalRejected,
    JournalRejectionReason,
    Money,
    SourceSystem,
    new_meta,
)
from accord_erp_connector.erp_client import ErpClient, ErpRejected, JournalExecutor, rejection_code
from accord_erp_connector.handlers import ConnectorConfig, decide, on_result
from accord_erp_connector.posting import (
    ChartOfAccounts,
    DocumentId,
    DocumentKind,
    EventId,
    JournalEntry,
    RefundTreatment,
    RevenueLine,
    SourceDocument,
    build_entry,
    summarize,
    to_payload,
)
from tests.integration.erp_connector.conftest import SCHEMA, Books

pytestmark = pytest.mark.postgres

D = Decimal
JOURNAL_PUT = "PUT /erp/services/rest/record/v1/journalEntry"


def document(
    books: Books, kind: DocumentKind = DocumentKind.INVOICE, day: date | None = None, **fields: Any
) -> SourceDocument:
    base: dict[str, Any] = {
        "kind": kind,
        "document_id": DocumentId(f"{kind.value.lower()}_{random.randrange(10**9)}"),
        "event_id": EventId("ev-1"),
        "legal_entity": books.entity,
        "document_date": day or books.today,
        "currency": "EUR",
        "total": D("121.00"),
        "lines": (RevenueLine(D("100.00"), "SEAT"),),
        "tax": D("21.00"),
    }
    if kind in (DocumentKind.PAYMENT, DocumentKind.REFUND):
        base.update(lines=(), tax=D(0))
    base.update(fields)
    return SourceDocument(**base)


def command(entry: JournalEntry, *, previous: Status = Status.PENDING) -> Command:
    return Command(
        id=0,
        system="erp",
        kind="post_journal",
        key=entry.external_id,
        payload=json.loads(json.dumps(to_payload(entry))),
        attempts=1,
        previous=previous,
    )


async def set_fault(erp: ErpClient, **knob: Any) -> None:
    response = await erp.http.put("/admin/faults", json={"system": "erp", "endpoint": JOURNAL_PUT, **knob})
    assert response.status_code == 200, response.text


async def test_posts_a_journal_entry_with_its_lineage_and_reads_it_back(erp: ErpClient, books: Books) -> None:
    entry = build_entry(
        document(
            books,
            currency="USD",
            rate=D("0.917"),
            total=D("100.00"),
            lines=(RevenueLine(D("33.33")),) * 3,
            tax=D("0.01"),
        ),
        books.rules,
    )
    executor = JournalExecutor(erp)
    result = await executor.execute(command(entry))
    assert result["external_id"] == entry.external_id
    assert result["posting_period"] == books.today.isoformat()[:7]
    assert result["total"] == "91.70" and result["currency"] == "EUR"
    record = await erp.get("journalEntry", result["erp_id"])
    assert record is not None and record["externalId"] == entry.external_id
    assert record["subsidiary"] == {"id": books.subsidiary_id}
    assert record["custbody_accord_documents"] == entry.document_ids[0]
    assert record["custbody_accord_source_currency"] == "USD" and record["custbody_accord_rate"] == "0.917"
    debits = sum(D(str(ln["debit"])) for ln in record["line"]["items"])
    credits = sum(D(str(ln["credit"])) for ln in record["line"]["items"])
    assert debits == credits == D("91.70") and len(record["line"]["items"]) == 6
    assert await executor.read_back(command(entry)) == result


async def test_posting_the_same_external_id_twice_leaves_one_entry(erp: ErpClient, books: Books) -> None:
    entry = build_entry(document(books), books.rules)
    executor = JournalExecutor(erp)
    first = await executor.execute(command(entry))
    second = await executor.execute(command(entry))
    assert first["erp_id"] == second["erp_id"]
    assert [j["id"] for j in await books.journals(entry.external_id)] == [first["erp_id"]]


async def test_a_summary_posts_as_one_entry_with_every_document_in_its_lineage(erp: ErpClient, books: Books) -> None:
    docs = [document(books), document(books), document(books, DocumentKind.PAYMENT)]
    (summary,) = summarize([build_entry(d, books.rules) for d in docs])
    result = await JournalExecutor(erp).execute(command(summary))
    record = await erp.get("journalEntry", result["erp_id"])
    assert record is not None and result["total"] == "242.00"  # AR 242 - 121 nets to 121 Dr; cash 121 Dr
    assert record["custbody_accord_documents"].split(",") == [d.document_id for d in docs]
    assert len(record["line"]["items"]) == 4  # cash, AR, tax, revenue: one line per account


async def test_read_back_of_an_entry_never_posted_is_none(erp: ErpClient, books: Books) -> None:
    entry = build_entry(document(books), books.rules)
    assert await JournalExecutor(erp).read_back(command(entry)) is None


@pytest.mark.parametrize(
    ("status", "kind", "refunds", "code"),
    [
        pytest.param("closed", DocumentKind.INVOICE, RefundTreatment.RECEIVABLE, "PERIOD_CLOSED", id="closed-invoice"),
        pytest.param(
            "closed", DocumentKind.REFUND, RefundTreatment.CONTRA_REVENUE, "PERIOD_CLOSED", id="closed-refund"
        ),
        pytest.param(
            "ar_locked", DocumentKind.INVOICE, RefundTreatment.RECEIVABLE, "PERIOD_LOCKED", id="ar-locked-invoice"
        ),
        pytest.param(
            "ar_locked", DocumentKind.PAYMENT, RefundTreatment.RECEIVABLE, "PERIOD_LOCKED", id="ar-locked-payment"
        ),
        pytest.param(
            "ar_locked", DocumentKind.REFUND, RefundTreatment.CONTRA_REVENUE, None, id="ar-locked-contra-refund-posts"
        ),
    ],
)
async def test_closed_and_ar_locked_periods_are_permanent_errors_with_the_erps_code(
    erp: ErpClient, books: Books, status: str, kind: DocumentKind, refunds: RefundTreatment, code: str | None
) -> None:
    chart = books.rules.charts[books.entity]
    rules = replace(books.rules, charts={books.entity: replace(chart, refunds=refunds)})
    day = date(books.today.year - 1, 6, 15)  # a period of last year: this test's own subsidiary closes it
    await books.set_period(day, status)
    entry = build_entry(document(books, kind, day=day), rules)
    executor = JournalExecutor(erp)
    if code is None:
        result = await executor.execute(command(entry))
        assert result["posting_period"] == day.isoformat()[:7]
        return
    with pytest.raises(ErpRejected) as caught:
        await executor.execute(command(entry))
    assert caught.value.code == code and caught.value.retryable is False
    assert rejection_code(f"ErpRejected: {caught.value}") == code
    assert await books.journals(entry.external_id) == []


async def test_an_unknown_account_is_mapping_missing(erp: ErpClient, books: Books) -> None:
    chart = books.rules.charts[books.entity]
    broken = ChartOfAccounts({**chart.accounts, **{r: "no-such-account" for r in list(chart.accounts)[:1]}})
    rules = replace(books.rules, charts={books.entity: broken})
    with pytest.raises(ErpRejected) as caught:
        await JournalExecutor(erp).execute(command(build_entry(document(books), rules)))
    assert caught.value.code == "MAPPING_MISSING" and "no-such-account" in str(caught.value)


async def test_a_429_is_transient_with_the_erps_retry_after(erp: ErpClient, books: Books) -> None:
    await set_fault(erp, rate_429=1.0)
    entry = build_entry(document(books), books.rules)
    with pytest.raises(TransientError) as caught:
        await JournalExecutor(erp).execute(command(entry))
    assert not isinstance(caught.value, InDoubtError)
    assert caught.value.retry_after == 1.0 and "429" in str(caught.value)
    assert await books.journals(entry.external_id) == []


async def test_the_concurrency_limit_follows_the_published_one(erp: ErpClient, books: Books) -> None:
    assert (await erp.http.put("/admin/erp/limit", json={"concurrency": 2})).status_code == 200
    assert await erp.adopt_published_limit() == 2
    assert erp.concurrency == 2


async def test_calls_under_the_adopted_limit_never_meet_the_erps_429(erp: ErpClient, books: Books) -> None:
    """With the ERP's governance at 1 concurrent request, 6 postings at once all go through, one at a time:
    the ERP rejected none of them (its own counter says so)."""
    assert (await erp.http.put("/admin/erp/limit", json={"concurrency": 1})).status_code == 200
    assert await erp.adopt_published_limit() == 1
    before = (await erp.http.get("/admin/status")).json()["erp"]["rejected"]
    executor = JournalExecutor(erp)
    entries = [build_entry(document(books), books.rules) for _ in range(6)]
    results = await asyncio.gather(*(executor.execute(command(e)) for e in entries))
    assert len({r["erp_id"] for r in results}) == 6
    assert (await erp.http.get("/admin/status")).json()["erp"]["rejected"] == before


async def test_an_expired_session_gets_a_new_token(erp: ErpClient, books: Books) -> None:
    executor = JournalExecutor(erp)
    await executor.execute(command(build_entry(document(books), books.rules)))
    fetched = erp.auth.fetched
    assert (await erp.http.post("/admin/tokens/revoke")).status_code == 200
    await executor.execute(command(build_entry(document(books), books.rules)))
    assert erp.auth.fetched == fetched + 1


async def test_an_in_doubt_write_is_resolved_by_read_back_through_the_command_worker(
    erp: ErpClient, books: Books, pool: asyncpg.Pool
) -> None:
    """The ERP applies the write and answers 504 (the `timeout after write` knob, left on): the worker marks
    the command in doubt, reads the entry back by its externalId at the next attempt, and sends nothing again."""
    await set_fault(erp, timeout_after_write_rate=1.0)
    entry = build_entry(document(books), books.rules)
    async with pool.acquire() as conn:
        await enqueue(
            conn, schema=SCHEMA, system="erp", kind="post_journal", key=entry.external_id, payload=to_payload(entry)
        )
    outcomes: list[Outcome] = []

    async def on_result(conn: asyncpg.Connection, cmd: Command, outcome: Outcome) -> None:
        outcomes.append(outcome)

    worker = CommandWorker(
        pool,
        SCHEMA,
        executors={"erp/post_journal": JournalExecutor(erp)},
        rate_limits={"erp": TokenBucket(rate=50, burst=5)},
        on_result=on_result,
        retry=RetryPolicy(max_attempts=3, base=0.0),
        rng=random.Random(1),
    )
    assert await worker.run_once() == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT status, attempts, last_error FROM {SCHEMA}.commands")
    assert row["status"] == "in_doubt" and "504" in row["last_error"]
    assert len(await books.journals(entry.external_id)) == 1  # applied, though the caller never heard so

    assert await worker.run_once() == 1
    assert [(o.status, o.read_back) for o in outcomes] == [(Status.SUCCEEDED, True)]
    assert outcomes[0].result is not None and outcomes[0].result["external_id"] == entry.external_id
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT status, attempts FROM {SCHEMA}.commands")
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    assert len(await books.journals(entry.external_id)) == 1


async def test_a_closed_period_through_the_worker_fails_the_command_with_the_code(
    erp: ErpClient, books: Books, pool: asyncpg.Pool
) -> None:
    day = date(books.today.year - 1, 2, 10)
    await books.set_period(day, "closed")
    entry = build_entry(document(books, day=day), books.rules)
    async with pool.acquire() as conn:
        await enqueue(
            conn, schema=SCHEMA, system="erp", kind="post_journal", key=entry.external_id, payload=to_payload(entry)
        )
    outcomes: list[Outcome] = []

    async def on_result(conn: asyncpg.Connection, cmd: Command, outcome: Outcome) -> None:
        outcomes.append(outcome)

    worker = CommandWorker(pool, SCHEMA, executors={"erp": JournalExecutor(erp)}, on_result=on_result)
    assert await worker.run_once() == 1
    assert [o.status for o in outcomes] == [Status.FAILED]
    assert rejection_code(outcomes[0].error) == "PERIOD_CLOSED"


# -- the connector end to end: decider → command → worker → result event in the outbox ------------------


def avro(topic: str, event: Any) -> bytes:
    """Avro binary with the event's own schema (no registry here: the outbox row is what is under test)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(event.SCHEMA)), event.to_avro())
    return out.getvalue()


def from_avro(cls: type[Event], data: bytes) -> Any:
    return cls.from_avro(fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(json.loads(cls.SCHEMA))))


def issued(books: Books, day: date) -> InvoiceIssued:
    money = lambda a: Money(amount=Decimal(a), currency="EUR")  # noqa: E731
    line = InvoiceLine(
        line_id="il_1",
        description="Seats",
        product_code="SEAT",
        quantity=Decimal(1),
        unit_price=money("100.00"),
        amount=money("100.00"),
        period=DatePeriod(start_date=day, end_date=day),
        proration=False,
        taxes=[],
    )
    meta = new_meta(
        InvoiceIssued,
        source_system=SourceSystem.BILLING,
        source_id="evt_1",
        correlation_id="corr-e2e",
        entity_version=1,
        legal_entity=books.entity,
    )
    return InvoiceIssued(
        meta=meta,
        account_id="acc-1",
        invoice_id=f"in_{random.randrange(10**9)}",
        invoice_number="INV-1",
        issue_date=day,
        due_date=day,
        lines=[line],
        subtotal=money("100.00"),
        tax_total=money("21.00"),
        total=money("121.00"),
        amount_due=money("121.00"),
    )


@pytest.mark.parametrize("period_status", ["open", "closed"])
async def test_an_invoice_becomes_journal_posted_or_rejected_through_the_worker(
    erp: ErpClient, books: Books, pool: asyncpg.Pool, period_status: str
) -> None:
    day = date(books.today.year - 1, 9, 9)
    await books.set_period(day, period_status)
    event = issued(books, day)
    # The ERP's real answer is under test here, so the connector's own calendar is left open.
    decision = decide(None, event, ConnectorConfig(rules=books.rules))
    async with pool.acquire() as conn, conn.transaction():
        for spec in decision.commands:  # what the runtime does with Decision.commands, in the batch transaction
            await enqueue(conn, schema=SCHEMA, system=spec.system, kind=spec.kind, key=spec.key, payload=spec.payload)
    worker = CommandWorker(
        pool,
        SCHEMA,
        executors={"erp/post_journal": JournalExecutor(erp)},
        on_result=on_result(SCHEMA, avro, clock=lambda: datetime.now(UTC)),
    )
    assert await worker.run_once() == 1
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT topic, key, value FROM {SCHEMA}.outbox")
    (row,) = rows
    assert row["topic"] == "erp.journal" and bytes(row["key"]).decode() == f"{books.entity}/{event.invoice_id}"
    external_id = decision.commands[0].payload["external_id"]
    if period_status == "open":
        posted = from_avro(JournalPosted, bytes(row["value"]))
        (journal,) = await books.journals(external_id)
        assert posted.erp_journal_id == journal["id"] and posted.posting_period == day.isoformat()[:7]
        assert posted.total.amount == Decimal("121.00") and posted.meta.causation_id == str(event.meta.event_id)
    else:
        rejected = from_avro(JournalRejected, bytes(row["value"]))
        assert rejected.reason == JournalRejectionReason.PERIOD_CLOSED and "PERIOD_CLOSED" in rejected.detail
        assert await books.journals(external_id) == []
