"""A Python service of accord's own (the registry, the sandbox, ...) run as a part of the local stack."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from ._base import Health, PartRecord, free_port, spawn, terminate, wait_until


class ServicePart:
    """`python -m <module>` on a free loopback port, healthy when `health_path` answers 2xx.

    `exports` names the environment variable that carries the service's URL to later parts and to
    `accord dev env` (SCHEMA_REGISTRY_URL for the registry, say); when it is already set, the part is
    external and nothing is started.
    """

    def __init__(
        self,
        name: str,
        module: str,
        *,
        exports: str,
        health_path: str = "/",
        args: Callable[[int], Sequence[str]] = lambda port: ["--host", "127.0.0.1", "--port", str(port)],
        extra_env: Callable[[Path], Mapping[str, str]] | None = None,
        compose_port: int | None = None,
        port_env: str | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.external_env: str | None = exports
        self.health_path = health_path
        self.args = args
        self.extra_env = extra_env
        self.compose_port = compose_port
        #: the environment variable that tells the service its port, for services configured by environment only
        self.port_env = port_env

    def start(self, home: Path, env: Mapping[str, str]) -> PartRecord:
        workdir = home / self.name
        workdir.mkdir(parents=True, exist_ok=True)
        port = self.choose_port(workdir)
        child_env = {**os.environ, **env}
        if self.extra_env is not None:
            child_env.update(self.extra_env(workdir))
        if self.port_env is not None:
            child_env[self.port_env] = str(port)
        log = workdir / f"{self.name}.log"
        pid, started = spawn(self.name, [sys.executable, "-m", self.module, *self.args(port)], log=log, env=child_env)
        url = f"http://127.0.0.1:{port}"
        assert self.external_env is not None
        return PartRecord(
            name=self.name,
            address=url,
            env={self.external_env: url},
            pid=pid,
            pid_started_at=started,
            log=str(log),
        )

    def choose_port(self, workdir: Path) -> int:
        """A free loopback port (a subclass may keep one across restarts)."""
        return free_port()

    def wait_ready(self, record: PartRecord, timeout: float) -> None:
        wait_until(record, lambda: self.health(record).healthy, timeout, f"GET {self.health_path}")

    def health(self, record: PartRecord) -> Health:
        try:
            response = httpx.get(record.address + self.health_path, timeout=1.5)
        except httpx.HTTPError as exc:
            return Health(False, f"{type(exc).__name__}")
        return Health(response.is_success, f"HTTP {response.status_code}")

    def external(self, value: str) -> PartRecord:
        assert self.external_env is not None
        return PartRecord(name=self.name, address=value, env={self.external_env: value}, external=True)

    def stop(self, record: PartRecord, timeout: float) -> None:
        terminate(record, timeout)
