"""Reviewing event contracts: lint rules, version diffs in words, and checks against the schema registry.

Three layers, each usable on its own:

1. `lint(catalogue)` — rules on the local `.avsc` files and `catalogue.yaml` alone (docs present, money
   as `accord.common.Money`, no floats, naming, `meta` first, ...). Pure.
2. `diff(old, new)` — what changed between two versions of a schema, as `Change`s that read as
   sentences (a description, not a verdict); `compatibility_findings(subject, old, new, level)` —
   whether the new version breaks the subject's compatibility level, decided by `accord.avro`, the
   checker the registry itself runs, with advice on what to do instead. Pure.
3. `RegistryClient` + `check(...)` / `register(...)` — the same against a Confluent-compatible registry:
   the latest version of each subject, the registry's own verdict
   (`POST /compatibility/subjects/{s}/versions/latest?verbose=true`), and registration.

`accord schemas check|register|diff` (accord.cli.schemas) print these.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from accord import avro
from accord.errors import AccordError
from accord.events.catalogue import NAMED_KINDS, PRIMITIVES, Catalogue, EventSpec, NamedType
from accord.events.codegen import type_words

# --------------------------------------------------------------------------------------------------
# findings


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer must look at: where (file or subject, and field path), which rule, why."""

    where: str
    rule: str
    message: str
    path: str = ""
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        at = f" field '{self.path}'" if self.path else ""
        return f"{self.where}{at}: {self.message} [{self.rule}]"


# --------------------------------------------------------------------------------------------------
# 1. lint

#: topics whose events are financial: their subjects must be FULL compatible
FINANCIAL_TOPICS = frozenset({"billing.invoices", "billing.payments", "erp.journal"})
MONEY_TYPE = "accord.common.Money"
META_TYPE = "accord.common.Meta"
#: a field named like this holds money and must be accord.common.Money
MONEY_NAME = re.compile(
    r"(^|_)(amount|total|subtotal|price|balance|value|limit|fee|cost|charge)$",
)
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PASCAL = re.compile(r"^[A-Z][a-zA-Z0-9]*$")
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
NAMESPACE = re.compile(r"^accord\.[a-z][a-z0-9]*$")
#: names a generated pydantic model cannot use as fields
RESERVED = frozenset(
    {"copy", "dict", "json", "schema", "validate", "construct", "fields", "from_orm", "parse_obj", "parse_raw"}
    | {"to_avro", "from_avro", "key", "subject"}
    | set(keyword.kwlist)
)


def _non_null(schema: Any) -> Any:
    """The type of a field without its null branch (the schema itself when it is not a union)."""
    if isinstance(schema, list):
        rest = [s for s in schema if s != "null"]
        return rest[0] if len(rest) == 1 else schema
    return schema


def _ref(schema: Any) -> str | None:
    """The full name a type refers to or defines, if it is a named type."""
    if isinstance(schema, str) and schema not in PRIMITIVES:
        return schema
    if isinstance(schema, dict) and schema.get("type") in NAMED_KINDS:
        name = str(schema["name"])
        return name if "." in name or "namespace" not in schema else f"{schema['namespace']}.{name}"
    return None


def _logical(schema: Any) -> tuple[str, str | None]:
    if isinstance(schema, dict):
        kind = schema.get("type")
        return (str(kind) if isinstance(kind, str) else "complex", schema.get("logicalType"))
    return (str(schema) if isinstance(schema, str) else "union", None)


def _lint_type(schema: Any, where: str, path: str) -> Iterator[Finding]:
    """Rules on a field type, recursing into arrays, maps and unions (not into named types)."""
    if isinstance(schema, list):
        if "null" in schema and (schema[0] != "null" or len(schema) != 2):
            yield Finding(where, "union-shape", 'an optional type is written ["null", T], null first', path)
        elif "null" not in schema:
            yield Finding(where, "union-shape", 'unions other than ["null", T] are not supported', path)
        for branch in schema:
            yield from _lint_type(branch, where, path)
        return
    if schema in ("float", "double"):
        yield Finding(where, "no-float", f"{schema} is not allowed: use a decimal (money: accord.common.Money)", path)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind == "array":
        yield from _lint_type(schema.get("items"), where, f"{path}[]")
    elif kind == "map":
        yield from _lint_type(schema.get("values"), where, f"{path}{{}}")
    elif kind in ("float", "double"):
        yield Finding(where, "no-float", f"{kind} is not allowed: use a decimal (money: accord.common.Money)", path)
    logical = schema.get("logicalType")
    if logical == "decimal" and (kind != "bytes" or "precision" not in schema or "scale" not in schema):
        yield Finding(where, "decimal-shape", "a decimal is bytes with both precision and scale", path)
    if logical in ("timestamp-millis", "local-timestamp-millis", "local-timestamp-micros", "time-millis"):
        yield Finding(where, "timestamp-micros", f"{logical} is not allowed: instants are UTC timestamp-micros", path)


