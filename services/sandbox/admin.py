"""The operator's API under /admin: clock, fault knobs, webhook subscribers, periods, out-of-band edits,
the ERP governance limit and the traffic generator. Answers in RFC 9457 problem+json on errors."""

from __future__ import annotations

import re
import secrets as pysecrets
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from . import billing, crm, erp
from .core import Sandbox, sandbox
from .errors import SandboxError
from .faults import SYSTEMS, Knob
from .store import iso

router = APIRouter(prefix="/admin")
#: a book's namespace: the prefix of its names ("<ns> …") and external ids ("<ns>-c00001")
NAMESPACE = r"^[a-z0-9-]{1,20}$"


def problem(status: int, code: str, message: str) -> SandboxError:
    return SandboxError(status, code, message)


class Advance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0, ge=0)
    days: float = Field(default=0, ge=0)


class FaultSpec(Knob):
    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str
    endpoint: str = "*"


class Subscriber(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, min_length=8)


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str | None = Field(default=None, min_length=8)


class PeriodStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    concurrency: int = Field(ge=1, le=1000)


class Edit(BaseModel):
    """A person changes a record by hand in the system's UI: no integration sees it coming."""

    model_config = ConfigDict(extra="forbid")
    system: str
    kind: str
    id: str
    fields: dict[str, Any]


class Generate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customers: int = Field(default=20, ge=1, le=5000)
    seed: int = 0
    namespace: str = Field(default="gen", pattern=NAMESPACE)
    #: full: the whole book in every system; sales: only the CRM side, accord does the rest
    mode: Literal["full", "sales"] = "full"
    #: sales waves: start at customer k of the seed's plan
    offset: int = Field(default=0, ge=0, le=100_000)


def _system(name: str) -> str:
    if name not in SYSTEMS:
        raise problem(400, "unknown_system", f"system must be one of {', '.join(SYSTEMS)}, got {name!r}")
    return name


@router.get("/status")
async def status(request: Request) -> dict[str, Any]:
    box = sandbox(request)
    pool = box.store.pool
    counts = await pool.fetch(
        "SELECT system, kind, count(*) AS n FROM records WHERE NOT deleted GROUP BY 1, 2 ORDER BY 1, 2"
    )
    outbox = await pool.fetch("SELECT status, count(*) AS n FROM outbox GROUP BY 1 ORDER BY 1")
    return {
        "now": iso(box.store.clock.now()),
        "clock_offset_seconds": box.store.clock.offset,
        "seed": box.faults.seed,
        "faults": box.faults.describe(),
        "erp": {"concurrency_limit": box.erp_limit, "in_flight": box.erp_in_flight, "rejected": box.erp_rejected},
        "records": {f"{r['system']}.{r['kind']}": r["n"] for r in counts},
        "deliveries": {r["status"]: r["n"] for r in outbox},
    }


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    box = sandbox(request)
    return {"now": iso(box.store.clock.now()), "offset_seconds": box.store.clock.offset}


@router.post("/clock/advance")
async def advance(spec: Advance, request: Request) -> dict[str, Any]:
    """Move sandbox time forward, then run what fell due (renewals, finalizations, payment retries)."""
    box = sandbox(request)
    now = await box.store.clock.advance(box.store.pool, spec.seconds + spec.days * 86_400)
    done = await billing.tick(box)
    return {"now": iso(now), "offset_seconds": box.store.clock.offset, "billing_actions": done}


@router.post("/tick")
async def tick(request: Request) -> dict[str, Any]:
    return {"billing_actions": await billing.tick(sandbox(request))}


async def _save_faults(box: Sandbox) -> None:
    await box.store.put_setting("faults", box.faults.to_setting())


@router.get("/faults")
async def faults(request: Request) -> list[dict[str, Any]]:
    return sandbox(request).faults.describe()


@router.put("/faults")
async def set_fault(spec: FaultSpec, request: Request) -> dict[str, Any]:
    box = sandbox(request)
    _system(spec.system)
    knob = Knob.model_validate(spec.model_dump(exclude={"system", "endpoint"}))
    box.faults.set(spec.system, spec.endpoint, knob)
    await _save_faults(box)
    return {"system": spec.system, "endpoint": spec.endpoint, **knob.model_dump(exclude_defaults=True)}


@router.delete("/faults")
async def clear_faults(request: Request, system: str | None = None, endpoint: str | None = None) -> dict[str, int]:
    box = sandbox(request)
    if system is not None:
        _system(system)
    cleared = box.faults.clear(system, endpoint)
    await _save_faults(box)
    return {"cleared": cleared}


@router.post("/webhooks", status_code=201)
async def subscribe(spec: Subscriber, request: Request) -> dict[str, Any]:
    box = sandbox(request)
    if _system(spec.system) == "erp":
        raise problem(400, "no_webhooks", "The ERP emits no webhooks: poll lastModifiedDate instead.")
    secret = spec.secret or "whsec_" + pysecrets.token_hex(16)
    sub_id = "we_" + pysecrets.token_hex(8)
    await box.store.pool.execute(
        "INSERT INTO subscribers (id, system, url, secrets, created_at) VALUES ($1, $2, $3, $4, $5)",
        sub_id,
        spec.system,
        spec.url,
        [secret],
        box.store.clock.now(),
    )
    return {"id": sub_id, "system": spec.system, "url": spec.url, "secrets": [secret]}


@router.get("/webhooks")
async def subscribers(request: Request) -> list[dict[str, Any]]:
    rows = await sandbox(request).store.pool.fetch(
        "SELECT id, system, url, active FROM subscribers ORDER BY created_at"
    )
    return [dict(r) for r in rows]


