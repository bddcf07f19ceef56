"""Schema validation: what the registry refuses with 42201, and what it accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from accord.avro import AvroSchemaError, parse_avro

pytestmark = pytest.mark.unit


def rec(*fields: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"type": "record", "name": "R", "namespace": "accord.t", "fields": list(fields), **extra})


INVALID = [
    ("not json", "{nope", "not valid JSON"),
    ("unknown type", rec({"name": "a", "type": "money"}), "unknown type 'money'"),
    ("int default is a string", rec({"name": "a", "type": "int", "default": "x"}), "default"),
    ("long default out of range", rec({"name": "a", "type": "int", "default": 2**40}), "default"),
    ("union default not of first branch", rec({"name": "a", "type": ["null", "int"], "default": 1}), "first branch"),
    (
        "enum default not a symbol",
        rec({"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A"], "default": "B"}}),
        "default",
    ),
    (
        "enum field default not a symbol",
        rec({"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A"]}, "default": "Z"}),
        "default",
    ),
    (
        "record default lacks a field",
        rec({"name": "a", "type": json.loads(rec({"name": "x", "type": "int"}, name="In")), "default": {}}),
        "default",
    ),
    ("duplicate field", rec({"name": "a", "type": "int"}, {"name": "a", "type": "long"}), "appears twice"),
    ("bad field name", rec({"name": "9a", "type": "int"}), "invalid field name"),
    ("record without fields", json.dumps({"type": "record", "name": "R"}), "fields"),
    ("record without name", json.dumps({"type": "record", "fields": []}), "name"),
    (
        "name defined twice",
        rec(
            {"name": "a", "type": {"type": "fixed", "name": "F", "size": 2}},
            {"name": "b", "type": {"type": "fixed", "name": "F", "size": 2}},
        ),
        "defined twice",
    ),
    ("duplicate union branch", rec({"name": "a", "type": ["int", "int"]}), "twice"),
    ("nested union", rec({"name": "a", "type": ["int", ["null", "string"]]}), "union"),
    ("fixed without size", rec({"name": "a", "type": {"type": "fixed", "name": "F"}}), "size"),
    ("array without items", rec({"name": "a", "type": {"type": "array"}}), "items"),
    (
        "enum repeats a symbol",
        rec({"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A", "A"]}}),
        "repeats",
    ),
]


@pytest.mark.parametrize(("text", "needle"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_schemas_are_refused_with_a_reason(text: str, needle: str) -> None:
    with pytest.raises(AvroSchemaError, match=needle):
        parse_avro(text)


VALID = [
    ("primitive", '"string"'),
    (
        "decimal money",
        rec({"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}}),
    ),
    ("optional with null default", rec({"name": "a", "type": ["null", "string"], "default": None})),
    ("recursive", rec({"name": "next", "type": ["null", "accord.t.R"], "default": None})),
    (
        "record default",
        rec(
            {"name": "a", "type": json.loads(rec({"name": "x", "type": "int", "default": 1}, name="In")), "default": {}}
        ),
    ),
    (
        "enum with default",
        rec({"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "A"}}),
    ),
    ("array default", rec({"name": "a", "type": {"type": "array", "items": "long"}, "default": [1, 2]})),
]


@pytest.mark.parametrize("text", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_schemas_parse(text: str) -> None:
    assert parse_avro(text).text == json.dumps(json.loads(text), separators=(",", ":"))


def test_references_supply_named_types() -> None:
    money = parse_avro(
        json.dumps(
            {"type": "record", "name": "Money", "namespace": "accord.t", "fields": [{"name": "c", "type": "string"}]}
        )
    )
    invoice = parse_avro(rec({"name": "total", "type": "accord.t.Money"}), [money])
    assert "accord.t.Money" in invoice.names
    with pytest.raises(AvroSchemaError, match="unknown type"):
        parse_avro(rec({"name": "total", "type": "accord.t.Money"}))


def test_normalized_form_ignores_formatting_and_namespace_spelling() -> None:
    a = parse_avro(
        json.dumps({"type": "record", "name": "R", "namespace": "x.y", "fields": [{"name": "a", "type": "int"}]})
    )
    b = parse_avro('{"fields": [{"type": {"type": "int"}, "name": "a"}],   "name": "x.y.R", "type": "record"}')
    assert a.normalized == b.normalized
    assert a.text != b.text
    assert parse_avro(b.text, normalize=True).text == a.normalized