def _lint_field(f: dict[str, Any], named: NamedType, where: str) -> Iterator[Finding]:
    name = str(f.get("name", ""))
    path = name
    if not str(f.get("doc", "")).strip():
        yield Finding(where, "doc-missing", "every field needs a doc saying what it means", path)
    if not SNAKE.match(name):
        yield Finding(where, "field-name", "field names are snake_case (lower case, digits, underscores)", path)
    if name in RESERVED or name.startswith("model_"):
        yield Finding(where, "field-name", f"'{name}' is reserved by the generated Python classes", path)
    schema = f.get("type")
    yield from _lint_type(schema, where, path)
    inner = _non_null(schema)
    kind, logical = _logical(inner)
    optional = isinstance(schema, list) and "null" in schema
    if optional and "default" in f and f["default"] is not None:
        yield Finding(where, "optional-default", "an optional field's default must be null", path)
    if optional and "default" not in f:
        yield Finding(where, "optional-default", 'an optional field needs "default": null', path)
    if MONEY_NAME.search(name) and named.fullname != MONEY_TYPE and _ref(inner) != MONEY_TYPE:
        if logical == "decimal":
            message = f"money is {MONEY_TYPE} (amount and currency), not a bare decimal"
        else:
            message = f"'{name}' holds money: its type must be {MONEY_TYPE}"
        yield Finding(where, "money-type", message, path)
    if name.endswith("_at") and (kind, logical) != ("long", "timestamp-micros"):
        yield Finding(where, "timestamp-micros", "a field named *_at is a UTC timestamp-micros", path)
    if name.endswith("_date") and (kind, logical) != ("int", "date"):
        yield Finding(where, "date-type", "a field named *_date is an Avro date", path)
    if (name == "id" or name.endswith("_id")) and kind != "string":
        yield Finding(where, "id-string", "ids are strings", path)


def _lint_named(named: NamedType, catalogue: Catalogue) -> Iterator[Finding]:
    where = (
        str(named.path.relative_to(catalogue.root)) if named.path.is_relative_to(catalogue.root) else str(named.path)
    )
    schema = named.schema
    if not str(schema.get("doc", "")).strip():
        yield Finding(where, "doc-missing", f"{named.kind} {named.fullname} needs a doc saying what it means")
    if not PASCAL.match(named.name):
        yield Finding(where, "type-name", f"type names are PascalCase, not '{named.name}'")
    if not NAMESPACE.match(named.namespace):
        yield Finding(where, "namespace", f"namespace must be accord.<domain>, not '{named.namespace}'")
    if named.top_level == named.fullname:
        domain = named.namespace.rpartition(".")[2]
        expected = f"{domain}/{named.name}.avsc"
        if not str(named.path).endswith(expected):
            yield Finding(where, "file-name", f"{named.fullname} belongs in schemas/{expected}")
    if named.kind == "enum":
        for symbol in schema.get("symbols", []):
            if not UPPER_SNAKE.match(symbol):
                yield Finding(where, "enum-symbol", f"enum symbols are UPPER_SNAKE_CASE, not '{symbol}'")
        if "default" not in schema:
            yield Finding(
                where,
                "enum-default",
                f"enum {named.fullname} needs a default symbol (what an old reader sees for a new symbol)",
            )
    if named.kind in ("record", "error"):
        if named.top_level != named.fullname:
            yield Finding(where, "one-record-per-file", f"record {named.fullname} must have a file of its own")
        for f in schema.get("fields", []):
            yield from _lint_field(f, named, where)


def _lint_event(event: EventSpec, catalogue: Catalogue) -> Iterator[Finding]:
    where = event.subject
    fields = catalogue.types[event.fullname].schema.get("fields", [])
    names = [f.get("name") for f in fields]
    if not fields or fields[0].get("name") != "meta" or fields[0].get("type") != META_TYPE:
        yield Finding(where, "event-meta", f"an event's first field is `meta` of type {META_TYPE}")
    topic = catalogue.topics.get(event.topic)
    if topic is None:
        yield Finding(where, "topic-known", f"topic {event.topic} is not in topics.yaml")
    domain = event.topic.partition(".")[0]
    if event.fullname.rpartition(".")[0] != f"accord.{domain}":
        yield Finding(where, "event-namespace", f"an event on {event.topic} lives in namespace accord.{domain}")
    if event.owner not in catalogue.systems:
        yield Finding(where, "owner-known", f"owner '{event.owner}' is not one of the systems in catalogue.yaml")
    for key in event.key:
        if key not in names:
            yield Finding(where, "key-field", f"key field '{key}' is not a field of {event.name}")
            continue
        key_type = fields[names.index(key)].get("type")
        if key_type != "string":
            yield Finding(where, "key-field", f"key field '{key}' must be a required string", key)
    if event.compatibility not in ("BACKWARD", "FULL", "BACKWARD_TRANSITIVE", "FULL_TRANSITIVE"):
        yield Finding(where, "compatibility", f"compatibility {event.compatibility} is not BACKWARD or FULL")
    if event.topic in FINANCIAL_TOPICS and not event.compatibility.startswith("FULL"):
        yield Finding(where, "compatibility", f"events on {event.topic} are financial: compatibility must be FULL")


