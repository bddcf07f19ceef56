"""Avro schema parsing: validation, named types, references and normalisation.

`parse_avro` turns a schema string (plus the schemas it references) into an `AvroSchema`: a tree in which
every named type is fully qualified and defined once in `names`, which the compatibility checker walks.
fastavro parses the same schema too, so anything it refuses (a default of the wrong type, an unknown
type, a bad name) is refused here as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastavro

from accord.errors import AccordError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AvroSchemaError(AccordError, ValueError):
    """The schema is not valid Avro; the message says where and why."""


@dataclass(frozen=True)
class AvroSchema:
    """A parsed schema: `root` with fully-qualified names, `names` maps each full name to its definition."""

    root: Any
    names: Mapping[str, dict[str, Any]]
    #: the schema as stored and served (compact JSON of what was submitted, or its normalised form)
    text: str
    #: a formatting- and namespace-insensitive form; equal forms mean the same schema
    normalized: str
    #: the names this schema defines itself (not the referenced ones)
    own_names: frozenset[str] = field(default_factory=frozenset)


def parse_avro(text: str, referenced: Sequence[AvroSchema] = (), *, normalize: bool = False) -> AvroSchema:
    """Parse and validate `text`; `referenced` are the already parsed schemas its references name."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise AvroSchemaError(f"not valid JSON: {exc}") from exc
    except RecursionError:
        raise AvroSchemaError("not valid JSON: it nests too deeply") from None
    names: dict[str, dict[str, Any]] = {}
    for ref in referenced:
        names.update(ref.names)
    before = set(names)
    try:
        root = _Walker(names).walk(data, namespace="", path="")
        _check_with_fastavro(data, referenced)
        normalized = json.dumps(_expand_once(root, names), sort_keys=True, separators=(",", ":"))
    except RecursionError:
        raise AvroSchemaError("the schema nests too deeply to be a usable Avro schema") from None
    own = frozenset(set(names) - before)
    stored = normalized if normalize else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return AvroSchema(root=root, names=names, text=stored, normalized=normalized, own_names=own)


def _check_with_fastavro(data: Any, referenced: Sequence[AvroSchema]) -> None:
    named: dict[str, Any] = {}
    try:
        for ref in referenced:
            fastavro.parse_schema(json.loads(ref.text), named_schemas=named, _write_hint=False)
        fastavro.parse_schema(data, named_schemas=named, _write_hint=False)
    except Exception as exc:  # fastavro raises several unrelated types for bad schemas
        raise AvroSchemaError(str(exc)) from exc


def _expand_once(node: Any, names: Mapping[str, dict[str, Any]]) -> Any:
    """The tree with each named type's definition inlined where first used (a stable, complete form)."""
    seen: set[str] = set()

    def go(n: Any) -> Any:
        if isinstance(n, str):
            if n in names and n not in seen:
                seen.add(n)
                return go(names[n])
            return n
        if isinstance(n, list):
            return [go(b) for b in n]
        if isinstance(n, dict):
            out = dict(n)
            kind = n.get("type")
            if kind in ("record", "error"):
                out["fields"] = [{**f, "type": go(f["type"])} for f in n["fields"]]
            elif kind == "array":
                out["items"] = go(n["items"])
            elif kind == "map":
                out["values"] = go(n["values"])
            return out
        return n

    return go(node)


