"""The reconciler as a process (`python -m accord_reconciler`) on real Kafka, PostgreSQL and the registry, fed by
the divergence injector: every injected divergence is found with its class and key (across a SIGKILL taken while
its deadlines were pending), and a clean book under heavy delivery noise yields no finding at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka import Producer

from accord.devstack._base import free_port
from accord.events import DivergenceDetected, DivergenceResolved, Event, ExceptionChanged, RepairRequested
from accord.events.samples import sample_event
from accord.runtime import producer_config
from accord.serde import EventCodec
from accord_reconciler.injector import Book, noisy, per_class
from accord_reconciler.service import TOPICS
from tests.support.topics import read_events

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(900)]

DIVERGENCES = DivergenceDetected.TOPIC


@dataclass
class Reconciler:
    bootstrap: str
    db_url: str
    registry_url: str
    codec: EventCodec
    topics: dict[str, str]  # catalogue → this test's
    tmp: Path
    name: str
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def log(self) -> Path:
        return self.tmp / "reconciler.log"

    def start(self, **env: str) -> None:
        self.port = free_port()
        environ = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.db_url,
            "SCHEMA_REGISTRY_URL": self.registry_url,
            "ACCORD_RECONCILER_HTTP_PORT": str(self.port),
            "ACCORD_RECONCILER_SERVICE_NAME": self.name,
            "ACCORD_RECONCILER_TOPICS": json.dumps(self.topics),
            **env,
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "accord_reconciler"], env=environ, stdout=out, stderr=subprocess.STDOUT
            )
        self.wait_until(self._ready, "the reconciler did not become ready", timeout=60)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=40)
        self.process = None

    def wait_until(self, done: Callable[[], bool], what: str, *, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{what}\n{self.log.read_text()[-3000:]}"
            time.sleep(0.5)

    def produce(self, events: list[Event]) -> int:
        """Publish under this test's topics; returns how many distinct events were sent."""
        producer = Producer(producer_config(self.bootstrap))
        for n, event in enumerate(events):
            topic = self.topics[event.TOPIC]
            producer.produce(topic, key=event.key().encode(), value=self.codec.encode(topic, event))
            if n % 1000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0
        return len({e.meta.event_id for e in events})  # type: ignore[attr-defined]

    def value(self, sql: str) -> Any:
        async def one() -> Any:
            conn = await asyncpg.connect(self.db_url)
            try:
                return await conn.fetchval(sql.replace("{s}", self.name))
            finally:
                await conn.close()

        return asyncio.run(one())

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async def all_rows() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.db_url)
            try:
                return [tuple(r) for r in await conn.fetch(sql.replace("{s}", self.name))]
            finally:
                await conn.close()

        return asyncio.run(all_rows())

    def caught_up(self, distinct: int) -> Callable[[], bool]:
        return lambda: self.value("SELECT count(*) FROM {s}.processed_events") >= distinct

    def quiet(self) -> bool:
        """No rule's deadline pending (repairs wait an hour here: SHORT) and everything published."""
        pending = self.value(
            """SELECT (SELECT count(*) FROM {s}.match_states WHERE next_deadline < now() + interval '30 minutes')
                    + (SELECT count(*) FROM {s}.outbox)"""
        )
        return bool(pending == 0)

    def divergences(self, *, settle: float = 3.0) -> list[Any]:
        return read_events(self.bootstrap, self.topics[DIVERGENCES], self.codec.decode, settle=settle)


@pytest.fixture
def reconciler(
    kafka_bootstrap: str,
    db_url: str,
    registry_url: str,
    topic_factory: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Reconciler]:
    written = (DIVERGENCES, RepairRequested.TOPIC)
    topics = {t: topic_factory(partitions=3, prefix=t.replace(".", "-")) for t in (*TOPICS, *written)}
    with EventCodec.connect(registry_url, auto_register=True) as codec:
        for cls in (DivergenceDetected, DivergenceResolved, ExceptionChanged, RepairRequested):  # what it writes
            codec.encode(topics[cls.TOPIC], sample_event(cls))
        # accord.casework encodes under the catalogue subject before the row moves to the topic in use
        codec.encode(ExceptionChanged.TOPIC, sample_event(ExceptionChanged))
        r = Reconciler(kafka_bootstrap, db_url, registry_url, codec, topics, tmp_path, f"recon_{uuid.uuid4().hex[:8]}")
        yield r
        if r.process is not None:
            r.kill(signal.SIGTERM)


