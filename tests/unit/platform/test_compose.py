"""docker-compose.yml runs the same parts as the local stack, on the ports and versions it documents."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from accord.devstack import catalogue, repo_root
from accord.devstack._kafka import DEFAULT_KAFKA_VERSION

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((repo_root() / "docker-compose.yml").read_text())
    return data


def published(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[0]) for p in service.get("ports", [])}


def test_every_stack_part_is_a_compose_service_on_its_port(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, part in catalogue().items():
        assert name in services, f"local stack part {name} has no service in docker-compose.yml"
        assert part.compose_port is not None, f"part {name} does not say which port compose publishes"
        assert part.compose_port in published(services[name]), f"{name} not published on {part.compose_port}"


def test_every_compose_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "healthcheck" in service, f"{name} has no healthcheck"


def test_compose_runs_the_kafka_version_of_the_local_stack(compose: dict[str, Any]) -> None:
    image = compose["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{DEFAULT_KAFKA_VERSION}"
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", "single-node KRaft, as `accord dev up` runs it"


def test_services_get_the_standard_environment(compose: dict[str, Any]) -> None:
    env = compose["x-accord-service"]["environment"]
    exported = {part.external_env for part in catalogue().values()}
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        assert name in exported and name in env
    assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("kafka:")
    assert "@postgres:5432/" in env["DATABASE_URL"]