def lint(catalogue: Catalogue) -> list[Finding]:
    """Every rule broken by the catalogue's files, in file order. An empty list means clean."""
    findings: list[Finding] = []
    for named in sorted(catalogue.types.values(), key=lambda t: (str(t.path), t.fullname)):
        findings += _lint_named(named, catalogue)
    for event in catalogue.events.values():
        findings += _lint_event(event, catalogue)
    for named in catalogue.types.values():
        fields = named.schema.get("fields", []) if named.kind == "record" else []
        is_event_shaped = bool(fields) and fields[0].get("name") == "meta"
        if is_event_shaped and named.fullname not in catalogue.events:
            findings.append(
                Finding(
                    str(named.path.name),
                    "event-catalogued",
                    f"{named.fullname} looks like an event (has meta) but has no entry in catalogue.yaml",
                )
            )
    return findings


# --------------------------------------------------------------------------------------------------
# 2. diff


class ChangeKind(StrEnum):
    FIELD_ADDED = "field-added"
    FIELD_REMOVED = "field-removed"
    FIELD_RENAMED = "field-renamed"
    TYPE_CHANGED = "type-changed"
    BECAME_OPTIONAL = "became-optional"
    BECAME_REQUIRED = "became-required"
    DEFAULT_CHANGED = "default-changed"
    SYMBOLS_ADDED = "symbols-added"
    SYMBOLS_REMOVED = "symbols-removed"
    ENUM_DEFAULT_CHANGED = "enum-default-changed"
    DOC_CHANGED = "doc-changed"
    ALIASES_CHANGED = "aliases-changed"
    NAME_CHANGED = "name-changed"


