"""The sandbox as a process: its own schema, restarts that lose no webhook, errors never a stack trace."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from .conftest import Receiver, _serve

pytestmark = pytest.mark.postgres


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    def __init__(self, database_url: str, schema: str) -> None:
        self.env = {**os.environ, "DATABASE_URL": database_url, "ACCORD_SANDBOX_SCHEMA_NAME": schema}
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "accord_sandbox", "--port", str(self.port), "--log-level", "warning"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(self.url + "/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("sandbox did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture
def own_schema(database_url: str) -> Iterator[tuple[str, str]]:
    schema = "sandbox_" + uuid.uuid4().hex[:8]
    yield database_url, schema
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import asyncio, asyncpg\nasync def m():\n c = await asyncpg.connect({database_url!r})\n"
            f" await c.execute('DROP SCHEMA IF EXISTS {schema} CASCADE')\n await c.close()\nasyncio.run(m())",
        ],
        check=True,
    )


async def test_pending_deliveries_survive_a_restart(own_schema: tuple[str, str]) -> None:
    database_url, schema = own_schema
    first = Process(database_url, schema)
    await first.start()
    port = _port()
    try:
        async with httpx.AsyncClient(base_url=first.url, headers={"Authorization": "Bearer sk_test_x"}) as client:
            sub = (
                await client.post(
                    "/admin/webhooks",
                    json={"system": "billing", "url": f"http://127.0.0.1:{port}/hook", "secret": "whsec_restart_test"},
                )
            ).json()
            customer = (await client.post("/billing/v1/customers", json={"name": "Restart Co"})).json()
            for _ in range(200):  # the receiver is not up yet: the first attempt fails and is rescheduled
                rows = (await client.get(f"/admin/webhooks/{sub['id']}/deliveries")).json()
                if rows and rows[0]["attempts"] >= 1:
                    break
                await asyncio.sleep(0.05)
            assert rows[0]["status"] == "pending" and rows[0]["last_error"]
    finally:
        first.stop()
    receiver = Receiver(url="", secrets=["whsec_restart_test"], header="Stripe-Signature")
    second = Process(database_url, schema)
    serving: AsyncIterator[Receiver] = _serve(receiver, port)
    await serving.__anext__()
    try:
        await second.start()
        async with httpx.AsyncClient(base_url=second.url) as client:
            assert (await client.post("/admin/clock/advance", json={"seconds": 120})).status_code == 200
        events = await receiver.wait_for(lambda e: e["data"]["object"]["id"] == customer["id"])
        assert events[0]["type"] == "customer.created"
    finally:
        second.stop()
        await serving.aclose()


async def test_errors_are_shaped_never_a_stack_trace(sb: httpx.AsyncClient) -> None:
    cases = [
        ("POST", "/crm/services/data/v60.0/sobjects/Account", b"{", 400),
        ("POST", "/billing/v1/invoices", b"[]", 400),
        ("GET", "/billing/v1/nothing_here", b"", 404),
        ("PUT", "/erp/services/rest/record/v1/invoice/123", b"{}", 400),
        ("PUT", "/admin/faults", b'{"system": "billing", "error_rate": 7}', 400),
        ("PUT", "/admin/faults", b'{"system": "mainframe"}', 400),
    ]
    for method, path, body, status in cases:
        response = await sb.request(method, path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == status, (path, response.text)
        assert "Traceback" not in response.text


async def test_each_system_asks_for_its_own_credentials(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as anonymous:
        stripe = await anonymous.get("/billing/v1/customers")
        assert stripe.status_code == 401 and stripe.json()["error"]["code"] == "api_key_missing"
        wrong = await anonymous.get("/billing/v1/customers", headers={"Authorization": "Bearer pk_live_nope_123456"})
        assert wrong.status_code == 401 and "pk_live_" in wrong.json()["error"]["message"]
        basic = await anonymous.get("/billing/v1/customers", auth=("sk_test_basic_auth", ""))
        assert basic.status_code == 200
        crm = await anonymous.get("/crm/services/data/v60.0/sobjects/Account/001000000000000AAA")
        assert crm.status_code == 401 and crm.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        erp = await anonymous.get("/erp/limits")
        assert erp.status_code == 401 and erp.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
        grant = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
        token = (await anonymous.post("/crm/services/oauth2/token", data=grant)).json()
        assert token["instance_url"].endswith("/crm") and token["token_type"] == "Bearer"
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        assert (
            await anonymous.get("/crm/services/cdc/events", params={"replayId": -1}, headers=bearer)
        ).status_code == 200
        # sessions expire after two hours of sandbox time: the client must fetch a new token
        await anonymous.post("/admin/clock/advance", json={"seconds": 2 * 3600 + 1})
        expired = await anonymous.get("/crm/services/cdc/events", params={"replayId": -1}, headers=bearer)
        assert expired.status_code == 401
        erp_token = (await anonymous.post("/erp/services/rest/auth/oauth2/v1/token", data=grant)).json()
        assert (
            await anonymous.get("/erp/limits", headers={"Authorization": f"Bearer {erp_token['access_token']}"})
        ).status_code == 200
        assert (await anonymous.post("/admin/tokens/revoke")).json()["revoked"] >= 1
        assert (
            await anonymous.get("/erp/limits", headers={"Authorization": f"Bearer {erp_token['access_token']}"})
        ).status_code == 401
