"""Known-answer vectors for accord.webhooks (computed independently with `openssl dgst -sha256 -hmac`)."""

from __future__ import annotations

import pytest

from accord.webhooks import (
    WebhookSignatureError,
    compute_signature,
    parse_header,
    signature_header,
    verify,
)

pytestmark = pytest.mark.unit

BODY = b'{"id":"evt_1","type":"invoice.paid"}'
T = 1_700_000_000
SECRET = "whsec_test_secret"
NEW_SECRET = "whsec_new_secret"
# printf '%s' '1700000000.{"id":"evt_1","type":"invoice.paid"}' | openssl dgst -sha256 -hmac whsec_test_secret
SIG_OLD = "46dc069361a7691082640523fa33fe5d6c8c88d5f5e257cdf8cf11539d166595"
SIG_NEW = "1894477ffd8f4ee9bc769d9dbb2c5ff559f5a60062bc38dba29b8021bbd6b1a2"


def test_known_answer_signature() -> None:
    assert compute_signature(BODY, SECRET, T) == SIG_OLD
    assert compute_signature(BODY, NEW_SECRET, T) == SIG_NEW


def test_header_during_rotation_carries_both_signatures() -> None:
    assert signature_header(BODY, [SECRET, NEW_SECRET], T) == f"t={T},v1={SIG_OLD},v1={SIG_NEW}"
    assert parse_header(f"t={T},v1={SIG_OLD},v0=abc,v1={SIG_NEW}") == (T, [SIG_OLD, SIG_NEW])


@pytest.mark.parametrize(
    ("header", "secrets"),
    [
        pytest.param(f"t={T},v1={SIG_OLD}", [SECRET], id="one-secret"),
        pytest.param(f"t={T},v1={SIG_OLD}", [NEW_SECRET, SECRET], id="receiver-holds-two-secrets"),
        pytest.param(f"t={T},v1={SIG_OLD},v1={SIG_NEW}", [NEW_SECRET], id="sender-rotating-new-only"),
        pytest.param(f"t={T},v1={SIG_OLD},v1={SIG_NEW}", [SECRET], id="sender-rotating-old-only"),
        pytest.param(f"t={T}, v0=deadbeef, v1={SIG_OLD}", [SECRET], id="spaces-and-v0-ignored"),
    ],
)
def test_accepted(header: str, secrets: list[str]) -> None:
    assert verify(BODY, header, secrets, now=T + 10) == T


@pytest.mark.parametrize(
    ("body", "header", "secrets", "now", "reason"),
    [
        pytest.param(
            b'{"id":"evt_1","type":"invoice.paie"}', f"t={T},v1={SIG_OLD}", [SECRET], T, "mismatch", id="tampered"
        ),
        pytest.param(BODY + b" ", f"t={T},v1={SIG_OLD}", [SECRET], T, "mismatch", id="trailing-space"),
        pytest.param(BODY, f"t={T},v1={SIG_OLD}", ["whsec_other"], T, "mismatch", id="wrong-secret"),
        pytest.param(BODY, f"t={T + 1},v1={SIG_OLD}", [SECRET], T, "mismatch", id="timestamp-swapped"),
        pytest.param(BODY, f"t={T},v1={SIG_OLD.upper()}", [SECRET], T, "mismatch", id="case-changed"),
        pytest.param(BODY, f"t={T},v1={SIG_OLD}", [SECRET], T + 301, "stale", id="stale"),
        pytest.param(BODY, f"t={T},v1={SIG_OLD}", [SECRET], T - 301, "future", id="future"),
        pytest.param(BODY, None, [SECRET], T, "missing", id="no-header"),
        pytest.param(BODY, "", [SECRET], T, "missing", id="empty-header"),
        pytest.param(BODY, f"v1={SIG_OLD}", [SECRET], T, "malformed", id="no-timestamp"),
        pytest.param(BODY, f"t=soon,v1={SIG_OLD}", [SECRET], T, "malformed", id="timestamp-not-int"),
        pytest.param(BODY, "garbage", [SECRET], T, "malformed", id="garbage"),
        pytest.param(BODY, f"t={T},v0={SIG_OLD}", [SECRET], T, "no_signatures", id="only-v0"),
    ],
)
def test_rejected(body: bytes, header: str | None, secrets: list[str], now: int, reason: str) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify(body, header, secrets, now=now)
    assert caught.value.reason == reason


def test_tolerance_edges_are_inclusive() -> None:
    header = f"t={T},v1={SIG_OLD}"
    assert verify(BODY, header, SECRET, now=T + 300) == T
    assert verify(BODY, header, SECRET, now=T - 300) == T
    assert verify(BODY, header, SECRET, tolerance=10, now=T + 10) == T
    with pytest.raises(WebhookSignatureError):
        verify(BODY, header, SECRET, tolerance=10, now=T + 11)


def test_no_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        verify(BODY, f"t={T},v1={SIG_OLD}", [], now=T)


def test_construct_event_verifies_then_parses() -> None:
    from accord.webhooks import WebhookPayloadError, construct_event

    assert construct_event(BODY, f"t={T},v1={SIG_OLD}", SECRET, now=T) == {"id": "evt_1", "type": "invoice.paid"}
    with pytest.raises(WebhookSignatureError):
        construct_event(BODY, f"t={T},v1={SIG_NEW}", SECRET, now=T)
    not_object = b"[1, 2]"
    header = signature_header(not_object, [SECRET], T)
    with pytest.raises(WebhookPayloadError, match="not an object"):
        construct_event(not_object, header, SECRET, now=T)
    not_json = b"{oops"
    with pytest.raises(WebhookPayloadError, match="not JSON"):
        construct_event(not_json, signature_header(not_json, [SECRET], T), SECRET, now=T)
