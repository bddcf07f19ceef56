"""The HTTP contract of Confluent's Schema Registry API v1, against a real registry process on real Kafka."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.registry.registry_procs import RegistryCluster, RegistryProcess

pytestmark = pytest.mark.kafka

CT = "application/vnd.schemaregistry.v1+json"


def avro(*fields: tuple[str, Any] | tuple[str, Any, Any], name: str = "Invoice") -> str:
    out = []
    for f in fields:
        item: dict[str, Any] = {"name": f[0], "type": f[1]}
        if len(f) == 3:
            item["default"] = f[2]
        out.append(item)
    return json.dumps({"type": "record", "name": name, "namespace": "accord.contract", "fields": out})


V1 = avro(("id", "string"))
V2 = avro(("id", "string"), ("tax", "long", 0))
BREAKING = avro(("id", "string"), ("tax", "long"))


@pytest.fixture
def http(shared_registry: RegistryProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_registry.url, headers={"content-type": CT}, timeout=30) as client:
        yield client


@pytest.fixture
def subject() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}-value"


def register(http: httpx.Client, subject: str, schema: str, **extra: Any) -> httpx.Response:
    return http.post(f"/subjects/{subject}/versions", json={"schema": schema, **extra})


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert response.headers["content-type"].startswith(CT)
    return dict(body)


def test_root_types_and_contexts(http: httpx.Client) -> None:
    root = http.get("/")
    assert root.status_code == 200 and root.json() == {}
    assert root.headers["content-type"].startswith(CT)
    assert http.get("/schemas/types").json() == ["AVRO"]
    assert http.get("/contexts").json() == ["."]


def test_register_read_back_every_way(http: httpx.Client, subject: str) -> None:
    first = register(http, subject, V1)
    assert first.status_code == 200 and first.headers["content-type"].startswith(CT)
    schema_id = first.json()["id"]
    assert register(http, subject, json.dumps(json.loads(V1), indent=4)).json() == {"id": schema_id}
    assert http.get(f"/subjects/{subject}/versions").json() == [1]
    expected = {"subject": subject, "version": 1, "id": schema_id, "schema": V1.replace(", ", ",").replace(": ", ":")}
    for version in ("1", "latest", "-1"):
        assert http.get(f"/subjects/{subject}/versions/{version}").json() == expected
    assert http.get(f"/subjects/{subject}/versions/1/schema").json() == json.loads(V1)
    assert json.loads(http.get(f"/schemas/ids/{schema_id}").json()["schema"]) == json.loads(V1)
    assert http.get(f"/schemas/ids/{schema_id}", params={"subject": subject}).status_code == 200
    assert http.get(f"/schemas/ids/{schema_id}/schema").json() == json.loads(V1)
    assert subject in http.get(f"/schemas/ids/{schema_id}/subjects").json()
    assert {"subject": subject, "version": 1} in http.get(f"/schemas/ids/{schema_id}/versions").json()
    assert subject in http.get("/subjects").json()
    assert subject in http.get("/subjects", params={"subjectPrefix": subject[:14]}).json()
    found = http.post(f"/subjects/{subject}", json={"schema": V1})
    assert found.json()["id"] == schema_id and found.json()["version"] == 1
    listed = http.get("/schemas", params={"subjectPrefix": subject}).json()
    assert [s["id"] for s in listed] == [schema_id]


def test_second_version_and_ids(http: httpx.Client, subject: str) -> None:
    id1 = register(http, subject, V1).json()["id"]
    id2 = register(http, subject, V2).json()["id"]
    assert id2 != id1
    assert http.get(f"/subjects/{subject}/versions").json() == [1, 2]
    assert http.get(f"/subjects/{subject}/versions/latest").json()["id"] == id2
    other = f"{subject}-other"
    assert register(http, other, V2).json()["id"] == id2  # the same schema elsewhere keeps its id


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/subjects/{missing}/versions", None, 404, 40401),
        ("GET", "/subjects/{missing}/versions/1", None, 404, 40401),
        ("POST", "/subjects/{missing}", {"schema": V1}, 404, 40401),
        ("DELETE", "/subjects/{missing}", None, 404, 40401),
        ("GET", "/subjects/{subject}/versions/7", None, 404, 40402),
        ("DELETE", "/subjects/{subject}/versions/7", None, 404, 40402),
        ("GET", "/schemas/ids/987654321", None, 404, 40403),
        ("GET", "/schemas/ids/abc", None, 404, 40403),
        ("GET", "/schemas/ids/987654321/subjects", None, 404, 40403),
        ("POST", "/subjects/{subject}", {"schema": V2}, 404, 40403),
        ("GET", "/subjects/{subject}/versions/0", None, 422, 42202),
        ("GET", "/subjects/{subject}/versions/abc", None, 422, 42202),
        ("DELETE", "/subjects/{subject}/versions/-5", None, 422, 42202),
        ("POST", "/subjects/{subject}/versions", {"schema": "{not json"}, 422, 42201),
        ("POST", "/subjects/{subject}/versions", {"schema": avro(("n", "int", "zero"))}, 422, 42201),
        ("POST", "/subjects/{subject}/versions", {"schema": '"int"', "schemaType": "JSON"}, 422, 42201),
        ("POST", "/subjects/{subject}/versions", {}, 422, 42201),
        ("POST", "/subjects/{subject}/versions", {"schema": BREAKING}, 409, 409),
        ("PUT", "/config", {"compatibility": "SIDEWAYS"}, 422, 42203),
        ("PUT", "/config/{subject}", {}, 422, 42203),
        ("GET", "/config/{subject}", None, 404, 40408),
        ("GET", "/mode/{subject}", None, 404, 40409),
        ("PUT", "/mode/{subject}", {"mode": "SOMETIMES"}, 422, 42204),
        ("POST", "/compatibility/subjects/{subject}/versions/9", {"schema": V1}, 404, 40402),
        ("GET", "/associations/resources/{subject}", None, 404, 404),
        ("GET", "/no/such/route", None, 404, 404),
        ("PATCH", "/subjects", None, 405, 405),
    ],
)
def test_error_codes(
    http: httpx.Client, subject: str, method: str, path: str, body: Any, status: int, code: int
) -> None:
    assert register(http, subject, V1).status_code == 200
    url = path.format(subject=subject, missing=f"{subject}-missing")
    response = http.request(method, url, json=body) if body is not None else http.request(method, url)
    assert_error(response, status, code)


@pytest.mark.parametrize(
    "raw",
    [b"{broken", b"[1,2", b'"just a string"', b"\xff\xfe", b"null"],
    ids=["truncated object", "truncated list", "string", "not utf-8", "null"],
)
def test_malformed_bodies_get_a_clear_4xx(http: httpx.Client, subject: str, raw: bytes) -> None:
    response = http.post(f"/subjects/{subject}/versions", content=raw)
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert isinstance(response.json()["error_code"], int)


def test_soft_and_hard_delete_as_confluent_documents(http: httpx.Client, subject: str) -> None:
    register(http, subject, V1)
    register(http, subject, V2)
    assert_error(http.delete(f"/subjects/{subject}/versions/1", params={"permanent": "true"}), 404, 40407)
    assert http.delete(f"/subjects/{subject}/versions/1").json() == 1
    assert_error(http.delete(f"/subjects/{subject}/versions/1"), 404, 40406)
    assert http.get(f"/subjects/{subject}/versions").json() == [2]
    assert http.get(f"/subjects/{subject}/versions", params={"deleted": "true"}).json() == [1, 2]
    assert_error(http.get(f"/subjects/{subject}/versions/1"), 404, 40402)
    assert http.get(f"/subjects/{subject}/versions/1", params={"deleted": "true"}).status_code == 200
    assert_error(http.delete(f"/subjects/{subject}", params={"permanent": "true"}), 404, 40405)
    assert http.delete(f"/subjects/{subject}").json() == [2]
    assert subject not in http.get("/subjects").json()
    assert subject in http.get("/subjects", params={"deleted": "true"}).json()
    assert_error(http.get(f"/subjects/{subject}/versions"), 404, 40401)
    assert_error(http.delete(f"/subjects/{subject}"), 404, 40404)
    assert http.delete(f"/subjects/{subject}", params={"permanent": "true"}).json() == [1, 2]
    assert subject not in http.get("/subjects", params={"deleted": "true"}).json()
    # a version hard-deleted on its own
    register(http, subject, V1)
    assert http.delete(f"/subjects/{subject}/versions/latest").json() == 1
    assert http.delete(f"/subjects/{subject}/versions/1", params={"permanent": "true"}).json() == 1
    assert_error(http.get(f"/subjects/{subject}/versions/1", params={"deleted": "true"}), 404, 40401)


def test_references_and_referencedby(http: httpx.Client, subject: str) -> None:
    money_subject = f"{subject}-money"
    money = json.dumps(
        {"type": "record", "name": "Money", "namespace": "accord.contract", "fields": [{"name": "c", "type": "string"}]}
    )
    money_id = register(http, money_subject, money).json()["id"]
    invoice = avro(("total", "accord.contract.Money"))
    refs = [{"name": "accord.contract.Money", "subject": money_subject, "version": 1}]
    assert_error(register(http, subject, invoice), 422, 42201)  # the name is unknown without the reference
    invoice_id = register(http, subject, invoice, references=refs).json()["id"]
    assert http.get(f"/subjects/{money_subject}/versions/1/referencedby").json() == [invoice_id]
    assert http.get(f"/schemas/ids/{invoice_id}").json()["references"] == refs
    assert http.get(f"/subjects/{subject}/versions/1").json()["references"] == refs
    assert_error(http.delete(f"/subjects/{money_subject}"), 422, 42206)
    assert money_id != invoice_id


def test_lookup_with_normalize_and_deleted(http: httpx.Client, subject: str) -> None:
    schema_id = register(http, subject, V1, normalize=None).json()["id"]
    respelled = json.dumps(
        {"fields": [{"type": {"type": "string"}, "name": "id"}], "name": "accord.contract.Invoice", "type": "record"}
    )
    assert_error(http.post(f"/subjects/{subject}", json={"schema": respelled}), 404, 40403)
    found = http.post(f"/subjects/{subject}", params={"normalize": "true"}, json={"schema": respelled})
    assert found.json()["id"] == schema_id
    http.delete(f"/subjects/{subject}/versions/1")
    assert_error(http.post(f"/subjects/{subject}", json={"schema": V1}), 404, 40401)
    assert http.post(f"/subjects/{subject}", params={"deleted": "true"}, json={"schema": V1}).json()["id"] == schema_id


def test_compatibility_endpoint_verbose(http: httpx.Client, subject: str) -> None:
    register(http, subject, V1)
    ok = http.post(f"/compatibility/subjects/{subject}/versions/latest", json={"schema": V2})
    assert ok.json() == {"is_compatible": True}
    bad = http.post(
        f"/compatibility/subjects/{subject}/versions/latest", params={"verbose": "true"}, json={"schema": BREAKING}
    )
    body = bad.json()
    assert body["is_compatible"] is False
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in m and "'tax'" in m for m in body["messages"])
    assert "{compatibility: 'BACKWARD'}" in body["messages"]
    assert http.post(f"/compatibility/subjects/{subject}/versions", json={"schema": V2}).json()["is_compatible"]
    fresh = http.post(f"/compatibility/subjects/{subject}-new/versions/latest", json={"schema": V1})
    assert fresh.json() == {"is_compatible": True}


def test_subject_config_and_default_to_global(http: httpx.Client, subject: str) -> None:
    register(http, subject, V1)
    assert http.put(f"/config/{subject}", json={"compatibility": "NONE"}).json() == {"compatibility": "NONE"}
    assert http.get(f"/config/{subject}").json() == {"compatibilityLevel": "NONE"}
    assert register(http, subject, BREAKING).status_code == 200  # NONE: anything goes
    assert http.delete(f"/config/{subject}").json() == {"compatibilityLevel": "NONE"}
    assert_error(http.get(f"/config/{subject}"), 404, 40408)
    assert http.get(f"/config/{subject}", params={"defaultToGlobal": "true"}).json() == {
        "compatibilityLevel": http.get("/config").json()["compatibilityLevel"]
    }


def test_global_config_round_trip(http: httpx.Client) -> None:
    before = http.get("/config").json()["compatibilityLevel"]
    try:
        assert http.put("/config", json={"compatibility": "FULL_TRANSITIVE"}).json() == {
            "compatibility": "FULL_TRANSITIVE"
        }
        assert http.get("/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    finally:
        assert http.delete("/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert http.get("/config").json() == {"compatibilityLevel": before}


def test_modes(http: httpx.Client, subject: str) -> None:
    register(http, subject, V1)
    assert http.get("/mode").json() == {"mode": "READWRITE"}
    assert http.put(f"/mode/{subject}", json={"mode": "READONLY"}).json() == {"mode": "READONLY"}
    assert http.get(f"/mode/{subject}").json() == {"mode": "READONLY"}
    assert_error(register(http, subject, V2), 422, 42205)
    assert_error(http.delete(f"/subjects/{subject}"), 422, 42205)
    assert http.delete(f"/mode/{subject}").json() == {"mode": "READONLY"}
    assert http.get(f"/mode/{subject}", params={"defaultToGlobal": "true"}).json() == {"mode": "READWRITE"}
    assert register(http, subject, V2).status_code == 200


def test_basic_auth(registry_cluster: RegistryCluster) -> None:
    instance = registry_cluster.start(
        ACCORD_REGISTRY_BASIC_AUTH_USERNAME="ops", ACCORD_REGISTRY_BASIC_AUTH_PASSWORD="s3cret"
    )
    denied = httpx.get(instance.url + "/subjects")
    assert_error(denied, 401, 401)
    assert denied.headers["www-authenticate"].startswith("Basic")
    assert_error(httpx.get(instance.url + "/schemas/ids/1", auth=("ops", "wrong")), 401, 401)
    assert httpx.get(instance.url + "/subjects", auth=("ops", "s3cret")).json() == []
    created = httpx.post(
        instance.url + "/subjects/a-value/versions", json={"schema": V1}, auth=("ops", "s3cret"), timeout=30
    )
    assert created.status_code == 200
    assert httpx.get(instance.url + f"/schemas/ids/{created.json()['id']}", auth=("ops", "s3cret")).status_code == 200
