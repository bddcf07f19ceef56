"""A service as its own process: probes, Prometheus metrics, and a clean exit on SIGTERM."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from accord.devstack._base import free_port
from accord.events import UsageRecorded
from accord.runtime import schema_name
from accord.serde import EventCodec
from tests.support import ledger
from tests.support.harness import Harness, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
async def harness(
    kafka_bootstrap: str, db_url: str, registry_url: str, topic_factory, group_id: str
) -> AsyncIterator[Harness]:
    h = Harness(
        kafka_bootstrap,
        db_url,
        EventCodec.connect(registry_url, auto_register=True),
        topic_factory(prefix="usage"),
        topic_factory(prefix="rated"),
        group_id,
        schema=schema_name(group_id),
    )
    await h.start()
    yield h
    await h.close()
    h.codec.registry.close()


async def test_probes_metrics_and_sigterm(harness: Harness, registry_url: str, tmp_path: Path) -> None:
    harness.codec.schema_id(harness.out_topic, UsageRecorded)
    harness.produce([ledger.usage("acc-1", n) for n in range(10)] + [ledger.usage("acc-2", 0, meter=ledger.POISON)])
    port = free_port()
    log = tmp_path / "service.log"
    service = start_service(harness, registry_url, log, ACCORD_HTTP_PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        metrics = ""
        while (
            "accord_events_dead_lettered_total" not in metrics
            or await harness.count("processed_events") < 10
            or await harness.count("outbox") > 0
        ):
            assert service.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "service did not process the events"
            time.sleep(0.3)
            try:
                metrics = httpx.get(f"{base}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{base}/readyz").status_code == 200
        group = harness.group
        assert f'accord_events_processed_total{{service="{group}",topic="{harness.in_topic}"}} 10.0' in metrics
        assert f'accord_events_dead_lettered_total{{service="{group}"}} 1.0' in metrics
        assert "accord_handler_seconds_bucket" in metrics
        assert f'accord_outbox_published_total{{service="{group}"}} 10.0' in httpx.get(f"{base}/metrics").text
    finally:
        service.terminate()
        service.wait(timeout=30)
    assert service.returncode == 0
    lines = log.read_text().splitlines()
    assert any('"message": "service ' in line and "stopped" in line for line in lines)
    # Logs are structured and carry no record values: the poison event's usage id never appears.
    assert all(line.startswith("{") for line in lines if line.strip())
    assert "u-acc-2-0" not in log.read_text()
