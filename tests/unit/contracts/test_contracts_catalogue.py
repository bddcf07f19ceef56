"""The catalogue as committed: generated files current, lint clean, every event class round-trips."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal
from pathlib import Path

import fastavro
import pydantic
import pytest

from accord.devstack import repo_root
from accord.events import EVENTS, Event, InvoiceIssued, Money, SourceSystem, codegen, new_meta
from accord.events import catalogue as source
from accord.events.samples import sample_event
from accord.schema_review import FINANCIAL_TOPICS, lint
from accord.topics import load_catalogue

pytestmark = pytest.mark.unit

ROOT = repo_root()
EVENT_TYPES = sorted(EVENTS.values(), key=lambda cls: cls.AVRO_NAME)


@pytest.fixture(scope="module")
def catalogue() -> source.Catalogue:
    return source.load(ROOT / "schemas")


def test_generated_module_is_current(catalogue: source.Catalogue) -> None:
    committed = (ROOT / codegen.MODULE_PATH).read_text()
    assert codegen.generate_module(catalogue) == committed, "run `accord schemas generate`"


def test_readme_is_current(catalogue: source.Catalogue) -> None:
    committed = (ROOT / codegen.README_PATH).read_text()
    assert codegen.generate_readme(catalogue) == committed, "run `accord schemas generate`"


def test_committed_catalogue_lints_clean(catalogue: source.Catalogue) -> None:
    assert [str(f) for f in lint(catalogue)] == []


def test_catalogue_covers_the_quote_to_cash_events(catalogue: source.Catalogue) -> None:
    wanted = {
        "accord.crm.CustomerAccountUpserted", "accord.crm.CustomerAccountMerged", "accord.crm.ContractActivated",
        "accord.crm.ContractAmended", "accord.crm.ContractRenewed", "accord.crm.ContractCancelled",
        "accord.billing.SubscriptionProvisioned", "accord.billing.SubscriptionChanged",
        "accord.billing.SubscriptionStatusChanged", "accord.billing.UsageRecorded", "accord.billing.TaxCalculated",
        "accord.billing.InvoiceIssued", "accord.billing.InvoiceVoided", "accord.billing.InvoiceMarkedUncollectible",
        "accord.billing.CreditNoteIssued", "accord.billing.PaymentCollected", "accord.billing.PaymentFailed",
        "accord.billing.PaymentRefunded", "accord.erp.CreditHoldChanged", "accord.erp.JournalRequested",
        "accord.erp.JournalPosted", "accord.erp.JournalRejected", "accord.erp.PeriodStatusChanged",
        "accord.recon.DivergenceDetected", "accord.recon.DivergenceResolved", "accord.q2c.ExceptionChanged",
    }  # fmt: skip
    assert wanted <= set(catalogue.events)
    assert set(EVENTS) == set(catalogue.events)


def test_every_event_topic_is_in_the_topics_catalogue_that_accord_topics_reads() -> None:
    topics = {t.name: t for t in load_catalogue(ROOT / "schemas" / "topics.yaml")}
    for cls in EVENT_TYPES:
        assert cls.TOPIC in topics, cls.AVRO_NAME


def test_commercial_topics_are_keyed_by_the_canonical_account_id() -> None:
    commercial = {"crm.accounts", "crm.contracts", "billing.subscriptions", "billing.usage", "billing.invoices",
                  "billing.payments", "erp.receivables"}  # fmt: skip
    for cls in EVENT_TYPES:
        if cls.TOPIC in commercial:
            assert cls.KEY_FIELDS == ("account_id",), cls.AVRO_NAME


def test_financial_events_are_full_compatible_and_others_backward() -> None:
    for cls in EVENT_TYPES:
        expected = "FULL" if cls.TOPIC in FINANCIAL_TOPICS else "BACKWARD"
        assert expected == cls.COMPATIBILITY, cls.AVRO_NAME


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_registered_schema_is_self_contained(cls: type[Event]) -> None:
    # Parsed on its own, with no other schema known: every named type it uses is inlined.
    parsed = fastavro.parse_schema(json.loads(cls.SCHEMA), named_schemas={})
    assert parsed["name"] == cls.AVRO_NAME
    assert json.loads(cls.SCHEMA)["fields"][0]["type"]["name"] == "Meta"


def _roundtrip(event: Event) -> Event:
    schema = fastavro.parse_schema(json.loads(type(event).SCHEMA))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, event.to_avro())
    buffer.seek(0)
    return type(event).from_avro(fastavro.schemaless_reader(buffer, schema, None))


@pytest.mark.parametrize("minimal", [False, True], ids=["all-fields", "minimal"])
@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_every_event_class_roundtrips_through_fastavro(cls: type[Event], minimal: bool) -> None:
    event = sample_event(cls, seed=3, minimal=minimal)
    back = _roundtrip(event)
    assert back == event
    assert type(back) is cls
    assert back.key() and "None" not in back.key()


def _meta(**changes: object) -> dict[str, object]:
    meta = new_meta(
        InvoiceIssued, source_system=SourceSystem.BILLING, source_id="in_1", correlation_id="c-1", entity_version=1
    ).model_dump()
    meta.update(changes)
    return meta


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        pytest.param("10.5", Decimal("10.5000"), id="padded-to-scale"),
        pytest.param("1E+3", Decimal("1000.0000"), id="exponent"),
        pytest.param("-0.0001", Decimal("-0.0001"), id="negative-smallest"),
        pytest.param("99999999999999.9999", Decimal("99999999999999.9999"), id="largest"),
    ],
)
def test_money_amounts_fit_the_avro_decimal(amount: str, expected: Decimal) -> None:
    money = Money(amount=Decimal(amount), currency="EUR")
    assert money.amount == expected
    assert money.amount.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        pytest.param("10.12345", "EUR", "more than 4 decimal places", id="too-precise-not-rounded"),
        pytest.param("123456789012345", "EUR", "more than 18 digits", id="too-large"),
        pytest.param("NaN", "EUR", "finite", id="nan"),
        pytest.param("1", "eur", "pattern", id="currency-lowercase"),
        pytest.param("1", "EURO", "pattern", id="currency-four-letters"),
    ],
)
def test_money_refuses_what_it_cannot_carry_exactly(amount: str, currency: str, error: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        Money(amount=Decimal(amount), currency=currency)


def test_money_refuses_a_float() -> None:
    with pytest.raises(pydantic.ValidationError):
        Money(amount=0.1, currency="EUR")  # type: ignore[arg-type]


def test_meta_refuses_a_naive_timestamp_and_keeps_aware_ones_in_utc() -> None:
    with pytest.raises(pydantic.ValidationError, match="timezone"):
        type(sample_event(InvoiceIssued).meta).model_validate(_meta(occurred_at=datetime.datetime(2026, 1, 1)))
    paris = datetime.timezone(datetime.timedelta(hours=1))
    meta = type(sample_event(InvoiceIssued).meta).model_validate(
        _meta(occurred_at=datetime.datetime(2026, 1, 1, 13, 0, tzinfo=paris))
    )
    assert meta.occurred_at == datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
    assert meta.occurred_at.tzinfo == datetime.UTC


def test_an_event_refuses_meta_of_another_event_type() -> None:
    datum = sample_event(InvoiceIssued).to_avro()
    datum["meta"]["event_type"] = "accord.billing.InvoiceVoided"
    with pytest.raises(pydantic.ValidationError, match=r"this is a accord\.billing\.InvoiceIssued event"):
        InvoiceIssued.from_avro(datum)


def test_events_are_immutable_and_refuse_unknown_fields() -> None:
    event = sample_event(InvoiceIssued)
    with pytest.raises(pydantic.ValidationError):
        event.invoice_id = "other"  # type: ignore[misc]
    datum = event.to_avro()
    datum["surprise"] = 1
    with pytest.raises(pydantic.ValidationError, match="surprise"):
        InvoiceIssued.from_avro(datum)


def test_key_joins_the_key_fields() -> None:
    from accord.events import JournalPosted

    event = sample_event(JournalPosted, seed=1)
    assert event.key() == f"{event.legal_entity}/{event.source_document_id}"
    assert JournalPosted.subject() == "erp.journal-accord.erp.JournalPosted"
    assert JournalPosted.subject("t1") == "t1-accord.erp.JournalPosted"


def test_generate_check_command_reports_current(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from accord.cli import app

    result = CliRunner().invoke(app, ["schemas", "generate", "--check"])
    assert result.exit_code == 0, result.output
