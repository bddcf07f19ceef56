"""Quote-to-cash end to end, with real everything: a broker of its own, PostgreSQL, the registry, the sandbox over
HTTP and every accord service as its own process. The sandbox's sales team closes a book of deals in the CRM
while the sandbox duplicates, reorders and delays webhooks and answers 429s and 5xx; every service is killed
with SIGKILL once mid-run and restarted. At the end the three systems must agree (the sandbox's own oracle),
and the exceptions must be exactly the designed ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from accord.casework import Verdict, decide_case
from accord.cli.demo import Snapshot, finished, follow, settled
from accord.devstack import Stack
from accord.events import SourceSystem as System
from accord.serde import EventCodec
from tests.support.stack import claim, stack_home

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(1800)]

SERVICES = ("orchestrator", "crm-connector", "billing-connector", "erp-connector")
CUSTOMERS = int(os.environ.get("ACCORD_E2E_CUSTOMERS", "200"))
THRESHOLD = Decimal("150000")
NOISE = {
    # the delivery noise a pipeline must absorb: nothing here may change the outcome
    "webhook_duplicate_rate": 0.15,
    "webhook_reorder_rate": 0.15,
    "webhook_delay_rate": 0.05,
    "webhook_delay_seconds": 5,
    "rate_429": 0.05,
    "error_rate": 0.03,
}


@pytest.fixture
def stack(database_url: str, db_url: str, registry_url: str) -> Iterator[Stack]:
    home = stack_home()
    claim(home)
    environ = {
        **os.environ,
        "DATABASE_URL": db_url,  # a database of its own: the sandbox's and every service's schemas
        "SCHEMA_REGISTRY_URL": registry_url,
        "ACCORD_ORCHESTRATOR_CREDIT_REVIEW_THRESHOLD": str(THRESHOLD),
        "ACCORD_ORCHESTRATOR_RETRY_DELAYS_SECONDS": json.dumps([1, 2, 3, 5, 5, 10, 10, 10, 20, 30, 30, 30, 60]),
        "ACCORD_BILLING_POLL_INTERVAL_SECONDS": "5",
        "ACCORD_RECONCILER_SETTLE_SECONDS": "5",
    }
    environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # a broker of its own: the catalogue's topic names are real
    s = Stack(home, environ=environ)
    try:
        yield s
    finally:
        s.down()
        shutil.rmtree(home, ignore_errors=True)


async def _state_run(env: dict[str, str], registry_url: str, *, since: Any) -> Any:
    from accord_reconciler.engine import Reconciler
    from accord_reconciler.settings import ReconcilerSettings, sources
    from accord_reconciler.staterun import state_run

    settings = ReconcilerSettings(  # type: ignore[call-arg]
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=env["DATABASE_URL"],
        ACCORD_SANDBOX_URL=env["ACCORD_SANDBOX_URL"],
        erp_client_secret="cs_e2e",
        crm_client_secret="cs_e2e",
        settle_seconds=5,
    )
    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=2)
    try:
        with EventCodec.connect(registry_url) as codec:
            engine = Reconciler(schema="reconciler", policy=settings.policy(), encode=codec.encode)
            async with sources(settings) as readers:
                assert set(readers) == {System.BILLING, System.ERP, System.CRM}
                return await state_run(pool, engine, readers, since=since)
    finally:
        await pool.close()


async def _an_erp_entry(database_url: str) -> tuple[str, str]:
    """A posted journal entry of one invoice: its ERP id and its match key."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            """SELECT r.id, s.external_id AS entity, r.data->>'custbody_accord_documents' AS document
               FROM sandbox.records r JOIN sandbox.records s
                 ON s.system = 'erp' AND s.kind = 'subsidiary' AND s.id = r.data->'subsidiary'->>'id'
               WHERE r.system = 'erp' AND r.kind = 'journalEntry' AND NOT r.deleted
                 AND r.data->>'custbody_accord_documents' LIKE 'in\\_%'
                 AND position(',' IN r.data->>'custbody_accord_documents') = 0
               ORDER BY r.id LIMIT 1"""
        )
        assert row is not None, "no journal entry of an invoice in the ERP"
        return row["id"], f"journal:{row['entity']}/{row['document']}"
    finally:
        await conn.close()


async def _findings(database_url: str) -> list[tuple[str, str, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT key, finding_class, status FROM reconciler.findings WHERE status <> 'RESOLVED' ORDER BY key"
        )
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


def _env(stack: Stack) -> dict[str, str]:
    return stack.env()


def _noise(sandbox: str) -> None:
    for system in ("crm", "billing", "erp"):
        knob = dict(NOISE)
        if system == "erp":  # no webhooks; its own governance (concurrency) answers 429 by itself
            knob = {"rate_429": 0.05, "error_rate": 0.02}
        httpx.put(
            f"{sandbox}/admin/faults", json={"system": system, "endpoint": "*", **knob}, timeout=10
        ).raise_for_status()


def _chaos(stack: Stack, stop: threading.Event, killed: list[str]) -> None:
    """SIGKILL each service once, at random moments of the run, and restart it at once."""
    rng = random.Random(7)
    for name in rng.sample(SERVICES, len(SERVICES)):
        if stop.wait(rng.uniform(8, 20)):
            return
        record = stack.records()[name]
        assert record.pid is not None
        os.killpg(record.pid, signal.SIGKILL) if _own_group(record.pid) else os.kill(record.pid, signal.SIGKILL)
        killed.append(name)
        time.sleep(0.5)
        stack.up()


def _own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


async def _cases(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [
            dict(r)
            for r in await conn.fetch(
                "SELECT id::text, kind, state, contract_id FROM orchestrator.cases ORDER BY created_at"
            )
        ]
    finally:
        await conn.close()


async def _values(database_url: str) -> dict[str, Decimal]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT correlation_key, state->>'value' AS value FROM orchestrator.workflow_instances"
            " WHERE workflow = 'activation'"
        )
        return {r["correlation_key"]: Decimal(r["value"]) for r in rows}
    finally:
        await conn.close()


async def _approve(database_url: str, registry_url: str, case_ids: list[str]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with EventCodec.connect(registry_url) as codec:
            for case_id in case_ids:
                async with conn.transaction():
                    await decide_case(
                        conn,
                        schema="orchestrator",
                        encode=codec.encode,
                        case_id=case_id,
                        verdict=Verdict.APPROVE,
                        actor="e2e-test",
                    )
    finally:
        await conn.close()


def test_a_book_closes_in_the_crm_and_every_system_agrees(stack: Stack, registry_url: str) -> None:
    records = stack.up()
    env = _env(stack)
    sandbox = env["ACCORD_SANDBOX_URL"]
    _noise(sandbox)
    namespace = "e2e"
    pids_before = {name: records[name].pid for name in SERVICES}

    stop, killed = threading.Event(), []
    chaos = threading.Thread(target=_chaos, args=(stack, stop, killed), daemon=True)
    chaos.start()
    plan = httpx.post(
        f"{sandbox}/admin/generate",
        json={"customers": CUSTOMERS, "seed": 11, "namespace": namespace, "mode": "sales"},
        timeout=3600,
    ).json()
    assert plan["customers"] == CUSTOMERS
    progress: list[Snapshot] = []
    first = follow(env, namespace, timeout=900, quiet=45, on_snapshot=lambda s, t: progress.append(s))
    stop.set()
    chaos.join(timeout=120)
    assert sorted(killed) == sorted(SERVICES), "every service was killed once"
    assert all(stack.records()[n].pid != pids_before[n] for n in SERVICES)
    assert settled(first), first.workflows

    # The designed exceptions: a credit review for every contract above the threshold, and nothing else.
    cases = asyncio.run(_cases(env["DATABASE_URL"]))
    values = asyncio.run(_values(env["DATABASE_URL"]))
    above = {c for c, v in values.items() if v > THRESHOLD}
    assert above, "the book has contracts above the credit review threshold"
    assert {c["kind"] for c in cases} == {"credit-review"}, cases
    assert {c["contract_id"] for c in cases} == above
    asyncio.run(_approve(env["DATABASE_URL"], registry_url, [c["id"] for c in cases]))

    final = follow(env, namespace, timeout=600, quiet=600, until=lambda s: bool(s.agreement["agree"]) and finished(s))
    report = final.agreement
    assert report["agree"], json.dumps(report["disagreements"][:20], indent=1)
    counts = report["counts"]
    assert counts["customers"] == CUSTOMERS
    assert counts["subscriptions"] >= counts["contracts"] > 0
    assert sum(counts["journal_entries"].values()) > 0
    if plan["cards"]["hard"]:
        assert counts["credit_holds"] > 0  # which accounts: the oracle checked it above
    assert sum(final.dead_letters.values()) == 0, final.dead_letters
    assert finished(final), final.workflows  # every activation and amendment done

    # The reconciler watched it all. A state reconciliation against the three systems' APIs opens nothing: the real
    # pipeline, under delivery noise and SIGKILLs, is no false positive. Then a person edits a posted ERP entry by
    # hand, and the next run (changed since the first) finds exactly that amount mismatch, as a case for a person.
    clean = asyncio.run(_state_run(env, registry_url, since=None))
    assert sum(s.records for s in clean.snapshots) > CUSTOMERS
    assert dict(clean.report.opened) == {}, [r.finding.detail for r in clean.report.findings]
    entry_id, key = asyncio.run(_an_erp_entry(env["DATABASE_URL"]))
    edit = {"system": "erp", "kind": "journalEntry", "id": entry_id, "fields": {"total": 1.23}}
    httpx.post(f"{sandbox}/admin/edit", json=edit, timeout=30).raise_for_status()
    asyncio.run(_state_run(env, registry_url, since=clean.until))
    deadline = time.monotonic() + 120  # the contradiction is due after the settle time; the service's sweeper finds it
    while not (found := asyncio.run(_findings(env["DATABASE_URL"]))) and time.monotonic() < deadline:
        time.sleep(1)
    assert found == [(key, "amount_mismatch", "ESCALATED")], found
