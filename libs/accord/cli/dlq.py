"""`accord dlq list|show|redrive`: the dead letters of a consumer group (`<group>.dlq`).

Keys and values are shown as sizes and hex, never decoded: they may carry personal data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from accord.kafka_config import client_config
from accord.ops import (
    AuditRecord,
    DeadLetter,
    LetterRef,
    OpsError,
    audit,
    operator,
    read_dead_letter,
    read_dead_letters,
    redrive,
)
from accord.runtime._dlq import DLQ_SUFFIX, dlq_topic

app = typer.Typer(help="Dead letters: list, show one, redrive to the origin topic.", no_args_is_help=True)
console = Console(highlight=False)

GroupOption = Annotated[str | None, typer.Option("--group", "-g", help="Consumer group (reads <group>.dlq).")]
TopicOption = Annotated[str | None, typer.Option("--topic", "-t", help="Dead-letter topic, e.g. billing.dlq.")]


def choose_topic(group: str | None, topic: str | None) -> str:
    if (group is None) == (topic is None):
        raise OpsError("name the dead letters with exactly one of --group G or --topic G.dlq")
    if topic is not None:
        if not topic.endswith(DLQ_SUFFIX):
            raise OpsError(f"{topic!r} is not a dead-letter topic: those end with {DLQ_SUFFIX!r}")
        return topic
    assert group is not None
    return dlq_topic(group)


def _failed_at(letter: DeadLetter) -> str:
    if letter.provenance is not None:
        return letter.provenance.failed_at
    if letter.timestamp_ms is not None:
        return datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC).isoformat()
    return "-"


def hexdump(data: bytes | None, limit: int | None) -> str:
    if data is None:
        return "(null)"
    shown = data if limit is None else data[:limit]
    text = shown.hex(" ")
    return text + (f" … ({len(data) - len(shown)} more bytes)" if len(shown) < len(data) else "")


def wire_schema_id(value: bytes | None) -> str:
    """The schema id of a Confluent wire-format value (magic byte 0, 4-byte id), or why there is none."""
    if value is None or len(value) < 5:
        return "-"
    if value[0] != 0:
        return f"not Confluent wire format (first byte {value[0]})"
    return str(int.from_bytes(value[1:5], "big"))


@app.command("list")
def list_(
    group: GroupOption = None,
    topic: TopicOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show the newest N.")] = 50,
    error_class: Annotated[str | None, typer.Option("--error-class", help="Only this error class.")] = None,
) -> None:
    """The newest dead letters: where each came from, why, and after how many attempts."""
    if limit < 1:
        raise OpsError(f"--limit must be 1 or more, not {limit}")
    dlq = choose_topic(group, topic)
    config = client_config()
    letters, total = read_dead_letters(config, dlq, limit=limit, error_class=error_class)
    table = Table(title=dlq)
    for column in ("dlq offset", "origin", "error class", "message", "attempts", "failed at"):
        table.add_column(column)
    for x in letters:
        p = x.provenance
        if p is None:
            table.add_row(str(x.ref), "[red]no provenance headers[/red]", "-", "-", "-", _failed_at(x))
            continue
        table.add_row(
            str(x.ref),
            f"{p.topic}[{p.partition}]@{p.offset}",
            p.error_class,
            p.error_message,
            str(p.attempts),
            p.failed_at,
        )
    console.print(table)
    summary = f"{len(letters)} dead letter(s) shown of about {total} in {dlq}"
    audit(
        config,
        AuditRecord.now(
            who=operator(),
            what="dlq.list",
            args={"topic": dlq, "limit": limit, "error_class": error_class},
            result=summary,
        ),
    )
    console.print(summary)


@app.command()
def show(
    offset: Annotated[str, typer.Option("--offset", "-o", help="Dead letter: <offset> or <partition>:<offset>.")],
    group: GroupOption = None,
    topic: TopicOption = None,
    full: Annotated[bool, typer.Option("--full", help="Hex of the whole value, not its first 256 bytes.")] = False,
) -> None:
    """One dead letter in full: provenance, headers, key and value (as size and hex)."""
    dlq = choose_topic(group, topic)
    ref = LetterRef.parse(offset)
    config = client_config()
    letter = read_dead_letter(config, dlq, ref)
    table = Table(title=f"dead letter {letter.name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    p = letter.provenance
    if p is None:
        table.add_row("provenance", "[red]missing: this record lacks the accord.dlq.* headers[/red]")
    else:
        table.add_row("origin", f"{p.topic}[{p.partition}]@{p.offset}")
        ts = datetime.fromtimestamp(p.timestamp_ms / 1000, UTC).isoformat() if p.timestamp_ms else "-"
        table.add_row("origin timestamp", ts)
        table.add_row("group", p.group)
        table.add_row("error class", p.error_class)
        table.add_row("error message", p.error_message)
        table.add_row("attempts", str(p.attempts))
        table.add_row("failed at", p.failed_at)
    for name, value in letter.other_headers():
        table.add_row(f"header {name}", f"{len(value)} bytes: {hexdump(value, 64)}")
    table.add_row("key", f"{0 if letter.key is None else len(letter.key)} bytes: {hexdump(letter.key, 64)}")
    table.add_row("value size", f"{0 if letter.value is None else len(letter.value)} bytes")
    table.add_row("value schema id", wire_schema_id(letter.value))
    table.add_row("value", hexdump(letter.value, None if full else 256))
    console.print(table)
    audit(
        config,
        AuditRecord.now(who=operator(), what="dlq.show", args={"topic": dlq, "offset": str(ref)}, result="shown"),
    )
    console.print(f"dead letter {letter.name} shown")


@app.command("redrive")
def redrive_(
    group: Annotated[str, typer.Option("--group", "-g", help="Consumer group whose <group>.dlq to redrive.")],
    offset: Annotated[
        list[str] | None,
        typer.Option("--offset", "-o", help="Dead letter <offset> or <partition>:<offset> (repeatable)."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter not yet redriven.")] = False,
    error_class: Annotated[str | None, typer.Option("--error-class", help="Those of this error class.")] = None,
    dry: Annotated[bool, typer.Option("--dry-run", help="Show what would be redriven; publish nothing.")] = False,
) -> None:
    """Re-publish chosen dead letters to their origin topic; each one at most once, however often it runs."""
    refs = [LetterRef.parse(x) for x in offset] if offset else None
    report = redrive(
        client_config(),
        group=group,
        refs=refs,
        error_class=error_class,
        all_letters=all_,
        dry_run=dry,
        who=operator(),
    )
    table = Table(title=f"{'dry run: ' if dry else ''}redrive {report.dlq}")
    for column in ("dlq offset", "origin", "error class", "outcome"):
        table.add_column(column)
    for item in report.items:
        p = item.letter.provenance
        origin = f"{p.topic}[{p.partition}]@{p.offset}" if p else "-"
        table.add_row(str(item.letter.ref), origin, p.error_class if p else "-", item.outcome)
    console.print(table)
    console.print(report.summary())
    if report.missing or report.count("origin topic missing"):
        raise typer.Exit(1)
