"""A test stack whose pytest died is swept by the next session; a live owner's stack is left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.stack import OWNER, claim, stack_home, sweep_orphans

pytestmark = pytest.mark.unit


def test_orphans_are_swept_and_live_stacks_kept() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan, live = stack_home(), stack_home()
    try:
        (orphan / OWNER).write_text(dead.stdout.strip())  # that process has exited
        claim(live)
        swept = sweep_orphans()
        assert orphan in swept and not orphan.exists()
        assert live not in swept and live.exists()
        assert (live / OWNER).read_text() == str(os.getpid())
    finally:
        shutil.rmtree(orphan, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)
