"""The hub's pure rules: legal entity, customer master validation, tax attributes, request ids."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from accord_orchestrator import hub

pytestmark = pytest.mark.unit


def account(**fields: Any) -> dict[str, Any]:
    base = {
        "account_id": "001A",
        "name": "Acme GmbH",
        "country_code": "DE",
        "currency": "EUR",
        "tax_exempt": False,
        "tax_id": "DE123456789",
        "parent_account_id": None,
        "payment_method": "pm_card_visa",
        "legal_entity": "EU",
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("name", "fields", "entity", "tax_exempt"),
    [
        ("German business buying from the Dutch entity: reverse charge", {}, "EU", True),
        ("Dutch business: local VAT", {"country_code": "NL", "tax_id": "NL123456789B01"}, "EU", False),
        (
            "US customer, no VAT id needed",
            {"country_code": "US", "currency": "USD", "tax_id": None, "legal_entity": "US"},
            "US",
            False,
        ),
        (
            "Canadian customer of the US entity",
            {"country_code": "CA", "currency": "USD", "tax_id": None, "legal_entity": None},
            "US",
            False,
        ),
        (
            "UK customer",
            {"country_code": "GB", "currency": "GBP", "tax_id": "GB123456789", "legal_entity": "UK"},
            "UK",
            False,
        ),
        ("EU customer invoiced in USD", {"currency": "USD"}, "EU", True),
        ("CRM says tax exempt", {"country_code": "NL", "tax_id": "NL1234", "tax_exempt": True}, "EU", True),
    ],
)
def test_valid_accounts_resolve_their_entity_and_tax(
    name: str, fields: dict[str, Any], entity: str, tax_exempt: bool
) -> None:
    master, problems = hub.validate(account(**fields))
    assert problems == [], name
    assert master is not None
    assert (master.legal_entity, master.tax_exempt) == (entity, tax_exempt), name
    assert master.payment_method == "pm_card_visa"


@pytest.mark.parametrize(
    ("name", "fields", "problem"),
    [
        ("no name", {"name": " "}, "the account has no name"),
        ("country nobody sells to", {"country_code": "JP", "legal_entity": None}, "no legal entity sells to"),
        ("no country", {"country_code": "", "legal_entity": None}, "billing country (none)"),
        ("CRM entity contradicts the country", {"legal_entity": "US"}, "the CRM books the account in US"),
        ("currency the entity does not invoice in", {"currency": "JPY"}, "EU does not invoice in JPY"),
        ("EU customer without VAT id", {"tax_id": None}, "needs a VAT id"),
        ("VAT id of another country", {"tax_id": "FR123456789"}, "is not a DE VAT id"),
        ("malformed VAT id", {"tax_id": "DE 123"}, "is not a DE VAT id"),
    ],
)
def test_invalid_accounts_say_what_to_fix(name: str, fields: dict[str, Any], problem: str) -> None:
    master, problems = hub.validate(account(**fields))
    assert master is None, name
    assert any(problem in p for p in problems), (name, problems)


def test_request_ids_are_stable_per_step_and_attempt() -> None:
    assert hub.request_id("c1", "create", 0) == hub.request_id("c1", "create", 0)
    assert hub.request_id("c1", "create", 0) != hub.request_id("c1", "create", 1)
    assert hub.request_id("c1", "create", 0) != hub.request_id("c2", "create", 0)


def test_retry_delays_end_with_a_person() -> None:
    config = hub.HubConfig(retry_delays=[timedelta(seconds=1), timedelta(seconds=2)])
    assert [config.retry_delay(n) for n in range(3)] == [timedelta(seconds=1), timedelta(seconds=2), None]


def test_a_missing_prerequisite_is_waited_for_with_patience_before_a_person() -> None:
    config = hub.HubConfig(
        retry_delays=[timedelta(seconds=1), timedelta(seconds=10)], prerequisite_patience=timedelta(seconds=30)
    )
    assert config.retry_delay(2, "in-doubt") is None
    assert [config.retry_delay(n, "no-subscriptions") for n in range(2, 6)] == [timedelta(seconds=10)] * 3 + [None]


@pytest.mark.parametrize(
    ("name", "fields", "taxable", "tax", "wrong"),
    [
        ("reverse charge, no tax", {}, "100", "0", None),
        ("reverse charge, taxed", {}, "100", "19", "tax exempt"),
        ("Dutch customer, VAT", {"country_code": "NL", "tax_id": "NL123456789B01"}, "100", "21", None),
        ("Dutch customer, no VAT", {"country_code": "NL", "tax_id": "NL123456789B01"}, "100", "0", "no VAT"),
        (
            "UK customer, no VAT",
            {"country_code": "GB", "currency": "GBP", "tax_id": "GB123456789", "legal_entity": "UK"},
            "100",
            "0",
            "no VAT",
        ),
        (
            "US customer, no sales tax: no rule",
            {"country_code": "US", "currency": "USD", "tax_id": None, "legal_entity": "US"},
            "100",
            "0",
            None,
        ),
        ("nothing taxable says nothing", {"country_code": "NL", "tax_id": "NL1234"}, "0", "0", None),
    ],
)
def test_tax_billing_charged_against_the_treatment_asked_for(
    name: str, fields: dict[str, Any], taxable: str, tax: str, wrong: str | None
) -> None:
    master, _ = hub.validate(account(**fields))
    assert master is not None, name
    problem = hub.tax_mismatch(master, Decimal(taxable), Decimal(tax))
    assert (problem is None) == (wrong is None), (name, problem)
    if wrong is not None:
        assert problem is not None and wrong in problem, (name, problem)
