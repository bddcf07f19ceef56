"""The sandbox as one FastAPI app: /crm, /billing/v1, /erp and /admin, and the webhook dispatcher.

The middleware is where the simulated systems' cross-cutting behaviour lives, in this order:
0. credentials, as each system asks for them (auth.py);
1. the ERP's governance limit on concurrent requests (shared by every caller) → 429 + Retry-After;
2. the operator's knobs for the endpoint: added latency, a 5xx, a 429 (a 403 REQUEST_LIMIT_EXCEEDED on
   the CRM, as Salesforce answers), drawn before the request runs;
3. billing's Idempotency-Key: a stored response is replayed, a different body under the same key is an
   idempotency_error, a key still running is a 409;
4. the request itself;
5. the in-doubt timeout: the write was applied (and its idempotent response stored), the caller gets a 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import admin, auth, billing, crm, erp
from .core import Sandbox
from .delivery import Dispatcher
from .errors import SandboxError, render, system_of
from .faults import Faults
from .settings import Settings
from .store import Clock, Store, open_pool

log = logging.getLogger("accord_sandbox")

_RATE = {
    "crm": (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    "billing": (429, "rate_limit", "Too many requests hit the API too quickly."),
    "erp": (429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked."),
}
_SERVER = {"crm": "UNKNOWN_EXCEPTION", "billing": "api_error", "erp": "UNEXPECTED_ERROR"}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
GENERATOR_HEADER = "X-Sandbox-Generator"


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings.database_url, settings.schema_name)
        clock = Clock()
        await clock.load(pool)
        store = Store(pool, clock)
        faults = Faults(settings.seed)
        faults.load(await store.get_setting("faults", []))
        limit = int(await store.get_setting("erp_concurrency_limit", settings.erp_concurrency_limit))
        app.state.sandbox = Sandbox(settings=settings, store=store, faults=faults, erp_limit=limit)
        dispatcher = Dispatcher(store, faults, interval=settings.dispatch_interval)
        app.state.dispatcher = dispatcher
        tasks = [
            asyncio.create_task(dispatcher.run(), name="webhook-dispatcher"),
            asyncio.create_task(_ticker(app.state.sandbox), name="billing-clock"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await dispatcher.close()
            await pool.close()

    app = FastAPI(title="accord sandbox", version="1.0", lifespan=lifespan)

    @app.exception_handler(SandboxError)
    async def on_sandbox_error(request: Request, exc: SandboxError) -> Response:
        return render(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        code = {"crm": "INVALID_FIELD", "billing": "parameter_invalid", "erp": "INVALID_CONTENT"}
        message = f"{where}: {first.get('msg', 'invalid request')}"
        return render(request.url.path, SandboxError(400, code.get(system_of(request.url.path), "invalid"), message))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {"crm": "NOT_FOUND", "billing": "resource_missing", "erp": "NONEXISTENT_ID"}
        code = codes.get(system_of(request.url.path), "not_found") if exc.status_code == 404 else "http_error"
        message = "The requested resource does not exist" if exc.status_code == 404 else str(exc.detail)
        return render(request.url.path, SandboxError(exc.status_code, code, message))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        system = system_of(request.url.path)
        message = f"An unexpected error occurred in the sandbox ({type(exc).__name__}: {exc})"
        return render(request.url.path, SandboxError(500, _SERVER.get(system, "internal_error"), message))

    @app.middleware("http")
    async def behaviour(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        system = system_of(path)
        if system == "admin" or request.headers.get(GENERATOR_HEADER) == "1" or path in auth.TOKEN_PATHS:
            # the operator's own traffic (admin API, the book generator) and the OAuth token endpoints meet no
            # knobs and no governance limit
            return await call_next(request)
        box: Sandbox = request.app.state.sandbox
        if box.settings.require_auth:
            refused = auth.check(system, request, box.sessions, box.store.clock.now())
            if refused is not None:
                return render(path, refused)
        if system == "erp":
            if box.erp_in_flight >= box.erp_limit:
                box.erp_rejected += 1
                return render(
                    path,
                    SandboxError(
                        429,
                        "CONCURRENCY_LIMIT_EXCEEDED",
                        f"Concurrent request limit exceeded ({box.erp_limit} for the account, shared by all "
                        "integrations). Request blocked; retry after the Retry-After delay.",
                        headers={"Retry-After": "1"},
                    ),
                )
            box.erp_in_flight += 1
            try:
                return await _with_knobs(box, system, request, call_next)
            finally:
                box.erp_in_flight -= 1
        if system == "crm":
            return await _crm_api_budget(box, request, call_next)
        return await _with_knobs(box, system, request, call_next)

    app.include_router(auth.router)
    app.include_router(crm.router)
    app.include_router(billing.router)
    app.include_router(erp.router)
    app.include_router(admin.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        box: Sandbox = request.app.state.sandbox
        await box.store.pool.fetchval("SELECT 1")
        return {"status": "ok", "now": box.store.clock.now().isoformat()}

    return app


async def _ticker(box: Sandbox, interval: float = 5.0) -> None:
    """Run billing's time-driven work (finalizations, retries, renewals) as real time passes too."""
    while True:
        await asyncio.sleep(interval)
        if box.generating:
            continue
        try:
            await billing.tick(box)
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop must outlive a bad record or a database blip
            log.exception("billing clock tick failed; retrying")