_NO_DEFAULT = object()


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a schema, at a dotted field path (`lines[].amount`)."""

    kind: ChangeKind
    path: str
    old: Any = None
    new: Any = None
    #: for added / removed fields: whether the field has (had) a default
    has_default: bool = False
    default: Any = None

    def describe(self) -> str:
        """The change as a sentence a reviewer reads."""
        at = f"`{self.path}`" if self.path else "the record"
        if self.kind is ChangeKind.FIELD_ADDED:
            if self.has_default:
                return f"added field {at} ({type_words(self.new)}, default {json.dumps(self.default)})"
            return f"added field {at} ({type_words(self.new)}) without a default"
        if self.kind is ChangeKind.FIELD_REMOVED:
            if self.has_default:
                return f"removed field {at} ({type_words(self.old)}, had default {json.dumps(self.default)})"
            return f"removed field {at} ({type_words(self.old)}, had no default)"
        if self.kind is ChangeKind.FIELD_RENAMED:
            return f"renamed field `{self.old}` to {at} (the alias `{self.old}` keeps old data readable)"
        if self.kind is ChangeKind.TYPE_CHANGED:
            return f"changed the type of {at} from {type_words(self.old)} to {type_words(self.new)}"
        if self.kind is ChangeKind.BECAME_OPTIONAL:
            return f"made {at} optional ({type_words(self.old)} -> {type_words(self.new)})"
        if self.kind is ChangeKind.BECAME_REQUIRED:
            return f"made {at} required ({type_words(self.old)} -> {type_words(self.new)})"
        if self.kind is ChangeKind.DEFAULT_CHANGED:
            old = "no default" if self.old is _NO_DEFAULT else json.dumps(self.old)
            new = "no default" if self.new is _NO_DEFAULT else json.dumps(self.new)
            return f"changed the default of {at} from {old} to {new}"
        if self.kind is ChangeKind.SYMBOLS_ADDED:
            return f"added symbol(s) {', '.join(self.new)} to enum {at}"
        if self.kind is ChangeKind.SYMBOLS_REMOVED:
            return f"removed symbol(s) {', '.join(self.old)} from enum {at}"
        if self.kind is ChangeKind.ENUM_DEFAULT_CHANGED:
            return f"changed the default symbol of enum {at} from {self.old} to {self.new}"
        if self.kind is ChangeKind.DOC_CHANGED:
            return f"reworded the doc of {at}: {json.dumps(self.old)} -> {json.dumps(self.new)}"
        if self.kind is ChangeKind.ALIASES_CHANGED:
            return f"changed the aliases of {at} from [{', '.join(self.old or [])}] to [{', '.join(self.new or [])}]"
        return f"renamed type {at} from {self.old} to {self.new}"


def _named_index(schema: Any, out: dict[str, dict[str, Any]] | None = None, ns: str = "") -> dict[str, Any]:
    """Every named type defined in a self-contained schema, by full name (to follow references)."""
    out = {} if out is None else out
    if isinstance(schema, list):
        for s in schema:
            _named_index(s, out, ns)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in NAMED_KINDS:
            name = str(schema["name"])
            full = name if "." in name else f"{schema.get('namespace', ns)}.{name}".lstrip(".")
            out[full] = schema
            ns = full.rpartition(".")[0]
        for f in schema.get("fields", []) if kind in ("record", "error") else []:
            _named_index(f.get("type"), out, ns)
        if kind == "array":
            _named_index(schema.get("items"), out, ns)
        if kind == "map":
            _named_index(schema.get("values"), out, ns)
    return out


class _Differ:
    def __init__(self, old: Any, new: Any) -> None:
        self.old_names = _named_index(old)
        self.new_names = _named_index(new)
        self.changes: list[Change] = []
        self._visited: set[str] = set()

    def deref(self, schema: Any, names: dict[str, Any]) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return names.get(schema, schema)
        return schema

    def shape(self, schema: Any, names: dict[str, Any]) -> str:
        """What decides binary compatibility of a type, ignoring docs: for comparing two types."""
        schema = self.deref(schema, names)
        if isinstance(schema, list):
            return "[" + ",".join(self.shape(s, names) for s in schema) + "]"
        if isinstance(schema, dict):
            kind = schema.get("type")
            if kind in NAMED_KINDS:
                return f"{kind}:{_ref(schema)}"
            if kind == "array":
                return f"array<{self.shape(schema['items'], names)}>"
            if kind == "map":
                return f"map<{self.shape(schema['values'], names)}>"
            extras = {k: schema[k] for k in ("logicalType", "precision", "scale", "size") if k in schema}
            return f"{kind}{json.dumps(extras, sort_keys=True) if extras else ''}"
        return str(schema)

    def type_(self, old: Any, new: Any, path: str) -> None:
        old_d, new_d = self.deref(old, self.old_names), self.deref(new, self.new_names)
        old_null = isinstance(old_d, list) and "null" in old_d
        new_null = isinstance(new_d, list) and "null" in new_d
        old_inner, new_inner = _non_null(old_d), _non_null(new_d)
        if self.shape(old_inner, self.old_names) != self.shape(new_inner, self.new_names):
            self.changes.append(Change(ChangeKind.TYPE_CHANGED, path, old, new))
            return
        if old_null != new_null:
            kind = ChangeKind.BECAME_OPTIONAL if new_null else ChangeKind.BECAME_REQUIRED
            self.changes.append(Change(kind, path, old, new))
        self.same_shape(self.deref(old_inner, self.old_names), self.deref(new_inner, self.new_names), path)

    def same_shape(self, old: Any, new: Any, path: str) -> None:
        """Recurse into two types of the same shape (records, enums, arrays, maps)."""
        if not isinstance(old, dict) or not isinstance(new, dict):
            return
        kind = old.get("type")
        if kind == "array":
            self.type_(old["items"], new["items"], f"{path}[]")
        elif kind == "map":
            self.type_(old["values"], new["values"], f"{path}{{}}")
        elif kind == "enum":
            if str(_ref(old)) not in self._visited:
                self._visited.add(str(_ref(old)))
                self.enum(old, new, path)
        elif kind in ("record", "error"):
            # A named record is one definition however often it is used: report its changes once,
            # at its first use.
            key = str(_ref(old))
            if key not in self._visited:
                self._visited.add(key)
                self.record(old, new, path)

    def enum(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        label = path or str(_ref(new))
        added = [s for s in new["symbols"] if s not in old["symbols"]]
        removed = [s for s in old["symbols"] if s not in new["symbols"]]
        if added:
            self.changes.append(Change(ChangeKind.SYMBOLS_ADDED, label, old.get("default"), added))
        if removed:
            self.changes.append(Change(ChangeKind.SYMBOLS_REMOVED, label, removed, new.get("default")))
        if old.get("default") != new.get("default"):
            self.changes.append(Change(ChangeKind.ENUM_DEFAULT_CHANGED, label, old.get("default"), new.get("default")))

    def record(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        prefix = f"{path}." if path else ""
        if _ref(old) != _ref(new) and not path:
            self.changes.append(Change(ChangeKind.NAME_CHANGED, "", _ref(old), _ref(new)))
        if old.get("doc") != new.get("doc"):
            self.changes.append(Change(ChangeKind.DOC_CHANGED, path, old.get("doc"), new.get("doc")))
        old_fields = {f["name"]: f for f in old.get("fields", [])}
        new_fields = {f["name"]: f for f in new.get("fields", [])}
        renamed_from: dict[str, str] = {}
        for name, f in new_fields.items():
            for alias in f.get("aliases", []):
                if alias in old_fields and alias not in new_fields:
                    renamed_from[alias] = name
        for name, f in old_fields.items():
            if name not in new_fields and name not in renamed_from:
                self.changes.append(
                    Change(ChangeKind.FIELD_REMOVED, prefix + name, f["type"], None, "default" in f, f.get("default"))
                )
        for name, f in new_fields.items():
            source = next((o for o, n in renamed_from.items() if n == name), None)
            if name not in old_fields and source is None:
                self.changes.append(
                    Change(ChangeKind.FIELD_ADDED, prefix + name, None, f["type"], "default" in f, f.get("default"))
                )
                continue
            before = old_fields[source or name]
            if source is not None:
                self.changes.append(Change(ChangeKind.FIELD_RENAMED, prefix + name, source, name))
            self.field(before, f, prefix + name, renamed=source is not None)

    def field(self, old: dict[str, Any], new: dict[str, Any], path: str, *, renamed: bool = False) -> None:
        self.type_(old["type"], new["type"], path)
        old_default = old.get("default", _NO_DEFAULT)
        new_default = new.get("default", _NO_DEFAULT)
        if old_default != new_default:
            self.changes.append(Change(ChangeKind.DEFAULT_CHANGED, path, old_default, new_default))
        if old.get("doc") != new.get("doc"):
            self.changes.append(Change(ChangeKind.DOC_CHANGED, path, old.get("doc"), new.get("doc")))
        if not renamed and sorted(old.get("aliases", [])) != sorted(new.get("aliases", [])):
            self.changes.append(Change(ChangeKind.ALIASES_CHANGED, path, old.get("aliases"), new.get("aliases")))


def diff(old: Any, new: Any) -> list[Change]:
    """What changed from schema `old` to schema `new` (parsed JSON of self-contained schemas)."""
    differ = _Differ(old, new)
    differ.type_(old, new, "")
    return differ.changes


# --------------------------------------------------------------------------------------------------
# compatibility: the verdict is accord.avro's (the registry's own checker); the review adds advice


@dataclass(frozen=True)
class _Problem:
    """One incompatibility the checker found, with the field path it concerns in `diff`'s notation."""

    incompatibility: avro.Incompatibility
    path: str
    #: "backward" (the new schema reads old data) or "forward" (the old schema reads new data)
    direction: str


