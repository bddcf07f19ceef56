"""The registry as a part of the local stack: the `registry_url` fixture other suites use."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

pytestmark = pytest.mark.kafka


def test_registry_url_fixture_serves_a_registry(registry_url: str) -> None:
    subject = f"devstack-{uuid.uuid4().hex[:8]}-value"
    schema = json.dumps({"type": "record", "name": "Ping", "fields": [{"name": "at", "type": "long"}]})
    created = httpx.post(f"{registry_url}/subjects/{subject}/versions", json={"schema": schema}, timeout=30)
    assert created.status_code == 200, created.text
    read = httpx.get(f"{registry_url}/schemas/ids/{created.json()['id']}")
    assert json.loads(read.json()["schema"]) == json.loads(schema)
