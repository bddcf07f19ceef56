"""The ledger test service as its own process, with an optional crash (SIGKILL of itself) at a chosen point.

    ACCORD_TEST_CRASH=in-transaction:N       die inside the database transaction, handling the Nth event
    ACCORD_TEST_CRASH=before-offset-commit:N die after the Nth batch's transaction committed, before its offsets
    ACCORD_TEST_CRASH=relay-after-ack:N      die after the broker acknowledged the Nth relay round, before the
                                             outbox rows are deleted
Topics and group come from ACCORD_TEST_IN, ACCORD_TEST_OUT and ACCORD_TEST_GROUP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from typing import Any

from confluent_kafka import Consumer, Producer

from accord.runtime import Decision, Envelope, Runtime, RuntimeSettings, ServiceHost, producer_config, setup_logging
from accord.serde import EventCodec
from tests.support import ledger

point, _, nth = os.environ.get("ACCORD_TEST_CRASH", "").partition(":")
target = int(nth or 0)
counts = {"in-transaction": 0, "before-offset-commit": 0, "relay-after-ack": 0}


def crash_if(at: str) -> None:
    if point != at:
        return
    counts[at] += 1
    if counts[at] == target:
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingRuntime(Runtime):
    @staticmethod
    async def commit(consumer: Consumer, offsets: dict[tuple[str, int], int]) -> None:
        crash_if("before-offset-commit")
        await Runtime.commit(consumer, offsets)


class CrashingProducer(Producer):
    def flush(self, *args: Any) -> int:
        remaining = super().flush(*args)
        crash_if("relay-after-ack")
        return remaining


class CrashingHost(ServiceHost):
    runtime_class = CrashingRuntime

    def make_producer(self, role: str) -> Producer:
        if role == "relay":
            return CrashingProducer(producer_config(self.settings.kafka_bootstrap_servers, self.settings.kafka_config))
        return super().make_producer(role)


def main() -> None:
    setup_logging()
    service = ledger.make_service(
        os.environ["ACCORD_TEST_GROUP"], os.environ["ACCORD_TEST_IN"], os.environ["ACCORD_TEST_OUT"]
    )
    handler = service.handlers[next(iter(service.handlers))]

    def crashing(state: Any, env: Envelope) -> Decision[Any]:
        crash_if("in-transaction")
        return handler(state, env)

    service = dataclasses.replace(service, handlers={k: crashing for k in service.handlers})
    settings = RuntimeSettings(batch_size=50)
    host = CrashingHost(service, settings, EventCodec.connect(settings.schema_registry_url))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, host.stop.set)
        await host.run()

    asyncio.run(run())


if __name__ == "__main__":
    main()
