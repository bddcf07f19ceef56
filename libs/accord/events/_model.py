"""Base classes of the generated event classes: how a pydantic model meets an Avro record.

The classes in `_generated.py` are written by `accord schemas generate` from `schemas/*.avsc`; this
module holds the little behaviour they share. A model's `to_avro()` is the datum fastavro writes with
the event's schema, and `from_avro()` takes the datum fastavro reads back: both are plain
`model_dump()` / `model_validate()`, because the field types are chosen so that pydantic's python
mode and fastavro's logical types agree (Decimal, date, aware datetime, UUID, str enums).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, model_validator


@dataclass(frozen=True)
class AvroDecimal:
    """Constraint of an Avro `bytes` decimal: at most `precision` digits, `scale` of them after the point.

    A value with more decimal places than `scale` is refused rather than rounded (nothing is lost
    silently); a value with fewer is padded to exactly `scale` places, which fastavro requires.
    """

    precision: int
    scale: int

    def __call__(self, value: Decimal) -> Decimal:
        _, digits, exponent = value.as_tuple()
        if exponent == -self.scale and len(digits) <= self.precision:
            return value  # already exact: every decoded value, and most built ones
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite decimal")
        try:
            quantized = value.quantize(Decimal(1).scaleb(-self.scale))
        except InvalidOperation:
            raise ValueError(f"{value} does not fit decimal({self.precision},{self.scale})") from None
        if quantized != value:
            raise ValueError(f"{value} has more than {self.scale} decimal places; round it explicitly first")
        if len(quantized.as_tuple().digits) > self.precision:
            raise ValueError(f"{value} has more than {self.precision} digits (decimal({self.precision},{self.scale}))")
        return quantized


def no_float(value: Any) -> Any:
    """Refuse a float where a decimal is expected: a float has already lost the exact amount."""
    if isinstance(value, float):
        raise ValueError(f"{value!r} is a float; pass a Decimal or a string such as '10.50'")
    return value


def _to_utc(value: datetime.datetime) -> datetime.datetime:
    return value.astimezone(datetime.UTC)


#: An instant: timezone-aware on input (a naive datetime is refused), kept in UTC (Avro timestamp-micros).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class AvroRecord(BaseModel):
    """A generated model of one Avro record type. Immutable; unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: full Avro name of the record, e.g. "accord.common.Money"
    AVRO_NAME: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The datum fastavro writes with this record's schema."""
        return self.model_dump()

    @classmethod
    def from_avro(cls, datum: Mapping[str, Any]) -> Self:
        """The model of a datum fastavro read with this record's schema (validated)."""
        return cls.model_validate(datum)


class Event(AvroRecord):
    """A business event: a top-level record published on one topic, first field `meta`.

    The class variables come from `schemas/catalogue.yaml`: where the event is published, which
    fields make its Kafka key, who owns the fact and how its schema may evolve.
    """

    #: the catalogue's topic for this event; subject is f"{TOPIC}-{AVRO_NAME}" (topic-record-name)
    TOPIC: ClassVar[str]
    #: fields whose values, joined by "/", are the Kafka key
    KEY_FIELDS: ClassVar[tuple[str, ...]]
    #: system of record of the fact (crm, billing, erp, accord)
    OWNER: ClassVar[str]
    #: the registry compatibility level of the subject (BACKWARD or FULL)
    COMPATIBILITY: ClassVar[str]
    #: the self-contained Avro schema (every named type inlined) as registered in the registry
    SCHEMA: ClassVar[str]

    @model_validator(mode="after")
    def _event_type_matches(self) -> Self:
        event_type = self.meta.event_type  # type: ignore[attr-defined]
        if event_type != self.AVRO_NAME:
            raise ValueError(f"meta.event_type is {event_type!r} but this is a {self.AVRO_NAME} event")
        return self

    @classmethod
    def subject(cls, topic: str | None = None) -> str:
        """The registry subject of this event on `topic` (default: its catalogue topic)."""
        return f"{topic or cls.TOPIC}-{cls.AVRO_NAME}"

    def key(self) -> str:
        """The Kafka key: the values of KEY_FIELDS joined by "/"."""
        return "/".join(str(getattr(self, name)) for name in self.KEY_FIELDS)
