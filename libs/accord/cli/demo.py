"""`accord demo`: the whole product on this machine, from a fresh clone, in one command.

Starts the local stack (Kafka, PostgreSQL, registry, sandbox, the hub and the three connectors), makes sure the
topics and schemas exist, has the sandbox's sales team close a book of deals in the CRM (only the CRM: accord
does everything else), follows it through every system, and ends with a summary of what each system holds and
whether they agree. The stack stays up for exploring until `accord dev down` (or `--down`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import typer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from accord.devstack import Stack
from accord.errors import AccordError

console = Console(highlight=False)
err = Console(stderr=True, highlight=False, width=None if Console(stderr=True).is_terminal else 160)

#: orchestrator steps where an instance waits for a person, not for a system
PERSON_STEPS = frozenset(
    {"credit-review", "provisioning-failed", "posting-rejected", "invalid", "sync-failed", "failed"}
)


#: steps where a workflow has ended well
ENDED = frozenset({"done", "merged", "cancelled", "nothing-to-cancel", "superseded"})


class DemoError(AccordError):
    """The demo could not run or did not converge (the message says where to look)."""


@dataclass
class Snapshot:
    """What the demo sees at one moment: the sandbox's agreement report and the hub's workflows."""

    agreement: dict[str, Any]
    workflows: dict[str, dict[str, int]] = field(default_factory=dict)  # workflow -> step -> count
    open_cases: dict[str, int] = field(default_factory=dict)  # kind -> count
    backlog: int = 0  # outbox rows not yet published, all services
    dead_letters: dict[str, int] = field(default_factory=dict)  # dlq topic -> records

    def fingerprint(self) -> str:
        """What progress looks like: requests waiting for a prerequisite come and go without any (their retries
        flip them between steps), so only the systems' counts and the activations count."""
        return json.dumps(
            [
                self.agreement.get("counts"),
                len(self.agreement.get("disagreements", [])),
                self.workflows.get("activation"),
                self.backlog,
            ],
            sort_keys=True,
        )


async def _hub_state(database_url: str) -> tuple[dict[str, dict[str, int]], dict[str, int], int]:
    conn = await asyncpg.connect(database_url)
    try:
        workflows: dict[str, dict[str, int]] = {}
        cases: dict[str, int] = {}
        if await conn.fetchval("SELECT to_regclass('orchestrator.workflow_instances') IS NOT NULL"):
            for r in await conn.fetch(
                "SELECT workflow, step, count(*) AS n FROM orchestrator.workflow_instances GROUP BY 1, 2"
            ):
                workflows.setdefault(r["workflow"], {})[r["step"]] = r["n"]
            for r in await conn.fetch(
                "SELECT kind, count(*) AS n FROM orchestrator.cases WHERE state NOT IN ('resolved', 'rejected')"
                " GROUP BY 1"
            ):
                cases[r["kind"]] = r["n"]
        backlog = 0
        # accord's outboxes (the sandbox keeps its webhook deliveries in a table of the same name)
        for r in await conn.fetch(
            "SELECT table_schema FROM information_schema.columns WHERE table_name = 'outbox' AND column_name = 'topic'"
        ):
            backlog += await conn.fetchval(f'SELECT count(*) FROM "{r["table_schema"]}".outbox')
        return workflows, cases, backlog
    finally:
        await conn.close()


