"""The webhook receiver: verify, then ingest in one transaction, then answer.

Answers:
- 400 problem+json when the signature does not hold or the signed body is not a JSON event (the reject is
  recorded with its reason, the headers minus secrets and a hash of the body);
- 200 once the delivery is committed: processed, ignored, stale, duplicate, or failed to map (a permanent
  error: kept as failed in the inbox and counted, so the sender need not retry it);
- 503 when the database or the registry is unavailable: nothing was committed, the sender retries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from accord.runtime import EventCodec
from accord.serde import RegistryUnavailable
from accord.webhooks import DEFAULT_TOLERANCE_SECONDS, WebhookPayloadError, WebhookSignatureError, construct_event

from . import _metrics as m
from ._model import MappingError, Source, Via, meta_of
from ._store import ingest, record_reject, redact_headers

log = logging.getLogger("accord.ingest")


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


class WebhookReceiver:
    """The endpoint of one source. `secrets` are all the secrets accepted now (two during a rotation)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        schema: str,
        source: Source,
        codec: EventCodec,
        secrets: Sequence[str],
        signature_header: str,
        tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    ) -> None:
        if not secrets:
            raise ValueError(f"the {source.name} webhook receiver needs at least one secret")
        self.pool = pool
        self.schema = schema
        self.source = source
        self.codec = codec
        self.secrets = list(secrets)
        self.signature_header = signature_header
        self.tolerance = tolerance

    def route(self, path: str) -> Route:
        return Route(path, self.handle, methods=["POST"])

    async def _reject(self, request: Request, body: bytes, reason: str, detail: str) -> Response:
        headers = redact_headers(dict(request.headers), self.signature_header)
        await record_reject(
            self.pool,
            schema=self.schema,
            source=self.source.name,
            reason=reason,
            detail=detail,
            headers=headers,
            body=body,
        )
        log.warning("rejected %s webhook: %s (%s)", self.source.name, reason, detail)
        return _problem(400, "Webhook rejected", detail, reason=reason)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        m.RECEIVED.labels(self.source.name, Via.WEBHOOK.value).inc()
        try:
            payload = construct_event(
                body, request.headers.get(self.signature_header), self.secrets, tolerance=self.tolerance
            )
        except WebhookSignatureError as exc:
            return await self._reject(request, body, exc.reason, str(exc))
        except WebhookPayloadError as exc:
            return await self._reject(request, body, "payload", str(exc))
        try:
            async with self.pool.acquire() as conn:
                result = await ingest(
                    conn, schema=self.schema, source=self.source, codec=self.codec, raw_body=body, payload=payload
                )
        except MappingError as exc:
            return await self._reject(request, body, "payload", str(exc))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, RegistryUnavailable) as exc:
            log.warning("ingest of a %s webhook not committed, sender will retry: %s", self.source.name, exc)
            return _problem(503, "Try again later", f"the delivery was not stored: {type(exc).__name__}")
        body_out: dict[str, Any] = {
            "received": result.source_event_id,
            "outcome": result.outcome.value,
            "events": [str(meta_of(e).event_id) for e in result.events],
        }
        if result.reason:
            body_out["reason"] = result.reason
        return JSONResponse(body_out, status_code=200)


def json_body(payload: Any) -> bytes:
    """The bytes a poller stores as the raw body of an event it fetched (compact JSON)."""
    return json.dumps(payload, separators=(",", ":")).encode()
