"""Fixtures for the sandbox's contract tests: an HTTP client of the real sandbox process, a webhook receiver."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from accord.webhooks import BILLING_SIGNATURE_HEADER, CRM_SIGNATURE_HEADER, WebhookSignatureError, construct_event

BILLING_KEY = "sk_test_sandbox_contract_tests"
TOKEN_PATHS = {"crm": "/crm/services/oauth2/token", "erp": "/erp/services/rest/auth/oauth2/v1/token"}


class SandboxAuth(httpx.Auth):
    """Credentials as a connector sends them: Stripe's API key; CRM and ERP OAuth client-credentials tokens,
    fetched on first use and fetched again once when a session expired."""

    requires_response_body = True

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        system = request.url.path.split("/")[1]
        if system == "billing":
            request.headers["Authorization"] = f"Bearer {BILLING_KEY}"
        if system not in TOKEN_PATHS or request.url.path == TOKEN_PATHS[system]:
            yield request
            return
        for attempt in range(2):
            if system not in self.tokens or attempt:
                token_url = request.url.copy_with(path=TOKEN_PATHS[system], query=None)
                grant = {"grant_type": "client_credentials", "client_id": "accord-tests", "client_secret": "s3cret"}
                token = yield httpx.Request("POST", token_url, data=grant)
                self.tokens[system] = token.json()["access_token"]
            request.headers["Authorization"] = f"Bearer {self.tokens[system]}"
            response = yield request
            if response.status_code != 401:
                return


@pytest.fixture
async def sb(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the session's sandbox; knobs this test set are cleared afterwards."""
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=120, auth=SandboxAuth()) as client:
        yield client
        await client.delete("/admin/faults")
        await client.put("/admin/erp/limit", json={"concurrency": 5})
        await client.put("/admin/crm/api-limit", json={"daily": 100_000})


@dataclass
class Receiver:
    """A webhook endpoint that verifies signatures with accord.webhooks, as a connector will."""

    url: str
    secrets: list[str]
    header: str
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    signature_headers: list[str] = field(default_factory=list)
    fail_next: int = 0
    subscriber_id: str = ""

    async def wait_for(self, predicate: Any, within: float = 10.0) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            found = [e for e in self.events if predicate(e)]
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching webhook within {within}s; got {[e.get('type') for e in self.events]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _serve(receiver: Receiver, port: int) -> AsyncIterator[Receiver]:
    async def hook(request: Request) -> JSONResponse:
        raw = await request.body()
        header = request.headers.get(receiver.header)
        receiver.signature_headers.append(header or "")
        try:
            event = construct_event(raw, header, receiver.secrets)
        except WebhookSignatureError as exc:
            receiver.rejected.append(exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=401)
        if receiver.fail_next > 0:
            receiver.fail_next -= 1
            return JSONResponse({"error": "busy"}, status_code=503)
        receiver.events.append(event)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event for "listening"
        await asyncio.sleep(0.02)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def billing_receiver(sb: httpx.AsyncClient) -> AsyncIterator[Receiver]:
    port = _free_port()
    secret = "whsec_billing_test_secret"
    response = await sb.post(
        "/admin/webhooks", json={"system": "billing", "url": f"http://127.0.0.1:{port}/hook", "secret": secret}
    )
    assert response.status_code == 201, response.text
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hook", secrets=[secret], header=BILLING_SIGNATURE_HEADER)
    receiver.subscriber_id = response.json()["id"]
    async for r in _serve(receiver, port):
        yield r
    await sb.delete(f"/admin/webhooks/{response.json()['id']}")


@pytest.fixture
async def crm_receiver(sb: httpx.AsyncClient) -> AsyncIterator[Receiver]:
    port = _free_port()
    secret = "crm_secret_for_tests"
    response = await sb.post(
        "/admin/webhooks", json={"system": "crm", "url": f"http://127.0.0.1:{port}/hook", "secret": secret}
    )
    assert response.status_code == 201, response.text
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hook", secrets=[secret], header=CRM_SIGNATURE_HEADER)
    receiver.subscriber_id = response.json()["id"]
    async for r in _serve(receiver, port):
        yield r
    await sb.delete(f"/admin/webhooks/{response.json()['id']}")