SHORT = {
    "ACCORD_RECONCILER_SETTLE_SECONDS": "5",
    "ACCORD_RECONCILER_IN_DOUBT_GRACE_SECONDS": "2",
    "ACCORD_RECONCILER_REPAIR_TIMEOUT_SECONDS": "3600",
}


def test_every_injected_divergence_is_found_with_its_class_and_key_across_a_restart(reconciler: Reconciler) -> None:
    book = Book.generate(customers=1000, per_class=55, seed=11, run=f"i{uuid.uuid4().hex[:6]}")
    assert min(per_class(book.expected).values()) >= 50 and len(per_class(book.expected)) == 9
    sla = {"journal": 60, "contract": 60}
    reconciler.start(ACCORD_RECONCILER_SLA_SECONDS=json.dumps(sla), **SHORT)
    distinct = reconciler.produce(noisy(book.events, random.Random(3), duplicates=0.2))
    reconciler.wait_until(reconciler.caught_up(distinct), "the reconciler did not consume the book")

    # Killed while the absences' deadlines are still pending: they live in the table, not in the process.
    pending = reconciler.value("SELECT count(*) FROM {s}.match_states WHERE next_deadline > now()")
    assert pending > 0
    reconciler.kill()
    reconciler.start(ACCORD_RECONCILER_SLA_SECONDS=json.dumps(sla), **SHORT)
    reconciler.wait_until(reconciler.quiet, "deadlines still pending", timeout=300)

    found = {(key, cls) for key, cls in reconciler.rows("SELECT key, finding_class FROM {s}.findings")}
    expected = {(key, cls.value) for key, cls in book.expected}
    assert sorted(expected - found) == [], "injected but not found"
    assert sorted(found - expected) == [], "found but not injected (false positives)"

    published = [e for e in reconciler.divergences() if isinstance(e, DivergenceDetected)]
    assert {e.divergence_key for e in published} == {f"{key}:{cls}" for key, cls in expected}
    assert all(e.divergence_class and e.detail for e in published)


def test_a_clean_book_under_heavy_delivery_noise_has_no_finding(reconciler: Reconciler) -> None:
    book = Book.generate(customers=1000, seed=12, run=f"c{uuid.uuid4().hex[:6]}")
    assert book.expected == set()
    sla = {"journal": 10, "contract": 10}
    reconciler.start(ACCORD_RECONCILER_SLA_SECONDS=json.dumps(sla), **SHORT)
    # half the events delivered twice, and each topic as one block in a random order: postings before invoices
    distinct = reconciler.produce(noisy(book.events, random.Random(4), duplicates=0.5))
    reconciler.wait_until(reconciler.caught_up(distinct), "the reconciler did not consume the book")
    reconciler.wait_until(reconciler.quiet, "deadlines still pending", timeout=120)

    assert reconciler.value("SELECT count(*) FROM {s}.match_states") > 3000
    assert reconciler.rows("SELECT key, finding_class, status FROM {s}.findings") == []
    assert reconciler.divergences(settle=2.0) == []


def test_the_service_runs_state_reconciliations_on_its_schedule(reconciler: Reconciler, sandbox_url: str) -> None:
    reconciler.start(
        ACCORD_SANDBOX_URL=sandbox_url,
        ACCORD_RECONCILER_CLIENT_SECRET="cs_test",
        ACCORD_RECONCILER_STATE_RUN_SECONDS="1",
        **SHORT,
    )
    reconciler.wait_until(
        lambda: reconciler.value("SELECT count(*) FROM {s}.runs WHERE finished_at IS NOT NULL") >= 2,
        "no scheduled state run finished",
        timeout=120,
    )
    runs = reconciler.rows(
        "SELECT since, summary->>'until', summary->'read' FROM {s}.runs WHERE finished_at IS NOT NULL"
        " ORDER BY started_at LIMIT 2"
    )
    (first_since, first_until, first_read), (second_since, _, _) = runs
    assert first_since is None  # the first reads everything
    # the next reads what changed since the first saw (nothing, if the sandbox held nothing yet)
    assert (None if second_since is None else second_since.isoformat()) == first_until
    assert len(json.loads(first_read)) == 3  # billing, the ERP and the CRM were read
