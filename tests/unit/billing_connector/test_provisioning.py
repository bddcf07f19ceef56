"""Provisioning requests → billing commands, and command outcomes → answers: tables of named cases (pure)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from accord.commands import Command, Outcome, Status
from accord.events import (
    BillingFrequency,
    ContractLine,
    CustomerProvisionRequested,
    Meta,
    Money,
    ProrationPolicy,
    ProvisioningCompleted,
    ProvisioningFailed,
    SourceSystem,
    SubscriptionAction,
    SubscriptionProvisionRequested,
)
from accord.runtime import Envelope
from accord_billing_connector.executor import _customer_update, amend_plan
from accord_billing_connector.handlers import decide, result_event, service
from accord_billing_connector.provisioning import (
    CUSTOMER_KIND,
    SUBSCRIPTIONS_KIND,
    Planned,
    Refused,
    minor_units,
    plan,
)

pytestmark = pytest.mark.unit

T0 = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
START = datetime.date(2026, 3, 1)
END = datetime.date(2027, 2, 28)
MARCH_1 = 1_772_323_200  # 2026-03-01T00:00:00Z
REPLY_TOPIC = "test-q2c"


def meta(event_type: type[Any], n: int = 1) -> Meta:
    return Meta(
        event_id=uuid.UUID(int=n),
        event_type=event_type.AVRO_NAME,
        occurred_at=T0,
        source_system=SourceSystem.ACCORD,
        source_id=f"wf-1/{n}",
        correlation_id="corr-1",
        causation_id=None,
        legal_entity="EU",
        entity_version=3,
    )


def customer_request(n: int = 1, request_id: str = "req-c1", **changes: Any) -> CustomerProvisionRequested:
    fields: dict[str, Any] = {
        "meta": meta(CustomerProvisionRequested, n),
        "request_id": request_id,
        "workflow_id": "wf-1",
        "account_id": "001ACC",
        "target_system": SourceSystem.BILLING,
        "name": "Globex GmbH",
        "country_code": "DE",
        "currency": "EUR",
        "legal_entity": "EU",
        "tax_exempt": False,
        "payment_method": "pm_card_visa",
        **changes,
    }
    return CustomerProvisionRequested(**fields)


def line(
    line_id: str,
    product: str,
    quantity: str = "1",
    price: str = "10.00",
    frequency: BillingFrequency | None = BillingFrequency.MONTHLY,
    usage: bool = False,
    currency: str = "EUR",
) -> ContractLine:
    return ContractLine(
        line_id=line_id,
        product_code=product,
        quantity=Decimal(quantity),
        unit_price=Money(amount=Decimal(price), currency=currency),
        start_date=START,
        end_date=END,
        billing_frequency=frequency,
        usage_based=usage,
    )


def subscription_request(
    action: SubscriptionAction = SubscriptionAction.CREATE,
    lines: list[ContractLine] | None = None,
    n: int = 2,
    **changes: Any,
) -> SubscriptionProvisionRequested:
    fields: dict[str, Any] = {
        "meta": meta(SubscriptionProvisionRequested, n),
        "request_id": "req-s1",
        "workflow_id": "wf-1",
        "account_id": "001ACC",
        "action": action,
        "contract_id": "800CON",
        "billing_customer_id": "cus_1",
        "legal_entity": "EU",
        "currency": "EUR",
        "start_date": START,
        "end_date": END,
        "lines": lines if lines is not None else [line("L1", "SEAT", "5", "40")],
        "proration_policy": ProrationPolicy.PRORATE_DAILY,
        **changes,
    }
    return SubscriptionProvisionRequested(**fields)


def planned(request: Any) -> Mapping[str, Any]:
    result = plan(request)
    assert isinstance(result, Planned), result
    return result.payload


# -- customers ------------------------------------------------------------------------------------------

CUSTOMER_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "taxable with a card": (
        {},
        {
            "name": "Globex GmbH",
            "currency": "eur",
            "address": {"country": "DE"},
            "tax_exempt": "none",
            "metadata": {"crm_account_id": "001ACC", "legal_entity": "EU"},
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
    ),
    "reverse charge, no card, lower-case country": (
        {"tax_exempt": True, "payment_method": None, "country_code": "fr"},
        {
            "name": "Globex GmbH",
            "currency": "eur",
            "address": {"country": "FR"},
            "tax_exempt": "reverse",
            "metadata": {"crm_account_id": "001ACC", "legal_entity": "EU"},
        },
    ),
    "a parent account is kept in metadata": (
        {"parent_account_id": "001PARENT", "payment_method": None},
        {
            "name": "Globex GmbH",
            "currency": "eur",
            "address": {"country": "DE"},
            "tax_exempt": "none",
            "metadata": {"crm_account_id": "001ACC", "legal_entity": "EU", "crm_parent_account_id": "001PARENT"},
        },
    ),
}


@pytest.mark.parametrize("changes, customer", CUSTOMER_CASES.values(), ids=CUSTOMER_CASES.keys())
def test_customer_request_becomes_the_billing_customer(changes: dict[str, Any], customer: dict[str, Any]) -> None:
    result = plan(customer_request(**changes))
    assert result == Planned(CUSTOMER_KIND, {"account_id": "001ACC", "customer": customer})


REFUSED_CUSTOMERS: dict[str, tuple[dict[str, Any], str]] = {
    "currency not ISO": ({"currency": "EURO"}, "invalid-request"),
    "country not alpha-2": ({"country_code": "DEU"}, "invalid-request"),
}


@pytest.mark.parametrize("changes, code", REFUSED_CUSTOMERS.values(), ids=REFUSED_CUSTOMERS.keys())
def test_a_customer_request_billing_cannot_take_is_refused(changes: dict[str, Any], code: str) -> None:
    result = plan(customer_request(**changes))
    assert isinstance(result, Refused) and result.code == code


def test_a_customer_request_for_the_erp_is_not_ours() -> None:
    assert plan(customer_request(target_system=SourceSystem.ERP)) is None


# -- subscriptions ----------------------------------------------------------------------------------------


def item(product: str, amount: int, interval: str, usage: str, quantity: int | None, line_id: str, count: int = 1):  # type: ignore[no-untyped-def]
    out: dict[str, Any] = {
        "price_data": {
            "currency": "eur",
            "unit_amount": amount,
            "product": product,
            "recurring": {"interval": interval, "interval_count": count, "usage_type": usage},
        },
        "metadata": {"crm_line_id": line_id},
    }
    if quantity is not None:
        out["quantity"] = quantity
    return out


GROUP_CASES: dict[str, tuple[list[ContractLine], list[dict[str, Any]]]] = {
    "one monthly line": (
        [line("L1", "SEAT", "5", "40")],
        [{"frequency": "Monthly", "items": [item("SEAT", 4000, "month", "licensed", 5, "L1")]}],
    ),
    "annual, monthly and usage: three groups, annual first": (
        [
            line("L2", "SEAT", "5", "40"),
            line("L3", "API", "0", "0.05", frequency=None, usage=True),
            line("L1", "PLAT", "1", "12000", frequency=BillingFrequency.ANNUAL),
            line("L4", "SUPP", "2", "3000", frequency=BillingFrequency.ANNUAL),
        ],
        [
            {
                "frequency": "Annual",
                "items": [
                    item("PLAT", 1_200_000, "year", "licensed", 1, "L1"),
                    item("SUPP", 300_000, "year", "licensed", 2, "L4"),
                ],
            },
            {"frequency": "Monthly", "items": [item("SEAT", 4000, "month", "licensed", 5, "L2")]},
            {"frequency": "Usage", "items": [item("API", 5, "month", "metered", None, "L3")]},
        ],
    ),
    "no frequency: the CRM's default, monthly": (
        [line("L1", "SEAT", "3", "40", frequency=None)],
        [{"frequency": "Monthly", "items": [item("SEAT", 4000, "month", "licensed", 3, "L1")]}],
    ),
    "quarterly: every three months": (
        [line("L1", "SEAT", "3", "120", frequency=BillingFrequency.QUARTERLY)],
        [{"frequency": "Quarterly", "items": [item("SEAT", 12000, "month", "licensed", 3, "L1", count=3)]}],
    ),
    "usage-based wins over an annual frequency": (
        [line("L1", "API", "0", "0.10", frequency=BillingFrequency.ANNUAL, usage=True)],
        [{"frequency": "Usage", "items": [item("API", 10, "month", "metered", None, "L1")]}],
    ),
}


@pytest.mark.parametrize("lines, groups", GROUP_CASES.values(), ids=GROUP_CASES.keys())
def test_create_books_one_subscription_per_cadence(lines: list[ContractLine], groups: list[dict[str, Any]]) -> None:
    payload = planned(subscription_request(SubscriptionAction.CREATE, lines))
    assert payload["groups"] == groups
    assert payload["effective"] == MARCH_1
    assert payload["ends"] == MARCH_1 + 365 * 86_400  # the day after 2027-02-28
    assert (payload["action"], payload["customer"], payload["contract_id"]) == ("CREATE", "cus_1", "800CON")
    assert "proration_behavior" not in payload


PRORATION_CASES: dict[str, tuple[ProrationPolicy, str, bool]] = {
    "daily": (ProrationPolicy.PRORATE_DAILY, "create_prorations", False),
    "monthly (approximated by Stripe's own)": (ProrationPolicy.PRORATE_MONTHLY, "create_prorations", False),
    "none": (ProrationPolicy.NO_PRORATION, "none", False),
    "full period, invoiced now": (ProrationPolicy.CHARGE_FULL_PERIOD, "always_invoice", True),
    "unknown: Stripe's default": (ProrationPolicy.UNKNOWN, "create_prorations", False),
}


@pytest.mark.parametrize("policy, behaviour, from_start", PRORATION_CASES.values(), ids=PRORATION_CASES.keys())
def test_amend_carries_the_proration_policy(policy: ProrationPolicy, behaviour: str, from_start: bool) -> None:
    payload = planned(subscription_request(SubscriptionAction.AMEND, proration_policy=policy))
    assert payload["proration_behavior"] == behaviour
    assert payload["prorate_from_period_start"] is from_start


CUSTOMER_LOOKUPS: dict[str, tuple[dict[str, Any], str | None, str | None]] = {
    "the hub knows both": ({}, "cus_1", "EU"),
    "no customer: the connector finds the account's": ({"billing_customer_id": None}, None, "EU"),
    "no legal entity: the request's meta names it": ({"legal_entity": None}, "cus_1", "EU"),
    "neither: the customer's": (
        {
            "legal_entity": None,
            "billing_customer_id": None,
            "meta": meta(SubscriptionProvisionRequested).model_copy(update={"legal_entity": None}),
        },
        None,
        None,
    ),
}


@pytest.mark.parametrize("changes, customer, entity", CUSTOMER_LOOKUPS.values(), ids=CUSTOMER_LOOKUPS.keys())
def test_what_the_hub_leaves_open_is_left_to_the_executor(
    changes: dict[str, Any], customer: str | None, entity: str | None
) -> None:
    payload = planned(subscription_request(**changes))
    assert (payload["customer"], payload["legal_entity"], payload["account_id"]) == (customer, entity, "001ACC")


def test_cancel_needs_no_lines() -> None:
    payload = planned(subscription_request(SubscriptionAction.CANCEL, lines=[]))
    assert payload["action"] == "CANCEL" and payload["effective"] == MARCH_1 and "groups" not in payload


REFUSED_SUBSCRIPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown action": ({"action": SubscriptionAction.UNKNOWN}, "invalid-request"),
    "no lines to create": ({"lines": []}, "invalid-request"),
    "fractional licensed quantity": ({"lines": [line("L1", "SEAT", "2.5")]}, "invalid-request"),
    "price finer than a cent": ({"lines": [line("L1", "SEAT", "1", "0.005")]}, "invalid-request"),
    "line in another currency": ({"lines": [line("L1", "SEAT", currency="USD")]}, "invalid-request"),
    "upfront has no cadence": (
        {"lines": [line("L1", "SEAT", frequency=BillingFrequency.UPFRONT)]},
        "unsupported-frequency",
    ),
    "ends before it starts": ({"end_date": datetime.date(2026, 2, 1)}, "invalid-request"),
}


@pytest.mark.parametrize("changes, code", REFUSED_SUBSCRIPTIONS.values(), ids=REFUSED_SUBSCRIPTIONS.keys())
def test_a_subscription_request_billing_cannot_take_is_refused(changes: dict[str, Any], code: str) -> None:
    result = plan(subscription_request(**changes))
    assert isinstance(result, Refused) and result.code == code, result


MINOR_UNITS: dict[str, tuple[str, str, int]] = {
    "euros": ("12.34", "EUR", 1234),
    "yen have no decimals": ("1500", "JPY", 1500),
    "dinar have three": ("1.234", "KWD", 1234),
    "trailing zeros are fine": ("40.000000", "usd", 4000),
}


@pytest.mark.parametrize("amount, currency, expected", MINOR_UNITS.values(), ids=MINOR_UNITS.keys())
def test_minor_units(amount: str, currency: str, expected: int) -> None:
    assert minor_units(Decimal(amount), currency, what="test") == expected


# -- the decider ----------------------------------------------------------------------------------------------


def envelope(event: Any) -> Envelope:
    return Envelope(
        topic=REPLY_TOPIC,
        partition=0,
        offset=0,
        timestamp_ms=None,
        key=event.key(),
        event=event,
        event_id=str(event.meta.event_id),
        event_type=type(event).AVRO_NAME,
    )


def test_a_request_becomes_one_command_keyed_by_its_request_id() -> None:
    decision = decide(None, customer_request(), reply_topic=REPLY_TOPIC)
    [command] = decision.commands
    assert (command.system, command.kind, command.key) == ("billing", CUSTOMER_KIND, "billing:req-c1")
    assert command.payload["reply"]["request_id"] == "req-c1"
    assert list(decision.outputs) == []
    assert decision.state == {"requests": {"req-c1": str(uuid.UUID(int=1))}}


def test_the_same_request_under_another_event_id_is_not_commanded_twice() -> None:
    first = decide(None, customer_request(n=1), reply_topic=REPLY_TOPIC)
    again = decide(first.state, customer_request(n=7), reply_topic=REPLY_TOPIC)
    assert not again.commands and not again.outputs and again.state is None
    other = decide(first.state, customer_request(n=8, request_id="req-c2"), reply_topic=REPLY_TOPIC)
    assert [c.key for c in other.commands] == ["billing:req-c2"]


def test_a_refused_request_is_answered_at_once_on_the_reply_topic() -> None:
    decision = decide(None, subscription_request(action=SubscriptionAction.UNKNOWN), reply_topic=REPLY_TOPIC)
    assert not decision.commands
    [out] = decision.outputs
    assert out.topic == REPLY_TOPIC and out.key == "001ACC"
    assert isinstance(out.event, ProvisioningFailed)
    assert (out.event.error_code, out.event.retryable, out.event.request_id) == ("invalid-request", False, "req-s1")


def test_the_service_consumes_its_own_topic_and_the_two_request_types() -> None:
    svc = service(name="g1", topics={"q2c.provisioning": "t-1"})
    assert list(svc.topics) == ["t-1"] and svc.group == "g1"
    assert set(svc.handlers) == {CustomerProvisionRequested.AVRO_NAME, SubscriptionProvisionRequested.AVRO_NAME}
    decision = svc.handlers[SubscriptionProvisionRequested.AVRO_NAME](None, envelope(subscription_request()))
    assert [c.kind for c in decision.commands] == [SUBSCRIPTIONS_KIND]


# -- outcomes → answers -------------------------------------------------------------------------------------


def command(kind: str = SUBSCRIPTIONS_KIND) -> Command:
    decision = decide(None, subscription_request(), reply_topic=REPLY_TOPIC)
    spec = decision.commands[0]
    return Command(1, spec.system, kind, spec.key, spec.payload, 1, Status.PENDING)


OUTCOMES: dict[str, tuple[Outcome, type[Any], dict[str, Any]]] = {
    "created": (
        Outcome(Status.SUCCEEDED, result={"system_ids": ["sub_1", "sub_2"], "created": True}),
        ProvisioningCompleted,
        {"system_ids": ["sub_1", "sub_2"], "created": True},
    ),
    "found by reading back": (
        Outcome(Status.SUCCEEDED, result={"system_ids": ["sub_1"], "created": True}, read_back=True),
        ProvisioningCompleted,
        {"system_ids": ["sub_1"], "created": False},
    ),
    "refused by billing": (
        Outcome(Status.FAILED, error="BillingRefused: [resource_missing] billing refused POST /x with HTTP 400"),
        ProvisioningFailed,
        {"error_code": "resource_missing", "retryable": False},
    ),
    "no customer yet: ask again later": (
        Outcome(Status.FAILED, error="BillingRefused: [customer-missing] billing has no customer for the account yet"),
        ProvisioningFailed,
        {"error_code": "customer-missing", "retryable": True},
    ),
    "retries spent": (
        Outcome(Status.FAILED, error="retries spent after 10 attempt(s); last: TransientError: HTTP 429"),
        ProvisioningFailed,
        {"error_code": "retries-exhausted", "retryable": True},
    ),
    "in doubt": (
        Outcome(Status.IN_DOUBT, error="InDoubtError: no answer"),
        ProvisioningFailed,
        {"error_code": "in-doubt", "retryable": True},
    ),
}


@pytest.mark.parametrize("outcome, kind, fields", OUTCOMES.values(), ids=OUTCOMES.keys())
def test_every_outcome_is_one_answer_with_the_requests_ids(
    outcome: Outcome, kind: type[Any], fields: dict[str, Any]
) -> None:
    event = result_event(command(), outcome, now=T0)
    assert isinstance(event, kind)
    for name, value in fields.items():
        assert getattr(event, name) == value
    assert (event.request_id, event.workflow_id, event.account_id) == ("req-s1", "wf-1", "001ACC")
    assert event.target_system is SourceSystem.BILLING
    assert event.request_type == SubscriptionProvisionRequested.AVRO_NAME
    assert event.meta.causation_id == str(uuid.UUID(int=2)) and event.meta.correlation_id == "corr-1"


def test_the_answer_has_one_event_id_per_request_whatever_the_outcome() -> None:
    ok = result_event(command(), OUTCOMES["created"][0], now=T0)
    ko = result_event(command(), OUTCOMES["in doubt"][0], now=T0)
    assert ok.meta.event_id == ko.meta.event_id


# -- what a read-back leaves to write --------------------------------------------------------------------


def sub_item(
    item_id: str, product: str, quantity: int, amount: int, line_id: str | None = None, interval: str = "month"
) -> dict[str, Any]:
    usage = "metered" if product == "API" else "licensed"
    return {
        "id": item_id,
        "price": {
            "product": product,
            "unit_amount": amount,
            "recurring": {"interval": interval, "interval_count": 1, "usage_type": usage},
        },
        "quantity": quantity,
        "metadata": {"crm_line_id": line_id} if line_id else {},
    }


#: a contract booked in two subscriptions: seats monthly, the platform and support yearly
LIVE = {
    "Monthly": {"id": "sub_m", "items": {"data": [sub_item("si_1", "SEAT", 5, 4000, "L1")]}},
    "Annual": {
        "id": "sub_a",
        "items": {
            "data": [
                sub_item("si_2", "SUPP", 1, 300_000, interval="year"),
                sub_item("si_3", "PLAT", 1, 1_200_000, "L5", interval="year"),
            ]
        },
    },
}
YEARLY = {"interval": "year", "interval_count": 1, "usage_type": "licensed"}
AMENDS: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "quantity up": (
        [{"frequency": "Monthly", "items": [item("SEAT", 4000, "month", "licensed", 8, "L1")]}],
        {"changes": {"sub_m": [{"id": "si_1", "quantity": 8}]}, "touched": {"sub_m"}, "new_groups": []},
    ),
    "already applied: nothing to send": (
        [{"frequency": "Monthly", "items": [item("SEAT", 4000, "month", "licensed", 5, "L1")]}],
        {"changes": {}, "touched": {"sub_m"}, "new_groups": []},
    ),
    "a line without frequency is found in the annual subscription by its line id": (
        [{"frequency": "Monthly", "items": [item("PLAT", 1_200_000, "month", "licensed", 2, "L5")]}],
        {"changes": {"sub_a": [{"id": "si_3", "quantity": 2}]}, "touched": {"sub_a"}, "new_groups": []},
    ),
    "new price, matched by product, keeps the subscription's cadence": (
        [{"frequency": "Annual", "items": [item("SUPP", 350_000, "year", "licensed", 1, "L9")]}],
        {
            "changes": {
                "sub_a": [
                    {
                        "id": "si_2",
                        "price_data": {
                            **item("SUPP", 350_000, "year", "licensed", 1, "L9")["price_data"],
                            "recurring": YEARLY,
                        },
                        "quantity": 1,
                    }
                ]
            },
            "touched": {"sub_a"},
            "new_groups": [],
        },
    ),
    "a new product of a booked cadence is added to it": (
        [{"frequency": "Monthly", "items": [item("ADDON", 500, "month", "licensed", 2, "L8")]}],
        {
            "changes": {"sub_m": [item("ADDON", 500, "month", "licensed", 2, "L8")]},
            "touched": {"sub_m"},
            "new_groups": [],
        },
    ),
    "a new cadence needs a new subscription": (
        [{"frequency": "Usage", "items": [item("API", 5, "month", "metered", None, "L3")]}],
        {
            "changes": {},
            "touched": set(),
            "new_groups": [{"frequency": "Usage", "items": [item("API", 5, "month", "metered", None, "L3")]}],
        },
    ),
    "quantity 0 removes": (
        [{"frequency": "Monthly", "items": [item("SEAT", 4000, "month", "licensed", 0, "L1")]}],
        {"changes": {"sub_m": [{"id": "si_1", "deleted": True}]}, "touched": {"sub_m"}, "new_groups": []},
    ),
    "removed already: nothing": (
        [{"frequency": "Monthly", "items": [item("GONE", 100, "month", "licensed", 0, "L7")]}],
        {"changes": {}, "touched": set(), "new_groups": []},
    ),
}


@pytest.mark.parametrize("groups, expected", AMENDS.values(), ids=AMENDS.keys())
def test_amend_changes_only_what_billing_lacks(groups: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    plan = amend_plan(LIVE, groups)
    assert (plan.changes, plan.touched, plan.new_groups) == (
        expected["changes"],
        expected["touched"],
        expected["new_groups"],
    )


WANTED = CUSTOMER_CASES["taxable with a card"][1]
EXISTING = {
    "name": "Globex GmbH",
    "currency": "eur",
    "address": {"country": "DE", "city": "Berlin"},
    "tax_exempt": "none",
    "metadata": {"crm_account_id": "001ACC", "legal_entity": "EU", "note": "kept"},
    "invoice_settings": {"default_payment_method": "pm_card_visa"},
}
UPDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "up to date: nothing to send": ({}, {}),
    "new name": ({"name": "Old name"}, {"name": "Globex GmbH"}),
    "moved country, city kept": (
        {"address": {"country": "AT", "city": "Berlin"}},
        {"address": {"country": "DE", "city": "Berlin"}},
    ),
    "legal entity changed, other metadata kept": (
        {"metadata": {"crm_account_id": "001ACC", "legal_entity": "UK", "note": "kept"}},
        {"metadata": {"crm_account_id": "001ACC", "legal_entity": "EU", "note": "kept"}},
    ),
    "a new card": (
        {"invoice_settings": {"default_payment_method": "pm_card_mastercard"}},
        {"invoice_settings": {"default_payment_method": "pm_card_visa"}},
    ),
}


@pytest.mark.parametrize("existing, update", UPDATES.values(), ids=UPDATES.keys())
def test_an_existing_customer_is_updated_with_what_differs(existing: dict[str, Any], update: dict[str, Any]) -> None:
    assert _customer_update({**EXISTING, **existing}, WANTED) == update
