"""`accord replay`: move a consumer group's committed offsets on a topic, so it reads again (or skips)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from accord.kafka_config import client_config
from accord.ops import (
    AuditRecord,
    OpsError,
    ReplayResult,
    Target,
    ToEarliest,
    ToOffset,
    ToTime,
    apply_replay,
    audit,
    dry_run,
    operator,
    plan_replay,
)

console = Console(highlight=False)


def parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise OpsError(f"--to-time {text!r} is not ISO 8601, e.g. 2026-11-28T09:30:00Z") from None
    if at.tzinfo is None:
        raise OpsError(f"--to-time {text!r} has no time zone: add Z (UTC) or an offset such as +01:00")
    return at


def choose_target(to_offset: int | None, to_time: str | None, to_earliest: bool) -> Target:
    given = sum((to_offset is not None, to_time is not None, to_earliest))
    if given != 1:
        raise OpsError("say where to move the group with exactly one of --to-offset, --to-time or --to-earliest")
    if to_offset is not None:
        return ToOffset(to_offset)
    if to_time is not None:
        return ToTime(parse_time(to_time))
    return ToEarliest()


def render(result: ReplayResult) -> Table:
    plan = result.plan
    title = f"{'dry run: ' if not result.applied else ''}{plan.group} on {plan.topic} ({plan.state})"
    table = Table(title=title)
    for column in ("partition", "committed before", "after", "earliest", "latest", "re-read", "note"):
        table.add_column(column, justify="right" if column not in {"note"} else "left")
    for move in result.moves:
        table.add_row(
            str(move.partition),
            "-" if move.before is None else str(move.before),
            str(move.after),
            str(move.earliest),
            str(move.latest),
            f"{move.to_reread:+d}",
            f"[red]{move.error}[/red]" if move.error else move.note,
        )
    return table


def replay(
    group: Annotated[str, typer.Option("--group", "-g", help="Consumer group to move.")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic whose committed offsets move.")],
    to_offset: Annotated[int | None, typer.Option("--to-offset", help="Move to this offset.")] = None,
    to_time: Annotated[
        str | None, typer.Option("--to-time", help="Move to the first record at/after this ISO 8601 time.")
    ] = None,
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="Move to the earliest record.")] = False,
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", help="Only this partition (repeatable).")
    ] = None,
    dry: Annotated[bool, typer.Option("--dry-run", help="Show before/after per partition; change nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Ask the broker even while the group has live members.")
    ] = False,
) -> None:
    """Reset GROUP's committed offsets on TOPIC; the group must have no live members (stop its consumers)."""
    config = client_config()
    who = operator()
    args = {
        "group": group,
        "topic": topic,
        "to_offset": to_offset,
        "to_time": to_time,
        "to_earliest": to_earliest,
        "partitions": partition,
        "dry_run": dry,
        "force": force,
    }
    target = choose_target(to_offset, to_time, to_earliest)
    admin = AdminClient(config)
    plan = plan_replay(admin, group=group, topic=topic, target=target, partitions=partition)
    if dry:
        result = dry_run(plan)
    else:
        try:
            result = apply_replay(admin, plan, force=force)
        except OpsError as exc:
            audit(config, AuditRecord.now(who=who, what="replay", args=args, result=f"refused: {exc}"))
            console.print(render(dry_run(plan)))
            raise
    console.print(render(result))
    if result.failed and plan.has_members:
        console.print(
            f"[yellow]group {group!r} has live members ({', '.join(plan.members)}): Kafka does not let an admin "
            "client move a live group's offsets (and live members would only pick a change up after a "
            "rebalance). Stop the consumers, or wait session.timeout.ms after they died, then run this again.[/yellow]"
        )
    summary = result.summary()
    audit(config, AuditRecord.now(who=who, what="replay", args=args, result=summary))
    console.print(summary)
    if result.failed:
        raise typer.Exit(1)
