"""Where test stacks keep their state."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psutil

from accord.devstack import Stack

PREFIX = "accord-test-stack-"
OWNER = "owner.pid"


def stack_home(prefix: str = PREFIX) -> Path:
    """A folder for a stack's state, outside pytest's tmp_path on purpose: every pytest session re-chmods
    its /tmp/pytest-of-<user> to 0700 and deletes older sessions' folders, which would pull the data
    directory from under a PostgreSQL that runs as another user, or that another session still uses."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def claim(home: Path) -> None:
    """Mark `home` as this process's, so a later session can tell a stack whose owner died."""
    (home / OWNER).write_text(str(os.getpid()))


def sweep_orphans() -> list[Path]:
    """Stop and remove test stacks whose pytest was killed before it could stop them (a timeout, a SIGKILL):
    otherwise their broker and database would run on, and eat the machine, until it is restarted."""
    swept = []
    for home in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((home / OWNER).read_text())
        except (OSError, ValueError):
            continue  # not claimed (yet): leave it to whoever is creating it
        if psutil.pid_exists(owner):
            continue
        Stack(home).down()
        shutil.rmtree(home, ignore_errors=True)
        swept.append(home)
    return swept
