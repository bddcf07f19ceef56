"""How the ERP's answers map onto accord's errors: pure functions over httpx responses, no server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from accord.errors import InDoubtError, PermanentError, TransientError
from accord_erp_connector.erp_client import ErpClient, ErpRejected, error_detail, rejection_code

pytestmark = pytest.mark.unit


def netsuite(code: str, status: int = 400) -> dict[str, Any]:
    return {
        "type": "x",
        "title": "Bad Request",
        "status": status,
        "o:errorDetails": [{"detail": "why", "o:errorCode": code}],
    }


def answer(status: int, method: str = "PUT", body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request(method, "http://erp.test/erp/services/rest/record/v1/journalEntry/eid:x")
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("response", "error", "code", "retry_after"),
    [
        pytest.param(
            answer(429, body=netsuite("CONCURRENCY_LIMIT_EXCEEDED", 429), headers={"Retry-After": "3"}),
            TransientError,
            None,
            3.0,
            id="429-retry-after",
        ),
        pytest.param(answer(400, body=netsuite("PERIOD_CLOSED")), ErpRejected, "PERIOD_CLOSED", None, id="closed"),
        pytest.param(answer(400, body=netsuite("PERIOD_LOCKED")), ErpRejected, "PERIOD_LOCKED", None, id="ar-locked"),
        pytest.param(
            answer(400, body=netsuite("UNBALANCED_JOURNAL")), ErpRejected, "UNBALANCED_JOURNAL", None, id="unbalanced"
        ),
        pytest.param(
            answer(401, body=netsuite("INVALID_LOGIN", 401)),
            ErpRejected,
            "INVALID_LOGIN",
            None,
            id="login-after-refresh",
        ),
        pytest.param(
            answer(504, body=netsuite("GATEWAY_TIMEOUT", 504)), InDoubtError, None, None, id="504-write-in-doubt"
        ),
        pytest.param(
            answer(500, body=netsuite("UNEXPECTED_ERROR", 500)), InDoubtError, None, None, id="500-write-in-doubt"
        ),
        pytest.param(answer(503), TransientError, None, None, id="503-write-not-applied"),
        pytest.param(answer(500, method="GET"), TransientError, None, None, id="500-read-transient"),
        pytest.param(answer(400, body=["not", "netsuite"]), ErpRejected, "HTTP_400", None, id="unreadable-body"),
    ],
)
def test_answers_are_classified(
    response: httpx.Response, error: type[Exception], code: str | None, retry_after: float | None
) -> None:
    client = ErpClient(httpx.AsyncClient(), client_id="c", client_secret="s")
    with pytest.raises(error) as caught:
        client._raise_for(response.request.method, response.request.url.path, response)
    exc = caught.value
    if error is TransientError:
        assert not isinstance(exc, InDoubtError) and exc.retry_after == retry_after  # type: ignore[attr-defined]
    if isinstance(exc, ErpRejected):
        assert isinstance(exc, PermanentError) and not exc.retryable and exc.code == code
        assert rejection_code(f"{type(exc).__name__}: {exc}") == code


def test_a_2xx_raises_nothing() -> None:
    ErpClient(httpx.AsyncClient(), client_id="c", client_secret="s")._raise_for("PUT", "/x", answer(204))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("ErpRejected: [PERIOD_CLOSED] HTTP 400 from PUT …", "PERIOD_CLOSED"),
        ("[NO_PERIOD] …", "NO_PERIOD"),
        ("TransientError: HTTP 429 CONCURRENCY_LIMIT_EXCEEDED", None),
        (None, None),
    ],
)
def test_the_code_is_read_back_from_an_outcome_message(error: str | None, code: str | None) -> None:
    assert rejection_code(error) == code


def test_error_detail_reads_netsuites_shape() -> None:
    assert error_detail(answer(400, body=netsuite("DUP_RCRD"))) == ("DUP_RCRD", "why")
