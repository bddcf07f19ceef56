"""Executors over HTTP (httpx): the command's payload as JSON, its idempotency key in a header.

How an HTTP exchange maps onto accord's errors (so the worker retries only what it may):
- 2xx → the result (the JSON object answered);
- 429, 503 → TransientError, with Retry-After (seconds or an HTTP date) as `retry_after`; 408, 409 → Transient
  (a request timeout before processing; a request under the same key still running, as Stripe answers);
- 500, 502, 504 to a write → InDoubtError: the system (or a gateway in front of it) may have applied it;
- any other 4xx → PermanentError naming the status and the problem's title or code (never echoing fields);
- no connection / connect or pool timeout → TransientError (nothing was sent);
- read or write timeout, a dropped connection mid-exchange → InDoubtError (it may have been applied).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from accord.errors import InDoubtError, PermanentError, TransientError

from ._store import Command

PathFor = str | Callable[[Command], str]

_WRITE_IN_DOUBT = {500, 502, 504}
_TRANSIENT = {408, 409, 429, 503}


def parse_retry_after(value: str | None, *, now: float | None = None, cap: float = 3600.0) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), cap)


def problem_title(response: httpx.Response) -> str:
    """A short, data-free name for an error answer: RFC 9457 title/type, Stripe's error code, Salesforce's."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # Salesforce answers a list of errors
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        for field in ("title", "code", "errorCode", "type"):
            if isinstance(inner.get(field), str):
                return str(inner[field])[:200]
    return response.reason_phrase


def classify(response: httpx.Response) -> Mapping[str, Any]:
    """The result of a 2xx, or the accord error an error answer means (see the module's docstring)."""
    status = response.status_code
    request = response.request
    where = f"{request.method} {request.url.path}"
    if 200 <= status < 300:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        return body if isinstance(body, dict) else {"status": status}
    title = problem_title(response)
    if status in _TRANSIENT:
        raise TransientError(
            f"HTTP {status} from {where}: {title}", retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status in _WRITE_IN_DOUBT and request.method not in {"GET", "HEAD"}:
        raise InDoubtError(f"HTTP {status} from {where}: {title}; the write may have been applied")
    if status >= 500:
        raise TransientError(f"HTTP {status} from {where}: {title}")
    raise PermanentError(f"HTTP {status} from {where}: {title}")


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send, mapping transport failures onto accord's errors by whether the request may have arrived."""
    where = f"{request.method} {request.url.path}"
    try:
        return await client.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientError(f"{where}: not sent ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise InDoubtError(f"{where}: no answer ({type(exc).__name__}); it may have been applied") from exc


class HttpExecutor:
    """`method path` with the payload as JSON and the key in `Idempotency-Key`; read back with
    `GET read_back_path` (404 → never applied).

    Without a `read_back_path` the read-back re-sends the same request under the same key: right for APIs
    that replay the stored answer of a key (Stripe's Idempotency-Key), wrong for any that do not.
    Subclass and override `request` / `read_back` for APIs of another shape.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        path: PathFor,
        read_back_path: PathFor | None = None,
        method: str = "POST",
        key_header: str = "Idempotency-Key",
    ) -> None:
        self.client = client
        self.path = path
        self.read_back_path = read_back_path
        self.method = method
        self.key_header = key_header

    @staticmethod
    def _path(path: PathFor, command: Command) -> str:
        return path(command) if callable(path) else path.format(key=command.key, kind=command.kind)

    def request(self, command: Command) -> httpx.Request:
        return self.client.build_request(
            self.method,
            self._path(self.path, command),
            json=dict(command.payload),
            headers={self.key_header: command.key},
        )

    async def execute(self, command: Command) -> Mapping[str, Any]:
        return classify(await send(self.client, self.request(command)))

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        if self.read_back_path is None:
            return await self.execute(command)
        request = self.client.build_request(
            "GET", self._path(self.read_back_path, command), headers={self.key_header: command.key}
        )
        response = await send(self.client, request)
        if response.status_code == 404:
            return None
        return classify(response)
