"""Pure pieces of the sandbox: knob matching and seeding, backoff, periods, proration, error shapes."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from accord_sandbox.billing import next_boundary, prorate, step
from accord_sandbox.core import add_months
from accord_sandbox.delivery import MAX_ATTEMPTS, backoff
from accord_sandbox.erp import make_periods
from accord_sandbox.errors import SandboxError, body_for
from accord_sandbox.faults import Faults, Knob

pytestmark = pytest.mark.unit


def test_longest_endpoint_prefix_wins_and_webhook_knob_is_separate() -> None:
    faults = Faults(seed=1)
    faults.set("billing", "*", Knob(latency_ms=5))
    faults.set("billing", "POST /billing/v1/invoices", Knob(error_rate=1.0))
    faults.set("billing", "webhooks", Knob(webhook_drop_rate=1.0))
    assert faults.match("billing", "POST", "/billing/v1/invoices/in_1/pay").knob.error_rate == 1.0
    assert faults.match("billing", "GET", "/billing/v1/invoices").knob.latency_ms == 5
    assert faults.match("crm", "GET", "/crm/services/x") is None
    assert faults.webhooks("billing").knob.webhook_drop_rate == 1.0


def test_knob_draws_are_reproducible_per_seed() -> None:
    def draws(seed: int) -> list[bool]:
        rule = Faults(seed=seed).set("erp", "*", Knob(error_rate=0.3))
        return [rule.roll(0.3) for _ in range(50)]

    assert draws(4) == draws(4)
    assert draws(4) != draws(5)
    assert 0 < sum(draws(4)) < 50


def test_knob_rates_are_validated() -> None:
    with pytest.raises(ValueError):
        Knob(error_rate=1.5)
    with pytest.raises(ValueError):
        Knob(latency_ms=-1)


def test_backoff_grows_and_fits_about_three_days() -> None:
    delays = [backoff(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert delays == sorted(delays) and delays[0] == timedelta(seconds=60)
    assert timedelta(days=2) < sum(delays[:-1], timedelta()) < timedelta(days=3)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_billing_periods_follow_the_anchor() -> None:
    anchor = datetime(2026, 1, 31, tzinfo=UTC)
    assert step(anchor, "month", 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert step(anchor, "month", 1, 2) == datetime(2026, 3, 31, tzinfo=UTC)  # from the anchor, not from Feb 28
    assert next_boundary(anchor, "year", 1, datetime(2026, 6, 1, tzinfo=UTC)) == datetime(2027, 1, 31, tzinfo=UTC)


def test_proration_rounds_half_up_in_minor_units() -> None:
    assert prorate(3000, 15, 30) == 1500
    assert prorate(1001, 1, 2) == 501
    assert prorate(1000, 5, 0) == 0


def test_period_calendar_is_monthly_and_contiguous() -> None:
    periods = make_periods("7", 2026, 2026)
    assert [p["periodName"] for p in periods][:2] == ["Jan 2026", "Feb 2026"]
    assert periods[1]["endDate"] == "2026-02-28"
    for before, after in itertools.pairwise(periods):
        assert date.fromisoformat(before["endDate"]) + timedelta(days=1) == date.fromisoformat(after["startDate"])


def test_each_system_has_its_own_error_shape() -> None:
    error = SandboxError(400, "CODE", "what went wrong", param="field")
    assert body_for("crm", error) == [{"message": "what went wrong", "errorCode": "CODE", "fields": ["field"]}]
    assert body_for("billing", error) == {
        "error": {"type": "invalid_request_error", "code": "CODE", "message": "what went wrong", "param": "field"}
    }
    erp = body_for("erp", error)
    assert erp["status"] == 400 and erp["title"] == "Bad Request"
    assert erp["o:errorDetails"] == [{"detail": "what went wrong", "o:errorCode": "CODE", "o:errorPath": "field"}]


def test_stripe_form_encoding_becomes_the_json_body() -> None:
    from accord_sandbox.core import form_to_json

    raw = (
        b"customer=cus_1&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=500"
        b"&items[0][price_data][recurring][interval]=month&items[0][quantity]=2&items[1][price]=price_9"
        b"&metadata[crm_contract_id]=800123&expand[]=latest_invoice&expand[]=customer&invoice_now=true"
    )
    assert form_to_json(raw) == {
        "customer": "cus_1",
        "items": [
            {"price_data": {"currency": "usd", "unit_amount": 500, "recurring": {"interval": "month"}}, "quantity": 2},
            {"price": "price_9"},
        ],
        "metadata": {"crm_contract_id": "800123"},  # metadata values stay strings, as in Stripe
        "expand": ["latest_invoice", "customer"],
        "invoice_now": True,
    }


@pytest.mark.parametrize("raw", [b"quantity=two", b"prorate=yes", b"a]b=1"])
def test_bad_form_values_are_stripe_errors(raw: bytes) -> None:
    from accord_sandbox.core import form_to_json

    with pytest.raises(SandboxError) as caught:
        form_to_json(raw)
    assert caught.value.status == 400
