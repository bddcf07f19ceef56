"""Verify (and produce) signed webhooks in Stripe's scheme: a `t=<unix seconds>,v1=<hex>` header.

The signature is HMAC-SHA256, keyed by the endpoint's secret, over `"<t>.<raw body>"`. During a secret
rotation the sender puts one `v1=` per active secret in the same header, and the receiver accepts the
request when any of them matches any secret it holds. Other schemes in the header (`v0=`, ...) are ignored,
as Stripe's libraries do.

accord's connectors use this for both kinds of webhook the sandbox sends:
- billing (Stripe-like) events, header `Stripe-Signature` (:data:`BILLING_SIGNATURE_HEADER`);
- CRM change-data-capture events, the same scheme under `X-CRM-Signature` (:data:`CRM_SIGNATURE_HEADER`).

Checks, in order: the header parses, the timestamp is within `tolerance` seconds of now (in both
directions: Stripe only rejects old ones, a clock far in the future is as suspicious and would let a
captured request be replayed for longer), then a constant-time compare of every candidate signature
against every secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from accord.errors import AccordError

BILLING_SIGNATURE_HEADER = "Stripe-Signature"
CRM_SIGNATURE_HEADER = "X-CRM-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookSignatureError(AccordError):
    """A webhook's signature header is missing, malformed, stale or does not match.

    `reason` is one of "missing", "malformed", "no_signatures", "stale", "future", "mismatch", so a
    receiver can count rejections by kind without reading the message.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class WebhookPayloadError(AccordError):
    """A webhook was signed correctly but its body is not the JSON object an event must be."""


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<payload>"` under `secret`."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The header value a sender puts on `payload`: one `v1=` per secret (two while rotating)."""
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        raise ValueError("signature_header needs at least one secret")
    parts = [f"t={timestamp}"] + [f"{SCHEME}={compute_signature(payload, s, timestamp)}" for s in secrets]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; raises WebhookSignatureError when it cannot be read."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed", f"signature header item {item.strip()!r} is not key=value")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError(
                    "malformed", f"signature header timestamp {value!r} is not an integer"
                ) from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise WebhookSignatureError("malformed", "signature header has no t=<timestamp>")
    if not signatures:
        raise WebhookSignatureError("no_signatures", f"signature header has no {SCHEME}= signature")
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str] | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a webhook and return its signed timestamp; raise WebhookSignatureError otherwise.

    `payload` must be the raw body bytes as received (parsing and re-serialising JSON changes them).
    `secrets` holds every secret currently accepted (the old and the new one during a rotation).
    """
    if isinstance(secrets, str):
        secrets = [secrets]
    if not secrets:
        raise ValueError("verify needs at least one secret")
    if not header:
        raise WebhookSignatureError("missing", "the request has no signature header")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookSignatureError("stale", f"signature timestamp {timestamp} is more than {tolerance}s in the past")
    if timestamp > current + tolerance:
        raise WebhookSignatureError(
            "future", f"signature timestamp {timestamp} is more than {tolerance}s in the future"
        )
    matched = False
    # Every pair is compared (no early exit), so timing does not tell which secret or slot matched.
    for secret in secrets:
        expected = compute_signature(payload, secret, timestamp)
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError("mismatch", "no signature matches the body under any of the configured secrets")
    return timestamp


def construct_event(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str] | str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify, then parse: the event as a dict (Stripe's `Webhook.construct_event`, minus the classes).

    Raises WebhookSignatureError when the signature does not hold (nothing of the body is trusted then) and
    WebhookPayloadError when a correctly signed body is not a JSON object.
    """
    verify(payload, header, secrets, tolerance=tolerance, now=now)
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise WebhookPayloadError(f"the signed webhook body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise WebhookPayloadError(f"the signed webhook body is a JSON {type(event).__name__}, not an object")
    return event


__all__ = [
    "BILLING_SIGNATURE_HEADER",
    "CRM_SIGNATURE_HEADER",
    "DEFAULT_TOLERANCE_SECONDS",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "compute_signature",
    "construct_event",
    "parse_header",
    "signature_header",
    "verify",
]
