"""`accord sandbox generate`: the same seed gives the same book, through the real APIs."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.postgres


async def generate(sb: httpx.AsyncClient, seed: int, customers: int = 8) -> dict[str, object]:
    response = await sb.post(
        "/admin/generate",
        json={"customers": customers, "seed": seed, "namespace": uuid.uuid4().hex[:8]},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_same_seed_same_book_other_seed_other_book(sb: httpx.AsyncClient) -> None:
    first = await generate(sb, seed=42)
    second = await generate(sb, seed=42)
    other = await generate(sb, seed=43)
    assert first["digest"] == second["digest"]
    assert {k: v for k, v in first.items() if k != "namespace"} == {k: v for k, v in second.items() if k != "namespace"}
    assert other["digest"] != first["digest"]
    assert len(first["legal_entities"]) >= 2  # type: ignore[arg-type]
    assert len(first["currencies"]) >= 2  # type: ignore[arg-type]
    assert first["frequencies"] == ["Annual", "Monthly", "Usage"]
    assert first["subscriptions"] >= 8  # type: ignore[operator]


async def test_generated_book_is_visible_in_every_system(sb: httpx.AsyncClient) -> None:
    ns = uuid.uuid4().hex[:8]
    response = await sb.post("/admin/generate", json={"customers": 4, "seed": 5, "namespace": ns}, timeout=120)
    assert response.status_code == 200, response.text
    subsidiary = await sb.get("/erp/services/rest/record/v1/subsidiary/eid:EU")
    assert subsidiary.status_code == 200 and subsidiary.json()["currency"] == "EUR"
    customer = await sb.get(f"/erp/services/rest/record/v1/customer/eid:{ns}-c00000")
    assert customer.status_code == 200
    q = "SELECT FIELDS(ALL) FROM Account"
    accounts = (await sb.get("/crm/services/data/v60.0/query", params={"q": q})).json()["records"]
    assert len([a for a in accounts if a["Name"].startswith(ns)]) == 4


async def test_bad_generator_input_is_a_clear_error(sb: httpx.AsyncClient) -> None:
    response = await sb.post("/admin/generate", json={"customers": 0, "seed": 1})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
