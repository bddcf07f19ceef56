"""Run a service's handlers on the runtime's in-memory twins: no broker, no database, no registry.

    harness = HandlerHarness(SERVICE)
    await harness.deliver(invoice_issued, topic="billing.invoices")
    assert harness.state("acc-1") == {...}
    assert [type(e) for e in harness.published("crm.accounts")] == [CreditHoldChanged]

It drives the same `Runtime.apply` as production (dedupe, parking, dead letters), against `MemoryStore`,
whose behaviour the store contract suite holds equal to PostgreSQL's. Integration tests use the real ones.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

from ._consumer import Outcome, RetryPolicy, Runtime
from ._model import Envelope, Service, event_identity
from ._store import MemoryStore, Writes


class _Decoded(NamedTuple):
    event: Any
    schema_id: int


class _ObjectCodec:
    """Keeps events as objects behind opaque tokens: what goes in comes out, no serialisation."""

    def __init__(self) -> None:
        self._objects: dict[bytes, Any] = {}
        self._ids = itertools.count()

    def encode(self, topic: str, event: Any) -> bytes:
        token = f"obj:{next(self._ids)}".encode()
        self._objects[token] = event
        return token

    def decode(self, topic: str, data: bytes) -> _Decoded:
        return _Decoded(self._objects[data], 0)


async def _no_sleep(_: float) -> None:
    return None


class HandlerHarness:
    def __init__(self, service: Service, *, attempts: int = 3) -> None:
        self.service = service
        self.store = MemoryStore()
        self.codec = _ObjectCodec()
        self.runtime = Runtime(
            service,
            store=self.store,
            codec=self.codec,
            producer=None,  # type: ignore[arg-type]
            retry=RetryPolicy(attempts=attempts),
            sleep=_no_sleep,
        )
        self._offsets = itertools.count()

    async def deliver(self, *events: Any, topic: str | None = None, key: str | None = None) -> list[Outcome]:
        """Deliver events as one batch (on the service's first topic unless `topic` is given)."""
        envelopes = []
        for event in events:
            event_id, event_type = event_identity(event)
            envelopes.append(
                Envelope(
                    topic=topic or self.service.topics[0],
                    partition=0,
                    offset=next(self._offsets),
                    timestamp_ms=None,
                    key=key or event.key(),
                    event=event,
                    event_id=event_id,
                    event_type=event_type,
                    raw_value=self.codec.encode("", event),
                )
            )
        writes = Writes()
        async with self.store.unit_of_work(consumer=self.service.group, aggregate=self.service.aggregate) as uow:
            outcomes = await self.runtime.apply(uow, envelopes, writes)
            await uow.write(writes)
        return [o for o, _ in outcomes]

    def state(self, key: str) -> Any:
        import json

        raw = self.store.states.get((self.service.aggregate, key))
        return None if raw is None else self.service.load_state(json.loads(raw))

    def published(self, topic: str | None = None) -> list[Any]:
        """Events the handlers emitted through the outbox, in order (optionally of one topic)."""
        return [self.codec.decode(r.topic, r.value).event for r in self.store.outbox if topic in (None, r.topic)]

    def commands(self) -> list[Any]:
        """Commands the handlers recorded (`CommandSpec`), in order, each key once."""
        return list(self.store.commands)

    def parked(self) -> list[str]:
        """Keys with parked events."""
        return sorted({p.key for _, p in self.store.parked})