def _field_path(schema: avro.AvroSchema, location: str) -> str:
    """The dotted field path (`lines[].amount`) of a checker location (`/fields/3/type/items/fields/1`)."""
    node: Any = schema.root
    path = ""
    parts = [p for p in location.split("/") if p]
    i = 0
    try:
        while i < len(parts):
            if isinstance(node, str) and node in schema.names:
                node = schema.names[node]
            part = parts[i]
            if part == "fields" and i + 1 < len(parts) and isinstance(node, dict):
                node = node["fields"][int(parts[i + 1])]
                path = f"{path}.{node['name']}" if path else str(node["name"])
                i += 2
                continue
            if part == "type" and isinstance(node, dict):
                node = node["type"]
            elif part == "items" and isinstance(node, dict):
                node, path = node["items"], f"{path}[]"
            elif part == "values" and isinstance(node, dict):
                node, path = node["values"], f"{path}{{}}"
            elif part.isdigit() and isinstance(node, list):
                node = node[int(part)]  # a union branch: the same field (diff unwraps ["null", T] too)
            else:
                break  # symbols, size, name: a property of the type at `path`
            i += 1
    except (IndexError, KeyError, ValueError, TypeError):
        pass  # a location this walk does not know stops at the deepest field it reached
    return path


def _advice(change: Change, problem: _Problem) -> tuple[str, str] | None:
    """(rule, what happened and what to do) when `change` explains the checker's `problem`, else None."""
    c, rule, here = change, problem.incompatibility.rule, change.path == problem.path
    no_default = here and rule is avro.Rule.READER_FIELD_MISSING_DEFAULT_VALUE
    if c.kind is ChangeKind.FIELD_ADDED and no_default and problem.direction == "backward":
        return (
            "new-field-default",
            "was added without a default: new readers cannot read old events; "
            'make it optional with "default": null or give it a default',
        )
    if c.kind is ChangeKind.FIELD_REMOVED and no_default and problem.direction == "forward":
        return (
            "removed-field-default",
            "was removed but had no default: old readers cannot read new "
            "events; keep it, or first give it a default in a version of its own",
        )
    # diff sees a renamed top-level record as a change of type
    renamed = c.kind in (ChangeKind.NAME_CHANGED, ChangeKind.TYPE_CHANGED) and c.path == problem.path == ""
    if renamed and rule is avro.Rule.NAME_MISMATCH:
        return "record-renamed", f"record renamed from {_ref(c.old)} to {_ref(c.new)}: that is a new subject"
    inside = here or problem.path.startswith((f"{c.path}.", f"{c.path}[", f"{c.path}{{"))
    if c.kind is ChangeKind.TYPE_CHANGED and inside:
        return "type-change", f"changed type from {type_words(c.old)} to {type_words(c.new)}; add a new field instead"
    if c.kind is ChangeKind.BECAME_REQUIRED and here:
        return "became-required", "is no longer optional: old events that hold null cannot be read"
    if c.kind is ChangeKind.BECAME_OPTIONAL and here:
        return (
            "became-optional",
            "is now optional: old readers cannot read new events that hold null; keep it required",
        )
    if c.kind is ChangeKind.SYMBOLS_REMOVED and here and rule is avro.Rule.MISSING_ENUM_SYMBOLS:
        return "enum-symbol-removed", f"lost symbol(s) {', '.join(c.old)} and has no default symbol"
    if c.kind is ChangeKind.SYMBOLS_ADDED and here and rule is avro.Rule.MISSING_ENUM_SYMBOLS:
        return (
            "enum-symbol-added",
            f"gained symbol(s) {', '.join(c.new)} but the old version has no "
            "default symbol for old readers to fall back on",
        )
    return None


