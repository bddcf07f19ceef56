"""Reading a test's topic back: every record, decoded, until nothing new comes for a while."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer


def read_events(bootstrap: str, topic: str, decode: Callable[[str, bytes], Any], *, settle: float = 3.0) -> list[Any]:
    """Every event on `topic` from the start (a throwaway group), read until nothing new comes for `settle` s."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    events: list[Any] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < settle:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            events.append(decode(topic, msg.value()).event)
            quiet_since = time.monotonic()
    finally:
        consumer.close()
    return events
