"""The shapes a service's domain code sees: the incoming record, its decision, the events it emits."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from accord.errors import PermanentError

S = TypeVar("S")


class DecodeError(PermanentError):
    """A record's bytes cannot become an event (bad magic byte, unknown schema id, corrupt body).

    Non-retryable: the runtime dead-letters the record with this message as the reason.
    """


class DecodedEvent(Protocol):
    @property
    def event(self) -> Any: ...


class EventCodec(Protocol):
    """Confluent wire format in and out (`accord.serde.EventCodec`). `decode` raises a non-retryable error for
    bytes it can never read, and a retryable one when the registry is unreachable."""

    def decode(self, topic: str, data: bytes) -> DecodedEvent: ...

    def encode(self, topic: str, event: Any) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded record and where it came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: str
    event: Any
    event_id: str
    event_type: str
    headers: Sequence[tuple[str, bytes | None]] = ()
    raw_value: bytes | None = None  # the record as received, to park or dead-letter it unchanged


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event to publish through the outbox, in the same transaction as the state that caused it."""

    topic: str
    key: str
    event: Any
    headers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A call to a SaaS system, recorded in the batch's transaction and executed later by `accord.commands`'
    worker (a handler never calls an API itself). `key` is the idempotency key: derive it from the event."""

    system: str
    kind: str
    key: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Decision(Generic[S]):
    """What a handler decided: the aggregate's new state (None: unchanged), the events it emits and the
    commands it records, all committed in the batch's one transaction."""

    state: S | None = None
    outputs: Sequence[Outgoing] = ()
    commands: Sequence[CommandSpec] = ()


#: A pure decision: (current state or None, the event in its envelope) -> Decision.
Handler = Callable[[Any, Envelope], Decision[Any]]


@dataclass(frozen=True)
class Service:
    """A service's subscriptions and deciders. It is pure data: the runtime does all the I/O around it.

    `handlers` maps an event's full Avro name (`accord.billing.InvoiceIssued`) to its handler; events of
    other types on the subscribed topics are acknowledged and ignored (counted, never silently lost: they
    are not this service's business). State is kept per (`aggregate`, record key); `load_state` and
    `dump_state` turn it to and from JSON.
    """

    name: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    aggregate: str = "default"
    load_state: Callable[[Any], Any] = field(default=lambda data: data)
    dump_state: Callable[[Any], Any] = field(default=lambda state: state)

    @property
    def group(self) -> str:
        return self.name


def event_identity(event: Any) -> tuple[str, str]:
    """(event_id, event_type) from an event's `meta` record, whether a model or a plain dict."""
    meta = event["meta"] if isinstance(event, Mapping) else event.meta
    if isinstance(meta, Mapping):
        return str(meta["event_id"]), str(meta["event_type"])
    return str(meta.event_id), str(meta.event_type)
