"""kill -9 the registry, start it again on the same topic: it rebuilds the very same state from Kafka."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.registry.registry_procs import RegistryCluster, observe

pytestmark = pytest.mark.kafka


def avro(*fields: dict[str, object]) -> str:
    return json.dumps({"type": "record", "name": "Invoice", "namespace": "accord.restart", "fields": list(fields)})


V1 = avro({"name": "id", "type": "string"})
V2 = avro({"name": "id", "type": "string"}, {"name": "tax", "type": "long", "default": 0})
V3 = avro(
    {"name": "id", "type": "string"},
    {"name": "tax", "type": "long", "default": 0},
    {"name": "m", "type": "string", "default": ""},
)


def test_kill_9_then_restart_rebuilds_identical_state(registry_cluster: RegistryCluster) -> None:
    first = registry_cluster.start()
    with httpx.Client(base_url=first.url, timeout=30) as http:
        for subject, schemas in {"invoices-value": [V1, V2], "payments-value": [V1], "gone-value": [V2]}.items():
            for schema in schemas:
                assert http.post(f"/subjects/{subject}/versions", json={"schema": schema}).status_code == 200
        assert http.put("/config/invoices-value", json={"compatibility": "FULL"}).status_code == 200
        assert http.put("/mode/payments-value", json={"mode": "READONLY"}).status_code == 200
        assert http.delete("/subjects/invoices-value/versions/1").status_code == 200
        assert http.delete("/subjects/gone-value").status_code == 200
        assert http.delete("/subjects/gone-value", params={"permanent": "true"}).status_code == 200
        assert http.put("/config", json={"compatibility": "FORWARD"}).status_code == 200
    before = observe(first.url)
    assert before["/subjects?{'deleted': 'true'}"] == (200, ["invoices-value", "payments-value"])

    first.kill()
    second = registry_cluster.start(port=first.port)

    assert observe(second.url) == before
    with httpx.Client(base_url=second.url, timeout=30) as http:
        # and it takes writes again, continuing the numbering from the topic
        created = http.post("/subjects/invoices-value/versions", json={"schema": V3})
        assert created.status_code == 200, created.text
        assert created.json()["id"] == 3
        assert http.get("/subjects/invoices-value/versions").json() == [2, 3]
