"""What every part of the local stack shares: its record on disk, process handling, free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from accord.errors import AccordError


class StackError(AccordError):
    """A part of the local stack could not be started, checked or stopped.

    The message names the part and what to do about it.
    """

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part


@dataclass
class PartRecord:
    """What `accord dev up` remembers about a part, kept in `<home>/stack.json`."""

    name: str
    address: str
    env: dict[str, str]
    external: bool = False
    pid: int | None = None
    pid_started_at: float | None = None
    log: str | None = None
    version: str | None = None
    ready_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartRecord:
        return cls(**data)

    def process(self) -> psutil.Process | None:
        """The live process this record started, or None (the pid is checked against its start time)."""
        if self.pid is None:
            return None
        try:
            proc = psutil.Process(self.pid)
            if self.pid_started_at is not None and abs(proc.create_time() - self.pid_started_at) > 1:
                return None  # the pid was reused by something that is not ours
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.NoSuchProcess:
            return None


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str


class Part(Protocol):
    """One piece of the local stack: a broker, a database, a registry, ..."""

    name: str
    #: environment variable that, when set, points at an existing instance instead of starting one
    external_env: str | None
    #: the port docker-compose.yml publishes this part on (the local stack picks free ports instead)
    compose_port: int | None

    def start(self, home: Path, env: Mapping[str, str]) -> PartRecord:
        """Start the part (not yet waiting for readiness); `env` holds what earlier parts exported."""
        ...

    def wait_ready(self, record: PartRecord, timeout: float) -> None:
        """Return once the part answers real requests; raise StackError if it cannot."""
        ...

    def health(self, record: PartRecord) -> Health:
        """A real request answered or not, right now."""
        ...

    def external(self, value: str) -> PartRecord:
        """A record for an instance that someone else runs, at `value` from `external_env`."""
        ...

    def stop(self, record: PartRecord, timeout: float) -> None:
        """Stop what `start` started and leave no process behind."""
        ...


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_tool(part: str, tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(
            part,
            f"'{tool}' is not on PATH. Install it ({install_hint}), or run the stack from containers "
            "with `docker compose up -d` and point KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL at it.",
        )
    return path


#: Processes this interpreter started and has not reaped yet. Holding the Popen objects keeps Python from
#: warning that a subprocess is "still running" when they are collected: running on is their purpose.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    part: str,
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> tuple[int, float]:
    """Start a detached process (own session, so `accord dev up` can exit) logging to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess as exc:
        raise StackError(part, f"exited at once; see {log}") from exc
    return proc.pid, started


def tail(path: str | Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def ensure_alive(record: PartRecord) -> None:
    """Raise with the log's last lines if the part's process has died while we waited for it."""
    if record.pid is not None and record.process() is None:
        raise StackError(
            record.name, f"process exited during start-up; last lines of {record.log}:\n{tail(record.log)}"
        )


def wait_until(record: PartRecord, check: Any, timeout: float, what: str) -> None:
    """Poll `check()` until it is true; readiness is a real request answered, never a sleep."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        ensure_alive(record)
        if check():
            return
        if time.monotonic() > deadline:
            raise StackError(
                record.name, f"not ready after {timeout:.0f}s ({what}); see {record.log}:\n{tail(record.log)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def terminate(record: PartRecord, timeout: float, sig: int = signal.SIGTERM, *, whole_group: bool = True) -> None:
    """Signal the part's process (group), wait for it and its children to exit, then SIGKILL what is left."""
    proc = record.process()
    if proc is None:
        return
    members = [proc]
    with contextlib.suppress(psutil.Error):
        members += proc.children(recursive=True)
    try:
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError, psutil.Error):
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    child = _children.pop(proc.pid, None)
    if child is not None:
        child.wait(timeout=5)
