"""The reconciler's safe repairs converge, across real processes: a broker, a registry and a sandbox of this test's
own, its own database, and the billing connector, the ERP connector and the reconciler each as its own process.

The world: a customer whose finalized invoices never reached accord, and a second customer whose invoice went through
the ordinary flow and whose ERP entry a person then edited by hand. How the invoices were lost, realistically: they
were issued in billing before the billing connector was first deployed. No webhook subscription existed yet, so
billing delivered nothing, and the connector's catch-up poller begins, on its first start, after billing's newest
event (`CatchUpPoller.start_from_latest`: older history is a backfill, not catch-up), so it never lists them either.

The reconciler's first scheduled state run (at its start, reading everything) sees the lost invoices in billing; an
operator's full state run after the edit sees the edited entry. The sweeper of the reconciler's service finds each lost
invoice `missing` once the journal SLA has passed and asks for its safe repair (REDRIVE_POSTING on recon.repairs); the
billing connector re-reads the invoice and tells it again, the ERP connector posts it, and the reconciler closes each
finding by itself (RESOLVED, REPAIRED_AUTOMATICALLY). The edited entry is an amount mismatch in the ERP's own ledger,
which no integration may overwrite: it goes to a person (ESCALATED, with a case whose evidence holds both amounts). A
second full state run then opens nothing, and the ERP holds exactly one entry per invoice.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from accord.devstack import Stack
from accord.devstack._services import ensure_contracts
from accord.events import InvoiceIssued
from accord.events import SourceSystem as System
from accord.ingest import stable_event_id
from accord.serde import EventCodec
from accord_erp_connector.erp_client import RECORD, ClientCredentials
from accord_sandbox.generator import CHART, ENTITIES, LEGAL_NAMES
from tests.support.stack import claim, stack_home

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(900)]

T = TypeVar("T")

#: what the test starts itself: no CRM connector and no orchestrator (the contracts are prepared by the test)
INFRA = ("kafka", "postgres", "registry", "sandbox")
SERVICES = ("billing-connector", "erp-connector", "reconciler")
ENTITY = "EU"
LOST = 3  # invoices that never reached accord
SLA_SECONDS = 20
SETTLE_SECONDS = 2
REPAIR_TIMEOUT_SECONDS = 60
EDITED_TOTAL = Decimal("1.23")  # what the person typed into the ERP entry
BILLING_KEY = "sk_test_e2e_repairs_converge"
#: the schema the reconciler's service keeps its tables in (its default service name)
RECON = "reconciler"
ISSUED = InvoiceIssued.AVRO_NAME


@dataclass
class World:
    infra: Stack
    home: Path
    environ: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, base_url: str, **options: Any) -> httpx.Client:
        """An HTTP client closed with the world."""
        self.clients.append(httpx.Client(base_url=base_url, timeout=30, **options))
        return self.clients[-1]

    def up(self) -> dict[str, str]:
        """The services too (the running infrastructure is reused); returns the stack's environment."""
        Stack(self.home, parts=(*INFRA, *SERVICES), environ=self.environ).up()
        return dict(self.infra.env())

    def logs(self, tail: int = 2500) -> str:
        out = []
        for name, record in self.infra.records().items():
            if name in SERVICES and record.log and Path(record.log).exists():
                out.append(f"--- {name}\n{Path(record.log).read_text(errors='replace')[-tail:]}")
        return "\n".join(out)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    home = stack_home()
    claim(home)
    environ = {
        **os.environ,
        "DATABASE_URL": db_url,  # a database of its own: the sandbox's and every service's schemas
        "ACCORD_BILLING_API_KEY": BILLING_KEY,
        "ACCORD_RECONCILER_SLA_SECONDS": json.dumps({"journal": SLA_SECONDS}),
        "ACCORD_RECONCILER_SETTLE_SECONDS": str(SETTLE_SECONDS),
        "ACCORD_RECONCILER_REPAIR_TIMEOUT_SECONDS": str(REPAIR_TIMEOUT_SECONDS),
    }
    # A broker, a registry and a sandbox of its own: the catalogue's topic names are real, and the sandbox holds
    # nothing but this test's records.
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "ACCORD_SANDBOX_URL"):
        environ.pop(name, None)
    infra = Stack(home, parts=INFRA, environ=environ)
    world = World(infra, home, environ)
    try:
        yield world
    finally:
        for client in world.clients:
            client.close()
        infra.down()  # everything in the stack's state, the services included
        shutil.rmtree(home, ignore_errors=True)


