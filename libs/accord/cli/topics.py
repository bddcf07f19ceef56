"""`accord topics create|list`: the topics catalogue on a broker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from accord.devstack import Stack, repo_root
from accord.errors import ConfigurationError
from accord.topics import ensure_topics, load_catalogue

app = typer.Typer(help="The topics catalogue (schemas/topics.yaml).", no_args_is_help=True)

CatalogueOption = Annotated[Path, typer.Option("--catalogue", help="Topics catalogue file.")]


def bootstrap_servers() -> str:
    """KAFKA_BOOTSTRAP_SERVERS, else the running local stack's broker."""
    value = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or Stack().env().get("KAFKA_BOOTSTRAP_SERVERS")
    if not value:
        raise ConfigurationError("no broker: set KAFKA_BOOTSTRAP_SERVERS or start the local stack with `accord dev up`")
    return value


@app.command()
def create(catalogue: CatalogueOption = repo_root() / "schemas" / "topics.yaml") -> None:
    """Create the catalogue's topics that do not exist yet (safe to run again)."""
    specs = load_catalogue(catalogue)
    created = ensure_topics(bootstrap_servers(), specs)
    Console(stderr=True).print(f"{len(created)} topic(s) created, {len(specs) - len(created)} already there")


@app.command("list")
def list_(catalogue: CatalogueOption = repo_root() / "schemas" / "topics.yaml") -> None:
    """The catalogue: topic, owner, key, partitions, retention."""
    table = Table(title=str(catalogue))
    for column in ("topic", "owner", "key", "partitions", "cleanup", "retention"):
        table.add_column(column)
    for s in load_catalogue(catalogue):
        retention = f"{s.retention_ms / 86_400_000:g} d" if s.retention_ms else "-"
        table.add_row(s.name, s.owner, s.key, str(s.partitions), s.cleanup_policy, retention)
    Console().print(table)
