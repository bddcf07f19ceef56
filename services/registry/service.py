"""Wiring: the registry over Kafka, as one ASGI app whose start-up replays the topic before serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from .api import FrontDoor, build_app
from .election import Election
from .kafka_log import KafkaLog, ensure_topic
from .registry import Registry
from .settings import RegistrySettings
from .state import State

log = logging.getLogger("accord_registry")


class KafkaLeadership:
    """`api.Leadership` from the consumer-group election."""

    def __init__(self, election: Election, timeout: float) -> None:
        self.election = election
        self.timeout = timeout

    async def leader(self) -> str | None:
        if self.election.is_leader:
            return "self"
        return await asyncio.to_thread(self.election.wait_for_leader, self.timeout)

    def begin_write(self) -> bool:
        return self.election.begin_write()

    def end_write(self) -> None:
        self.election.end_write()

    def describe(self) -> dict[str, Any]:
        election = self.election
        if election.is_leader:
            return {"leader": True, "leader_url": election.my_url, "joined": True}
        return {"leader": False, "leader_url": election.leader_url, "joined": election.joined}


def prepare_topics(settings: RegistrySettings) -> None:
    """Create the log and election topics unless they exist (raises KafkaException when Kafka is away)."""
    for topic in (settings.topic, settings.election_topic):
        ensure_topic(settings.kafka_bootstrap_servers, topic, settings.topic_replication_factor, timeout=15)


def create_app(settings: RegistrySettings) -> FrontDoor:
    state = State()
    kafka_log = KafkaLog(
        state, settings.kafka_bootstrap_servers, settings.topic, write_timeout=settings.write_timeout_seconds
    )
    registry = Registry(state, kafka_log, default_level=settings.default_compatibility)
    election = Election(
        settings.kafka_bootstrap_servers,
        settings.election_topic,
        settings.election_group,
        my_url=settings.url,
        eligible=settings.leader_eligible,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # 1. both topics exist (made by `prepare_topics` before the app starts); 2. the state holds
        # everything already in the log; 3. only then we follow the log, stand for election and (when
        # this returns) accept connections.
        count = await asyncio.to_thread(kafka_log.replay, settings.startup_timeout_seconds)
        log.info(
            "replayed %d records of %s: %d subjects, %d schemas",
            count,
            settings.topic,
            len(state.subjects),
            len(state.schemas),
        )
        kafka_log.start(asyncio.get_running_loop())
        election.start()
        try:
            yield {}
        finally:
            await asyncio.to_thread(election.close)
            await asyncio.to_thread(kafka_log.close)

    app = build_app(
        registry,
        KafkaLeadership(election, settings.write_timeout_seconds),
        lifespan=lifespan,
        forward_timeout=settings.write_timeout_seconds + 10,
    )
    password = settings.basic_auth_password.get_secret_value() if settings.basic_auth_password else None
    return FrontDoor(app, registry, username=settings.basic_auth_username, password=password)
