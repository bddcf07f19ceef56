"""`accord reconcile report|run`: the reconciler's figures, and a reconciliation on demand.

Mounted into the `accord` command through the `accord.cli` entry point group (the platform's CLI knows no
service). DATABASE_URL comes from the environment, else the local stack; `--schema` is the reconciler's schema.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from accord.cli.exceptions import database_url
from accord.errors import ConfigurationError

from . import report as reports

app = typer.Typer(help="Reconciliation: the report of findings, and a run on demand.", no_args_is_help=True)
console = Console(highlight=False)
T = TypeVar("T")

SchemaOption = Annotated[str, typer.Option("--schema", help="The reconciler's PostgreSQL schema.")]


def _run(schema: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ConfigurationError(f"--schema {schema!r} must be a lower-case SQL identifier")

    async def main() -> T:
        try:
            conn = await asyncpg.connect(database_url())
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigurationError(
                f"cannot reach the database of DATABASE_URL: {type(exc).__name__}: {exc}"
            ) from None
        try:
            return await work(conn)
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            raise ConfigurationError(
                f"schema {schema!r} has no reconciler tables; pass the reconciler's schema with --schema, or start "
                "the reconciler once (`accord dev up`) so it creates them"
            ) from None
        finally:
            await conn.close()

    return asyncio.run(main())


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