def _rename_hint(subject: str, change: Change, removed: list[Change]) -> Finding | None:
    """A warning when `change` adds a field just like one removed beside it: a rename without an alias."""
    if change.kind is not ChangeKind.FIELD_ADDED:
        return None
    parent = change.path.rpartition(".")[0]
    twin = next(
        (
            r
            for r in removed
            if r.path.rpartition(".")[0] == parent
            and json.dumps(r.old, sort_keys=True) == json.dumps(change.new, sort_keys=True)
        ),
        None,
    )
    if twin is None:
        return None
    # Compatible or not, a rename without an alias silently drops the old field's values.
    return Finding(
        subject,
        "rename-without-alias",
        f'looks like `{twin.path}` renamed without an alias; if so, add "aliases": '
        f'["{twin.path.rpartition(".")[2]}"] so old events keep their value',
        change.path,
        Severity.WARNING,
    )


def compatibility_findings(
    subject: str, old: Any, new: Any, level: str, changes: Sequence[Change] | None = None
) -> list[Finding]:
    """Whether schema `new` may follow schema `old` (parsed JSON) under `level`, as findings.

    The verdict is accord.avro's, the checker the registry itself runs: every incompatibility it
    finds is an error at the field path it concerns. Where a change from `diff(old, new)` (given as
    `changes`, or computed) explains it, the finding says what to do instead ("give it a default");
    otherwise it carries the checker's own description. A field that looks renamed without an alias
    is a warning whatever the level: old events' values would silently be lost.
    """
    changes = list(changes) if changes is not None else diff(old, new)
    found: list[Finding] = []
    checked = avro.Level.parse(level)
    if checked is None:
        levels = ", ".join(member.value for member in avro.Level)
        return [Finding(subject, "compatibility-level", f"unknown compatibility level {level!r}: use one of {levels}")]
    try:
        old_schema, new_schema = avro.parse_avro(json.dumps(old)), avro.parse_avro(json.dumps(new))
    except avro.AvroSchemaError as exc:
        return [Finding(subject, "invalid-schema", f"cannot check compatibility {level}: {exc}")]
    # The two pair checks `avro.check` makes against one earlier version, kept apart so each
    # location can be read in the schema it points into (the reader's).
    problems: list[_Problem] = []
    if checked.backward:
        for i in avro.can_read(new_schema, old_schema, reader_role="new", writer_role="old"):
            problems.append(_Problem(i, _field_path(new_schema, i.location), "backward"))
    if checked.forward:
        for i in avro.can_read(old_schema, new_schema, reader_role="old", writer_role="new"):
            problems.append(_Problem(i, _field_path(old_schema, i.location), "forward"))

    def add(finding: Finding) -> None:
        if finding not in found:
            found.append(finding)

    explained: set[int] = set()
    removed = [c for c in changes if c.kind is ChangeKind.FIELD_REMOVED]
    for change in changes:
        hint = _rename_hint(subject, change, removed)
        if hint is not None:
            add(hint)
        for n, problem in enumerate(problems):
            advice = None if n in explained else _advice(change, problem)
            if advice is not None:
                explained.add(n)
                add(Finding(subject, advice[0], f"{advice[1]} (compatibility {level})", change.path))
    for n, problem in enumerate(problems):
        if n not in explained:
            i = problem.incompatibility
            rule = i.rule.value.lower().replace("_", "-")
            add(Finding(subject, rule, f"{i.description} (compatibility {level})", problem.path))
    return found


def meaning_changes(subject: str, changes: Iterable[Change]) -> list[Finding]:
    """Changes that every compatibility level lets through but that change what stored data means.

    Avro's resolution rules (and so every registry) ignore logical types: a decimal read with another scale
    is still bytes reading bytes, so 12.34 written at scale 2 silently reads as 0.1234 at scale 4. For money
    that is never acceptable, so it is an error of the review, whatever the level.
    """
    found = []
    for c in changes:
        if c.kind is not ChangeKind.TYPE_CHANGED:
            continue
        old, new = _non_null(c.old), _non_null(c.new)
        if not (isinstance(old, dict) and isinstance(new, dict)):
            continue
        if old.get("logicalType") == new.get("logicalType") == "decimal" and (
            old.get("scale", 0) != new.get("scale", 0) or old.get("precision") != new.get("precision")
        ):
            found.append(
                Finding(
                    subject,
                    "decimal-scale-changed",
                    f"changed from {type_words(c.old)} to {type_words(c.new)}: no registry rejects this, but every "
                    "stored amount would be read with the new scale; add a new field instead",
                    c.path,
                )
            )
    return found


