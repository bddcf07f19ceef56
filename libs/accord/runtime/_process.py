"""What every service process needs beside its consumer: its settings read with a diagnosis, a topic made sure
of, and periodic tasks that survive a passing outage. `ServiceHost` uses them; so do services that assemble
their own process (a webhook endpoint, pollers and workers beside a consumer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import asyncpg
import httpx
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

log = logging.getLogger("accord.runtime")
S = TypeVar("S", bound=BaseSettings)

#: the failures a periodic task waits out (the database or an API away for a moment), logged and retried
PASSING = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, httpx.HTTPError)


def load_settings(cls: type[S], *, service: str, env: str) -> S:
    """The service's settings from the environment; on a mistake, one log line naming each setting and what is
    wrong with it (never a stack trace, never a value: it may be a secret), and exit status 2."""
    try:
        return cls()
    except (ValidationError, SettingsError) as exc:
        problems = (
            [f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else [str(exc)]
        )
        log.error("%s settings are invalid (environment %s): %s", service, env, "; ".join(problems))
        sys.exit(2)


def ensure_topic(bootstrap_servers: str, kafka_config: Mapping[str, str], topic: str, partitions: int = 1) -> None:
    """Create `topic` if it does not exist (a dead-letter topic, say); another instance creating it first is fine."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, **kafka_config})
    if topic not in admin.list_topics(timeout=10).topics:
        future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic]
        with contextlib.suppress(Exception):  # created meanwhile by another instance: fine
            future.result(timeout=30)


async def every(stop: asyncio.Event, seconds: float, action: Callable[[], Any]) -> None:
    """Run `action` (sync or async) every `seconds` until `stop`; a passing failure is logged and retried."""
    while not stop.is_set():
        try:
            result = action()
            if asyncio.iscoroutine(result):
                await result
        except PASSING as exc:
            log.warning("periodic %s failed, will retry: %s", getattr(action, "__name__", action), type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
