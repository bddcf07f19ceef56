"""Fixtures: registry processes of a test's (or a module's) own, on the session's Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.registry.registry_procs import RegistryCluster, RegistryProcess


@pytest.fixture
def registry_cluster(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RegistryCluster]:
    cluster = RegistryCluster(kafka_bootstrap, tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def shared_registry(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    """One registry process for a whole module of tests that each use subjects of their own."""
    cluster = RegistryCluster(kafka_bootstrap, tmp_path_factory.mktemp("registry"))
    try:
        yield cluster.start()
    finally:
        cluster.close()
