"""The local stack: real Kafka, PostgreSQL and accord's own services on loopback, started in order.

State lives in `<home>/stack.json` so that `accord dev status|env|down` (another process) find what
`accord dev up` started. A part whose standard environment variable is set (KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL, ...) is used as it is and never started or stopped by us.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from ._base import Health, Part, PartRecord, StackError
from ._kafka import KafkaPart
from ._paths import default_home
from ._postgres import PostgresPart
from ._service import ServicePart
from ._services import service_parts

#: called as progress(part, phase, detail) with phase one of "start", "ready", "reuse", "external", "stop"
Progress = Callable[[str, str, str], None]


def catalogue() -> dict[str, Part]:
    """Every part the stack knows, in start order (later parts may use what earlier ones export)."""
    parts: list[Part] = [
        KafkaPart(),
        PostgresPart(),
        ServicePart("registry", "accord_registry", exports="SCHEMA_REGISTRY_URL", health_path="/", compose_port=8081),
        ServicePart(
            "sandbox", "accord_sandbox", exports="ACCORD_SANDBOX_URL", health_path="/healthz", compose_port=8090
        ),
        *service_parts(),
    ]
    return {part.name: part for part in parts}


#: every part: the infrastructure, the sandbox, then accord's services (the hub and the connectors)
DEFAULT_PARTS: tuple[str, ...] = tuple(catalogue())
#: the infrastructure and the sandbox only (what the tests start; they run services themselves)
INFRA_PARTS: tuple[str, ...] = ("kafka", "postgres", "registry", "sandbox")


@dataclass(frozen=True)
class PartStatus:
    record: PartRecord
    health: Health
    rss_bytes: int | None


def _quiet(part: str, phase: str, detail: str) -> None:
    pass


class Stack:
    def __init__(
        self,
        home: Path | None = None,
        *,
        parts: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.home = (home or default_home()).resolve()
        known = catalogue()
        names = list(parts) if parts is not None else list(DEFAULT_PARTS)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise StackError(unknown[0], f"unknown part; the stack has: {', '.join(known)}")
        # Keep the catalogue's order whatever order the caller named them in.
        self.parts = [known[n] for n in known if n in names]
        self.environ = dict(os.environ if environ is None else environ)
        self._state_path = self.home / "stack.json"

    # -- state ---------------------------------------------------------------------------------

    def records(self) -> dict[str, PartRecord]:
        try:
            data = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return {}
        return {name: PartRecord.from_json(rec) for name, rec in data.get("parts", {}).items()}

    def _save(self, records: Mapping[str, PartRecord]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"parts": {n: r.to_json() for n, r in records.items()}}, indent=2))
        tmp.replace(self._state_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # -- commands ------------------------------------------------------------------------------

    def up(self, progress: Progress = _quiet, timeout: float = 120.0) -> dict[str, PartRecord]:
        """Start every part that is not running yet; return the records of all of them."""
        with self._locked():
            records = self.records()
            exported: dict[str, str] = {}
            for part in self.parts:
                record = records.get(part.name)
                external_value = self.environ.get(part.external_env) if part.external_env else None
                if external_value:
                    record = part.external(external_value)
                    health = part.health(record)
                    if not health.healthy:
                        raise StackError(
                            part.name,
                            f"{part.external_env}={external_value} does not answer "
                            f"({health.detail}); unset it to let accord start its own",
                        )
                    progress(part.name, "external", record.address)
                elif record is not None and not record.external and record.process() and part.health(record).healthy:
                    progress(part.name, "reuse", record.address)
                else:
                    if record is not None:  # dead or unhealthy leftover: clear it before starting afresh
                        part.stop(record, timeout=10)
                    progress(part.name, "start", "")
                    started = time.monotonic()
                    record = part.start(self.home, {**self.environ, **exported})
                    records[part.name] = record
                    self._save(records)
                    try:
                        part.wait_ready(record, timeout)
                    except BaseException:
                        part.stop(record, timeout=10)
                        del records[part.name]
                        self._save(records)
                        raise
                    record.ready_seconds = round(time.monotonic() - started, 2)
                    progress(part.name, "ready", f"{record.address} in {record.ready_seconds:.1f}s")
                records[part.name] = record
                exported.update(record.env)
                self._save(records)
            return records

    def status(self) -> list[PartStatus]:
        known = catalogue()
        result = []
        for name, record in self.records().items():
            part = known.get(name)
            health = part.health(record) if part is not None else Health(False, "unknown part")
            if not record.external and record.process() is None:
                health = Health(False, "process not running")
            rss = None
            proc = record.process()
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss
            result.append(PartStatus(record, health, rss))
        return result

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for record in self.records().values():
            merged.update(record.env)
        return merged

    def down(self, progress: Progress = _quiet, timeout: float = 30.0) -> list[str]:
        """Stop what this stack started, last part first; parts run by others are left alone."""
        known = catalogue()
        stopped = []
        with self._locked():
            records = self.records()
            for name in reversed(list(records)):
                record = records[name]
                if not record.external and name in known:
                    progress(name, "stop", record.address)
                    known[name].stop(record, timeout)
                    stopped.append(name)
                del records[name]
                self._save(records)
            self._state_path.unlink(missing_ok=True)
        return stopped
