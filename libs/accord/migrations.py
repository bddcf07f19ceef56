"""Plain versioned SQL migrations, one folder per service, applied exactly once each.

Files are named `NNNN_what_it_does.sql` and applied in version order. The pending files and the rows
that record them commit in ONE transaction (PostgreSQL's DDL is transactional), so a crash leaves all of
them applied and recorded or none. An advisory lock serialises concurrent starters of the same service;
a file changed after it was applied is an error, never silently skipped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from accord.errors import AccordError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(AccordError):
    """A migration folder or an applied migration does not match what the code expects."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_what_it_does.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return migrations


async def migrate(conn: asyncpg.Connection, directory: Path, *, schema: str) -> list[Migration]:
    """Apply the migrations of `directory` not yet applied in `schema`; return those applied now."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise MigrationError(f"schema name {schema!r} must be a lower-case SQL identifier")
    migrations = load_migrations(directory)
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"accord.migrate.{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        # Migrations name their tables unqualified: they land in the service's own schema.
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")
        done = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} in schema {schema} was changed "
                        "after it was applied; add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration)
    return applied_now
