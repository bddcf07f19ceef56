"""`accord dev up / status / env / down` as a user runs them: separate processes, nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.stack import stack_home

pytestmark = pytest.mark.e2e

ACCORD = [sys.executable, "-m", "accord.cli"]


def accord(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    environ.update(env or {})
    return subprocess.run(
        [*ACCORD, "dev", *args, "--home", str(home)], capture_output=True, text=True, env=environ, timeout=180
    )


def processes_under(home: Path) -> list[psutil.Process]:
    """Our java and postgres processes: the ones whose command line names this stack's folder."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(home) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """Outside pytest's own tmp folder (see tests/conftest.py stack_home): PostgreSQL runs as another user."""
    home = stack_home("accord-test-cli-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_up_status_env_down_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    up = accord(home, "up", "--parts", "kafka,postgres")
    assert up.returncode == 0, up.stderr + up.stdout
    assert "stack ready in" in up.stderr
    assert len(processes_under(home)) >= 2

    status = accord(home, "status")
    assert status.returncode == 0, status.stderr + status.stdout
    kafka_line = next(line for line in status.stdout.splitlines() if "kafka" in line)
    assert " 4." in kafka_line, f"Kafka 4.x version expected in: {kafka_line}"
    assert "postgres" in status.stdout

    env = accord(home, "env")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
    assert exports["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exports["DATABASE_URL"].startswith("postgresql://")

    # A second `up` reuses what runs instead of starting a second broker.
    again = accord(home, "up", "--parts", "kafka,postgres")
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert accord(home, "env").stdout == env.stdout

    down = accord(home, "down")
    assert down.returncode == 0, down.stderr
    assert processes_under(home) == []
    assert accord(home, "status").returncode == 1


def test_missing_java_is_a_diagnosis_not_a_traceback(tmp_path: Path) -> None:
    # Only the interpreter's own folder on PATH: no java, no mvn.
    result = accord(tmp_path / "stack", "up", "--parts", "kafka", env={"PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "kafka:" in result.stderr
    assert "apt-get install" in result.stderr
    assert "docker compose" in result.stderr
    assert processes_under(tmp_path / "stack") == []


def test_environment_variables_point_at_existing_parts(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = accord(tmp_path / "stack", "up", "--parts", "kafka", env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert result.returncode == 0, result.stderr
    assert "using existing" in result.stderr
    assert processes_under(tmp_path / "stack") == []
    # `down` must not stop a broker somebody else runs.
    assert accord(tmp_path / "stack", "down").returncode == 0
    unreachable = accord(tmp_path / "other", "up", "--parts", "kafka", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert unreachable.returncode == 1
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 does not answer" in unreachable.stderr
