"""Valid example events built from an event's own schema: for tests, benchmarks and demos.

    sample_event(InvoiceIssued)                # every optional field set, one element per array
    sample_event(InvoiceIssued, minimal=True)  # optionals null, arrays and maps empty
    sample_event(InvoiceIssued, seed=7)        # other ids, amounts and times

Because the values come from walking the schema, a new field gets a value without anyone editing a
fixture, and every event class can be round-tripped in one parametrized test.
"""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from typing import Any, TypeVar

from ._model import Event

E = TypeVar("E", bound=Event)

#: a value for each `pattern` the catalogue uses (a new pattern needs a line here)
PATTERN_SAMPLES = {
    "^[A-Z]{3}$": "EUR",
    "^[A-Z]{2}$": "FR",
    "^[0-9]{4}-(0[1-9]|1[0-2])$": "2026-11",
}


class _Sampler:
    def __init__(self, seed: int, minimal: bool) -> None:
        self.seed = seed
        self.minimal = minimal
        self.named: dict[str, Any] = {}

    def index(self, schema: Any, namespace: str = "") -> None:
        """Learn every named type first: in a minimal sample the first definition may be skipped."""
        if isinstance(schema, list):
            for branch in schema:
                self.index(branch, namespace)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in ("record", "enum", "fixed"):
                name = schema["name"]
                full = name if "." in name else f"{schema.get('namespace', namespace)}.{name}"
                self.named[full] = schema
                namespace = full.rpartition(".")[0]
            for f in schema.get("fields", []) if kind == "record" else []:
                self.index(f["type"], namespace)
            if kind == "array":
                self.index(schema["items"], namespace)
            if kind == "map":
                self.index(schema["values"], namespace)

    def value(self, schema: Any, name: str, field: dict[str, Any] | None = None) -> Any:
        if isinstance(schema, list):
            if "null" in schema and self.minimal:
                return None
            return self.value(next(s for s in schema if s != "null"), name, field)
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], name, field)
            return self.primitive(schema, name, field)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if kind == "record":
            return {f["name"]: self.value(f["type"], f["name"], f) for f in schema["fields"]}
        if kind == "enum":
            return schema["symbols"][-1]  # not the default: a default-valued enum hides mistakes
        if kind == "array":
            return [] if self.minimal else [self.value(schema["items"], name)]
        if kind == "map":
            return {} if self.minimal else {"key": self.value(schema["values"], name)}
        if logical == "decimal":
            scale = int(schema.get("scale", 0))
            whole = min(1234 + self.seed, 10 ** (int(schema["precision"]) - scale) - 1)
            return (Decimal(whole) + Decimal("0.5")).quantize(Decimal(1).scaleb(-scale))
        if logical == "uuid":
            return uuid.UUID(int=self.seed + 1)
        if logical == "date":
            return datetime.date(2026, 11, 1) + datetime.timedelta(days=self.seed)
        if logical in ("timestamp-micros", "timestamp-millis"):
            return datetime.datetime(2026, 11, 28, 12, 0, 0, self.seed % 1_000_000, tzinfo=datetime.UTC)
        return self.primitive(kind, name, field)

    def primitive(self, kind: str, name: str, field: dict[str, Any] | None) -> Any:
        if kind == "string":
            pattern = (field or {}).get("pattern")
            if pattern is not None:
                return PATTERN_SAMPLES[pattern]
            return f"{name}-{self.seed}"
        if kind in ("int", "long"):
            return self.seed + 1
        if kind == "boolean":
            return True
        if kind == "bytes":
            return b"\x00\x01"
        if kind == "null":
            return None
        raise ValueError(f"no sample for Avro type {kind!r} (field {name})")


def sample_datum(event_type: type[Event], *, seed: int = 0, minimal: bool = False) -> dict[str, Any]:
    """A datum (what fastavro writes) valid for `event_type`'s schema."""
    schema = json.loads(event_type.SCHEMA)
    sampler = _Sampler(seed, minimal)
    sampler.index(schema)
    datum: dict[str, Any] = sampler.value(schema, "event")
    datum["meta"]["event_type"] = event_type.AVRO_NAME
    return datum


def sample_event(event_type: type[E], *, seed: int = 0, minimal: bool = False) -> E:
    """A valid `event_type` event with deterministic values derived from `seed`."""
    return event_type.from_avro(sample_datum(event_type, seed=seed, minimal=minimal))
