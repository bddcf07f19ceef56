"""The pure pieces the running connector adds: placing an entry again after the ERP refused its period, customer
requests and their answers, the ERP's periods as events, and the settings' refusals."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from accord.commands import Command, Outcome, Status
from accord.events import (
    CustomerProvisionRequested,
    PeriodStatus,
    ProvisioningCompleted,
    ProvisioningFailed,
    SourceSystem,
    new_meta,
)
from accord_erp_connector.handlers import ConnectorConfig, decide, decide_provisioning, provisioning_result, service
from accord_erp_connector.holds import Calendar
from accord_erp_connector.periods import period_record, status_event
from accord_erp_connector.posting import (
    ChartOfAccounts,
    ClosedPeriodPolicy,
    DocumentId,
    DocumentKind,
    EventId,
    Hold,
    LegalEntity,
    PeriodCalendar,
    PeriodId,
    PeriodState,
    Post,
    PostingRules,
    RevenueLine,
    SourceDocument,
    Summarization,
    build_entry,
    from_payload,
    replace_after_refusal,
    to_payload,
)
from accord_erp_connector.settings import ErpConnectorSettings
from accord_erp_connector.summaries import batch_closed
from tests.unit.erp_connector.test_handlers import invoice

pytestmark = pytest.mark.unit

EU = LegalEntity("EU")
RULES = PostingRules(charts={EU: ChartOfAccounts.default()}, base_currencies={EU: "EUR"})
CONFIG = ConnectorConfig(rules=RULES, topics={"erp.journal": "t.journal", "q2c.provisioning": "t.prov"})


def entry_of(kind: DocumentKind = DocumentKind.INVOICE, day: date = date(2026, 3, 14)) -> Any:
    doc = SourceDocument(
        kind=kind,
        document_id=DocumentId("in_1"),
        event_id=EventId("ev-1"),
        legal_entity=EU,
        document_date=day,
        currency="EUR",
        total=Decimal("121.00"),
        lines=(RevenueLine(Decimal("100.00"), "SEAT"),) if kind is DocumentKind.INVOICE else (),
        tax=Decimal("21.00") if kind is DocumentKind.INVOICE else Decimal(0),
    )
    return build_entry(doc, RULES)


# -- placing again after a refusal ----------------------------------------------------------------------


def test_an_entry_comes_back_from_its_payload_as_it_was() -> None:
    entry = entry_of()
    back = from_payload(json.loads(json.dumps(to_payload(entry))))
    assert to_payload(back) == to_payload(entry)
    assert back.touches_receivable and back.total == entry.total


MARCH, APRIL, MAY = PeriodId("2026-03"), PeriodId("2026-04"), PeriodId("2026-05")


@pytest.mark.parametrize(
    ("calendar", "refused", "policy", "expected"),
    [
        pytest.param({}, PeriodState.CLOSED, ClosedPeriodPolicy.REROUTE, ("post", "2026-04-01"), id="stale-open"),
        pytest.param(
            {APRIL: PeriodState.CLOSED},
            PeriodState.CLOSED,
            ClosedPeriodPolicy.REROUTE,
            ("post", "2026-05-01"),
            id="next-closed-too",
        ),
        pytest.param(
            {APRIL: PeriodState.AR_LOCKED},
            PeriodState.AR_LOCKED,
            ClosedPeriodPolicy.REROUTE,
            ("post", "2026-05-01"),
            id="ar-locked-skipped-for-receivables",
        ),
        pytest.param({}, PeriodState.CLOSED, ClosedPeriodPolicy.HOLD, ("hold", "2026-03-14"), id="hold"),
    ],
)
def test_a_refused_period_goes_to_the_policy_whatever_the_calendar_said(
    calendar: dict[PeriodId, PeriodState], refused: PeriodState, policy: ClosedPeriodPolicy, expected: tuple[str, str]
) -> None:
    cal = PeriodCalendar({(EU, p): s for p, s in calendar.items()})
    decision = replace_after_refusal(entry_of(), cal, refused, policy)
    kind = "post" if isinstance(decision, Post) else "hold"
    assert (kind, decision.entry.accounting_date.isoformat()) == expected
    if isinstance(decision, Post):
        assert decision.entry.original_date == date(2026, 3, 14) and "original date 2026-03-14" in decision.entry.memo
    else:
        assert isinstance(decision, Hold) and decision.period_state is refused


def test_a_rerouted_entry_refused_again_keeps_its_first_date() -> None:
    once = replace_after_refusal(entry_of(), PeriodCalendar(), PeriodState.CLOSED, ClosedPeriodPolicy.REROUTE)
    again = replace_after_refusal(
        from_payload(to_payload(once.entry)), PeriodCalendar(), PeriodState.CLOSED, ClosedPeriodPolicy.REROUTE
    )
    assert again.entry.period == MAY and again.entry.original_date == date(2026, 3, 14)


def test_a_payment_refused_in_an_ar_locked_period_moves_on() -> None:
    payment = entry_of(DocumentKind.PAYMENT)
    decision = replace_after_refusal(payment, PeriodCalendar(), PeriodState.AR_LOCKED, ClosedPeriodPolicy.REROUTE)
    assert isinstance(decision, Post) and decision.entry.period == APRIL


def test_the_calendar_holder_answers_what_it_was_told_last() -> None:
    calendar = Calendar()
    calendar.set("EU", "2026-03", PeriodState.CLOSED)
    assert calendar().state(EU, MARCH) is PeriodState.CLOSED and calendar().state(EU, APRIL) is PeriodState.OPEN


# -- customer requests ----------------------------------------------------------------------------------


def request(target: SourceSystem = SourceSystem.ERP, **changes: Any) -> CustomerProvisionRequested:
    fields: dict[str, Any] = {
        "meta": new_meta(
            CustomerProvisionRequested,
            source_system=SourceSystem.ACCORD,
            source_id="wf-1",
            correlation_id="wf-1",
            entity_version=1,
            occurred_at=datetime(2026, 3, 14, tzinfo=UTC),
        ),
        "request_id": "req-1",
        "workflow_id": "wf-1",
        "account_id": "001A",
        "target_system": target,
        "name": "Acme B.V.",
        "country_code": "NL",
        "currency": "EUR",
        "legal_entity": "EU",
        "tax_exempt": False,
        **changes,
    }
    return CustomerProvisionRequested(**fields)


def test_an_erp_request_is_one_command_keyed_by_its_request_id() -> None:
    decision = decide_provisioning(None, request(), CONFIG)
    (command,) = decision.commands
    assert (command.system, command.kind, command.key) == ("erp", "upsert_customer", "customer/001A/req-1")
    assert command.payload["legal_entity"] == "EU" and command.payload["account_id"] == "001A"
    assert list(decision.outputs) == []
    # The same request re-sent under another event (each request() has a new event id): nothing new, so it is
    # answered once.
    resent = request()
    assert resent.meta.event_id != decision.state["provisioning"]["req-1"]  # type: ignore[index]
    assert list(decide_provisioning(decision.state, resent, CONFIG).commands) == []


def test_a_request_for_billing_is_not_the_erp_connectors() -> None:
    decision = decide_provisioning(None, request(SourceSystem.BILLING), CONFIG)
    assert (decision.state, list(decision.outputs), list(decision.commands)) == (None, [], [])


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param({"legal_entity": " "}, "legal_entity is empty", id="no-entity"),
        pytest.param({"currency": "eur"}, "currency 'eur'", id="lower-case-currency"),
        pytest.param({"name": ""}, "company name", id="no-name"),
    ],
)
def test_an_invalid_request_is_answered_failed_at_once(changes: dict[str, Any], fragment: str) -> None:
    decision = decide_provisioning(None, request(**changes), CONFIG)
    assert list(decision.commands) == []
    (out,) = decision.outputs
    assert out.topic == "t.prov" and isinstance(out.event, ProvisioningFailed)
    assert out.event.error_code == "invalid-request" and not out.event.retryable and fragment in out.event.error_message


def command(payload: dict[str, Any]) -> Command:
    return Command(7, "erp", "upsert_customer", "customer/001A/req-1", payload, 1, Status.RUNNING)


PAYLOAD = decide_provisioning(None, request(), CONFIG).commands[0].payload
NOW = datetime(2026, 3, 14, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        pytest.param(
            Outcome(Status.SUCCEEDED, result={"erp_id": "42", "created": True}),
            ("completed", ["42"], True),
            id="created",
        ),
        pytest.param(
            Outcome(Status.SUCCEEDED, result={"erp_id": "42", "created": False}, read_back=True),
            ("completed", ["42"], False),
            id="found",
        ),
        pytest.param(
            Outcome(Status.FAILED, error="ErpRejected: [MAPPING_MISSING] the ERP has no subsidiary"),
            ("failed", "MAPPING_MISSING", False),
            id="refused",
        ),
        pytest.param(
            Outcome(Status.FAILED, error="retries spent after 8 attempt(s); last: TransientError: HTTP 429"),
            ("failed", "retries-exhausted", True),
            id="retries-spent",
        ),
        pytest.param(Outcome(Status.IN_DOUBT, error="no answer"), ("failed", "in-doubt", True), id="in-doubt"),
    ],
)
def test_each_outcome_is_one_answer_with_the_requests_ids(outcome: Outcome, expected: tuple[Any, ...]) -> None:
    answer = provisioning_result(command(dict(PAYLOAD)), outcome, now=NOW)
    assert (answer.request_id, answer.workflow_id, answer.account_id) == ("req-1", "wf-1", "001A")
    assert answer.target_system is SourceSystem.ERP and answer.request_type == CustomerProvisionRequested.AVRO_NAME
    if isinstance(answer, ProvisioningCompleted):
        assert ("completed", answer.system_ids, answer.created) == expected
    else:
        assert ("failed", answer.error_code, answer.retryable) == expected
    # Whatever the status, the answer to one request has one id: a re-run of the closing step is the same event.
    other = provisioning_result(command(dict(PAYLOAD)), Outcome(Status.IN_DOUBT, error="x"), now=NOW)
    assert answer.meta.event_id == other.meta.event_id


# -- periods --------------------------------------------------------------------------------------------


RAW = {
    "id": "901",
    "subsidiary": {"id": "12"},
    "startDate": "2026-03-01",
    "endDate": "2026-03-31",
    "status": "ar_locked",
    "lastModifiedDate": "2026-04-02T08:00:00Z",
}


@pytest.mark.parametrize(
    ("raw", "entities", "expected"),
    [
        pytest.param(RAW, {"12": "EU"}, ("EU", "2026-03", PeriodStatus.CLOSING), id="ar-locked-is-closing"),
        pytest.param({**RAW, "status": "closed"}, {"12": "EU"}, ("EU", "2026-03", PeriodStatus.CLOSED), id="closed"),
        pytest.param(RAW, {}, None, id="subsidiary-without-code"),
        pytest.param({**RAW, "status": "archived"}, {"12": "EU"}, None, id="status-added-later"),
    ],
)
def test_an_erp_period_becomes_its_status_event(
    raw: dict[str, Any], entities: dict[str, str], expected: tuple[str, str, PeriodStatus] | None
) -> None:
    record = period_record(raw, entities)
    if expected is None:
        assert record is None
        return
    assert record is not None
    event = status_event(record, version=3)
    assert (event.legal_entity, event.period, event.status) == expected
    assert event.key() == f"{expected[0]}/{expected[1]}" and event.meta.entity_version == 3
    assert event.dates.start_date == date(2026, 3, 1) and event.dates.end_date == date(2026, 3, 31)
    assert status_event(record, version=3).meta.event_id == event.meta.event_id  # the same change, the same event


# -- settings -------------------------------------------------------------------------------------------

BASE = {
    "DATABASE_URL": "postgresql://localhost/x",
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
    "ACCORD_SANDBOX_URL": "http://127.0.0.1:1",
    "ACCORD_ERP_CLIENT_ID": "accord",
    "ACCORD_ERP_CLIENT_SECRET": "s3cret",
}


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ErpConnectorSettings:
    for name, value in {**BASE, **env}.items():
        monkeypatch.setenv(name, value)
    return ErpConnectorSettings()  # type: ignore[call-arg]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        ACCORD_ERP_TOPICS='{"billing.invoices": "t-inv"}',
        ACCORD_ERP_CLOSED_PERIOD_POLICY="HOLD",
        ACCORD_ERP_RATES='{"USD/EUR": "0.92"}',
        ACCORD_ERP_ACCOUNTS='{"rounding": "acct-7999"}',
    )
    assert s.topics == {"billing.invoices": "t-inv"} and s.rate_table() == {("USD", "EUR"): Decimal("0.92")}
    rules = s.rules()
    assert rules.closed_period_policy is ClosedPeriodPolicy.HOLD and set(rules.charts) == {"US", "EU", "UK"}
    assert rules.charts[EU].accounts[next(r for r in rules.charts[EU].accounts if r.value == "ROUNDING")] == "acct-7999"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        pytest.param({"ACCORD_ERP_SUMMARIZATION": "DAILY"}, "PER_DOCUMENT", id="summarization"),
        pytest.param({"ACCORD_ERP_SUMMARY_GRACE_DAYS": "-1"}, "greater than or equal", id="grace"),
        pytest.param({"ACCORD_ERP_RATES": '{"USD": "0.9"}'}, "FROM/TO", id="rate-pair"),
        pytest.param({"ACCORD_ERP_RATES": '{"USD/EUR": "-1"}'}, "positive decimal", id="negative-rate"),
        pytest.param({"ACCORD_ERP_BASE_CURRENCIES": '{"EU": "euro"}'}, "ISO 4217", id="currency"),
        pytest.param({"ACCORD_ERP_ACCOUNTS": '{"sales": "acct-1"}'}, "unknown account roles", id="role"),
        pytest.param({"ACCORD_ERP_CLOSED_PERIOD_POLICY": "IGNORE"}, "REROUTE", id="policy"),
    ],
)
def test_settings_refuse_what_cannot_run(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        settings(monkeypatch, **env)


# -- SUMMARIZED -----------------------------------------------------------------------------------------


def test_summarized_documents_are_staged_not_posted() -> None:
    rules = PostingRules(RULES.charts, RULES.base_currencies, summarization=Summarization.SUMMARIZED)
    config = ConnectorConfig(rules=rules)
    decision = decide(None, invoice(), config)
    (command,) = decision.commands
    assert (command.system, command.kind) == ("accord", "stage_entry")
    assert command.payload["external_id"] == "accord-EU-invoice-in_1" and command.payload["period"] == "2026-03"
    assert [type(o.event).__name__ for o in decision.outputs] == ["JournalRequested"]  # the lineage, per document
    assert service(config, summary_job=True).handlers  # with the period job, it runs


@pytest.mark.parametrize(
    ("period", "today", "grace", "closed"),
    [
        pytest.param("2026-03", date(2026, 3, 31), 0, False, id="last-day-still-open"),
        pytest.param("2026-03", date(2026, 4, 1), 0, True, id="next-day-closed"),
        pytest.param("2026-03", date(2026, 4, 3), 3, False, id="within-grace"),
        pytest.param("2026-03", date(2026, 4, 4), 3, True, id="after-grace"),
        pytest.param("2025-12", date(2026, 1, 1), 0, True, id="year-end"),
    ],
)
def test_a_periods_batch_closes_after_the_period_and_its_grace(
    period: str, today: date, grace: int, closed: bool
) -> None:
    assert batch_closed(period, today=today, grace_days=grace) is closed
