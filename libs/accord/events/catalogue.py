"""The event catalogue as source files: `schemas/**/*.avsc`, `schemas/catalogue.yaml`, `schemas/topics.yaml`.

Each `.avsc` file defines one named type (a record, or a shared enum) in namespace `accord.<domain>`,
in `schemas/<domain>/<Name>.avsc`; a record may define enums it alone uses inline. Files refer to
each other's types by full name (`accord.common.Money`).

What is registered for an event is *self-contained*: every named type it uses is inlined at its
first use (later uses refer to it by name, as Avro requires). We chose that over Confluent schema
references because a self-contained subject is readable by any client and tool (kcat, Connect,
older serializers) without resolving references, the registry's compatibility check sees the whole
record, and confluent-kafka's serializers need nothing special. The cost — a change to `Meta` makes a
new version of every subject — is paid by `accord schemas register`, which registers them all.

This module is development tooling (generation, lint, registration); the runtime uses the generated
classes in `accord.events`, which carry their inlined schemas and need no files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import yaml

from accord.errors import ConfigurationError
from accord.topics import TopicSpec, load_catalogue

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})
COMPATIBILITY_LEVELS = frozenset(
    {"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"}
)


class CatalogueError(ConfigurationError):
    """A catalogue file cannot be read or refers to something that does not exist."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


@dataclass(frozen=True)
class NamedType:
    """A named Avro type (record, enum, fixed) as written in its source file."""

    fullname: str
    schema: dict[str, Any]
    path: Path
    #: the full name of the top-level type of the file (itself, unless defined inline in another)
    top_level: str

    @property
    def kind(self) -> str:
        return str(self.schema["type"])

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]

    @property
    def namespace(self) -> str:
        return self.fullname.rpartition(".")[0]


@dataclass(frozen=True)
class EventSpec:
    """One event of `schemas/catalogue.yaml` with its self-contained schema."""

    fullname: str
    topic: str
    key: tuple[str, ...]
    owner: str
    producer: str
    consumers: tuple[str, ...]
    compatibility: str
    schema: dict[str, Any]

    @property
    def name(self) -> str:
        return self.fullname.rpartition(".")[2]

    @property
    def subject(self) -> str:
        """Registry subject under the topic-record-name strategy."""
        return f"{self.topic}-{self.fullname}"

    @property
    def schema_str(self) -> str:
        """The schema text registered for the subject (compact JSON, in the source's field order)."""
        return canonical_json(self.schema)

    @property
    def doc(self) -> str:
        return str(self.schema.get("doc", ""))


@dataclass
class Catalogue:
    root: Path
    #: every named type by full name, including those defined inline
    types: dict[str, NamedType] = field(default_factory=dict)
    events: dict[str, EventSpec] = field(default_factory=dict)
    topics: dict[str, TopicSpec] = field(default_factory=dict)
    systems: dict[str, dict[str, str]] = field(default_factory=dict)

    def inline(self, fullname: str) -> dict[str, Any]:
        """The self-contained schema of a named type: every type it uses defined at its first use."""
        named = self._type(fullname, self.root)
        result = _inline(named.schema, self, seen=set(), namespace=named.namespace, path=named.path)
        assert isinstance(result, dict)
        return result

    def _type(self, fullname: str, where: Path) -> NamedType:
        try:
            return self.types[fullname]
        except KeyError:
            raise CatalogueError(where, f"unknown type {fullname!r}; define it in schemas/ first") from None

    def event_for_subject(self, subject: str) -> EventSpec | None:
        return next((e for e in self.events.values() if e.subject == subject), None)


