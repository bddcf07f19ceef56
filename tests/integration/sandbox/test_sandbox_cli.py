"""`accord sandbox …` drives the sandbox's admin API."""

from __future__ import annotations

import uuid

import httpx
import pytest
from typer.testing import CliRunner

from accord.cli import app

pytestmark = pytest.mark.postgres

KEY = {"Authorization": "Bearer sk_test_cli"}


def run(sandbox_url: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["sandbox", *args, "--url", sandbox_url])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_knobs_clock_period_and_generate(sandbox_url: str) -> None:
    try:
        assert "knob set" in run(sandbox_url, "fault", "billing", "--rate-429", "1")
        assert httpx.get(f"{sandbox_url}/billing/v1/customers", headers=KEY).status_code == 429
        assert "1 knob(s) cleared" in run(sandbox_url, "clear-faults", "billing")
        assert httpx.get(f"{sandbox_url}/billing/v1/customers", headers=KEY).status_code == 200
        before = httpx.get(f"{sandbox_url}/admin/clock").json()["offset_seconds"]
        assert "sandbox time now" in run(sandbox_url, "clock", "--advance", "2h")
        assert httpx.get(f"{sandbox_url}/admin/clock").json()["offset_seconds"] == before + 7200
        namespace = "cli" + uuid.uuid4().hex[:6]
        out = run(sandbox_url, "generate", "--customers", "3", "--seed", "9", "--namespace", namespace)
        assert "3 customers in EU, UK, US" in out
        token = httpx.post(
            f"{sandbox_url}/erp/services/rest/auth/oauth2/v1/token",
            data={"grant_type": "client_credentials", "client_id": "cli", "client_secret": "x"},
        ).json()["access_token"]
        periods = httpx.get(
            f"{sandbox_url}/erp/services/rest/record/v1/accountingPeriod",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        pid = periods["items"][0]["id"]
        assert "is closed" in run(sandbox_url, "period", pid, "--status", "closed")
        assert "is open" in run(sandbox_url, "period", pid, "--status", "open")
        assert "ERP concurrency limit is 3" in run(sandbox_url, "erp-limit", "3")
        assert "sandbox time" in run(sandbox_url, "status")
    finally:
        httpx.delete(f"{sandbox_url}/admin/faults")
        httpx.put(f"{sandbox_url}/admin/erp/limit", json={"concurrency": 5})


def test_cli_refusal_is_a_diagnosis(sandbox_url: str) -> None:
    result = CliRunner().invoke(app, ["sandbox", "period", "999999", "--url", sandbox_url])
    assert result.exit_code != 0
    assert "404" in str(result.exception) or "404" in result.output
