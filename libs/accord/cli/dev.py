"""`accord dev up|status|env|down`: the local stack of real Kafka, PostgreSQL and accord services."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from accord.devstack import DEFAULT_PARTS, Stack

app = typer.Typer(help="Run the local stack (real Kafka, PostgreSQL, ...) on loopback.", no_args_is_help=True)
console = Console(stderr=True, highlight=False)

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="State folder of the stack (default $ACCORD_HOME or ./.accord).")
]
PartsOption = Annotated[
    str, typer.Option("--parts", help=f"Comma-separated parts to start, of: {','.join(DEFAULT_PARTS)}.")
]


def _progress(part: str, phase: str, detail: str) -> None:
    words = {
        "start": "starting",
        "ready": "ready",
        "reuse": "already running at",
        "external": "using existing (from the environment)",
        "stop": "stopping",
    }
    console.print(f"  {part:<10} {words.get(phase, phase)} {detail}")


@app.command()
def up(home: HomeOption = None, parts: PartsOption = ",".join(DEFAULT_PARTS)) -> None:
    """Start the stack (or what of it is not running yet) and print where everything is."""
    stack = Stack(home, parts=[p.strip() for p in parts.split(",") if p.strip()])
    started = time.monotonic()
    console.print(f"accord dev up: state in {stack.home}")
    stack.up(progress=_progress)
    console.print(f"stack ready in {time.monotonic() - started:.1f}s")
    _print_status(stack)
    console.print('Use it from a shell with:  eval "$(accord dev env)"')


@app.command()
def status(home: HomeOption = None) -> None:
    """Each part with its address, version, health, process and memory. Exits 1 if any is unhealthy."""
    stack = Stack(home)
    if not stack.records():
        console.print(f"no stack running (state folder {stack.home}); start one with `accord dev up`")
        raise typer.Exit(1)
    if not _print_status(stack):
        raise typer.Exit(1)


@app.command()
def env(home: HomeOption = None) -> None:
    """Print `export NAME=value` lines for the running stack (use with eval)."""
    for name, value in Stack(home).env().items():
        print(f"export {name}={shlex.quote(value)}")


@app.command()
def down(home: HomeOption = None) -> None:
    """Stop everything `accord dev up` started; leaves no process behind."""
    stack = Stack(home)
    stopped = stack.down(progress=_progress)
    console.print(f"stopped {len(stopped)} part(s): {', '.join(stopped) or 'none'}")


def _print_status(stack: Stack) -> bool:
    table = Table(title="accord local stack")
    for column in ("part", "address", "version", "health", "pid", "rss", "ready in"):
        table.add_column(column)
    all_healthy = True
    for s in stack.status():
        r = s.record
        all_healthy &= s.health.healthy
        table.add_row(
            r.name,
            r.address,
            r.version or "-",
            ("[green]up[/] " if s.health.healthy else "[red]down[/] ") + s.health.detail,
            "external" if r.external else str(r.pid),
            f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "-",
            f"{r.ready_seconds:.1f}s" if r.ready_seconds is not None else "-",
        )
    # Piped or captured (CI logs, `| grep`), rich would squeeze the table into 80 columns and cut addresses.
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=200)
    out.print(table)
    return all_healthy
