"""The database the stack starts is a real PostgreSQL; migrations apply exactly once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from accord.migrations import MigrationError, migrate

pytestmark = pytest.mark.postgres


async def test_asyncpg_round_trip(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("CREATE TABLE invoice (id text PRIMARY KEY, amount numeric(18, 4), currency char(3))")
        await conn.executemany(
            "INSERT INTO invoice VALUES ($1, $2, $3)",
            [("in_1", Decimal("1200.5000"), "USD"), ("in_2", Decimal("99.9900"), "EUR")],
        )
        rows = await conn.fetch("SELECT id, amount, currency FROM invoice ORDER BY id")
        version = await conn.fetchval("SHOW server_version_num")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("in_1", Decimal("1200.5000"), "USD"), ("in_2", Decimal("99.9900"), "EUR")]
    assert int(version) >= 140000


def write(directory: Path, name: str, sql: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(sql)


async def test_migrations_apply_once_in_order(db_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write(migrations, "0001_create_accounts.sql", "CREATE TABLE accounts (id text PRIMARY KEY);")
    write(migrations, "0002_add_name.sql", "ALTER TABLE accounts ADD COLUMN name text;")
    conn = await asyncpg.connect(db_url)
    try:
        first = await migrate(conn, migrations, schema="svc")
        again = await migrate(conn, migrations, schema="svc")
        write(migrations, "0003_add_country.sql", "ALTER TABLE accounts ADD COLUMN country text;")
        third = await migrate(conn, migrations, schema="svc")
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'svc' AND table_name = 'accounts'"
            " ORDER BY ordinal_position"
        )
        recorded = await conn.fetch("SELECT version, name FROM svc.schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [m.version for m in first] == [1, 2]
    assert again == []
    assert [m.version for m in third] == [3]
    assert [c["column_name"] for c in columns] == ["id", "name", "country"]
    assert [tuple(r) for r in recorded] == [(1, "create_accounts"), (2, "add_name"), (3, "add_country")]


async def test_concurrent_starters_apply_each_migration_once(db_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    # Not idempotent on purpose: a second application would fail on the duplicate table.
    write(migrations, "0001_create.sql", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")

    async def start() -> int:
        conn = await asyncpg.connect(db_url)
        try:
            return len(await migrate(conn, migrations, schema="race"))
        finally:
            await conn.close()

    results = await asyncio.gather(*(start() for _ in range(5)))
    assert sorted(results) == [0, 0, 0, 0, 1]


async def test_a_failing_migration_leaves_nothing_applied(db_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write(migrations, "0001_ok.sql", "CREATE TABLE ok (id int);")
    write(migrations, "0002_broken.sql", "ALTER TABLE missing ADD COLUMN x int;")
    conn = await asyncpg.connect(db_url)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await migrate(conn, migrations, schema="broken")
        exists = await conn.fetchval("SELECT to_regclass('broken.ok') IS NOT NULL")
    finally:
        await conn.close()
    assert exists is False


async def test_an_edited_applied_migration_is_refused(db_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    write(migrations, "0001_create.sql", "CREATE TABLE t (id int);")
    conn = await asyncpg.connect(db_url)
    try:
        await migrate(conn, migrations, schema="edited")
        write(migrations, "0001_create.sql", "CREATE TABLE t (id bigint);")
        with pytest.raises(MigrationError, match="0001_create in schema edited was changed"):
            await migrate(conn, migrations, schema="edited")
    finally:
        await conn.close()
