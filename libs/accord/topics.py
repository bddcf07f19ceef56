"""The topics catalogue (schemas/topics.yaml) and creating what is missing of it on a broker."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from accord.errors import ConfigurationError


@dataclass(frozen=True)
class TopicSpec:
    name: str
    owner: str
    key: str
    partitions: int
    cleanup_policy: str = "delete"
    retention_ms: int | None = None

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


def load_catalogue(path: Path) -> list[TopicSpec]:
    try:
        data: Any = yaml.safe_load(path.read_text())
        return [TopicSpec(**entry) for entry in data["topics"]]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"topics catalogue {path} is not readable: {exc}") from exc


def ensure_topics(
    bootstrap_servers: str, specs: Iterable[TopicSpec], *, replication_factor: int = 1, timeout: float = 30.0
) -> list[str]:
    """Create every topic of `specs` that does not exist yet; return the names created."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=replication_factor, config=s.config())
        for s in specs
        if s.name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            # Another process may have created it since we listed: that is the outcome we wanted.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
