"""How the CRM's answers map onto accord's errors: the client over an in-process httpx transport, no server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from accord.errors import TransientError
from accord_crm_connector.crm_client import CrmClient, CrmRejected, ReplayExpired

pytestmark = pytest.mark.unit


def client_answering(status: int, body: Any, seen: list[httpx.Request] | None = None) -> CrmClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "t0k"})
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    http = httpx.AsyncClient(base_url="http://crm.test", transport=httpx.MockTransport(handler))
    return CrmClient(http, client_id="accord-x", client_secret="s")


def sf(code: str) -> list[dict[str, Any]]:
    return [{"message": f"{code} happened", "errorCode": code, "fields": []}]


CASES = {
    "daily allowance spent": (403, sf("REQUEST_LIMIT_EXCEEDED"), TransientError, None),
    "rate limited": (429, sf("REQUEST_LIMIT_EXCEEDED"), TransientError, None),
    "server error": (503, sf("SERVER_UNAVAILABLE"), TransientError, None),
    "expired replay id": (400, sf("INVALID_REPLAY_ID"), ReplayExpired, "INVALID_REPLAY_ID"),
    "bad field": (400, sf("INVALID_FIELD"), CrmRejected, "INVALID_FIELD"),
    "not json": (400, None, CrmRejected, "HTTP_400"),
}


@pytest.mark.parametrize("status, body, error, code", CASES.values(), ids=CASES.keys())
async def test_error_classification(status: int, body: Any, error: type[Exception], code: str | None) -> None:
    client = client_answering(status, body)
    with pytest.raises(error) as info:
        await client.changes(5)
    if code is not None:
        assert isinstance(info.value, CrmRejected) and info.value.code == code and not info.value.retryable
    else:
        assert isinstance(info.value, TransientError) and info.value.retryable
    await client.http.aclose()


async def test_every_call_names_accord_in_call_options() -> None:
    seen: list[httpx.Request] = []
    client = client_answering(204, None, seen)
    await client.write_back("001A", credit_hold=True)
    assert seen[0].headers["Sforce-Call-Options"] == "client=accord-x"
    assert seen[0].headers["Authorization"] == "Bearer t0k"
    with pytest.raises(ValueError, match="at least one"):
        await client.write_back("001A")
    await client.http.aclose()