async def _crm_api_budget(
    box: Sandbox, request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Salesforce's daily API request allowance: counted per sandbox day, reported in `Sforce-Limit-Info`,
    and over it every call is a 403 REQUEST_LIMIT_EXCEEDED until the day turns."""
    usage = box.crm_api_usage
    today = box.store.clock.now().date().isoformat()
    if usage.get("day") != today:
        usage.update(day=today, used=0)
    limit = box.crm_daily_limit
    response: Response
    if usage["used"] >= limit:
        refused = SandboxError(403, "REQUEST_LIMIT_EXCEEDED", f"TotalRequests Limit exceeded. ({limit} a day)")
        response = render(request.url.path, refused)
    else:
        usage["used"] += 1
        response = await _with_knobs(box, "crm", request, call_next)
    response.headers["Sforce-Limit-Info"] = f"api-usage={usage['used']}/{limit}"
    return response


async def _with_knobs(
    box: Sandbox, system: str, request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    path = request.url.path
    rule = box.faults.match(system, request.method, path)
    if rule is not None:
        knob = rule.knob
        if knob.latency_ms:
            await asyncio.sleep(knob.latency_ms / 1000)
        if rule.roll(knob.error_rate):
            return render(path, SandboxError(500, _SERVER[system], "An unexpected error occurred (injected fault)."))
        if rule.roll(knob.rate_429):
            status, code, message = _RATE[system]
            return render(path, SandboxError(status, code, message, headers={"Retry-After": "1"}))
    key = request.headers.get("Idempotency-Key")
    if system == "billing" and request.method == "POST" and key:
        response = await _idempotent(box, request, key, call_next)
    else:
        response = await call_next(request)
    if (
        rule is not None
        and request.method in _WRITES
        and response.status_code < 300
        and rule.roll(rule.knob.timeout_after_write_rate)
    ):
        if rule.knob.timeout_hang_seconds:
            await asyncio.sleep(rule.knob.timeout_hang_seconds)
        return render(
            path,
            SandboxError(504, "GATEWAY_TIMEOUT" if system != "billing" else "api_error", "Gateway timeout (injected)."),
        )
    return response


async def _idempotent(
    box: Sandbox, request: Request, key: str, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Stripe's Idempotency-Key: store the first response, replay it, refuse other parameters."""
    path = request.url.path
    if len(key) > 255:
        raise_ = SandboxError(400, "idempotency_key_too_long", "Idempotency keys are at most 255 characters.")
        return render(path, raise_)
    raw = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + path.encode() + b"\n" + raw).hexdigest()
    pool = box.store.pool
    now = box.store.clock.now()
    # Keys are kept 24 hours (sandbox time), as Stripe does; an older key is as good as new.
    await pool.execute(
        "DELETE FROM idempotency WHERE system = 'billing' AND key = $1 "
        "AND created_at < $2::timestamptz - interval '24 hours'",
        key,
        now,
    )
    try:
        await pool.execute(
            "INSERT INTO idempotency (system, key, method, path, body_sha256, created_at) "
            "VALUES ('billing', $1, $2, $3, $4, $5)",
            key,
            request.method,
            path,
            digest,
            now,
        )
    except asyncpg.UniqueViolationError:
        row = await pool.fetchrow(
            "SELECT body_sha256, status, response FROM idempotency WHERE system = 'billing' AND key = $1", key
        )
        if row is None:  # expired between the two statements
            return render(
                path, SandboxError(409, "idempotency_key_in_use", "Retry the request.", error_type="idempotency_error")
            )
        if row["body_sha256"] != digest:
            return render(
                path,
                SandboxError(
                    400,
                    "idempotency_key_reused",
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    error_type="idempotency_error",
                ),
            )
        if row["status"] is None:
            return render(
                path,
                SandboxError(
                    409,
                    "idempotency_key_in_use",
                    f"There is currently another in-progress request using the Idempotency-Key '{key}'; "
                    "retry it after a short delay.",
                    error_type="idempotency_error",
                ),
            )
        return Response(
            content=bytes(row["response"]),
            status_code=row["status"],
            media_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    try:
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    except BaseException:
        await pool.execute("DELETE FROM idempotency WHERE system = 'billing' AND key = $1", key)
        raise
    if response.status_code >= 500 or response.status_code == 429:
        # Never executed, or failed inside: the caller may retry with the same key.
        await pool.execute("DELETE FROM idempotency WHERE system = 'billing' AND key = $1", key)
    else:
        await pool.execute(
            "UPDATE idempotency SET status = $2, response = $3 WHERE system = 'billing' AND key = $1",
            key,
            response.status_code,
            content,
        )
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    headers["Idempotency-Key"] = key
    return Response(content=content, status_code=response.status_code, headers=headers)
