"""A tiny SaaS API on 127.0.0.1 for the command worker's tests: counts calls, stores by Idempotency-Key,
and misbehaves on cue (429 with Retry-After, 5xx, 4xx, apply-then-timeout, apply-then-hang)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class FakeSaas:
    """`script[key]` lists what successive writes under `key` get; "ok" when it runs out.

    - "ok": apply, 201; "429:<s>": 429 with Retry-After <s>; "503", "500": nothing applied;
    - "400": a permanent refusal (problem+json); "apply_then_504": applied, then a 504;
    - "apply_then_timeout": applied, then no answer until the client gives up;
    - "hang_then_nothing": no answer and nothing applied; "apply_then_hang": applied, no answer until released.

    With `dedupe` off the server applies every write it is told to, so only the caller's care keeps
    one effect per key (the read-back); with it on, a known key replays its stored answer, as Stripe does.
    """

    def __init__(self, *, dedupe: bool = False) -> None:
        self.dedupe = dedupe
        self.script: dict[str, list[str]] = collections.defaultdict(list)
        self.read_script: dict[str, list[str]] = collections.defaultdict(list)
        self.writes: collections.Counter[str] = collections.Counter()  # write requests that arrived
        self.reads: collections.Counter[str] = collections.Counter()
        self.effects: list[tuple[str, dict[str, Any]]] = []  # what was applied, in order
        self.stored: dict[str, dict[str, Any]] = {}
        self.release = asyncio.Event()
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/objects", self.create, methods=["POST"]),
                Route("/v1/objects/by-key/{key}", self.lookup, methods=["GET"]),
            ]
        )

    def effects_for(self, key: str) -> int:
        return sum(1 for k, _ in self.effects if k == key)

    def _apply(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.effects.append((key, payload))
        body = {"id": f"obj_{len(self.effects)}", "key": key, "payload": payload}
        self.stored[key] = body
        return body

    async def create(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return JSONResponse({"title": "Idempotency-Key required"}, status_code=400)
        self.writes[key] += 1
        payload = await request.json()
        if self.dedupe and key in self.stored:
            return JSONResponse(self.stored[key], status_code=200, headers={"Idempotent-Replayed": "true"})
        step = self.script[key].pop(0) if self.script[key] else "ok"
        if step == "ok":
            return JSONResponse(self._apply(key, payload), status_code=201)
        if step.startswith("429"):
            seconds = step.partition(":")[2] or "1"
            return JSONResponse({"title": "rate_limit"}, status_code=429, headers={"Retry-After": seconds})
        if step in {"500", "503"}:
            return JSONResponse({"title": "server_error"}, status_code=int(step))
        if step == "400":
            return JSONResponse(
                {"type": "about:blank", "title": "amount must be positive", "detail": "alice@example.com"},
                status_code=400,
                media_type="application/problem+json",
            )
        if step == "apply_then_504":
            self._apply(key, payload)
            return JSONResponse({"title": "gateway_timeout"}, status_code=504)
        if step in {"apply_then_timeout", "apply_then_hang"}:
            self._apply(key, payload)
        # hang (applied or not): answer only when the test releases us, long after the client gave up
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                await self.release.wait()
        return JSONResponse(self.stored.get(key, {}), status_code=201)

    async def lookup(self, request: Request) -> Response:
        key = request.path_params["key"]
        self.reads[key] += 1
        step = self.read_script[key].pop(0) if self.read_script[key] else "ok"
        if step != "ok":
            return JSONResponse({"title": "unavailable"}, status_code=int(step))
        if key not in self.stored:
            return JSONResponse({"title": "not found"}, status_code=404)
        return JSONResponse(self.stored[key])


@contextlib.asynccontextmanager
async def serve(fake: FakeSaas) -> AsyncIterator[FakeSaas]:
    """Run `fake` with uvicorn on a free 127.0.0.1 port in this event loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
    finally:
        fake.release.set()
        server.should_exit = True
        await task
        sock.close()