@router.post("/webhooks/{sub_id}/rotate")
async def rotate(sub_id: str, spec: Rotation, request: Request) -> dict[str, Any]:
    """Add a new secret: both the old and the new one sign every delivery until expire_old."""
    new = spec.secret or "whsec_" + pysecrets.token_hex(16)
    row = await sandbox(request).store.pool.fetchrow(
        "UPDATE subscribers SET secrets = (secrets - $2) || jsonb_build_array($2::text) "
        "WHERE id = $1 RETURNING secrets",
        sub_id,
        new,
    )
    if row is None:
        raise problem(404, "not_found", f"no webhook subscriber {sub_id}")
    return {"id": sub_id, "secrets": row["secrets"]}


@router.post("/webhooks/{sub_id}/expire_old")
async def expire_old(sub_id: str, request: Request) -> dict[str, Any]:
    row = await sandbox(request).store.pool.fetchrow(
        "UPDATE subscribers SET secrets = jsonb_build_array(secrets -> -1) WHERE id = $1 RETURNING secrets", sub_id
    )
    if row is None:
        raise problem(404, "not_found", f"no webhook subscriber {sub_id}")
    return {"id": sub_id, "secrets": row["secrets"]}


@router.delete("/webhooks/{sub_id}")
async def unsubscribe(sub_id: str, request: Request) -> Response:
    pool = sandbox(request).store.pool
    done = await pool.execute("UPDATE subscribers SET active = false WHERE id = $1", sub_id)
    await pool.execute("UPDATE outbox SET status = 'dropped' WHERE subscriber_id = $1 AND status = 'pending'", sub_id)
    if done.endswith(" 0"):
        raise problem(404, "not_found", f"no webhook subscriber {sub_id}")
    return Response(status_code=204)


@router.get("/webhooks/{sub_id}/deliveries")
async def deliveries(sub_id: str, request: Request) -> list[dict[str, Any]]:
    rows = await sandbox(request).store.pool.fetch(
        "SELECT o.id, e.id AS event_id, e.type, o.status, o.attempts, o.last_status, o.last_error, o.next_attempt_at "
        "FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE o.subscriber_id = $1 ORDER BY o.id",
        sub_id,
    )
    return [{**dict(r), "next_attempt_at": iso(r["next_attempt_at"])} for r in rows]


@router.post("/tokens/revoke")
async def revoke_tokens(request: Request) -> dict[str, int]:
    """End every CRM and ERP session, as an expiry or a revoked connected app would."""
    return {"revoked": sandbox(request).sessions.revoke()}


@router.post("/erp/periods/{period_id}")
async def period(period_id: str, spec: PeriodStatus, request: Request) -> dict[str, Any]:
    """Close (or lock A/R, or reopen) an accounting period."""
    return await erp.set_period_status(sandbox(request), period_id, spec.status)


class DailyLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    daily: int = Field(ge=1)


@router.put("/crm/api-limit")
async def crm_api_limit(spec: DailyLimit, request: Request) -> dict[str, Any]:
    """Set the CRM's daily API allowance (calls made today still count against it)."""
    box = sandbox(request)
    box.crm_daily_limit = spec.daily
    return {"daily": spec.daily, "used_today": box.crm_api_usage.get("used", 0)}


@router.put("/erp/limit")
async def erp_limit(spec: Limit, request: Request) -> dict[str, Any]:
    box = sandbox(request)
    box.erp_limit = spec.concurrency
    await box.store.put_setting("erp_concurrency_limit", spec.concurrency)
    return {"concurrency_limit": spec.concurrency}


@router.post("/edit")
async def edit(spec: Edit, request: Request) -> dict[str, Any]:
    """An out-of-band edit. CRM: a UI change (change events with an empty changeOrigin). ERP: the fields
    are written as given, unvalidated (a person overriding an amount). Billing: a dashboard edit
    (`<object>.updated` event)."""
    box = sandbox(request)
    system = _system(spec.system)
    async with box.store.tx(system) as tx:
        record = await tx.get(spec.kind, spec.id)
        if record is None:
            raise problem(404, "not_found", f"no {system} {spec.kind} {spec.id}")
        if system == "crm":
            record = await crm.write(tx, spec.kind, dict(spec.fields), record)
            await crm.flush(tx, origin="")
        elif system == "erp":
            record.update(spec.fields, lastModifiedDate=iso(tx.now))
            await tx.update(spec.kind, spec.id, record)
        else:
            previous = {k: record.get(k) for k in spec.fields}
            record.update(spec.fields)
            await tx.update(spec.kind, spec.id, record)
            await billing.emit(tx, f"{spec.kind}.updated", record, previous)
    return record


@router.post("/generate")
async def generate(spec: Generate, request: Request) -> JSONResponse:
    """Create a realistic book through the systems' own APIs (see generator.py)."""
    from . import generator

    if spec.mode == "sales":
        summary = await generator.run_sales(
            request.app, customers=spec.customers, seed=spec.seed, namespace=spec.namespace, offset=spec.offset
        )
        return JSONResponse(summary)
    if spec.offset:
        raise problem(400, "offset_needs_sales_mode", "offset starts a wave of the sales mode: send mode 'sales'")
    summary = await generator.run(request.app, customers=spec.customers, seed=spec.seed, namespace=spec.namespace)
    return JSONResponse(summary)


@router.get("/agreement")
async def agreement(request: Request, namespace: str) -> dict[str, Any]:
    """Whether CRM, billing and ERP agree on a namespace's book (see agreement.py): counts and disagreements."""
    from . import agreement as oracle

    if not re.fullmatch(NAMESPACE, namespace):
        raise problem(
            400, "bad_namespace", f"namespace must match {NAMESPACE} (a generator namespace), got {namespace!r}"
        )
    return await oracle.report(sandbox(request), namespace)
