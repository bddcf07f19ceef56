"""Writes what is derived from the catalogue: the event classes module and `schemas/README.md`.

`accord schemas generate` runs both; a unit test regenerates them and compares with the committed
files, so the pydantic classes never drift from the `.avsc` files they come from. The module text is
already in `ruff format` style (exploded calls with a magic trailing comma), so formatting the checkout
does not make it stale.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .catalogue import PRIMITIVES, Catalogue, NamedType, canonical_json

#: where the generated module and README live, relative to the repository root
MODULE_PATH = Path("libs/accord/events/_generated.py")
README_PATH = Path("schemas/README.md")

_HEADER = '''\
# ruff: noqa: E501
"""The event classes, generated from schemas/*.avsc and schemas/catalogue.yaml. Do not edit.

Regenerate with `accord schemas generate`; a test fails when this file is not current.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field

from ._model import AvroDecimal, AvroRecord, Event, UtcDatetime, no_float
'''


def pystr(text: str) -> str:
    """A Python string literal for `text` in the quote style `ruff format` keeps."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n").replace("\r", "\\r")
    return f"{quote}{body}{quote}"


def _docstring(text: str, indent: str) -> str:
    body = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"') or "(undocumented)"
    if body.endswith('"'):
        body += " "
    return f'{indent}"""{body}"""'


class _Writer:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        names = [t.name for t in catalogue.types.values()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"type names must be unique across namespaces to generate classes: {duplicates}")

    def class_name(self, fullname: str) -> str:
        return fullname.rpartition(".")[2]

    def resolve(self, ref: str, namespace: str) -> str:
        return ref if "." in ref else f"{namespace}.{ref}"

    def annotation(self, schema: Any, namespace: str) -> str:
        if isinstance(schema, str):
            primitive = {
                "string": "str",
                "boolean": "bool",
                "int": "int",
                "long": "int",
                "bytes": "bytes",
                "float": "float",
                "double": "float",
                "null": "None",
            }
            if schema in PRIMITIVES:
                return primitive[schema]
            return self.class_name(self.resolve(schema, namespace))
        if isinstance(schema, list):
            branches = [self.annotation(s, namespace) for s in schema if s != "null"]
            union = " | ".join(branches)
            return f"{union} | None" if "null" in schema else union
        kind = schema["type"]
        logical = schema.get("logicalType")
        if kind in ("record", "error", "enum", "fixed"):
            return self.class_name(self.resolve(str(schema["name"]), str(schema.get("namespace", namespace))))
        if kind == "array":
            return f"list[{self.annotation(schema['items'], namespace)}]"
        if kind == "map":
            return f"dict[str, {self.annotation(schema['values'], namespace)}]"
        if logical == "decimal" and kind == "bytes":
            precision, scale = schema["precision"], schema.get("scale", 0)
            return f"Annotated[Decimal, BeforeValidator(no_float), AfterValidator(AvroDecimal({precision}, {scale}))]"
        if logical == "uuid" and kind == "string":
            return "uuid.UUID"
        if logical == "date" and kind == "int":
            return "datetime.date"
        if logical in ("timestamp-micros", "timestamp-millis") and kind == "long":
            return "UtcDatetime"
        return self.annotation(kind, namespace)

    def default(self, schema: Any, value: Any, namespace: str) -> str:
        """`default=...` or `default_factory=...` for an Avro default (of the union's first branch)."""
        if isinstance(schema, list):
            schema = schema[0]
        if value is None:
            return "default=None"
        if isinstance(value, dict):
            return "default_factory=dict"
        if isinstance(value, list):
            return "default_factory=list"
        ref = schema if isinstance(schema, str) else schema.get("name") if schema.get("type") == "enum" else None
        if ref and ref not in PRIMITIVES:
            return f"default={self.class_name(self.resolve(ref, namespace))}.{value}"
        return f"default={value!r}"

    def dependencies(self, named: NamedType) -> set[str]:
        found: set[str] = set()

        def visit(schema: Any, namespace: str) -> None:
            if isinstance(schema, str):
                if schema not in PRIMITIVES:
                    found.add(self.resolve(schema, namespace))
            elif isinstance(schema, list):
                for s in schema:
                    visit(s, namespace)
            elif isinstance(schema, dict):
                kind = schema.get("type")
                if kind in ("record", "error", "enum", "fixed") and schema is not named.schema:
                    found.add(self.resolve(str(schema["name"]), str(schema.get("namespace", namespace))))
                    return
                if kind in ("record", "error"):
                    for f in schema["fields"]:
                        visit(f["type"], namespace)
                elif kind == "array":
                    visit(schema["items"], namespace)
                elif kind == "map":
                    visit(schema["values"], namespace)

        visit(named.schema, named.namespace)
        return found

    def enum_class(self, named: NamedType) -> list[str]:
        lines = [f"class {named.name}(enum.StrEnum):", _docstring(str(named.schema.get("doc", "")), "    "), ""]
        lines += [f"    {s} = {pystr(s)}" for s in named.schema["symbols"]]
        return lines

    def record_class(self, named: NamedType) -> list[str]:
        event = self.catalogue.events.get(named.fullname)
        base = "Event" if event else "AvroRecord"
        lines = [f"class {named.name}({base}):", _docstring(str(named.schema.get("doc", "")), "    "), ""]
        lines.append(f"    AVRO_NAME: ClassVar[str] = {pystr(named.fullname)}")
        if event:
            keys = ", ".join(pystr(k) for k in event.key) + ("," if len(event.key) == 1 else "")
            lines += [
                f"    TOPIC: ClassVar[str] = {pystr(event.topic)}",
                f"    KEY_FIELDS: ClassVar[tuple[str, ...]] = ({keys})",
                f"    OWNER: ClassVar[str] = {pystr(event.owner)}",
                f"    COMPATIBILITY: ClassVar[str] = {pystr(event.compatibility)}",
                "    SCHEMA: ClassVar[str] = (",
                f"        {pystr(canonical_json(event.schema))}",
                "    )",
            ]
        lines.append("")
        for f in named.schema["fields"]:
            args = []
            if "default" in f:
                args.append(self.default(f["type"], f["default"], named.namespace))
            if f.get("doc"):
                args.append(f"description={pystr(str(f['doc']))}")
            if "pattern" in f:
                args.append(f"pattern={pystr(str(f['pattern']))}")
            lines.append(f"    {f['name']}: {self.annotation(f['type'], named.namespace)} = Field(")
            lines += [f"        {a}," for a in args]
            lines.append("    )")
        return lines

    def module(self) -> str:
        graph = {name: self.dependencies(t) for name, t in self.catalogue.types.items()}
        # Stable output: within what the dependencies allow, enums then records, alphabetically.
        sorter = graphlib.TopologicalSorter(graph)
        sorter.prepare()
        order = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=lambda n: (self.catalogue.types[n].kind != "enum", n))
            order += ready
            sorter.done(*ready)
        parts = [_HEADER]
        for fullname in order:
            named = self.catalogue.types[fullname]
            lines = self.enum_class(named) if named.kind == "enum" else self.record_class(named)
            parts.append("\n\n" + "\n".join(lines) + "\n")
        events = sorted(self.catalogue.events, key=lambda n: (self.catalogue.events[n].topic, n))
        parts.append(
            "\n\n#: every event class by full Avro name\n"
            "EVENTS: dict[str, type[Event]] = {\n"
            + "".join(f"    {pystr(n)}: {self.class_name(n)},\n" for n in events)
            + "}\n"
        )
        names = sorted(self.class_name(n) for n in self.catalogue.types)
        parts.append("\n__all__ = [\n" + "".join(f"    {pystr(n)},\n" for n in ["EVENTS", *names]) + "]\n")
        return "".join(parts)


def generate_module(catalogue: Catalogue) -> str:
    """The text of `libs/accord/events/_generated.py` for `catalogue`."""
    return _Writer(catalogue).module()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _list(items: Iterable[str]) -> str:
    return ", ".join(items) or "-"


def generate_readme(catalogue: Catalogue) -> str:
    """The text of `schemas/README.md`: every topic and event, with owners, keys and consumers."""
    out = [
        "# accord event catalogue",
        "",
        "<!-- Generated by `accord schemas generate` from the .avsc files, catalogue.yaml and topics.yaml."
        " Do not edit: a test fails when it is not current. -->",
        "",
        "Every event is an Avro record in namespace `accord.<domain>` whose first field is the shared",
        "`accord.common.Meta` envelope. Money is `accord.common.Money` (a decimal with its ISO 4217",
        "currency), timestamps are UTC `timestamp-micros`, calendar days are `date`, ids are strings.",
        "",
        "Registry subjects follow the topic-record-name strategy, `<topic>-<record full name>`, and hold",
        "self-contained schemas (shared types inlined), so any Confluent-compatible client reads them",
        "without schema references. Compatibility is BACKWARD, and FULL for financial events; new fields",
        "need defaults and a field is never renamed without an alias.",
        "",
        "Why self-contained subjects rather than Confluent schema references: every client and tool",
        "(kcat, Kafka Connect, older serializers) reads them with no reference resolution, the registry's",
        "compatibility check sees the whole record, and confluent-kafka's serdes need no extra set-up. The",
        "price: a change to a shared type (`Meta`, `Money`) is a new version of every subject using it,",
        "which `accord schemas register` does in one go.",
        "",
        "## Changing a contract",
        "",
        "1. Edit or add the `.avsc` (one named type per file, `schemas/<domain>/<Name>.avsc`, every field",
        "   with a `doc`); a new event also gets an entry in `catalogue.yaml`.",
        "2. `accord schemas generate` rewrites the Python classes (`accord.events`) and this file.",
        "3. `accord schemas check` lints the catalogue and reviews each subject against the registry's",
        "   latest version under its compatibility level; it exits 1 on any violation (CI runs it).",
        "   `accord schemas check --offline --baseline-ref origin/main` does the same review against the",
        "   catalogue of a git ref, with no registry. `accord schemas diff <subject>` says in words what",
        "   would change.",
        "4. `accord schemas register` sets each subject's level and registers what changed.",
        "",
        "In Python, events are `accord.events` classes (frozen pydantic models generated from these",
        "files); `accord.serde.EventCodec` encodes them to Confluent-framed Avro and back.",
        "",
        "## Systems of record",
        "",
        "| system | name | system of record for |",
        "|---|---|---|",
    ]
    for key, system in catalogue.systems.items():
        out.append(f"| `{key}` | {_cell(system.get('name', ''))} | {_cell(system.get('system_of_record_for', ''))} |")
    out += [
        "",
        "## Topics",
        "",
        "| topic | key | partitions | cleanup | retention | owner | events |",
        "|---|---|---|---|---|---|---|",
    ]
    for topic in catalogue.topics.values():
        names = [e.name for e in catalogue.events.values() if e.topic == topic.name]
        retention = f"{topic.retention_ms / 86_400_000:g} days" if topic.retention_ms else "-"
        out.append(
            f"| `{topic.name}` | {_cell(topic.key)} | {topic.partitions} | {topic.cleanup_policy} | {retention}"
            f" | {topic.owner} | {_list(names)} |"
        )
    out += ["", "## Events", ""]
    for topic in catalogue.topics.values():
        events = [e for e in catalogue.events.values() if e.topic == topic.name]
        for event in sorted(events, key=lambda e: e.fullname):
            source = catalogue.types[event.fullname].path.relative_to(catalogue.root)
            out += [
                f"### {event.name}",
                "",
                f"{event.doc}",
                "",
                f"- record: `{event.fullname}` ([{source}]({source}))",
                f"- topic: `{event.topic}`, key: `{'/'.join(event.key)}`, subject: `{event.subject}`",
                f"- system of record: {event.owner}; compatibility: {event.compatibility}",
                f"- produced by: {event.producer}; consumed by: {_list(event.consumers)}",
                "",
                "| field | type | description |",
                "|---|---|---|",
            ]
            named = catalogue.types[event.fullname]
            for f in named.schema["fields"]:
                out.append(f"| `{f['name']}` | {_cell(type_words(f['type']))} | {_cell(str(f.get('doc', '')))} |")
            out.append("")
    shared = [t for t in catalogue.types.values() if t.fullname not in catalogue.events]
    out += ["## Shared and nested types", "", "| type | kind | description |", "|---|---|---|"]
    for t in sorted(shared, key=lambda t: t.fullname):
        detail = str(t.schema.get("doc", ""))
        if t.kind == "enum":
            detail += f" Symbols: {', '.join(t.schema['symbols'])} (default {t.schema.get('default', '-')})."
        out.append(f"| `{t.fullname}` | {t.kind} | {_cell(detail)} |")
    return "\n".join(out) + "\n"


def type_words(schema: Any) -> str:
    """A type as a reviewer reads it: `optional accord.common.Money`, `array of string`, `decimal(18,4)`."""
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        others = [type_words(s) for s in schema if s != "null"]
        text = " or ".join(others)
        return f"optional {text}" if "null" in schema else text
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name = str(schema["name"])
        return name if "." in name or "namespace" not in schema else f"{schema['namespace']}.{name}"
    if kind == "array":
        return f"array of {type_words(schema['items'])}"
    if kind == "map":
        return f"map of {type_words(schema['values'])}"
    logical = schema.get("logicalType")
    if logical == "decimal":
        return f"decimal({schema.get('precision')},{schema.get('scale', 0)})"
    if logical:
        return f"{kind} ({logical})"
    return type_words(kind)