def dead_letters(bootstrap: str) -> dict[str, int]:
    """Records in every dead-letter topic (`<group>.dlq`), from their watermarks."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    counts: dict[str, int] = {}
    topics = [t for name, t in admin.list_topics(timeout=10).topics.items() if name.endswith(".dlq")]
    if not topics:
        return counts
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "accord-demo-watermarks"})
    try:
        for t in topics:
            name = str(t.topic)
            n = 0
            for p in t.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                n += max(0, high - low)
            counts[name] = n
    finally:
        consumer.close()
    return counts


def snapshot(env: dict[str, str], namespace: str) -> Snapshot:
    response = httpx.get(f"{env['ACCORD_SANDBOX_URL']}/admin/agreement", params={"namespace": namespace}, timeout=300)
    response.raise_for_status()
    workflows, cases, backlog = asyncio.run(_hub_state(env["DATABASE_URL"]))
    return Snapshot(response.json(), workflows, cases, backlog, dead_letters(env["KAFKA_BOOTSTRAP_SERVERS"]))


def settled(s: Snapshot) -> bool:
    """Nothing is in flight: every activation is done or waits for a person, and no outbox holds anything."""
    activation = s.workflows.get("activation", {})
    in_flight = sum(n for step, n in activation.items() if step not in PERSON_STEPS and step not in ENDED)
    return in_flight == 0 and s.backlog == 0


def finished(s: Snapshot) -> bool:
    """Every workflow of the book has ended (the customer instances live on: they wait for the next change)."""
    return s.backlog == 0 and all(
        step in ENDED or workflow == "lead-to-customer" for workflow, steps in s.workflows.items() for step in steps
    )


def follow(
    env: dict[str, str],
    namespace: str,
    *,
    timeout: float,
    quiet: float,
    until: Callable[[Snapshot], bool] | None = None,
    on_snapshot: Callable[[Snapshot, float], None] = lambda s, t: None,
    interval: float = 3.0,
) -> Snapshot:
    """Poll until `until` holds (default: the systems agree and nothing is in flight), or nothing has changed for
    `quiet` seconds with nothing in flight (what is left waits for a person), or `timeout`."""
    started = time.monotonic()
    last, since = "", time.monotonic()
    while True:
        s = snapshot(env, namespace)
        on_snapshot(s, time.monotonic() - started)
        if until(s) if until is not None else (s.agreement.get("agree") and settled(s)):
            return s
        fp = s.fingerprint()
        if fp != last:
            last, since = fp, time.monotonic()
        elif time.monotonic() - since >= quiet and settled(s):
            return s
        if time.monotonic() - started > timeout:
            return s
        time.sleep(interval)


def summary_table(s: Snapshot, plan: dict[str, Any]) -> Table:
    counts = s.agreement.get("counts", {})
    table = Table(title=f"accord demo — book {s.agreement.get('namespace')}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("where")
    table.add_row("customers", str(counts.get("customers", 0)), "CRM accounts, billing + ERP customers")
    table.add_row("contracts", str(counts.get("contracts", 0)), f"CRM ({plan.get('amendments', 0)} amendments)")
    table.add_row("subscriptions", str(counts.get("subscriptions", 0)), "billing")
    invoices = counts.get("invoices", {})
    table.add_row(
        "invoices", str(sum(invoices.values())), ", ".join(f"{k} {v}" for k, v in sorted(invoices.items())) or "-"
    )
    table.add_row("payments", str(counts.get("payments", 0)), "billing, reflected on the CRM account")
    for entity, n in sorted(counts.get("journal_entries", {}).items()):
        table.add_row(f"journal entries {entity}", str(n), "ERP subsidiary")
    table.add_row("credit holds", str(counts.get("credit_holds", 0)), "CRM accounts")
    table.add_row(
        "exceptions open",
        str(sum(s.open_cases.values())),
        ", ".join(f"{k} {v}" for k, v in sorted(s.open_cases.items())) or "-",
    )
    table.add_row(
        "events dead-lettered",
        str(sum(s.dead_letters.values())),
        ", ".join(f"{k} {v}" for k, v in sorted(s.dead_letters.items()) if v) or "-",
    )
    table.add_row(
        "disagreements", str(len(s.agreement.get("disagreements", []))), "agree" if s.agreement.get("agree") else "-"
    )
    return table


def demo(
    customers: Annotated[int, typer.Option(help="Customers in the book.")] = 300,
    seed: Annotated[int, typer.Option(help="The same seed gives the same book.")] = 7,
    namespace: Annotated[
        str | None, typer.Option(help="Prefix of the book's names (default: demo-<seed>-<time>).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the systems to converge.")] = 900,
    home: Annotated[Path | None, typer.Option("--home", help="State folder of the stack (default ./.accord).")] = None,
    down: Annotated[bool, typer.Option("--down", help="Stop the stack at the end.")] = False,
) -> None:
    """Run the quote-to-cash flow end to end on the local stack and print what every system holds."""
    ns = namespace or f"demo-{seed}-{int(time.time()) % 100000}"
    stack = Stack(home)
    started = time.monotonic()
    err.print(f"accord demo: stack in {stack.home}")
    try:
        records = stack.up(progress=lambda part, phase, detail: err.print(f"  {part:<18} {phase} {detail}"))
        env = {k: v for r in records.values() for k, v in r.env.items()}
        err.print(f"the sales team closes {customers} deal(s) in the CRM (book {ns}, seed {seed}) ...")
        response = httpx.post(
            f"{env['ACCORD_SANDBOX_URL']}/admin/generate",
            json={"customers": customers, "seed": seed, "namespace": ns, "mode": "sales"},
            timeout=3600,
        )
        if response.status_code >= 400:
            raise DemoError(f"the sandbox could not generate the book: {response.text[:300]}")
        plan = response.json()
        err.print(
            f"  {plan['customers']} customers, {plan['contracts']} contracts, {plan['amendments']} amendments in "
            f"{time.monotonic() - started:.0f}s; accord takes it from here"
        )

        def show(s: Snapshot, elapsed: float) -> None:
            counts = s.agreement.get("counts", {})
            activation = s.workflows.get("activation", {})
            err.print(
                f"  {elapsed:5.0f}s  subscriptions {counts.get('subscriptions', 0)}, invoices "
                f"{sum(counts.get('invoices', {}).values())}, journal entries "
                f"{sum(counts.get('journal_entries', {}).values())}, activations done {activation.get('done', 0)}"
                f"/{sum(activation.values())}, exceptions open {sum(s.open_cases.values())}, "
                f"disagreements {len(s.agreement.get('disagreements', []))}"
            )

        final = follow(env, ns, timeout=timeout, quiet=30, on_snapshot=show)
        out = Console(highlight=False) if Console().is_terminal else Console(highlight=False, width=160)
        out.print(summary_table(final, plan))
        out.print(
            "where to look next:\n"
            "  accord exceptions list                 the cases waiting for a person (approve|reject|retry)\n"
            f"  accord sandbox agreement --namespace {ns}   every disagreement, with its reason\n"
            "  accord reconcile run --dry-run         what the reconciler finds reading every system's API now\n"
            "  accord reconcile report                match rate, findings, amount at risk, repairs\n"
            "  accord dlq list                        dead letters, and `accord dlq redrive`\n"
            "  accord dev status                      every process, its address and its log\n"
            "  accord dev down                        stop it all"
        )
        if not settled(final):
            raise DemoError(
                f"the flow did not settle within {timeout:.0f}s: see `accord dev status` and the services' logs"
            )
    finally:
        if down:
            stack.down()
