"""The connector's decider on the runtime's in-memory twins (HandlerHarness), and its command results."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from accord.commands import Command, Outcome, Status
from accord.errors import ConfigurationError
from accord.events import (
    CreditNoteIssued,
    CreditNoteLine,
    CreditNoteReason,
    DatePeriod,
    ExceptionChanged,
    InvoiceIssued,
    InvoiceLine,
    InvoiceVoided,
    JournalPosted,
    JournalRejected,
    JournalRejectionReason,
    JournalRequested,
    Money,
    PaymentCollected,
    PaymentMethod,
    PaymentRefunded,
    PeriodStatus,
    PeriodStatusChanged,
    SourceDocumentType,
    SourceSystem,
    new_meta,
)
from accord.runtime import Decision
from accord.runtime.testing import HandlerHarness
from accord_erp_connector.handlers import ConnectorConfig, decide, result_event, service, with_period
from accord_erp_connector.posting import (
    ChartOfAccounts,
    ClosedPeriodPolicy,
    LegalEntity,
    PeriodCalendar,
    PeriodId,
    PeriodState,
    PostingRules,
    Summarization,
)

pytestmark = pytest.mark.unit

EU = LegalEntity("EU")
RULES = PostingRules(charts={EU: ChartOfAccounts.default()}, base_currencies={EU: "EUR"})
CONFIG = ConnectorConfig(rules=RULES, rates={("USD", "EUR"): Decimal("0.917")})
AT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def m(amount: str, currency: str = "EUR") -> Money:
    return Money(amount=Decimal(amount), currency=currency)


def meta(cls: type, *, entity: str | None = "EU", at: datetime = AT) -> Any:
    return new_meta(
        cls,
        source_system=SourceSystem.BILLING,
        source_id="evt_1",
        correlation_id="corr-1",
        entity_version=1,
        legal_entity=entity,
        occurred_at=at,
    )


def invoice(invoice_id: str = "in_1", currency: str = "EUR", entity: str | None = "EU") -> InvoiceIssued:
    line = InvoiceLine(
        line_id="il_1",
        description="Seats",
        product_code="SEAT",
        quantity=Decimal(10),
        unit_price=m("10.00", currency),
        amount=m("100.00", currency),
        period=DatePeriod(start_date=date(2026, 3, 1), end_date=date(2026, 3, 31)),
        proration=False,
        taxes=[],
    )
    return InvoiceIssued(
        meta=meta(InvoiceIssued, entity=entity),
        account_id="acc-1",
        invoice_id=invoice_id,
        invoice_number="INV-1",
        issue_date=date(2026, 3, 14),
        due_date=date(2026, 4, 13),
        lines=[line],
        subtotal=m("100.00", currency),
        tax_total=m("21.00", currency),
        total=m("121.00", currency),
        amount_due=m("121.00", currency),
    )


def credit_note() -> CreditNoteIssued:
    line = CreditNoteLine(line_id="cl_1", description="Seats", amount=m("50.00"), taxes=[])
    return CreditNoteIssued(
        meta=meta(CreditNoteIssued),
        account_id="acc-1",
        credit_note_id="cn_1",
        credit_note_number="CN-1",
        invoice_id="in_1",
        issue_date=date(2026, 3, 20),
        reason=CreditNoteReason.ORDER_CHANGE,
        lines=[line],
        subtotal=m("50.00"),
        tax_total=m("10.50"),
        total=m("60.50"),
    )


def payment() -> PaymentCollected:
    return PaymentCollected(
        meta=meta(PaymentCollected),
        account_id="acc-1",
        payment_id="py_1",
        invoice_id="in_1",
        amount=m("121.00"),
        method=PaymentMethod.CARD,
        attempt=1,
        collected_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC),
    )


def refund() -> PaymentRefunded:
    return PaymentRefunded(
        meta=meta(PaymentRefunded),
        account_id="acc-1",
        refund_id="re_1",
        payment_id="py_1",
        amount=m("60.50"),
        refunded_at=datetime(2026, 4, 2, tzinfo=UTC),
    )


def void(invoice_id: str = "in_1") -> InvoiceVoided:
    return InvoiceVoided(
        meta=meta(InvoiceVoided, at=datetime(2026, 4, 5, tzinfo=UTC)),
        account_id="acc-1",
        invoice_id=invoice_id,
        invoice_number="INV-1",
        voided_amount=m("121.00"),
    )


def lines(event: JournalRequested) -> list[tuple[str, str, str]]:
    return [(ln.gl_account, ln.side.value, str(ln.amount.amount)) for ln in event.lines]


@pytest.mark.parametrize(
    ("events", "doc_type", "period_day", "expected"),
    [
        pytest.param(
            [invoice()],
            SourceDocumentType.INVOICE,
            date(2026, 3, 14),
            [
                ("acct-1100", "DEBIT", "121.0000"),
                ("acct-4000", "CREDIT", "100.0000"),
                ("acct-2200", "CREDIT", "21.0000"),
            ],
            id="invoice",
        ),
        pytest.param(
            [credit_note()],
            SourceDocumentType.CREDIT_NOTE,
            date(2026, 3, 20),
            [("acct-1100", "CREDIT", "60.5000"), ("acct-4000", "DEBIT", "50.0000"), ("acct-2200", "DEBIT", "10.5000")],
            id="credit-note",
        ),
        pytest.param(
            [payment()],
            SourceDocumentType.PAYMENT,
            date(2026, 3, 31),
            [("acct-1000", "DEBIT", "121.0000"), ("acct-1100", "CREDIT", "121.0000")],
            id="payment-on-its-utc-date",
        ),
        pytest.param(
            [refund()],
            SourceDocumentType.REFUND,
            date(2026, 4, 2),
            [("acct-1100", "DEBIT", "60.5000"), ("acct-1000", "CREDIT", "60.5000")],
            id="refund",
        ),
        pytest.param(
            [invoice(), void()],
            SourceDocumentType.INVOICE,
            date(2026, 4, 5),
            [
                ("acct-1100", "CREDIT", "121.0000"),
                ("acct-4000", "DEBIT", "100.0000"),
                ("acct-2200", "DEBIT", "21.0000"),
            ],
            id="void-reverses-the-invoice-in-its-own-period",
        ),
    ],
)
async def test_each_document_becomes_a_journal_request(
    events: list[Any], doc_type: SourceDocumentType, period_day: date, expected: list[tuple[str, str, str]]
) -> None:
    harness = HandlerHarness(service(CONFIG))
    for event in events:
        await harness.deliver(event, topic=event.TOPIC)
    requested = harness.published(JournalRequested.TOPIC)[-1]
    assert isinstance(requested, JournalRequested)
    assert requested.source_document_type == doc_type and requested.accounting_date == period_day
    assert lines(requested) == expected
    assert requested.legal_entity == "EU" and requested.key() == f"EU/{requested.source_document_id}"
    assert requested.meta.causation_id == str(events[-1].meta.event_id)


def test_the_decision_records_one_erp_command_keyed_by_entry_and_event() -> None:
    event = invoice()
    decision = decide(None, event, CONFIG)
    assert isinstance(decision, Decision)
    (command,) = decision.commands
    assert (command.system, command.kind) == ("erp", "post_journal")
    assert command.key == f"accord-EU-invoice-in_1@{event.meta.event_id}"
    assert command.payload["external_id"] == "accord-EU-invoice-in_1"
    assert command.payload["source_document_id"] == "in_1" and command.payload["event_ids"] == [
        str(event.meta.event_id)
    ]
    # Pure and deterministic: the same event decides the same, to the event ids it derives.
    again = decide(None, event, CONFIG)
    assert again.commands == decision.commands and again.outputs == decision.outputs


def test_a_zero_invoice_moves_no_money_and_posts_nothing() -> None:
    event = invoice()
    zero = m("0.00")
    line = event.lines[0].model_copy(update={"quantity": Decimal(0), "amount": zero})
    free = event.model_copy(
        update={"lines": [line], "subtotal": zero, "tax_total": zero, "total": zero, "amount_due": zero}
    )
    decision = decide(None, free, CONFIG)
    assert not decision.outputs and not decision.commands
    assert decision.state  # remembered: a later credit note or payment still finds its document


async def test_a_redelivered_event_is_skipped() -> None:
    harness = HandlerHarness(service(CONFIG))
    event = invoice()
    await harness.deliver(event, topic=event.TOPIC)
    await harness.deliver(event, topic=event.TOPIC)
    assert len(harness.published(JournalRequested.TOPIC)) == 1


def test_a_foreign_currency_invoice_is_booked_in_the_base_currency_with_its_source() -> None:
    (out,) = decide(None, invoice(currency="USD"), CONFIG).outputs
    requested = out.event
    assert isinstance(requested, JournalRequested)
    assert {ln.amount.currency for ln in requested.lines} == {"EUR"}
    assert requested.lines[0].amount.amount == Decimal("110.96")  # 121.00 USD x 0.917, half up
    assert requested.lines[0].dimensions == {"source_currency": "USD", "source_amount": "121.0000", "rate": "0.917"}


@pytest.mark.parametrize(
    ("event", "reason", "says"),
    [
        pytest.param(
            void("in_never_seen"), JournalRejectionReason.VALIDATION_FAILED, "no entry to reverse", id="void-unseen"
        ),
        pytest.param(invoice(currency="GBP"), JournalRejectionReason.MAPPING_MISSING, "GBP to EUR", id="no-rate"),
        pytest.param(invoice(entity="XX"), JournalRejectionReason.MAPPING_MISSING, "'XX'", id="no-chart"),
        pytest.param(invoice(entity=None), JournalRejectionReason.MAPPING_MISSING, "legal entity ''", id="no-entity"),
    ],
)
def test_a_document_the_rules_refuse_is_rejected_with_its_reason(
    event: Any, reason: JournalRejectionReason, says: str
) -> None:
    decision = decide(None, event, CONFIG)
    assert decision.commands == ()
    (out,) = decision.outputs
    assert isinstance(out.event, JournalRejected) and out.event.reason == reason and says in out.event.detail


def test_closed_period_reroute_posts_in_the_next_open_period_with_the_original_date() -> None:
    closed = PeriodCalendar({(EU, PeriodId("2026-03")): PeriodState.CLOSED})
    config = ConnectorConfig(rules=RULES, calendar=lambda: closed)
    decision = decide(None, invoice(), config)
    (out,) = decision.outputs
    assert isinstance(out.event, JournalRequested) and out.event.accounting_date == date(2026, 4, 1)
    assert "original date 2026-03-14" in decision.commands[0].payload["memo"]
    assert decision.commands[0].payload["original_date"] == "2026-03-14"


async def test_closed_period_hold_records_a_hold_command_and_keeps_the_entry() -> None:
    closed = PeriodCalendar({(EU, PeriodId("2026-03")): PeriodState.AR_LOCKED})
    rules = PostingRules(RULES.charts, RULES.base_currencies, closed_period_policy=ClosedPeriodPolicy.HOLD)
    harness = HandlerHarness(service(ConnectorConfig(rules=rules, calendar=lambda: closed)))
    await harness.deliver(invoice(), topic=InvoiceIssued.TOPIC)
    (rejected,) = harness.published(JournalRejected.TOPIC)
    assert rejected.reason == JournalRejectionReason.PERIOD_CLOSED and "held for approval" in rejected.detail
    assert [type(e) for e in harness.published(JournalRequested.TOPIC)] == [JournalRejected]  # nothing requested
    # The case in the exception queue is opened where the hold command closes (holds.hold), not here: the
    # decider only records it, so the entry is kept and raised exactly once.
    assert harness.published(ExceptionChanged.TOPIC) == []
    (hold,) = harness.store.commands
    assert (hold.system, hold.kind) == ("accord", "hold_journal")
    assert hold.payload["external_id"] == "accord-EU-invoice-in_1" and "held for approval" in hold.payload["reason"]
    assert list(harness.state("acc-1")["held"]) == ["accord-EU-invoice-in_1"]


# -- results -------------------------------------------------------------------------------------------


ISSUED = invoice()


def finished(outcome: Outcome) -> JournalPosted | JournalRejected:
    command_spec = decide(None, ISSUED, CONFIG).commands[0]
    command = Command(
        id=1,
        system="erp",
        kind="post_journal",
        key=command_spec.key,
        payload=command_spec.payload,
        attempts=1,
        previous=Status.PENDING,
    )
    return result_event(command, outcome, now=datetime(2026, 3, 14, 10, tzinfo=UTC))


def test_a_succeeded_command_is_journal_posted() -> None:
    result = {
        "erp_id": "42",
        "external_id": "accord-EU-invoice-in_1",
        "posting_period": "2026-03",
        "total": "121.00",
        "currency": "EUR",
    }
    event = finished(Outcome(Status.SUCCEEDED, result=result, read_back=True))
    assert isinstance(event, JournalPosted)
    assert (event.erp_journal_id, event.posting_period, event.total.amount) == ("42", "2026-03", Decimal("121.00"))
    assert event.journal_request_id == "accord-EU-invoice-in_1" and event.key() == "EU/in_1"
    assert event.meta.correlation_id == "corr-1"
    # The same command's result is the same event (a re-run of on_result after a crash publishes no new id).
    assert event.meta.event_id == finished(Outcome(Status.SUCCEEDED, result=result)).meta.event_id
    assert event.meta.event_id != finished(Outcome(Status.FAILED, error="x")).meta.event_id


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        pytest.param(
            Outcome(Status.FAILED, error="ErpRejected: [PERIOD_CLOSED] HTTP 400 …"),
            JournalRejectionReason.PERIOD_CLOSED,
            id="closed",
        ),
        pytest.param(
            Outcome(Status.FAILED, error="ErpRejected: [PERIOD_LOCKED] HTTP 400 …"),
            JournalRejectionReason.PERIOD_CLOSED,
            id="ar-locked",
        ),
        pytest.param(
            Outcome(Status.FAILED, error="ErpRejected: [MAPPING_MISSING] no account"),
            JournalRejectionReason.MAPPING_MISSING,
            id="mapping",
        ),
        pytest.param(
            Outcome(Status.FAILED, error="ErpRejected: [UNBALANCED_JOURNAL] …"),
            JournalRejectionReason.VALIDATION_FAILED,
            id="unbalanced",
        ),
        pytest.param(
            Outcome(
                Status.FAILED,
                error="retries spent after 8 attempt(s); last: TransientError: HTTP 429 CONCURRENCY_LIMIT_EXCEEDED",
            ),
            JournalRejectionReason.QUOTA_EXCEEDED,
            id="quota",
        ),
        pytest.param(
            Outcome(Status.IN_DOUBT, error="InDoubtError: HTTP 504"), JournalRejectionReason.UNKNOWN, id="in-doubt"
        ),
    ],
)
def test_a_failed_command_is_journal_rejected_with_the_erps_reason(
    outcome: Outcome, reason: JournalRejectionReason
) -> None:
    event = finished(outcome)
    assert isinstance(event, JournalRejected) and event.reason == reason
    if outcome.status is Status.IN_DOUBT:
        assert "a person must check the ERP for externalId accord-EU-invoice-in_1" in event.detail


def period_event(status: PeriodStatus) -> PeriodStatusChanged:
    return PeriodStatusChanged(
        meta=meta(PeriodStatusChanged),
        legal_entity="EU",
        period="2026-03",
        dates=DatePeriod(start_date=date(2026, 3, 1), end_date=date(2026, 3, 31)),
        status=status,
    )


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (PeriodStatus.OPEN, PeriodState.OPEN),
        (PeriodStatus.CLOSING, PeriodState.AR_LOCKED),
        (PeriodStatus.CLOSED, PeriodState.CLOSED),
        (PeriodStatus.UNKNOWN, PeriodState.AR_LOCKED),  # unchanged from before
    ],
)
def test_period_status_changes_update_the_calendar(status: PeriodStatus, state: PeriodState) -> None:
    before = PeriodCalendar({(EU, PeriodId("2026-03")): PeriodState.AR_LOCKED})
    assert with_period(before, period_event(status)).state(EU, PeriodId("2026-03")) == state


def test_summarized_posting_is_refused_at_start_up_rather_than_ignored() -> None:
    rules = PostingRules(RULES.charts, RULES.base_currencies, summarization=Summarization.SUMMARIZED)
    with pytest.raises(ConfigurationError, match="PER_DOCUMENT"):
        service(ConnectorConfig(rules=rules))
