"""`accord reconcile report|run`: the reconciler's figures, and a reconciliation on demand.

Mounted into the `accord` command through the `accord.cli` entry point group (the platform's CLI knows no
service). DATABASE_URL comes from the environment, else the local stack; `--schema` is the reconciler's schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from accord.cli.exceptions import in_schema
from accord.errors import ConfigurationError
from accord.serde import EventCodec

from . import report as reports
from .engine import Reconciler
from .settings import ReconcilerSettings, sources
from .staterun import RunResult as StateRun
from .staterun import last_until, state_run

app = typer.Typer(help="Reconciliation: the report of findings, and a run on demand.", no_args_is_help=True)
console = Console(highlight=False)
T = TypeVar("T")

SchemaOption = Annotated[str, typer.Option("--schema", help="The reconciler's PostgreSQL schema.")]


def _run(schema: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return in_schema(
        schema,
        work,
        missing="has no reconciler tables; pass the reconciler's schema with --schema, or start the reconciler once "
        "(`accord dev up`) so it creates them",
    )


@app.command("report")
def report(
    schema: SchemaOption = "reconciler",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Match rate, open findings by class, legal entity and age, amount at risk, time to detect, repairs."""
    data = _run(schema, lambda conn: reports.build(conn, schema=schema))
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    print_report(data)


def _settings() -> ReconcilerSettings:
    """The service's settings from the environment; what is missing comes from the local stack (`accord dev up`),
    whose sandbox takes any OAuth client pair (so a throwaway secret is made for it)."""
    local: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL") or not os.environ.get("ACCORD_SANDBOX_URL"):
        from accord.devstack import Stack

        local = {k: v for k, v in Stack().env().items() if not os.environ.get(k)}
        if "ACCORD_SANDBOX_URL" in local:
            for name in ("ACCORD_RECONCILER_ERP_CLIENT_SECRET", "ACCORD_RECONCILER_CRM_CLIENT_SECRET"):
                local.setdefault(name, "cs_" + secrets.token_hex(8))
    for k, v in local.items():
        os.environ.setdefault(k, v)
    return ReconcilerSettings()  # type: ignore[call-arg]


@app.command("run")
def run(
    since: Annotated[
        datetime | None,
        typer.Option("--since", help="Read what changed since this UTC time (default: since the last run)."),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Read everything, not only what changed.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be found and done; change nothing.")
    ] = False,
    schema: SchemaOption = "reconciler",
) -> None:
    """A state reconciliation now: read each system's API, compare with each other and with the events, and
    evaluate the keys that differ (findings, cases and repairs as the service makes them)."""
    settings = _settings()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def main() -> StateRun:
        codec = EventCodec.connect(settings.schema_registry_url)
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        assert pool is not None
        try:
            start = since
            if start is None and not full:
                async with pool.acquire() as conn:
                    start = await last_until(conn, schema)
            engine = Reconciler(schema=schema, policy=settings.policy(), encode=codec.encode, topics=settings.topics)
            async with sources(settings) as readers:
                if not readers:
                    raise ConfigurationError(
                        "no system to read: set ACCORD_SANDBOX_URL, or ACCORD_RECONCILER_BILLING_URL / _ERP_URL / "
                        "_CRM_URL, or start the local stack"
                    )
                window = f"changed since {start.isoformat()}" if start else "everything"
                console.print(f"reading {', '.join(s.value.lower() for s in readers)} ({window})")
                return await state_run(
                    pool, engine, readers, since=start, dry_run=dry_run, progress=lambda line: console.print(line)
                )
        finally:
            await pool.close()
            codec.close()

    try:
        result = asyncio.run(main())
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        raise ConfigurationError(
            f"schema {schema!r} has no reconciler tables; start the reconciler once so it creates them"
        ) from None
    summary = result.summary()
    verb = "would open" if dry_run else "opened"
    console.print(
        f"[bold]run {summary['run_id']}[/]{' (dry run: nothing changed)' if dry_run else ''}: "
        f"{summary['keys_evaluated']} keys evaluated; {verb} {sum(result.report.opened.values())} finding(s) "
        f"{summary['opened'] or ''}; closed {summary['closed']}; escalated {summary['escalated']}; "
        f"repairs {summary['repairs'] or 'none'}; next run reads since {summary['until']}"
    )
    for record in result.report.findings:
        f = record.finding
        console.print(f"  {f.finding_class.value:<17} {f.key:<40} {f.repair.value:<18} {f.detail[:120]}")


def print_report(data: dict[str, Any]) -> None:
    console.print(
        f"[bold]match rate {data['match_rate']:.4%}[/]: {data['keys']} match keys, {data['divergent_keys']} divergent, "
        f"{data['pending_deadlines']} waiting for a deadline"
    )
    rel = Table("relation", "keys", "divergent", title="by relation", title_justify="left")
    for name, row in data["by_relation"].items():
        rel.add_row(name, str(row["keys"]), str(row["divergent"]))
    console.print(rel)
    opened = Table("class", "legal entity", "status", "age", "findings", title="open findings", title_justify="left")
    for row in data["open"]:
        opened.add_row(row["finding_class"], row["legal_entity"], row["status"], row["age"], str(row["n"]))
    console.print(opened if data["open"] else "[green]no open finding[/]")
    if data["at_risk"]:
        risk = Table("currency", "class", "amount at risk", "findings", title="amount at risk", title_justify="left")
        for row in data["at_risk"]:
            risk.add_row(row["currency"], row["finding_class"], row["amount"], str(row["n"]))
        console.print(risk)
    ttd = data["time_to_detect"]
    if ttd["findings"]:
        console.print(
            f"time to detect (deadline passed → finding published), {ttd['findings']} findings: "
            f"p50 {ttd['p50_seconds']} s, p99 {ttd['p99_seconds']} s, max {ttd['max_seconds']} s"
        )
    made = ", ".join(f"{r['repair']}{' (dry run)' if r['dry_run'] else ''}: {r['n']}" for r in data["repairs"])
    console.print(f"repairs decided: {made or 'none'}")
    done = ", ".join(f"{k.lower()}: {v}" for k, v in data["resolved"].items())
    console.print(f"resolved: {done or 'none'}")