def canonical_json(schema: Any) -> str:
    """Compact JSON text of a schema: the form accord registers and compares."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def _fullname(schema: Mapping[str, Any], namespace: str) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _walk_named(schema: Any, namespace: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named type defined (not merely referred to) in `schema`, outermost first."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _walk_named(branch, namespace)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in NAMED_KINDS:
            fullname = _fullname(schema, namespace)
            yield fullname, schema
            namespace = fullname.rpartition(".")[0]
        if kind in ("record", "error"):
            for f in schema.get("fields", []):
                yield from _walk_named(f.get("type"), namespace)
        elif kind == "array":
            yield from _walk_named(schema.get("items"), namespace)
        elif kind == "map":
            yield from _walk_named(schema.get("values"), namespace)
        elif isinstance(kind, dict | list):
            yield from _walk_named(kind, namespace)


def _inline(schema: Any, catalogue: Catalogue, *, seen: set[str], namespace: str, path: Path) -> Any:
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return schema
        fullname = schema if "." in schema else f"{namespace}.{schema}"
        if fullname in seen:
            return fullname
        named = catalogue._type(fullname, path)
        return _inline(named.schema, catalogue, seen=seen, namespace=named.namespace, path=named.path)
    if isinstance(schema, list):
        return [_inline(s, catalogue, seen=seen, namespace=namespace, path=path) for s in schema]
    if not isinstance(schema, dict):
        raise CatalogueError(path, f"not an Avro schema: {schema!r}")
    kind = schema.get("type")
    out = dict(schema)
    if kind in NAMED_KINDS:
        fullname = _fullname(schema, namespace)
        seen.add(fullname)
        namespace, _, name = fullname.rpartition(".")
        # Spell every inlined name out in full, so it means the same wherever it lands.
        out = {"type": kind, "name": name, "namespace": namespace}
        out.update((k, v) for k, v in schema.items() if k not in ("type", "name", "namespace"))
    if kind in ("record", "error"):
        out["fields"] = [
            {**f, "type": _inline(f["type"], catalogue, seen=seen, namespace=namespace, path=path)}
            for f in schema.get("fields", [])
        ]
    elif kind == "array":
        out["items"] = _inline(schema["items"], catalogue, seen=seen, namespace=namespace, path=path)
    elif kind == "map":
        out["values"] = _inline(schema["values"], catalogue, seen=seen, namespace=namespace, path=path)
    elif isinstance(kind, dict | list):
        out["type"] = _inline(kind, catalogue, seen=seen, namespace=namespace, path=path)
    return out


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CatalogueError(path, f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(path, f"not valid YAML: {exc}") from exc


def load(root: Path) -> Catalogue:
    """Read the catalogue under `root` (the `schemas/` folder); raise CatalogueError naming what is wrong."""
    if not root.is_dir():
        raise CatalogueError(root, "no such folder; pass the schemas/ folder of the checkout")
    catalogue = Catalogue(root=root)
    for path in sorted(root.rglob("*.avsc")):
        try:
            schema = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise CatalogueError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
        if not isinstance(schema, dict) or schema.get("type") not in NAMED_KINDS or "name" not in schema:
            raise CatalogueError(path, "a .avsc file must hold one named type (record, enum or fixed)")
        top = _fullname(schema, "")
        for fullname, definition in _walk_named(schema, ""):
            if fullname in catalogue.types:
                other = catalogue.types[fullname].path
                raise CatalogueError(path, f"{fullname} is already defined in {other}; define it once")
            catalogue.types[fullname] = NamedType(fullname, definition, path, top)

    catalogue.topics = {t.name: t for t in load_catalogue(root / "topics.yaml")}
    data = _read_yaml(root / "catalogue.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("events"), dict):
        raise CatalogueError(root / "catalogue.yaml", "expected a mapping with `systems` and `events`")
    catalogue.systems = {str(k): dict(v) for k, v in (data.get("systems") or {}).items()}
    for fullname, entry in data["events"].items():
        where = root / "catalogue.yaml"
        if fullname not in catalogue.types:
            raise CatalogueError(where, f"event {fullname} has no schema; add schemas/<domain>/<Name>.avsc")
        try:
            spec = EventSpec(
                fullname=fullname,
                topic=str(entry["topic"]),
                key=tuple(str(entry["key"]).split("/")),
                owner=str(entry["owner"]),
                producer=str(entry["producer"]),
                consumers=tuple(str(c) for c in entry.get("consumers", [])),
                compatibility=str(entry.get("compatibility", "BACKWARD")),
                schema=catalogue.inline(fullname),
            )
        except (KeyError, TypeError) as exc:
            raise CatalogueError(where, f"event {fullname}: missing or malformed entry {exc}") from exc
        try:
            fastavro.parse_schema(spec.schema)
        except Exception as exc:  # fastavro raises several unrelated types for an invalid schema
            path = catalogue.types[fullname].path
            raise CatalogueError(path, f"not a valid Avro schema: {exc}") from exc
        catalogue.events[fullname] = spec
    return catalogue
