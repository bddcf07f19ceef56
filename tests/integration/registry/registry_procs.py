"""Registry processes of a test's own: `python -m accord_registry` on the session's Kafka, own topics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient

from accord.devstack._base import free_port


@dataclass
class RegistryProcess:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as after a crash."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class RegistryCluster:
    """Registry instances sharing one `_schemas`-like topic and election group of this test's own."""

    kafka: str
    home: Path
    topic: str = field(default_factory=lambda: f"_schemas-{uuid.uuid4().hex[:10]}")
    processes: list[RegistryProcess] = field(default_factory=list)

    def start(self, port: int | None = None, **env: str) -> RegistryProcess:
        port = port or free_port()
        log = self.home / f"registry-{port}-{len(self.processes)}.log"
        child_env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "ACCORD_REGISTRY_TOPIC": self.topic,
            "ACCORD_REGISTRY_ELECTION_TOPIC": f"{self.topic}-election",
            "ACCORD_REGISTRY_ELECTION_GROUP": f"{self.topic}-group",
            **env,
        }
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "accord_registry", "--host", "127.0.0.1", "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env,
                start_new_session=True,
            )
        handle = RegistryProcess(f"http://127.0.0.1:{port}", port, proc, log)
        self.processes.append(handle)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"registry exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(handle.url + "/", timeout=1, auth=_auth(env)).status_code in (200, 401):
                    return handle
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"registry not ready after 60s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def close(self) -> None:
        for p in self.processes:
            p.stop()
        admin = AdminClient({"bootstrap.servers": self.kafka})
        topics = [self.topic, f"{self.topic}-election"]
        for future in admin.delete_topics(topics).values():
            # a topic never created (the process failed early) is fine to skip
            with contextlib.suppress(Exception):
                future.result(timeout=30)


def _auth(env: dict[str, str]) -> tuple[str, str] | None:
    user = env.get("ACCORD_REGISTRY_BASIC_AUTH_USERNAME")
    password = env.get("ACCORD_REGISTRY_BASIC_AUTH_PASSWORD")
    return (user, password) if user and password else None


def observe(url: str, auth: tuple[str, str] | None = None) -> dict[str, object]:
    """Everything a client can read from a registry, as (status, body) pairs, for comparing two registries."""
    seen: dict[str, object] = {}
    with httpx.Client(base_url=url, auth=auth, timeout=30) as http:

        def get(path: str, **params: str) -> object:
            response = http.get(path, params=params)
            seen[f"{path}?{params}"] = (response.status_code, response.json())
            return response.json()

        subjects = get("/subjects", deleted="true")
        get("/subjects")
        get("/config")
        get("/mode")
        assert isinstance(subjects, list)
        max_id = 0
        for subject in subjects:
            versions = get(f"/subjects/{subject}/versions", deleted="true")
            get(f"/subjects/{subject}/versions")
            get(f"/config/{subject}")
            get(f"/mode/{subject}")
            assert isinstance(versions, list)
            for version in versions:
                body = get(f"/subjects/{subject}/versions/{version}", deleted="true")
                assert isinstance(body, dict)
                max_id = max(max_id, int(body["id"]))
        for schema_id in range(1, max_id + 2):
            get(f"/schemas/ids/{schema_id}")
            get(f"/schemas/ids/{schema_id}/versions", deleted="true")
    return seen


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until `check()` holds; fail naming `what` if it never does (a bound, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)
