"""Avro schema compatibility, pure: can a reader schema read what a writer schema wrote?

The rules are Avro's schema resolution rules (the specification, and Java's `SchemaCompatibility` that
Confluent's registry runs): type promotion (int→long→float→double, string↔bytes), record fields matched by
name or by the reader field's aliases, a reader field absent from the writer needs a default, named types
match by name or by the reader's aliases, enum symbols the reader lacks need the reader's enum default,
and every branch a writer union may write must be readable. Logical types do not change compatibility.

Levels compose the pair check: BACKWARD means the new schema reads data written with the old one,
FORWARD the other way round, FULL both; the _TRANSITIVE levels check every live version, the others
only the latest one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._schema import AvroSchema, short_name


class Level(StrEnum):
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.value.startswith(("FORWARD", "FULL"))

    @classmethod
    def parse(cls, value: object) -> Level | None:
        if isinstance(value, str):
            try:
                return cls(value.upper())
            except ValueError:
                return None
        return None


class Rule(StrEnum):
    """Avro's names for why a reader cannot read a writer (as in Java's SchemaIncompatibilityType)."""

    NAME_MISMATCH = "NAME_MISMATCH"
    FIXED_SIZE_MISMATCH = "FIXED_SIZE_MISMATCH"
    MISSING_ENUM_SYMBOLS = "MISSING_ENUM_SYMBOLS"
    READER_FIELD_MISSING_DEFAULT_VALUE = "READER_FIELD_MISSING_DEFAULT_VALUE"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    MISSING_UNION_BRANCH = "MISSING_UNION_BRANCH"


@dataclass(frozen=True)
class Incompatibility:
    rule: Rule
    #: where in the reader schema, as a path like /fields/2/type
    location: str
    description: str
    detail: str

    def message(self) -> str:
        return f"{{errorType:'{self.rule.value}', description:'{self.description}', additionalInfo:'{self.detail}'}}"


@dataclass(frozen=True)
class Result:
    incompatibilities: tuple[Incompatibility, ...]
    messages: tuple[str, ...]

    @property
    def compatible(self) -> bool:
        return not self.incompatibilities


# (reader, writer) pairs Avro resolves by promotion
_PROMOTIONS = frozenset(
    {
        ("long", "int"),
        ("float", "int"),
        ("double", "int"),
        ("float", "long"),
        ("double", "long"),
        ("double", "float"),
        ("string", "bytes"),
        ("bytes", "string"),
    }
)


def can_read(
    reader: AvroSchema, writer: AvroSchema, *, reader_role: str = "reader", writer_role: str = "writer"
) -> list[Incompatibility]:
    """Every reason `reader` cannot read data written with `writer` (empty: it can)."""
    return _Pair(reader.names, writer.names, reader_role, writer_role).check(reader.root, writer.root, "")


def check(level: Level, new: AvroSchema, previous: Sequence[tuple[int, AvroSchema]]) -> Result:
    """Check `new` against the live `previous` versions (oldest first) under `level`."""
    if level is Level.NONE or not previous:
        return Result((), ())
    targets = previous if level.transitive else previous[-1:]
    found: list[Incompatibility] = []
    messages: list[str] = []
    for version, old in reversed(targets):
        here: list[Incompatibility] = []
        if level.backward:
            here += can_read(new, old, reader_role="new", writer_role="old")
        if level.forward:
            here += can_read(old, new, reader_role="old", writer_role="new")
        if here:
            found += here
            messages += [i.message() for i in here]
            messages.append(f"{{oldSchemaVersion: {version}}}")
            messages.append(f"{{oldSchema: '{old.text}'}}")
    if found:
        messages.append(f"{{compatibility: '{level.value}'}}")
    return Result(tuple(found), tuple(messages))


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, dict):
        return str(node["type"])
    return str(node)


def _show(node: Any) -> str:
    return json.dumps(node, separators=(",", ":")) if not isinstance(node, str) else node


class _Pair:
    def __init__(
        self,
        reader_names: Mapping[str, dict[str, Any]],
        writer_names: Mapping[str, dict[str, Any]],
        reader_role: str,
        writer_role: str,
    ) -> None:
        self.reader_names = reader_names
        self.writer_names = writer_names
        self.reader_role = reader_role
        self.writer_role = writer_role
        # named pairs being checked right now: a recursive type is assumed compatible on re-entry
        self.in_progress: set[tuple[str, str]] = set()

    def _resolve(self, node: Any, names: Mapping[str, dict[str, Any]]) -> Any:
        if isinstance(node, str) and node in names:
            return names[node]
        return node

    def check(self, reader: Any, writer: Any, location: str) -> list[Incompatibility]:
        r = self._resolve(reader, self.reader_names)
        w = self._resolve(writer, self.writer_names)
        rk, wk = _kind(r), _kind(w)
        if wk == "union":
            return self._writer_union(r, w, location)
        if rk == "union":
            if any(not self.check(branch, w, f"{location}/{i}") for i, branch in enumerate(r)):
                return []
            return [
                Incompatibility(
                    Rule.MISSING_UNION_BRANCH,
                    location or "/",
                    f"The {self.reader_role} union at path '{location or '/'}' has no branch that can read "
                    f"the {self.writer_role} type '{_describe(w)}'",
                    _describe(w),
                )
            ]
        if rk != wk:
            if (rk, wk) in _PROMOTIONS:
                return []
            return [self._type_mismatch(r, w, location)]
        if rk in ("record", "error", "enum", "fixed"):
            key = (r["name"], w["name"])
            if key in self.in_progress:
                return []
            if not _names_match(r, w):
                return [
                    Incompatibility(
                        Rule.NAME_MISMATCH,
                        f"{location}/name",
                        f"The type name '{r['name']}' in the {self.reader_role} schema does not match "
                        f"'{w['name']}' in the {self.writer_role} schema, nor any of its aliases",
                        f"expected: {w['name']}",
                    )
                ]
            self.in_progress.add(key)
            try:
                if rk == "enum":
                    return self._enum(r, w, location)
                if rk == "fixed":
                    return self._fixed(r, w, location)
                return self._record(r, w, location)
            finally:
                self.in_progress.discard(key)
        if rk == "array":
            return self.check(r["items"], w["items"], f"{location}/items")
        if rk == "map":
            return self.check(r["values"], w["values"], f"{location}/values")
        return []  # the same primitive

    def _writer_union(self, r: Any, w: list[Any], location: str) -> list[Incompatibility]:
        found: list[Incompatibility] = []
        for i, branch in enumerate(w):
            if _kind(r) == "union":
                if not any(not self.check(rb, branch, location) for rb in r):
                    wb = self._resolve(branch, self.writer_names)
                    found.append(
                        Incompatibility(
                            Rule.MISSING_UNION_BRANCH,
                            f"{location}/{i}",
                            f"The {self.reader_role} union at path '{location or '/'}' lacks the "
                            f"{self.writer_role} union's branch '{_describe(wb)}'",
                            f"reader union lacking writer type: {_kind(wb).upper()}",
                        )
                    )
            else:
                found += self.check(r, branch, location)
        return found

    def _type_mismatch(self, r: Any, w: Any, location: str) -> Incompatibility:
        return Incompatibility(
            Rule.TYPE_MISMATCH,
            location or "/",
            f"The type at path '{location or '/'}' in the {self.reader_role} schema is '{_describe(r)}', "
            f"which cannot read '{_describe(w)}' from the {self.writer_role} schema",
            f"reader type: {_kind(r).upper()} not compatible with writer type: {_kind(w).upper()}",
        )

    def _enum(self, r: dict[str, Any], w: dict[str, Any], location: str) -> list[Incompatibility]:
        missing = [s for s in w["symbols"] if s not in r["symbols"]]
        if not missing or "default" in r:
            return []
        return [
            Incompatibility(
                Rule.MISSING_ENUM_SYMBOLS,
                f"{location}/symbols",
                f"The {self.reader_role} schema's enum '{r['name']}' lacks the symbols {missing} of the "
                f"{self.writer_role} schema and has no default symbol",
                ", ".join(missing),
            )
        ]

    def _fixed(self, r: dict[str, Any], w: dict[str, Any], location: str) -> list[Incompatibility]:
        if r["size"] == w["size"]:
            return []
        return [
            Incompatibility(
                Rule.FIXED_SIZE_MISMATCH,
                f"{location}/size",
                f"The size of fixed '{r['name']}' is {r['size']} in the {self.reader_role} schema and "
                f"{w['size']} in the {self.writer_role} schema",
                f"expected: {w['size']}, found: {r['size']}",
            )
        ]

    def _record(self, r: dict[str, Any], w: dict[str, Any], location: str) -> list[Incompatibility]:
        writer_fields = {f["name"]: f for f in w["fields"]}
        found: list[Incompatibility] = []
        for i, field in enumerate(r["fields"]):
            match = writer_fields.get(field["name"])
            if match is None:
                for alias in field.get("aliases", ()):
                    match = writer_fields.get(alias)
                    if match is not None:
                        break
            if match is None:
                if "default" not in field:
                    found.append(
                        Incompatibility(
                            Rule.READER_FIELD_MISSING_DEFAULT_VALUE,
                            f"{location}/fields/{i}",
                            f"The field '{field['name']}' at path '{location}/fields/{i}' in the "
                            f"{self.reader_role} schema has no default value and is missing in the "
                            f"{self.writer_role} schema",
                            field["name"],
                        )
                    )
                continue
            found += self.check(field["type"], match["type"], f"{location}/fields/{i}/type")
        return found


def _names_match(r: dict[str, Any], w: dict[str, Any]) -> bool:
    if short_name(r["name"]) == short_name(w["name"]):
        return True
    aliases = r.get("aliases", ())
    return w["name"] in aliases or short_name(w["name"]) in aliases


def _describe(node: Any) -> str:
    if isinstance(node, dict) and "name" in node:
        return f"{node['type']} {node['name']}"
    if isinstance(node, dict):
        return _show(node)
    return _show(node)