# -- the systems, through their own APIs ------------------------------------------------------------------------------


class Billing:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http  # at /billing/v1, with the API key

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def customer(self, account_id: str) -> str:
        body = {
            "name": f"Converge {account_id}",
            "currency": "eur",
            "address": {"country": "DE"},
            "metadata": {"crm_account_id": account_id, "legal_entity": ENTITY},
        }
        return str(self.post("/customers", body)["id"])

    def invoice(self, customer: str, amount: int) -> dict[str, Any]:
        """A finalized invoice, left open (no payment method, no auto-advance): a document and nothing else."""
        self.post("/invoiceitems", {"customer": customer, "amount": amount, "currency": "eur", "description": "Work"})
        draft = self.post("/invoices", {"customer": customer, "auto_advance": False})
        return self.post(f"/invoices/{draft['id']}/finalize", {"auto_advance": False})


class Erp:
    def __init__(self, http: httpx.Client) -> None:
        self.http = http  # at the sandbox, signed in to the ERP

    def reference_data(self) -> None:
        """The subsidiary (with its periods) and the chart the ERP connector posts to, as /admin/generate makes them."""
        country, currency, _ = ENTITIES[ENTITY]
        self.put("subsidiary", ENTITY, {"name": LEGAL_NAMES[ENTITY], "country": country, "currency": currency})
        for number, name, kind in CHART:
            self.put("account", f"acct-{number}", {"acctNumber": number, "acctName": name, "acctType": kind})

    def put(self, kind: str, external_id: str, body: dict[str, Any]) -> None:
        response = self.http.put(f"{RECORD}/{kind}/eid:{external_id}", json=body)
        assert response.status_code < 300, response.text

    def entries(self) -> list[dict[str, Any]]:
        """Every journal entry the ERP holds (whole records: the sandbox's collection carries them)."""
        items: list[dict[str, Any]] = []
        while True:
            response = self.http.get(f"{RECORD}/journalEntry", params={"limit": 1000, "offset": len(items)})
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            if not page["hasMore"]:
                return items

    def entries_of(self, document_id: str) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("custbody_accord_documents") == document_id]


# -- accord's tables ---------------------------------------------------------------------------------------------------


def query(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database_url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        except asyncpg.UndefinedTableError:  # the service has not migrated yet
            return []
        finally:
            await conn.close()

    return asyncio.run(run())


def findings(database_url: str) -> dict[str, dict[str, Any]]:
    """key → (class, status, resolution, repair attempts) of every finding."""
    rows = query(
        database_url,
        f"""SELECT key, finding_class, status, record->>'resolution' AS resolution,
                   (record->>'repair_attempts')::int AS attempts
            FROM {RECON}.findings ORDER BY key""",
    )
    return {r["key"]: r for r in rows}


def step(what: str) -> None:
    """A progress line (pytest shows them with a failure, or with -s)."""
    print(f"{datetime.datetime.now(datetime.UTC):%H:%M:%S} {what}", flush=True)


def until(what: str, probe: Callable[[], T | None], *, within: float, diagnose: Callable[[], str]) -> T:
    """Poll `probe` until it returns something truthy; fail with `diagnose()` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            step(what)
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {within:.0f}s\n{diagnose()}")
        time.sleep(1)


async def _state_run(env: dict[str, str]) -> Any:
    """A full state reconciliation, as `accord reconcile run` does it, under the service's own policy."""
    from accord_reconciler.engine import Reconciler
    from accord_reconciler.settings import ReconcilerSettings, sources
    from accord_reconciler.staterun import state_run

    settings = ReconcilerSettings(  # type: ignore[call-arg]
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=env["DATABASE_URL"],
        ACCORD_SANDBOX_URL=env["ACCORD_SANDBOX_URL"],
        erp_client_secret="cs_e2e",
        crm_client_secret="cs_e2e",
        sla_seconds={"journal": SLA_SECONDS},
        settle_seconds=SETTLE_SECONDS,
        repair_timeout_seconds=REPAIR_TIMEOUT_SECONDS,
    )
    pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=2)
    try:
        with EventCodec.connect(env["SCHEMA_REGISTRY_URL"]) as codec:
            engine = Reconciler(schema=RECON, policy=settings.policy(), encode=codec.encode)
            async with sources(settings) as readers:
                assert set(readers) == {System.BILLING, System.ERP, System.CRM}
                return await state_run(pool, engine, readers, since=None)
    finally:
        await pool.close()