class _Walker:
    """Builds the qualified tree, defining each named type once and resolving every name it uses."""

    def __init__(self, names: dict[str, dict[str, Any]]) -> None:
        self.names = names

    def walk(self, node: Any, *, namespace: str, path: str) -> Any:
        if isinstance(node, str):
            return self._reference(node, namespace, path)
        if isinstance(node, list):
            return self._union(node, namespace, path)
        if not isinstance(node, dict):
            raise AvroSchemaError(f"at '{path or '/'}': expected a type name, object or union, got {node!r}")
        kind = node.get("type")
        if isinstance(kind, (dict, list)):
            raise AvroSchemaError(f"at '{path or '/'}': 'type' must be a type name, not a nested schema")
        if not isinstance(kind, str):
            raise AvroSchemaError(f"at '{path or '/'}': missing 'type'")
        if kind in PRIMITIVES:
            extra = {k: v for k, v in node.items() if k != "type"}
            return {"type": kind, **extra} if "logicalType" in extra else kind
        if kind in ("record", "error"):
            return self._record(node, namespace, path)
        if kind == "enum":
            return self._enum(node, namespace, path)
        if kind == "fixed":
            return self._fixed(node, namespace, path)
        if kind == "array":
            if "items" not in node:
                raise AvroSchemaError(f"at '{path or '/'}': an array needs 'items'")
            return {**node, "items": self.walk(node["items"], namespace=namespace, path=f"{path}/items")}
        if kind == "map":
            if "values" not in node:
                raise AvroSchemaError(f"at '{path or '/'}': a map needs 'values'")
            return {**node, "values": self.walk(node["values"], namespace=namespace, path=f"{path}/values")}
        return self._reference(kind, namespace, path)

    def _reference(self, name: str, namespace: str, path: str) -> Any:
        if name in PRIMITIVES:
            return name
        full = _qualify(name, namespace)
        if full in self.names:
            return full
        if name in self.names:  # an unqualified reference to a name in the null namespace
            return name
        raise AvroSchemaError(f"at '{path or '/'}': unknown type '{name}' (not defined before and not referenced)")

    def _union(self, branches: list[Any], namespace: str, path: str) -> list[Any]:
        out = [self.walk(b, namespace=namespace, path=f"{path}/{i}") for i, b in enumerate(branches)]
        kinds: set[str] = set()
        for i, branch in enumerate(out):
            if isinstance(branch, list):
                raise AvroSchemaError(f"at '{path}/{i}': a union may not directly contain another union")
            key = branch if isinstance(branch, str) else branch["type"]
            if key in kinds:
                raise AvroSchemaError(f"at '{path}/{i}': the union holds '{key}' twice")
            kinds.add(key)
        return out

    def _define(self, node: dict[str, Any], namespace: str, path: str) -> tuple[str, str]:
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise AvroSchemaError(f"at '{path or '/'}': a {node['type']} needs a 'name'")
        ns = node.get("namespace", namespace) if "." not in name else name.rpartition(".")[0]
        if ns is None:
            ns = ""
        if not isinstance(ns, str):
            raise AvroSchemaError(f"at '{path or '/'}': 'namespace' must be a string")
        full = _qualify(name, ns)
        for part in full.split("."):
            if not _NAME.match(part):
                raise AvroSchemaError(f"at '{path or '/'}': invalid name '{full}'")
        if full in self.names:
            raise AvroSchemaError(f"at '{path or '/'}': the name '{full}' is defined twice")
        return full, ns

    def _record(self, node: dict[str, Any], namespace: str, path: str) -> str:
        full, ns = self._define(node, namespace, path)
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise AvroSchemaError(f"at '{path or '/'}': record '{full}' needs a 'fields' list")
        definition: dict[str, Any] = {k: v for k, v in node.items() if k not in ("namespace", "fields")}
        definition["name"] = full
        definition["fields"] = []
        if "aliases" in node:
            definition["aliases"] = [_qualify(a, ns) for a in _aliases(node, path)]
        self.names[full] = definition  # defined before its fields: a record may refer to itself
        seen: set[str] = set()
        for i, f in enumerate(fields):
            fpath = f"{path}/fields/{i}"
            if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                raise AvroSchemaError(f"at '{fpath}': a field needs a 'name'")
            fname = f["name"]
            if not _NAME.match(fname):
                raise AvroSchemaError(f"at '{fpath}': invalid field name '{fname}'")
            if fname in seen:
                raise AvroSchemaError(f"at '{fpath}': field '{fname}' appears twice in '{full}'")
            seen.add(fname)
            if "type" not in f:
                raise AvroSchemaError(f"at '{fpath}': field '{fname}' needs a 'type'")
            out = dict(f)
            out["type"] = self.walk(f["type"], namespace=ns, path=f"{fpath}/type")
            if "default" in f and not valid_default(out["type"], f["default"], self.names):
                raise AvroSchemaError(
                    f"at '{fpath}': the default {f['default']!r} of field '{fname}' does not match its type "
                    "(for a union, the default must match the union's first branch)"
                )
            if "aliases" in f:
                out["aliases"] = _aliases(f, fpath)
            definition["fields"].append(out)
        return full

    def _enum(self, node: dict[str, Any], namespace: str, path: str) -> str:
        full, ns = self._define(node, namespace, path)
        symbols = node.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) and _NAME.match(s) for s in symbols):
            raise AvroSchemaError(f"at '{path or '/'}': enum '{full}' needs 'symbols', a list of valid names")
        if len(set(symbols)) != len(symbols):
            raise AvroSchemaError(f"at '{path or '/'}': enum '{full}' repeats a symbol")
        if "default" in node and node["default"] not in symbols:
            raise AvroSchemaError(f"at '{path or '/'}': enum '{full}' default {node['default']!r} is no symbol")
        definition = {k: v for k, v in node.items() if k != "namespace"}
        definition["name"] = full
        if "aliases" in node:
            definition["aliases"] = [_qualify(a, ns) for a in _aliases(node, path)]
        self.names[full] = definition
        return full

    def _fixed(self, node: dict[str, Any], namespace: str, path: str) -> str:
        full, ns = self._define(node, namespace, path)
        size = node.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise AvroSchemaError(f"at '{path or '/'}': fixed '{full}' needs a non-negative integer 'size'")
        definition = {k: v for k, v in node.items() if k != "namespace"}
        definition["name"] = full
        if "aliases" in node:
            definition["aliases"] = [_qualify(a, ns) for a in _aliases(node, path)]
        self.names[full] = definition
        return full


_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def valid_default(node: Any, value: Any, names: Mapping[str, dict[str, Any]]) -> bool:
    """Whether `value` (JSON) is a valid default for the qualified type `node`, as the Avro spec says."""
    if isinstance(node, str) and node in names:
        node = names[node]
    if isinstance(node, list):
        return bool(node) and valid_default(node[0], value, names)
    kind = node if isinstance(node, str) else node["type"]
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("int", "long"):
        low, high = _INT_RANGE[kind]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if kind in ("float", "double"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("string", "bytes"):
        return isinstance(value, str)
    if kind == "fixed":
        return isinstance(value, str) and len(value) == node["size"]
    if kind == "enum":
        return isinstance(value, str) and value in node["symbols"]
    if kind == "array":
        return isinstance(value, list) and all(valid_default(node["items"], v, names) for v in value)
    if kind == "map":
        return isinstance(value, dict) and all(valid_default(node["values"], v, names) for v in value.values())
    if kind in ("record", "error"):
        if not isinstance(value, dict):
            return False
        for f in node["fields"]:
            if f["name"] in value:
                if not valid_default(f["type"], value[f["name"]], names):
                    return False
            elif "default" not in f:
                return False
        return True
    return False


def _aliases(node: dict[str, Any], path: str) -> list[str]:
    aliases = node["aliases"]
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise AvroSchemaError(f"at '{path or '/'}': 'aliases' must be a list of names")
    return aliases


def _qualify(name: str, namespace: str) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def short_name(full: str) -> str:
    return full.rpartition(".")[2]
