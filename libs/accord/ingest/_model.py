"""What a source and its mapper look like to accord.ingest: pure data and pure functions, no I/O."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import asyncpg

from accord.errors import AccordError
from accord.events import Event, Meta

#: namespace of the stable event ids (uuid5), fixed forever: changing it changes every id
EVENT_ID_NAMESPACE = uuid.UUID("5b0e7c1e-3f43-4a3e-9d0c-6f1a2b7e4c11")


def stable_event_id(source_system: str, source_event_id: str, event_type: str) -> uuid.UUID:
    """The canonical event id of `event_type` made from one source event: the same on every re-delivery.

    uuid5 of "<source system>/<source event id>/<event type>" (the event type as its full Avro name).
    """
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source_system}/{source_event_id}/{event_type}")


def meta_of(event: Event) -> Meta:
    """An event's `meta` (every catalogue event has one; the base class does not declare it)."""
    meta = getattr(event, "meta", None)
    if not isinstance(meta, Meta):
        raise TypeError(f"{type(event).__name__} has no meta record")
    return meta


class Via(StrEnum):
    WEBHOOK = "webhook"
    POLL = "poll"


class Outcome(StrEnum):
    """What became of one delivery (also the inbox row's status, except DUPLICATE which writes no row)."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    STALE = "stale"
    FAILED = "failed"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified delivery of a source event, as the mapper sees it."""

    source_system: str
    source_event_id: str
    event_type: str
    payload: Mapping[str, Any]
    received_at: datetime.datetime
    via: Via = Via.WEBHOOK

    def event_id(self, event_type: type[Event]) -> uuid.UUID:
        """The stable id of the canonical `event_type` this delivery becomes."""
        return stable_event_id(self.source_system, self.source_event_id, event_type.AVRO_NAME)


@dataclass(frozen=True, slots=True)
class EntityVersion:
    """The entity a delivery is a snapshot of, and its version in the source: last writer wins on it."""

    entity_type: str
    entity_id: str
    version: int


@dataclass(frozen=True, slots=True)
class Mapped:
    """The canonical events of a delivery. `entity`, when set, makes the delivery subject to last-writer-wins:
    a version not higher than the highest already seen for that entity is stale and emits nothing."""

    events: Sequence[Event]
    entity: EntityVersion | None = None
    #: one entity per event (same order as `events`), for a delivery that is a snapshot of several entities
    #: (a CRM change naming several records): each event is checked on its own, a stale one is left out, and
    #: the delivery is stale only when every versioned event is. None: that event is not versioned.
    entities: Sequence[EntityVersion | None] = ()

    @classmethod
    def from_meta(cls, events: Sequence[Event], entity_of: Callable[[Event], tuple[str, str] | None]) -> Mapped:
        """Events that carry their entity's version in `meta.entity_version`: `entity_of(event)` names the
        entity (type, id) each one is a snapshot of, or None for an event not subject to last-writer-wins."""
        entities: list[EntityVersion | None] = []
        for event in events:
            named = entity_of(event)
            entities.append(None if named is None else EntityVersion(*named, meta_of(event).entity_version))
        return cls(events, entities=entities)


@dataclass(frozen=True, slots=True)
class Ignored:
    """The delivery is understood and deliberately emits nothing (`reason` is kept on its inbox row)."""

    reason: str


MapResult = Mapped | Ignored
#: pure: a delivery (plus what the source's context loader read) -> canonical events, or ignore with a reason
Mapper = Callable[[Delivery, Any], MapResult]
#: reads (and may record) what the mapper needs from the service's own tables, inside the ingest transaction
ContextLoader = Callable[[asyncpg.Connection, Delivery], Awaitable[Any]]


class MappingError(AccordError):
    """A delivery the mapper cannot turn into events (a permanent error: the delivery is kept as failed)."""

    def __init__(self, message: str, *, source_event_id: str | None = None) -> None:
        super().__init__(message)
        self.source_event_id = source_event_id


def _default_identify(payload: Mapping[str, Any]) -> tuple[str, str]:
    """Stripe's shape (and the sandbox CRM's): the event id under "id", its type under "type"."""
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise MappingError('the event has no "id" string; it cannot be deduplicated')
    if not isinstance(event_type, str) or not event_type:
        raise MappingError(f'event {event_id} has no "type" string')
    return event_id, event_type


@dataclass(frozen=True, slots=True)
class Source:
    """An outside system deliveries come from, and how they become canonical events.

    `name` is the source system as stored (e.g. "billing"); `identify` reads (source event id, event type)
    from a parsed body; `mapper` is pure; `context`, if given, loads what the mapper needs in the same
    transaction. `topics` maps a catalogue topic to the topic to write instead (tests, staging).
    """

    name: str
    mapper: Mapper
    identify: Callable[[Mapping[str, Any]], tuple[str, str]] = _default_identify
    context: ContextLoader | None = None
    topics: Mapping[str, str] = field(default_factory=dict)
    #: True: keep the mapper's event ids (it derives stable ids itself, e.g. one per record of a change naming
    #: several records, where one delivery yields several events of one type); False: ids from the delivery
    keep_event_ids: bool = False

    def topic_of(self, event: Event) -> str:
        return self.topics.get(event.TOPIC, event.TOPIC)
