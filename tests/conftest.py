"""Fixtures on real infrastructure: a broker and a database for the session, topics and databases per test.

Where they come from, first match wins:
1. KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL (and later SCHEMA_REGISTRY_URL, ...) in the environment;
2. testcontainers, when ACCORD_TESTCONTAINERS=1 and a Docker engine answers (not on our machines);
3. the local stack (`accord.devstack`), started in a temporary folder for this session and stopped after.

Parts start lazily, so a run of unit tests alone starts nothing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from accord.devstack import Stack
from tests.support.db import create_database, drop_database
from tests.support.stack import claim, stack_home, sweep_orphans


class SessionStack:
    """Starts the parts tests ask for, once per session, and stops them at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[str] = []
        self.env: dict[str, str] = {}
        self._containers: list[object] = []

    def require(self, *parts: str) -> dict[str, str]:
        missing = [p for p in parts if p not in self.started]
        if missing:
            if os.environ.get("ACCORD_TESTCONTAINERS") == "1":
                self._from_containers(missing)
            else:
                wanted = self.started + missing
                records = Stack(self.home, parts=wanted).up()
                for record in records.values():
                    self.env.update(record.env)
            self.started += missing
        return self.env

    def _from_containers(self, parts: list[str]) -> None:  # pragma: no cover - needs a Docker engine
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        for part in parts:
            if part == "kafka" and "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
                kafka = KafkaContainer("apache/kafka:4.1.0").with_kraft().start()
                self._containers.append(kafka)
                self.env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.get_bootstrap_server()
            elif part == "postgres" and "DATABASE_URL" not in os.environ:
                pg = PostgresContainer("postgres:17", driver=None).start()
                self._containers.append(pg)
                self.env["DATABASE_URL"] = pg.get_connection_url()
            else:
                self.env.update(Stack(self.home, parts=[part]).up()[part].env)

    def close(self) -> None:
        Stack(self.home).down()
        for container in self._containers:
            container.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def session_stack() -> Iterator[SessionStack]:
    sweep_orphans()
    stack = SessionStack(stack_home())
    claim(stack.home)
    try:
        yield stack
    finally:
        stack.close()
        shutil.rmtree(stack.home, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(session_stack: SessionStack) -> str:
    return session_stack.require("kafka")["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def database_url(session_stack: SessionStack) -> str:
    return session_stack.require("postgres")["DATABASE_URL"]


@pytest.fixture(scope="session")
def registry_url(session_stack: SessionStack) -> str:
    """accord's schema registry for the session (on the session's Kafka), or SCHEMA_REGISTRY_URL."""
    return session_stack.require("kafka", "registry")["SCHEMA_REGISTRY_URL"]


@pytest.fixture(scope="session")
def sandbox_url(session_stack: SessionStack) -> str:
    """The SaaS sandbox (simulated CRM, billing, ERP) for the session, or ACCORD_SANDBOX_URL."""
    return session_stack.require("postgres", "sandbox")["ACCORD_SANDBOX_URL"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def group_id() -> str:
    """A consumer group of this test's own."""
    return unique("test-group")


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """make_topic(partitions=3, **config) -> a new topic of this test's own, deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def make_topic(partitions: int = 3, prefix: str = "test", **config: str) -> str:
        name = unique(prefix)
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config))]
        )
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield make_topic
    if created:
        for future in admin.delete_topics(created).values():
            future.result(timeout=30)


@pytest.fixture
async def db_url(database_url: str) -> AsyncIterator[str]:
    """A fresh, empty database of this test's own (a URL), dropped afterwards."""
    url = await create_database(database_url)
    yield url
    await drop_database(database_url, url)
