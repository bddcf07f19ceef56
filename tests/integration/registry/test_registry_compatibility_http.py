"""The compatibility table through HTTP: each case registered under its level, then the new schema tried."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.registry.registry_procs import RegistryProcess
from tests.unit.avro.compat_cases import CASES, Case

pytestmark = pytest.mark.kafka

SAMPLE = CASES[::2]


@pytest.fixture
def http(shared_registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_registry.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("case", SAMPLE, ids=[c.id for c in SAMPLE])
def test_compatibility_case_over_http(http: httpx.Client, case: Case) -> None:
    subject = f"compat-{uuid.uuid4().hex[:8]}"
    assert http.put(f"/config/{subject}", json={"compatibility": "NONE"}).status_code == 200
    for schema in case.old:
        assert http.post(f"/subjects/{subject}/versions", json={"schema": schema}).status_code == 200
    assert http.put(f"/config/{subject}", json={"compatibility": case.level}).status_code == 200

    check = http.post(
        f"/compatibility/subjects/{subject}/versions", params={"verbose": "true"}, json={"schema": case.new}
    )
    assert check.json()["is_compatible"] is case.compatible, check.json()
    registered = http.post(f"/subjects/{subject}/versions", json={"schema": case.new})
    if case.compatible:
        assert registered.status_code == 200, registered.text
        assert http.get(f"/subjects/{subject}/versions").json() == list(range(1, len(case.old) + 2))
    else:
        assert registered.status_code == 409
        assert registered.json()["error_code"] == 409
        assert case.rule is not None and case.rule in registered.json()["message"]
        assert any(case.rule in m for m in check.json()["messages"])
