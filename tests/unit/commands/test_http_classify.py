"""How HTTP answers map onto retry decisions, and the backoff schedule: pure functions, no server."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from accord.commands import RetryPolicy, classify, parse_retry_after
from accord.errors import InDoubtError, PermanentError, TransientError

pytestmark = pytest.mark.unit


def answer(
    status: int, *, method: str = "POST", json: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request(method, "https://api.example.test/v1/customers")
    return httpx.Response(status, json=json, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "method", "error", "retry_after"),
    [
        pytest.param(429, "POST", TransientError, 7.0, id="429-with-retry-after"),
        pytest.param(503, "POST", TransientError, 7.0, id="503-with-retry-after"),
        pytest.param(409, "POST", TransientError, 7.0, id="409-key-in-use"),
        pytest.param(500, "POST", InDoubtError, None, id="500-to-a-write-may-have-applied"),
        pytest.param(504, "POST", InDoubtError, None, id="504-gateway-gave-up"),
        pytest.param(500, "GET", TransientError, None, id="500-to-a-read-is-only-transient"),
        pytest.param(400, "POST", PermanentError, None, id="400"),
        pytest.param(422, "POST", PermanentError, None, id="422"),
        pytest.param(404, "POST", PermanentError, None, id="404"),
    ],
)
def test_error_answers(status: int, method: str, error: type[Exception], retry_after: float | None) -> None:
    with pytest.raises(error) as caught:
        classify(answer(status, method=method, json={"title": "t"}, headers={"Retry-After": "7"}))
    assert type(caught.value) is error
    assert f"HTTP {status} from {method} /v1/customers: t" in str(caught.value)
    if retry_after is not None:
        assert caught.value.retry_after == retry_after  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param({"title": "Invalid amount", "detail": "alice@example.com"}, "Invalid amount", id="rfc9457"),
        pytest.param(
            {"error": {"code": "resource_missing", "message": "No such customer: alice"}},
            "resource_missing",
            id="stripe",
        ),
        pytest.param([{"errorCode": "INVALID_FIELD", "message": "bob@example.com"}], "INVALID_FIELD", id="salesforce"),
        pytest.param("plain text", "Bad Request", id="no-json-object"),
    ],
)
def test_permanent_errors_name_the_problem_without_its_data(body: object, named: str) -> None:
    with pytest.raises(PermanentError) as caught:
        classify(answer(400, json=body))
    assert named in str(caught.value)
    assert "@example.com" not in str(caught.value) and "alice" not in str(caught.value)


def test_success_returns_the_json_object_or_the_status() -> None:
    assert classify(answer(201, json={"id": "cus_1"})) == {"id": "cus_1"}
    assert classify(answer(204)) == {}
    assert classify(answer(200, json=[1, 2])) == {"status": 200}


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("120") == 120.0
    assert (
        parse_retry_after(format_datetime(datetime(2026, 11, 28, 12, 1, 30, tzinfo=UTC), usegmt=True), now=now) == 90.0
    )
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0  # in the past: now
    assert parse_retry_after("999999") == 3600.0  # capped
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_is_exponential_full_jitter_under_a_cap_and_honours_hints() -> None:
    policy = RetryPolicy(base=1.0, cap=30.0)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (20, 30.0)]:
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread over the whole range
    assert all(policy.delay(1, rng, retry_after=45.0) >= 45.0 for _ in range(50))
