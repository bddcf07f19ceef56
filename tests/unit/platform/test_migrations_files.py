from __future__ import annotations

from pathlib import Path

import pytest

from accord.migrations import MigrationError, load_migrations

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("files", "error"),
    [
        pytest.param(["1_create.sql"], "NNNN_what_it_does.sql", id="version-not-four-digits"),
        pytest.param(["0001_Create.sql"], "NNNN_what_it_does.sql", id="upper-case-name"),
        pytest.param(["0001_a.sql", "0001_b.sql"], "share a version", id="duplicate-version"),
    ],
)
def test_bad_migration_folders_are_named(tmp_path: Path, files: list[str], error: str) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=error):
        load_migrations(tmp_path)


def test_migrations_load_in_version_order(tmp_path: Path) -> None:
    for name in ["0010_later.sql", "0002_early.sql"]:
        (tmp_path / name).write_text("SELECT 1;")
    assert [(m.version, m.name) for m in load_migrations(tmp_path)] == [(2, "early"), (10, "later")]
