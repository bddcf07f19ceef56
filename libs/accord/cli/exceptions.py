"""`accord exceptions list|show|approve|reject|retry`: the exception queue (`accord.casework`).

The operator is `ACCORD_OPERATOR` (else $USER) and is recorded in each case's history; real authentication
comes with the console. Each decision emits `ExceptionChanged` through the outbox of the same schema, so the
workflow waiting on the case resumes. DATABASE_URL comes from the environment, else the local stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accord.casework import Case, CaseState, CaseworkError, Verdict, decide_case, get_case, list_cases
from accord.errors import ConfigurationError
from accord.ops import operator
from accord.serde import EventCodec

app = typer.Typer(help="Exceptions for a person: list, show one, approve, reject, retry.", no_args_is_help=True)
console = Console(highlight=False)

T = TypeVar("T")

SchemaOption = Annotated[str, typer.Option("--schema", help="The orchestrator's PostgreSQL schema.")]
NoteOption = Annotated[str | None, typer.Option("--note", "-n", help="Why; kept in the case's history.")]


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        from accord.devstack import Stack

        url = Stack().env().get("DATABASE_URL")
    if not url:
        raise ConfigurationError("no database: set DATABASE_URL or start the local stack with `accord dev up`")
    return url


def in_schema(
    schema: str,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    missing: str,
    error: Callable[[str], Exception] = ConfigurationError,
) -> T:
    """`work` on one connection to DATABASE_URL; a schema without the tables it needs is an `error` that says
    `missing` (what to do), never a stack trace. Shared by the commands that read a service's tables."""
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
            raise error(f"schema {schema!r} {missing}") from None
        finally:
            await conn.close()

    return asyncio.run(main())


def _run(schema: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return in_schema(
        schema,
        work,
        missing="has no exception queue (cases table); pass the orchestrator's schema with --schema, or start the "
        "orchestrator once so it creates its tables",
        error=CaseworkError,
    )


def age(since: datetime, now: datetime | None = None) -> str:
    seconds = int(((now or datetime.now(UTC)) - since).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _subject(case: Case) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(case.subject.items()))


@app.command("list")
def list_(
    state: Annotated[CaseState | None, typer.Option("--state", "-s", help="Only cases in this state.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", "-k", help="Only cases of this kind.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, oldest first.")] = 100,
    schema: SchemaOption = "orchestrator",
) -> None:
    """Cases, oldest first, with their age."""
    if limit < 1:
        raise CaseworkError(f"--limit must be 1 or more, not {limit}")
    cases = _run(schema, lambda conn: list_cases(conn, schema=schema, state=state, kind=kind, limit=limit))
    now = datetime.now(UTC)
    table = Table(title=f"exceptions in {schema}")
    table.add_column("id", no_wrap=True)
    for column in ("kind", "state", "severity", "subject", "age", "due", "reason"):
        table.add_column(column, overflow="fold")
    for c in cases:
        due = "-" if c.due_at is None else ("[red]overdue[/red]" if c.due_at < now else f"in {age(now, c.due_at)}")
        # Values are data, never markup: "[redacted]" or a reason with brackets must print as written.
        table.add_row(
            c.id,
            escape(c.kind),
            c.state.value,
            c.severity.value,
            escape(_subject(c)),
            age(c.created_at, now),
            due,
            escape(c.reason),
        )
    console.print(table)
    filters = ", ".join(f for f in (state and f"state={state.value}", kind and f"kind={kind}") if f) or "all"
    console.print(f"{len(cases)} exception case(s) ({filters})")


@app.command()
def show(
    case_id: Annotated[str, typer.Argument(help="The case id (from `accord exceptions list`).")],
    schema: SchemaOption = "orchestrator",
) -> None:
    """One case: reason, subject, evidence and the history of every action."""
    case, actions = _run(schema, lambda conn: get_case(conn, schema=schema, case_id=case_id))
    table = Table(title=f"exception {case.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in (
        ("kind", case.kind),
        ("state", case.state.value),
        ("severity", case.severity.value),
        ("reason", case.reason),
        ("subject", _subject(case)),
        ("legal entity", case.legal_entity or "-"),
        ("workflow", case.workflow_id or "-"),
        ("owner", case.owner or "-"),
        ("due", "-" if case.due_at is None else case.due_at.isoformat()),
        ("age", age(case.created_at)),
        ("version", str(case.version)),
        ("evidence", json.dumps(case.evidence, indent=2, sort_keys=True)),
    ):
        table.add_row(name, escape(value))
    console.print(table)
    history = Table(title="history")
    for column in ("at", "action", "actor", "state", "note"):
        history.add_column(column, overflow="fold")
    for a in actions:
        moved = a.to_state if a.from_state in (None, a.to_state) else f"{a.from_state} → {a.to_state}"
        history.add_row(a.at.isoformat(timespec="seconds"), a.action, escape(a.actor), moved, escape(a.note or ""))
    console.print(history)
    console.print(
        f"exception {case.id}: {escape(case.kind)}, {case.state.value}, {len(actions)} action(s) in its history"
    )


_DONE = {Verdict.APPROVE: "approved", Verdict.REJECT: "rejected", Verdict.RETRY: "retried"}


def _decide(case_id: str, verdict: Verdict, note: str | None, schema: str) -> None:
    who = operator()
    with EventCodec.connect() as codec:

        async def work(conn: asyncpg.Connection) -> tuple[str, Case]:
            async with conn.transaction():
                row = await conn.fetchval(f"SELECT state FROM {schema}.cases WHERE id::text = $1", case_id)
                case = await decide_case(
                    conn, schema=schema, encode=codec.encode, case_id=case_id, verdict=verdict, actor=who, note=note
                )
            return str(row), case

        before, case = _run(schema, work)
    console.print(
        f"exception {case.id} {_DONE[verdict]} by {who}: {before} → {case.state.value}; "
        "ExceptionChanged queued in the outbox for the waiting workflow"
    )


@app.command()
def approve(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    note: NoteOption = None,
    schema: SchemaOption = "orchestrator",
) -> None:
    """Approve: the case is resolved and the waiting workflow continues."""
    _decide(case_id, Verdict.APPROVE, note, schema)


@app.command()
def reject(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    note: NoteOption = None,
    schema: SchemaOption = "orchestrator",
) -> None:
    """Reject: the case is closed and the waiting workflow compensates or stops."""
    _decide(case_id, Verdict.REJECT, note, schema)


@app.command()
def retry(
    case_id: Annotated[str, typer.Argument(help="The case id.")],
    note: NoteOption = None,
    schema: SchemaOption = "orchestrator",
) -> None:
    """Retry: the waiting workflow re-runs the step that failed; the case is retrying until it finishes."""
    _decide(case_id, Verdict.RETRY, note, schema)
