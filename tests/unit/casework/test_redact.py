"""Evidence never keeps secrets; subjects are canonical so one (kind, subject) is one case."""

from __future__ import annotations

from typing import Any

import pytest

from accord.casework import CaseworkError, redact
from accord.casework._store import subject_key

pytestmark = pytest.mark.unit

CASES: list[tuple[str, Any, Any]] = [
    ("plain values stay", {"tax": "20.00", "ids": ["in-1"]}, {"tax": "20.00", "ids": ["in-1"]}),
    ("a token is redacted", {"api_token": "sk_x"}, {"api_token": "[redacted]"}),
    (
        "nested and in lists",
        {"erp": [{"Authorization": "Bearer x", "id": 1}]},
        {"erp": [{"Authorization": "[redacted]", "id": 1}]},
    ),
    (
        "passwords and secrets",
        {"password": 1, "client_secret": 2, "apiKey": 3},
        {"password": "[redacted]", "client_secret": "[redacted]", "apiKey": "[redacted]"},
    ),
]


@pytest.mark.parametrize(("evidence", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_redact(evidence: Any, expected: Any) -> None:
    assert redact(evidence) == expected


def test_subject_key_is_canonical_and_required() -> None:
    assert subject_key({"invoice_id": "in-1", "account_id": "acc-1"}) == subject_key(
        {"account_id": "acc-1", "invoice_id": "in-1"}
    )
    with pytest.raises(CaseworkError, match="needs a subject"):
        subject_key({})
