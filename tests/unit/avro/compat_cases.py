"""The compatibility table: named cases, each a level x an Avro resolution rule.

Shared by the unit suite (the pure checker) and the integration suite (a sample through HTTP).
A case registers `old` (oldest first) under `level`, then checks `new`: `compatible` says whether the
registry must accept it, and `rule` which Avro rule must be reported when it does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def record(*fields: dict[str, Any], name: str = "Invoice", **extra: Any) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "accord.test", "fields": list(fields), **extra})


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


STATUS = {"type": "enum", "name": "Status", "symbols": ["OPEN", "PAID"]}
STATUS_MORE = {"type": "enum", "name": "Status", "symbols": ["OPEN", "PAID", "VOID"]}
STATUS_MORE_DEFAULT = {**STATUS_MORE, "default": "OPEN"}
STATUS_DEFAULT = {**STATUS, "default": "OPEN"}

V1 = record(f("id", "string"), f("amount", "long"))
V1_PLUS_DEFAULTED = record(f("id", "string"), f("amount", "long"), f("tax", "long", default=0))
V1_PLUS_REQUIRED = record(f("id", "string"), f("amount", "long"), f("tax", "long"))
V1_MINUS_AMOUNT = record(f("id", "string"))
V1_AMOUNT_DEFAULTED = record(f("id", "string"), f("amount", "long", default=0))


@dataclass(frozen=True)
class Case:
    name: str
    level: str
    old: tuple[str, ...]
    new: str
    compatible: bool
    rule: str | None = None

    @property
    def id(self) -> str:
        return f"{self.level}:{self.name}"


CASES: tuple[Case, ...] = (
    # -- fields and defaults ---------------------------------------------------------------------
    Case("add field with default", "BACKWARD", (V1,), V1_PLUS_DEFAULTED, True),
    Case(
        "add field without default",
        "BACKWARD",
        (V1,),
        V1_PLUS_REQUIRED,
        False,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    Case("remove field", "BACKWARD", (V1,), V1_MINUS_AMOUNT, True),
    Case(
        "remove field without default", "FORWARD", (V1,), V1_MINUS_AMOUNT, False, "READER_FIELD_MISSING_DEFAULT_VALUE"
    ),
    Case("add field without default", "FORWARD", (V1,), V1_PLUS_REQUIRED, True),
    Case(
        "remove field that had a default",
        "FORWARD",
        (V1_PLUS_DEFAULTED,),
        V1,
        True,
    ),
    Case("add field with default", "FULL", (V1,), V1_PLUS_DEFAULTED, True),
    Case("add field without default", "FULL", (V1,), V1_PLUS_REQUIRED, False, "READER_FIELD_MISSING_DEFAULT_VALUE"),
    Case("remove field without default", "FULL", (V1,), V1_MINUS_AMOUNT, False, "READER_FIELD_MISSING_DEFAULT_VALUE"),
    Case("anything goes", "NONE", (V1,), record(f("id", "int")), True),
    # -- type promotion --------------------------------------------------------------------------
    Case("int promoted to long", "BACKWARD", (record(f("n", "int")),), record(f("n", "long")), True),
    Case("int promoted to double", "BACKWARD", (record(f("n", "int")),), record(f("n", "double")), True),
    Case("long promoted to float", "BACKWARD", (record(f("n", "long")),), record(f("n", "float")), True),
    Case("float promoted to double", "BACKWARD", (record(f("n", "float")),), record(f("n", "double")), True),
    Case("bytes read as string", "BACKWARD", (record(f("n", "bytes")),), record(f("n", "string")), True),
    Case("string read as bytes", "BACKWARD", (record(f("n", "string")),), record(f("n", "bytes")), True),
    Case("long narrowed to int", "BACKWARD", (record(f("n", "long")),), record(f("n", "int")), False, "TYPE_MISMATCH"),
    Case("int widened to long", "FORWARD", (record(f("n", "int")),), record(f("n", "long")), False, "TYPE_MISMATCH"),
    Case("int widened to long", "FULL", (record(f("n", "int")),), record(f("n", "long")), False, "TYPE_MISMATCH"),
    Case("string to int", "BACKWARD", (record(f("n", "string")),), record(f("n", "int")), False, "TYPE_MISMATCH"),
    Case(
        "logical type added on the same type",
        "FULL",
        (record(f("at", "long")),),
        record(f("at", {"type": "long", "logicalType": "timestamp-micros"})),
        True,
    ),
    # -- enums -----------------------------------------------------------------------------------
    Case("enum symbol added", "BACKWARD", (record(f("s", STATUS)),), record(f("s", STATUS_MORE)), True),
    Case(
        "enum symbol added",
        "FORWARD",
        (record(f("s", STATUS)),),
        record(f("s", STATUS_MORE)),
        False,
        "MISSING_ENUM_SYMBOLS",
    ),
    Case(
        "enum symbol added, old reader has a default",
        "FORWARD",
        (record(f("s", STATUS_DEFAULT)),),
        record(f("s", STATUS_MORE_DEFAULT)),
        True,
    ),
    Case(
        "enum symbol removed",
        "BACKWARD",
        (record(f("s", STATUS_MORE)),),
        record(f("s", STATUS)),
        False,
        "MISSING_ENUM_SYMBOLS",
    ),
    Case(
        "enum symbol removed, new reader has a default",
        "BACKWARD",
        (record(f("s", STATUS_MORE)),),
        record(f("s", STATUS_DEFAULT)),
        True,
    ),
    Case(
        "enum symbol added with defaults both ways",
        "FULL",
        (record(f("s", STATUS_DEFAULT)),),
        record(f("s", STATUS_MORE_DEFAULT)),
        True,
    ),
    # -- unions ----------------------------------------------------------------------------------
    Case(
        "field made optional",
        "BACKWARD",
        (record(f("note", "string")),),
        record(f("note", ["null", "string"], default=None)),
        True,
    ),
    Case(
        "optional field made required",
        "BACKWARD",
        (record(f("note", ["null", "string"], default=None)),),
        record(f("note", "string")),
        False,
        "TYPE_MISMATCH",
    ),
    Case(
        "union branch added",
        "BACKWARD",
        (record(f("v", ["null", "string"])),),
        record(f("v", ["null", "string", "long"])),
        True,
    ),
    Case(
        "union branch removed",
        "BACKWARD",
        (record(f("v", ["null", "string", "long"])),),
        record(f("v", ["null", "string"])),
        False,
        "MISSING_UNION_BRANCH",
    ),
    Case(
        "union branch added",
        "FORWARD",
        (record(f("v", ["null", "string"])),),
        record(f("v", ["null", "string", "long"])),
        False,
        "MISSING_UNION_BRANCH",
    ),
    Case(
        "int promoted into a union of long",
        "BACKWARD",
        (record(f("v", "int")),),
        record(f("v", ["null", "long"], default=None)),
        True,
    ),
    # -- names and aliases -----------------------------------------------------------------------
    Case(
        "field renamed with alias",
        "BACKWARD",
        (V1,),
        record(f("id", "string"), f("total", "long", aliases=["amount"])),
        True,
    ),
    Case(
        "field renamed without alias",
        "BACKWARD",
        (V1,),
        record(f("id", "string"), f("total", "long")),
        False,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    Case(
        "record renamed",
        "BACKWARD",
        (record(f("id", "string"), name="Invoice"),),
        record(f("id", "string"), name="Bill"),
        False,
        "NAME_MISMATCH",
    ),
    Case(
        "record renamed with alias",
        "BACKWARD",
        (record(f("id", "string"), name="Invoice"),),
        record(f("id", "string"), name="Bill", aliases=["Invoice"]),
        True,
    ),
    Case(
        "fixed size changed",
        "BACKWARD",
        (record(f("h", {"type": "fixed", "name": "Hash", "size": 16})),),
        record(f("h", {"type": "fixed", "name": "Hash", "size": 32})),
        False,
        "FIXED_SIZE_MISMATCH",
    ),
    # -- nested, arrays, maps, recursion ---------------------------------------------------------
    Case(
        "nested record gains a defaulted field",
        "FULL",
        (record(f("lines", {"type": "array", "items": json.loads(record(f("sku", "string"), name="Line"))})),),
        record(
            f(
                "lines",
                {
                    "type": "array",
                    "items": json.loads(record(f("sku", "string"), f("qty", "int", default=1), name="Line")),
                },
            )
        ),
        True,
    ),
    Case(
        "map values narrowed",
        "BACKWARD",
        (record(f("m", {"type": "map", "values": "long"})),),
        record(f("m", {"type": "map", "values": "int"})),
        False,
        "TYPE_MISMATCH",
    ),
    Case(
        "recursive record gains a defaulted field",
        "FULL",
        (record(f("id", "string"), f("parent", ["null", "accord.test.Node"], default=None), name="Node"),),
        record(
            f("id", "string"),
            f("parent", ["null", "accord.test.Node"], default=None),
            f("depth", "int", default=0),
            name="Node",
        ),
        True,
    ),
    # -- transitive levels -----------------------------------------------------------------------
    Case(
        "field re-added with another type passes against the latest only",
        "BACKWARD",
        (V1, V1_MINUS_AMOUNT),
        record(f("id", "string"), f("amount", "string", default="")),
        True,
    ),
    Case(
        "field re-added with another type fails against an older version",
        "BACKWARD_TRANSITIVE",
        (V1, V1_MINUS_AMOUNT),
        record(f("id", "string"), f("amount", "string", default="")),
        False,
        "TYPE_MISMATCH",
    ),
    Case("field dropped, latest reader has a default", "FORWARD", (V1, V1_AMOUNT_DEFAULTED), V1_MINUS_AMOUNT, True),
    Case(
        "field dropped, an older reader lacks a default",
        "FORWARD_TRANSITIVE",
        (V1, V1_AMOUNT_DEFAULTED),
        V1_MINUS_AMOUNT,
        False,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
    ),
    Case(
        "defaulted fields both ways across all versions",
        "FULL_TRANSITIVE",
        (V1, V1_PLUS_DEFAULTED),
        record(f("id", "string"), f("amount", "long"), f("tax", "long", default=0), f("memo", "string", default="")),
        True,
    ),
    Case(
        "type changed against the oldest",
        "FULL_TRANSITIVE",
        (record(f("n", "int")), record(f("n", "int"), f("x", "int", default=0))),
        record(f("n", "string"), f("x", "int", default=0)),
        False,
        "TYPE_MISMATCH",
    ),
)
