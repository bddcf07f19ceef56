"""Where test stacks keep their state."""

from __future__ import annotations

import tempfile
from pathlib import Path


def stack_home(prefix: str = "accord-test-stack-") -> Path:
    """A folder for a stack's state, outside pytest's tmp_path on purpose: every pytest session re-chmods
    its /tmp/pytest-of-<user> to 0700 and deletes older sessions' folders, which would pull the data
    directory from under a PostgreSQL that runs as another user, or that another session still uses."""
    return Path(tempfile.mkdtemp(prefix=prefix))
