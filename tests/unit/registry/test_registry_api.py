"""The HTTP layer in process over the in-memory log: auth, the fast id route, forwarding refusals, shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from accord_registry.api import CONTENT_TYPE, FrontDoor, Solo, build_app
from accord_registry.registry import MemoryLog, Registry
from accord_registry.state import State

pytestmark = pytest.mark.unit

SCHEMA = json.dumps({"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}]})


class NoLeader:
    async def leader(self) -> str | None:
        return None

    def begin_write(self) -> bool:
        return False

    def end_write(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"leader": False, "leader_url": None, "joined": False}


def make(leadership: Any = None, **auth: str) -> FrontDoor:
    state = State()
    registry = Registry(state, MemoryLog(state))
    return FrontDoor(
        build_app(registry, leadership or Solo()),
        registry,
        username=auth.get("username"),
        password=auth.get("password"),
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make()), base_url="http://registry") as client:
        yield client


async def test_fast_route_and_routed_answers_agree(http: httpx.AsyncClient) -> None:
    created = await http.post("/subjects/a/versions", json={"schema": SCHEMA})
    assert created.json() == {"id": 1}
    fast = await http.get("/schemas/ids/1")
    routed = await http.get("/schemas/ids/1", params={"subject": "a"})
    assert fast.json() == routed.json() == {"schema": SCHEMA.replace(", ", ",").replace(": ", ":")}
    assert fast.headers["content-type"].startswith(CONTENT_TYPE)
    assert (await http.get("/schemas/ids/2")).json()["error_code"] == 40403


async def test_basic_auth_guards_every_route() -> None:
    app = make(username="u", password="p")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as http:
        for path in ("/", "/subjects", "/schemas/ids/1", "/nowhere"):
            response = await http.get(path)
            assert response.status_code == 401 and response.json()["error_code"] == 401, path
        assert (await http.get("/subjects", auth=("u", "nope"))).status_code == 401
        assert (await http.get("/subjects", auth=("u", "p"))).json() == []
        assert (await http.get("/subjects", headers={"authorization": "Basic !!!"})).status_code == 401


async def test_writes_without_a_leader_are_refused_with_50003_reads_still_served() -> None:
    app = make(NoLeader())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as http:
        refused = await http.post("/subjects/a/versions", json={"schema": SCHEMA})
        assert refused.status_code == 503 and refused.json()["error_code"] == 50003
        assert (await http.put("/config", json={"compatibility": "FULL"})).json()["error_code"] == 50003
        assert (await http.get("/config")).json() == {"compatibilityLevel": "BACKWARD"}
        assert (await http.get("/_leader")).json()["leader"] is False


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "/subjects/a/versions", b"{"),
        ("POST", "/subjects/a/versions", b"[" * 100000),
        ("POST", "/subjects/a", b"42"),
        ("PUT", "/config", b'"FULL"'),
        ("PUT", "/mode", b"{}"),
        ("POST", "/compatibility/subjects/a/versions/latest", b'{"schema": 1}'),
        ("GET", "/subjects/a/versions/99999999999999999999", b""),
        ("DELETE", "/subjects/a/versions/latest", b""),
        ("GET", "/schemas/ids/-1", b""),
    ],
)
async def test_bad_requests_get_a_confluent_shaped_4xx(
    http: httpx.AsyncClient, method: str, path: str, content: bytes
) -> None:
    response = await http.request(method, path, content=content)
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"} and "Traceback" not in body["message"]
