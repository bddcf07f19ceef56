"""How the executor's billing calls read billing's answers: a table of named HTTP exchanges (no network: an
httpx MockTransport answers), and the system's bucket held on a 429."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from accord.commands import ManualClock, TokenBucket
from accord.errors import InDoubtError, PermanentError, TransientError
from accord_billing_connector.executor import BillingApi, BillingRefused

pytestmark = pytest.mark.unit

Answer = Callable[[httpx.Request], httpx.Response]


def api(answer: Answer, bucket: TokenBucket | None = None) -> BillingApi:
    client = httpx.AsyncClient(base_url="http://billing.test", transport=httpx.MockTransport(answer))
    return BillingApi(client, bucket=bucket)


def stripe_error(status: int, code: str, message: str, param: str | None = None) -> Answer:
    body: dict[str, Any] = {"error": {"type": "invalid_request_error", "code": code, "message": message}}
    if param:
        body["error"]["param"] = param
    return lambda request: httpx.Response(status, json=body)


ERRORS: dict[str, tuple[Answer, type[Exception], str | None]] = {
    "400: refused for good, with billing's code and no value": (
        stripe_error(400, "resource_missing", "No such PaymentMethod: 'pm_secret'", "payment_method"),
        BillingRefused,
        "resource_missing",
    ),
    "404 without a body": (lambda r: httpx.Response(404), BillingRefused, "http_404"),
    "409 a key in use: again later": (stripe_error(409, "idempotency_key_in_use", "Retry"), TransientError, None),
    "503: again later": (lambda r: httpx.Response(503), TransientError, None),
    "500 to a write: in doubt": (lambda r: httpx.Response(500), InDoubtError, None),
}


@pytest.mark.parametrize("answer, error, code", ERRORS.values(), ids=ERRORS.keys())
async def test_error_answers_map_onto_accords_errors(answer: Answer, error: type[Exception], code: str | None) -> None:
    with pytest.raises(error) as raised:
        await api(answer).post("/customers", {"name": "x"}, key="k1")
    if code is not None:
        assert isinstance(raised.value, PermanentError) and getattr(raised.value, "code", None) == code
        assert "pm_secret" not in str(raised.value) and "POST /billing/v1/customers" in str(raised.value)


async def test_a_post_carries_its_idempotency_key_and_sees_a_replay() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "cus_1"}, headers={"Idempotent-Replayed": "true"})

    body, replayed = await api(answer).post("/customers", {"name": "x"}, key="billing:req-1:customer")
    assert body == {"id": "cus_1"} and replayed is True
    assert seen[0].headers["Idempotency-Key"] == "billing:req-1:customer"


async def test_a_429_holds_the_whole_systems_bucket_for_retry_after() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    with pytest.raises(TransientError) as raised:
        await api(lambda r: httpx.Response(429, headers={"Retry-After": "7"}), bucket).get("/customers/cus_1")
    assert raised.value.retry_after == 7.0
    before = clock.now()
    await bucket.acquire()  # the next call of anyone waits out the hint
    assert clock.now() - before >= 7.0