# --------------------------------------------------------------------------------------------------
# 3. the registry


class RegistryError(AccordError):
    """The schema registry refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        # No answer at all, or a 5xx, may succeed later; a 4xx will not.
        self.retryable = status is None or status >= 500


@dataclass(frozen=True)
class RegisteredVersion:
    subject: str
    version: int
    schema_id: int
    schema: str


class RegistryClient:
    """The few Confluent Schema Registry REST calls schema review needs (httpx, synchronous)."""

    def __init__(self, url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/vnd.schemaregistry.v1+json, application/json"}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        try:
            response = self._http.request(
                method,
                path,
                json=body,
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"} if body is not None else None,
            )
        except httpx.HTTPError as exc:
            raise RegistryError(f"schema registry {self.url} did not answer {method} {path}: {exc}") from exc
        if response.status_code == 404 and missing_ok:
            return None
        if response.is_error:
            try:
                data = response.json()
                message, code = str(data.get("message")), data.get("error_code")
            except (ValueError, AttributeError):
                message, code = response.text[:200], None
            raise RegistryError(
                f"schema registry {self.url} refused {method} {path}: {response.status_code} {message}",
                status=response.status_code,
                error_code=code,
            )
        return response.json() if response.content else None

    @staticmethod
    def _s(subject: str) -> str:
        return quote(subject, safe="")

    def latest(self, subject: str) -> RegisteredVersion | None:
        return self.version(subject, "latest")

    def version(self, subject: str, version: int | str) -> RegisteredVersion | None:
        data = self._call("GET", f"/subjects/{self._s(subject)}/versions/{version}", missing_ok=True)
        if data is None:
            return None
        return RegisteredVersion(data["subject"], int(data["version"]), int(data["id"]), str(data["schema"]))

    def versions(self, subject: str) -> list[int]:
        data = self._call("GET", f"/subjects/{self._s(subject)}/versions", missing_ok=True)
        return [int(v) for v in data or []]

    def compatibility(self, subject: str) -> str | None:
        """The subject's level, falling back to the global one; None if the registry names neither."""
        data = self._call("GET", f"/config/{self._s(subject)}?defaultToGlobal=true", missing_ok=True)
        if data is None:
            data = self._call("GET", "/config", missing_ok=True)
        if not data:
            return None
        return str(data.get("compatibilityLevel") or data.get("compatibility") or "") or None

    def set_compatibility(self, subject: str, level: str) -> None:
        self._call("PUT", f"/config/{self._s(subject)}", {"compatibility": level})

    def check_compatibility(self, subject: str, schema: str) -> tuple[bool, list[str]]:
        """The registry's verdict on `schema` against the latest version, with its reasons."""
        data = self._call(
            "POST", f"/compatibility/subjects/{self._s(subject)}/versions/latest?verbose=true", {"schema": schema}
        )
        return bool(data.get("is_compatible")), [str(m) for m in data.get("messages") or []]

    def register(self, subject: str, schema: str) -> int:
        return int(self._call("POST", f"/subjects/{self._s(subject)}/versions", {"schema": schema})["id"])


# --------------------------------------------------------------------------------------------------
# check and register


@dataclass
class SubjectReport:
    subject: str
    expected_level: str
    registry_level: str | None = None
    latest_version: int | None = None
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    registry_messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def status(self) -> str:
        if not self.ok:
            return "incompatible"
        if self.latest_version is None:
            return "new"
        return "changed" if self.changes else "unchanged"


@dataclass
class CheckReport:
    lint: list[Finding] = field(default_factory=list)
    subjects: list[SubjectReport] = field(default_factory=list)
    registry_url: str | None = None

    @property
    def errors(self) -> list[Finding]:
        found = [f for f in self.lint if f.severity is Severity.ERROR]
        for s in self.subjects:
            found += [f for f in s.findings if f.severity is Severity.ERROR]
        return found

    @property
    def ok(self) -> bool:
        return not self.errors


