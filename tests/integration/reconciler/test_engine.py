"""The reconciler's engine on real PostgreSQL and the real registry's encoding: states and deadlines in tables,
findings with their lifecycle, cases for a person, divergences in the outbox. Time is passed in, never waited for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from accord.casework import Verdict, decide_case, migrate_casework
from accord.cli import app
from accord.events import (
    DivergenceDetected,
    DivergenceResolved,
    Event,
    ExceptionChanged,
    RepairAction,
    RepairRequested,
    Resolution,
    SourceSystem,
    SubscriptionStatus,
)
from accord.migrations import migrate
from accord.runtime import PostgresStore
from accord.serde import EventCodec
from accord_reconciler import report
from accord_reconciler.__main__ import MIGRATIONS
from accord_reconciler.engine import Reconciler
from accord_reconciler.model import observe
from accord_reconciler.rules import Policy
from tests.unit.reconciler.builders import at, invoice, posted, provisioned, requested, status_changed

pytestmark = pytest.mark.postgres

SCHEMA = "reconciler"
POLICY = Policy()  # journal SLA 10 min, settle 1 min


@pytest.fixture
def codec(registry_url: str) -> Iterator[EventCodec]:
    with EventCodec.connect(registry_url, auto_register=True) as c:
        yield c


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    assert p is not None
    await PostgresStore(p, SCHEMA).migrate()
    async with p.acquire() as conn:
        await migrate_casework(conn, schema=SCHEMA)
        await migrate(conn, MIGRATIONS, schema=SCHEMA)
    yield p
    await p.close()


class Recon:
    """An engine over the tables, as the consumer and the sweeper drive it, and what the test reads back."""

    def __init__(self, pool: asyncpg.Pool, codec: EventCodec) -> None:
        self.pool, self.codec = pool, codec
        self.engine = Reconciler(schema=SCHEMA, policy=POLICY, encode=codec.encode)
        self.seen = 0

    def restart(self) -> None:
        """A new process: nothing carried over in memory."""
        self.engine = Reconciler(schema=SCHEMA, policy=POLICY, encode=self.codec.encode)

    async def deliver(self, now: datetime, *events: Event) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.engine.observe(conn, [o for e in events for o in observe(e, observed_at=now)], now)

    async def sweep(self, now: datetime) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            return (await self.engine.sweep(conn, now)).keys

    async def published(self) -> list[Any]:
        rows = await self.pool.fetch(
            f"SELECT id, topic, value FROM {SCHEMA}.outbox WHERE id > $1 ORDER BY id", self.seen
        )
        if rows:
            self.seen = rows[-1]["id"]
        return [self.codec.decode(r["topic"], r["value"]).event for r in rows]

    async def findings(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            f"""SELECT key, finding_class, sub_cause, status, repair, amount_at_risk, currency, case_id::text
                FROM {SCHEMA}.findings ORDER BY key, finding_class"""
        )
        return [dict(r) for r in rows]

    async def deadline(self, key: str) -> datetime | None:
        value: datetime | None = await self.pool.fetchval(
            f"SELECT next_deadline FROM {SCHEMA}.match_states WHERE key = $1", key
        )
        return value


@pytest.fixture
def recon(pool: asyncpg.Pool, codec: EventCodec) -> Recon:
    return Recon(pool, codec)


async def test_a_missing_posting_is_found_when_its_deadline_passes_even_after_a_restart(recon: Recon) -> None:
    await recon.deliver(at(0), invoice("in_1"))
    key = "journal:EU/in_1"
    assert await recon.deadline(key) == at(minutes=10)  # the SLA, counted from when accord learned of it

    assert await recon.sweep(at(minutes=9)) == 0
    recon.restart()
    assert await recon.sweep(at(minutes=10, seconds=1)) == 1

    assert await recon.findings() == [
        {
            "key": key,
            "finding_class": "missing",
            "sub_cause": "never_requested",
            "status": "REPAIRING",
            "repair": "redrive_posting",
            "amount_at_risk": Decimal("120.00"),
            "currency": "EUR",
            "case_id": None,
        }
    ]
    event, repair = await recon.published()
    assert isinstance(event, DivergenceDetected)
    assert isinstance(repair, RepairRequested)  # billing's connector is asked to publish the document again
    assert (repair.action, repair.target_system, repair.entity_type, repair.entity_id) == (
        RepairAction.REDRIVE_POSTING,
        SourceSystem.BILLING,
        "invoice",
        "in_1",
    )
    assert repair.divergence_id == event.divergence_id
    assert (event.divergence_key, event.divergence_class, event.sub_cause) == (
        f"{key}:missing",
        "missing",
        "never_requested",
    )
    assert event.amount_at_risk is not None and event.amount_at_risk.amount == Decimal("120.00")
    assert event.first_seen == at(minutes=10)
    assert event.auto_repairable
    assert [(o.system.value, o.record_id) for o in event.observations] == [("BILLING", "in_1"), ("ERP", None)]
    assert event.observations[0].source_event_ids  # the invoice-issued event that said it
    # what is left to wait for: the repair's own timeout (then it is tried again)
    assert await recon.deadline(key) == at(minutes=10, seconds=1) + POLICY.repair_timeout
    repairs = await recon.pool.fetch(f"SELECT repair, dry_run FROM {SCHEMA}.repairs")
    assert [tuple(r) for r in repairs] == [("redrive_posting", False)]

    # The posting arrives: the finding closes by itself, and the closing is published.
    await recon.deliver(at(minutes=12), requested("in_1"), posted("in_1"))
    assert [(f["finding_class"], f["status"]) for f in await recon.findings()] == [("missing", "RESOLVED")]
    (closed,) = await recon.published()
    assert isinstance(closed, DivergenceResolved)
    assert closed.resolution is Resolution.REPAIRED_AUTOMATICALLY


async def test_a_clean_flow_delivered_twice_makes_no_finding(recon: Recon) -> None:
    events = [invoice("in_2"), requested("in_2", "accord-EU-invoice-in_2"), posted("in_2", "accord-EU-invoice-in_2")]
    await recon.deliver(at(0), *events)
    await recon.deliver(at(5), *reversed(events))  # a replay, in another order
    await recon.sweep(at(days=1))
    assert await recon.findings() == []
    assert await recon.published() == []
    count = await recon.pool.fetchval(f"SELECT observations FROM {SCHEMA}.match_states WHERE key = 'journal:EU/in_2'")
    assert count == 3


async def test_an_unsafe_finding_is_a_case_and_a_persons_verdict_resolves_it(recon: Recon) -> None:
    await recon.deliver(at(0), invoice("in_3"), requested("in_3", "r3"), posted("in_3", "r3", total="130.00"))
    await recon.sweep(at(minutes=2))
    (finding,) = await recon.findings()
    assert (finding["finding_class"], finding["status"], finding["repair"]) == (
        "amount_mismatch",
        "ESCALATED",
        "exception",
    )
    assert finding["amount_at_risk"] == Decimal("10")
    case = await recon.pool.fetchrow(f"SELECT id::text, kind, state, evidence FROM {SCHEMA}.cases")
    assert case is not None and finding["case_id"] == case["id"]
    assert (case["kind"], case["state"]) == ("recon-amount-mismatch", "open")
    assert "130" in case["evidence"] and "in_3" in case["evidence"]
    published = await recon.published()
    assert {type(e) for e in published} == {DivergenceDetected, ExceptionChanged}

    # A person accepts the difference (`accord exceptions reject ID --schema reconciler`).
    async with recon.pool.acquire() as conn, conn.transaction():
        await decide_case(
            conn, schema=SCHEMA, encode=recon.codec.encode, case_id=case["id"], verdict=Verdict.REJECT, actor="ana"
        )
    (verdict,) = [e for e in await recon.published() if isinstance(e, ExceptionChanged)]
    async with recon.pool.acquire() as conn, conn.transaction():
        await recon.engine.case_changed(conn, verdict, at(minutes=3))
    assert [f["status"] for f in await recon.findings()] == ["RESOLVED"]
    (resolved,) = await recon.published()
    assert isinstance(resolved, DivergenceResolved) and resolved.resolution is Resolution.ACCEPTED


async def test_a_status_change_seen_before_its_provisioning_joins_the_contract(recon: Recon) -> None:
    await recon.deliver(at(0), status_changed("sub_9", status=SubscriptionStatus.PAST_DUE))
    assert await recon.pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.match_states WHERE key = 'subscription:sub_9'")
    await recon.deliver(at(5), provisioned("sub_9", "ctr_9"))
    rows = await recon.pool.fetch(f"SELECT key, observations FROM {SCHEMA}.match_states ORDER BY key")
    assert [tuple(r) for r in rows] == [("contract:ctr_9", 2)]
    assert await recon.pool.fetchval(f"SELECT key FROM {SCHEMA}.aliases WHERE alias = 'subscription:sub_9'") == (
        "contract:ctr_9"
    )


async def test_dry_run_decides_nothing_but_says_what_it_would_do(recon: Recon) -> None:
    recon.engine = Reconciler(schema=SCHEMA, policy=POLICY, encode=recon.codec.encode, dry_run=True)
    await recon.deliver(at(0), invoice("in_4"), invoice("in_5"), requested("in_5", "r5"), posted("in_5", "r5", "je_5"))
    await recon.deliver(at(1), posted("in_5", "r5", "je_6"))  # a second entry for one request
    await recon.sweep(at(minutes=11))
    found = {(f["key"], f["finding_class"], f["status"]) for f in await recon.findings()}
    assert found == {("journal:EU/in_4", "missing", "OPEN"), ("journal:EU/in_5", "duplicate", "OPEN")}
    assert await recon.pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.cases") == 0
    repairs = await recon.pool.fetch(f"SELECT repair, dry_run, detail FROM {SCHEMA}.repairs")
    assert [(r["repair"], r["dry_run"]) for r in repairs] == [("redrive_posting", True)]
    assert repairs[0]["detail"].startswith("would redrive_posting")


async def test_the_report_counts_what_the_tables_hold(
    recon: Recon, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await recon.deliver(at(0), invoice("in_6"), invoice("in_7"), requested("in_7", "r7"), posted("in_7", "r7"))
    await recon.deliver(at(0), invoice("in_8"), requested("in_8", "r8"), posted("in_8", "r8", total="99.00"))
    await recon.sweep(at(minutes=11))
    async with recon.pool.acquire() as conn:
        data = await report.build(conn, schema=SCHEMA, now=at(minutes=20))
    assert (data["keys"], data["divergent_keys"], data["pending_deadlines"]) == (3, 2, 1)  # 1: the repair's timeout
    assert data["match_rate"] == pytest.approx(1 / 3)
    assert {(r["finding_class"], r["legal_entity"], r["status"], r["age"]) for r in data["open"]} == {
        ("missing", "EU", "REPAIRING", "<1h"),
        ("amount_mismatch", "EU", "ESCALATED", "<1h"),
    }
    assert {(r["finding_class"], r["amount"]) for r in data["at_risk"]} == {
        ("missing", "120.00"),
        ("amount_mismatch", "21.00"),
    }
    assert data["time_to_detect"]["findings"] == 2
    assert data["repairs"] == [{"repair": "redrive_posting", "dry_run": False, "n": 1}]

    # the same through the command line, as JSON
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["reconcile", "report", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["divergent_keys"] == 2
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["reconcile", "report", "--schema", "nope"])
    assert bad.exit_code != 0 and "no reconciler tables" in str(bad.exception)


async def test_a_repair_that_does_not_converge_is_tried_again_then_goes_to_a_person(recon: Recon) -> None:
    await recon.deliver(at(0), invoice("in_9"))
    await recon.sweep(at(minutes=11))  # missing: redrive_posting, attempt 1
    timeout = POLICY.repair_timeout
    assert await recon.deadline("journal:EU/in_9") == at(minutes=11) + timeout
    await recon.sweep(at(minutes=11) + timeout)  # attempt 2
    await recon.sweep(at(minutes=11) + 2 * timeout)  # attempt 3
    assert await recon.sweep(at(minutes=11) + 3 * timeout) == 1  # attempts spent
    (finding,) = await recon.findings()
    assert (finding["finding_class"], finding["status"]) == ("missing", "ESCALATED")
    assert finding["case_id"] is not None
    attempts = await recon.pool.fetch(f"SELECT attempt, repair_id FROM {SCHEMA}.repairs ORDER BY attempt")
    assert [r["attempt"] for r in attempts] == [1, 2, 3]
    assert len({r["repair_id"] for r in attempts}) == 3  # each attempt its own request
    requests = [e for e in await recon.published() if isinstance(e, RepairRequested)]
    assert [r.repair_id for r in requests] == [r["repair_id"] for r in attempts]
    assert await recon.deadline("journal:EU/in_9") is None