def key_of(document_id: str) -> str:
    return f"journal:{ENTITY}/{document_id}"


def test_safe_repairs_converge_and_an_unsafe_difference_waits_for_a_person(world: World) -> None:
    world.infra.up()
    infra = world.infra.env()
    sandbox = infra["ACCORD_SANDBOX_URL"]
    billing = Billing(world.client(f"{sandbox}/billing/v1", headers={"Authorization": f"Bearer {BILLING_KEY}"}))
    erp = Erp(world.client(sandbox, auth=ClientCredentials("accord-e2e", "cs_e2e")))
    erp.reference_data()

    # Before accord is deployed: a customer and its invoices, issued in billing while nothing listens.
    lost_customer = billing.customer("001E2ELOST")
    lost = {inv["id"]: inv for inv in (billing.invoice(lost_customer, 10000 + 2500 * n) for n in range(LOST))}

    # accord is deployed: the contracts, then the connectors and the reconciler (each subscribes what it needs).
    step("the infrastructure is up; billing holds the lost invoices")
    ensure_contracts(infra)
    env = world.up()
    step("the services are up")
    db = env["DATABASE_URL"]

    def diagnose() -> str:
        return f"findings: {json.dumps(findings(db), indent=1, default=str)}\n{world.logs()}"

    # The reconciler's own first scheduled state run (at its start; the stack sets ACCORD_RECONCILER_STATE_RUN_SECONDS
    # and the first run reads everything): accord's view holds nothing of the lost invoices, billing holds them.
    [startup] = until(
        "the reconciler's own first state run is done",
        lambda: query(
            db, f"SELECT summary::text AS summary FROM {RECON}.runs WHERE finished_at IS NOT NULL AND NOT dry_run"
        ),
        within=120,
        diagnose=diagnose,
    )
    summary = json.loads(startup["summary"])
    assert (summary["since"], summary["candidates"]) == (None, {"unknown": LOST}), summary

    # The ordinary flow: a customer made now is told by its webhook; once the connector knows it, its invoice is
    # told, posted in the ERP, and the reconciler sees the posting.
    live_customer = billing.customer("001E2ELIVE")
    until(
        "the billing connector knows the new customer",
        lambda: query(db, "SELECT 1 FROM billing_connector.billing_customers WHERE customer_id = $1", live_customer),
        within=60,
        diagnose=diagnose,
    )
    live = billing.invoice(live_customer, 40000)
    [entry] = until(
        "the live invoice is posted in the ERP", lambda: erp.entries_of(live["id"]), within=120, diagnose=diagnose
    )
    assert Decimal(str(entry["total"])) == Decimal(live["total"]).scaleb(-2)
    until(
        "the reconciler holds the ERP's posting of the live invoice",
        lambda: query(db, f"SELECT 1 FROM {RECON}.views WHERE key = $1 AND system = 'ERP'", key_of(live["id"])),
        within=120,
        diagnose=diagnose,
    )
    # A person overrides the posted amount in the ERP's UI.
    edit = {"system": "erp", "kind": "journalEntry", "id": entry["id"], "fields": {"total": float(EDITED_TOTAL)}}
    httpx.post(f"{sandbox}/admin/edit", json=edit, timeout=30).raise_for_status()
    assert all(not erp.entries_of(i) for i in lost), "the lost invoices reached the ERP by another way"

    # An operator's full state reconciliation (`accord reconcile run`; the next scheduled one is 15 minutes away): the
    # edited entry is a candidate key, and so are the lost invoices while the ERP still lacks them.
    first = asyncio.run(_state_run(env))
    step(f"first state run: {first.summary()}")
    assert first.candidates["amount"] == 1 and set(first.candidates) <= {"amount", "missing"}, first.summary()
    assert first.candidates["missing"] <= LOST, first.summary()
    divergent = {key_of(i) for i in lost} | {key_of(live["id"])}

    # The reconciler's sweeper opens each finding when it is due, and the repairs run by themselves.
    def converged() -> dict[str, dict[str, Any]] | None:
        found = findings(db)
        repaired = (
            all(found.get(key_of(i), {}).get("status") == "RESOLVED" for i in lost)
            and found.get(key_of(live["id"]), {}).get("status") == "ESCALATED"
        )
        return found if repaired else None

    until(
        "the sweeper finds the lost invoices missing and asks for their repair",
        lambda: all(findings(db).get(key_of(i), {}).get("status") in ("REPAIRING", "RESOLVED") for i in lost),
        within=180,
        diagnose=diagnose,
    )
    found = until("the repairs converge", converged, within=420, diagnose=diagnose)
    step(f"findings: {[(f['key'], f['status'], f['resolution'], f['attempts']) for f in found.values()]}")
    assert set(found) == divergent, found
    for invoice_id in lost:
        f = found[key_of(invoice_id)]
        assert (f["finding_class"], f["resolution"]) == ("missing", "REPAIRED_AUTOMATICALLY"), f
        assert f["attempts"] >= 1, f
    assert found[key_of(live["id"])]["finding_class"] == "amount_mismatch"

    # Each lost invoice's repair was asked for on recon.repairs and carried out by the billing connector.
    repairs = query(
        db,
        f"""SELECT f.key, r.repair, r.repair_id FROM {RECON}.repairs r JOIN {RECON}.findings f USING (finding_id)
            WHERE NOT r.dry_run""",
    )
    assert {r["key"] for r in repairs} == {key_of(i) for i in lost}, repairs
    assert {r["repair"] for r in repairs} == {"redrive_posting"}
    redrives = query(
        db, "SELECT status, payload::text AS payload FROM billing_connector.commands WHERE kind = $1", "redrive_posting"
    )
    done = {json.loads(r["payload"])["entity_id"] for r in redrives if r["status"] == "succeeded"}
    assert done == set(lost), redrives

    # The person's difference waits in the exception queue, with both amounts as evidence.
    cases = query(db, f"SELECT kind, state, invoice_id, reason, evidence::text AS evidence FROM {RECON}.cases")
    assert [(c["kind"], c["state"], c["invoice_id"]) for c in cases] == [
        ("recon-amount-mismatch", "open", live["id"])
    ], cases
    evidence = json.loads(cases[0]["evidence"])
    amounts = {Decimal(str(o["amount"])) for o in evidence["observations"] if o.get("amount") is not None}
    assert {EDITED_TOTAL, Decimal(live["total"]).scaleb(-2)} <= amounts, evidence

    # A second full state run: the systems agree except for the person's case; nothing new is opened, not now and
    # not when what it evaluated falls due.
    second = asyncio.run(_state_run(env))
    step(f"second state run: {second.summary()}")
    assert dict(second.report.opened) == {}, [r.finding.detail for r in second.report.findings]
    assert dict(second.candidates) == {"amount": 1}, second.summary()  # the person's case, and nothing else
    mark = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=SETTLE_SECONDS + 1)
    until(
        "the sweeper has evaluated every key due after the second run",
        lambda: (
            not query(db, f"SELECT key FROM {RECON}.match_states WHERE next_deadline <= $1", mark)
            and datetime.datetime.now(datetime.UTC) > mark
        ),
        within=120,
        diagnose=diagnose,
    )
    after = findings(db)
    assert {k: (f["finding_class"], f["status"]) for k, f in after.items()} == {
        **{key_of(i): ("missing", "RESOLVED") for i in lost},
        key_of(live["id"]): ("amount_mismatch", "ESCALATED"),
    }

    # The ERP holds exactly one entry per invoice, each for billing's amount but the one the person changed.
    entries = erp.entries()
    per_document = Counter(e.get("custbody_accord_documents") for e in entries)
    assert per_document == Counter({**{i: 1 for i in lost}, live["id"]: 1}), per_document
    totals = {e["custbody_accord_documents"]: Decimal(str(e["total"])) for e in entries}
    assert totals == {
        **{i: Decimal(inv["total"]).scaleb(-2) for i, inv in lost.items()},
        live["id"]: EDITED_TOTAL,
    }
    # ... and each lost invoice's entry was posted from the invoice-issued its repair told (the event id the billing
    # connector derives from the repair id): the repair, not some other path, closed the gap.
    for entry in entries:
        invoice_id = entry["custbody_accord_documents"]
        if invoice_id in lost:
            told = {
                str(stable_event_id("billing", f"accord-repair:{r['repair_id']}:invoice.finalized", ISSUED))
                for r in repairs
                if r["key"] == key_of(invoice_id)
            }
            assert told & set(str(entry["custbody_accord_events"]).split(",")), (entry, told)