def check_subject(registry: RegistryClient, event: EventSpec, schema: str | None = None) -> SubjectReport:
    """Review one event's schema (default: the catalogue's) against its subject's latest version."""
    schema = schema if schema is not None else event.schema_str
    report = SubjectReport(event.subject, event.compatibility)
    latest = registry.latest(event.subject)
    if latest is None:
        return report
    report.latest_version = latest.version
    report.registry_level = registry.compatibility(event.subject)
    old, new = json.loads(latest.schema), json.loads(schema)
    report.changes = diff(old, new)
    compatible, messages = registry.check_compatibility(event.subject, schema)
    # Confluent-style verbose answers repeat the whole old schema: a reviewer has it already.
    messages = [m if len(m) <= 400 else m[:400] + "..." for m in messages if not m.startswith("{oldSchema:")]
    report.registry_messages = messages

    def add(findings: list[Finding]) -> None:
        report.findings.extend(f for f in findings if f not in report.findings)

    # The registry's answer is the verdict under its level. The shared checker (the same rules) only
    # says where and what to do when that answer is no; its warnings (review hints) stand either way.
    registry_level = report.registry_level or "BACKWARD"  # Confluent's default when none is set
    local = compatibility_findings(event.subject, old, new, registry_level, report.changes)
    add(local if not compatible else [f for f in local if f.severity is Severity.WARNING])
    add(meaning_changes(event.subject, report.changes))
    if not compatible:
        detail = "; ".join(messages) or "no reason given"
        report.findings.append(
            Finding(
                event.subject,
                "registry-compatibility",
                f"the registry says it is incompatible with version {latest.version} under "
                f"{report.registry_level or 'its default level'}: {detail}",
            )
        )
    # The registry judged its own level only. Until `register` sets the catalogue's level, judge
    # that one here, with the same checker, so a subject not yet set to FULL is still reviewed as FULL.
    if not _covers(registry_level, event.compatibility):
        add(compatibility_findings(event.subject, old, new, event.compatibility, report.changes))
    if report.registry_level and report.registry_level != event.compatibility:
        report.findings.append(
            Finding(
                event.subject,
                "registry-level",
                f"the registry enforces {report.registry_level} but the catalogue says {event.compatibility}; "
                "run `accord schemas register` to set it",
                severity=Severity.WARNING,
            )
        )
    return report


def _covers(judged: str, wanted: str) -> bool:
    """Whether a verdict under level `judged` (on the latest version) implies one under `wanted`."""
    a, b = avro.Level.parse(judged), avro.Level.parse(wanted)
    if a is None or b is None:
        return judged == wanted
    # A transitive level asks about every version: a registry judging a non-transitive level has not
    # answered it (the local check then covers the latest version, the one at hand).
    return (a.backward or not b.backward) and (a.forward or not b.forward) and (a.transitive or not b.transitive)


def check_against_baseline(baseline: Catalogue, event: EventSpec) -> SubjectReport:
    """Review one event against the same event in an older catalogue (e.g. the main branch's), offline.

    What a pull request changes, judged by the catalogue's own compatibility level, before any
    registry sees it. A subject absent from the baseline is new.
    """
    report = SubjectReport(event.subject, event.compatibility)
    before = baseline.events.get(event.fullname)
    if before is None:
        return report
    report.latest_version = 0  # "the baseline": there is no registry version number offline
    report.changes = diff(before.schema, event.schema)
    report.findings = compatibility_findings(
        event.subject, before.schema, event.schema, event.compatibility, report.changes
    )
    report.findings += meaning_changes(event.subject, report.changes)
    if before.compatibility != event.compatibility:
        report.findings.append(
            Finding(
                event.subject,
                "compatibility-changed",
                f"compatibility changed from {before.compatibility} to {event.compatibility}",
                severity=Severity.WARNING,
            )
        )
    return report


def check(catalogue: Catalogue, registry: RegistryClient | None) -> CheckReport:
    """Lint the catalogue and, given a registry, review every subject against its latest version."""
    report = CheckReport(lint=lint(catalogue), registry_url=registry.url if registry else None)
    if registry is not None:
        for event in catalogue.events.values():
            report.subjects.append(check_subject(registry, event))
    return report


@dataclass(frozen=True)
class Registration:
    subject: str
    schema_id: int
    compatibility: str
    #: "registered" (a new version) or "unchanged" (the latest version is this schema already)
    outcome: str


def register_event(registry: RegistryClient, event: EventSpec) -> Registration:
    """Set the subject's compatibility level, then register the event's schema (a no-op when unchanged)."""
    # Level first, so the registry already judges this very registration under FULL.
    registry.set_compatibility(event.subject, event.compatibility)
    latest = registry.latest(event.subject)
    if latest is not None and json.loads(latest.schema) == event.schema:
        return Registration(event.subject, latest.schema_id, event.compatibility, "unchanged")
    schema_id = registry.register(event.subject, event.schema_str)
    # A registry that rewrites schema text still answers an identical schema with the latest's id.
    outcome = "unchanged" if latest is not None and schema_id == latest.schema_id else "registered"
    return Registration(event.subject, schema_id, event.compatibility, outcome)


def register(catalogue: Catalogue, registry: RegistryClient) -> list[Registration]:
    """`register_event` for every event of the catalogue."""
    return [register_event(registry, event) for event in catalogue.events.values()]
