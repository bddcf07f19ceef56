"""The pure compatibility checker against the table of named cases (each level x Avro rule)."""

from __future__ import annotations

import pytest

from accord.avro import Level, Rule, can_read, check, parse_avro
from tests.unit.avro.compat_cases import CASES, V1, Case, f, record

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_compatibility_table(case: Case) -> None:
    previous = [(i + 1, parse_avro(text)) for i, text in enumerate(case.old)]
    result = check(Level(case.level), parse_avro(case.new), previous)
    assert result.compatible is case.compatible, result.messages
    if case.rule is not None:
        assert {i.rule.value for i in result.incompatibilities} == {case.rule}
        assert any(f"errorType:'{case.rule}'" in m for m in result.messages)
        assert f"{{compatibility: '{case.level}'}}" in result.messages


def test_every_level_and_rule_is_covered_by_the_table() -> None:
    assert {c.level for c in CASES} == {level.value for level in Level}
    assert {c.rule for c in CASES if c.rule} == {rule.value for rule in Rule}


LOCATION_CASES = [
    (
        "missing default points at the reader field",
        record(f("a", "int"), f("b", "int")),
        record(f("a", "int")),
        "/fields/1",
    ),
    (
        "nested type mismatch points into the array items",
        record(f("xs", {"type": "array", "items": "int"})),
        record(f("xs", {"type": "array", "items": "string"})),
        "/fields/0/type/items",
    ),
    (
        "enum points at its symbols",
        record(f("s", {"type": "enum", "name": "E", "symbols": ["A"]})),
        record(f("s", {"type": "enum", "name": "E", "symbols": ["A", "B"]})),
        "/fields/0/type/symbols",
    ),
]


@pytest.mark.parametrize(
    ("reader", "writer", "location"), [c[1:] for c in LOCATION_CASES], ids=[c[0] for c in LOCATION_CASES]
)
def test_verbose_says_where(reader: str, writer: str, location: str) -> None:
    problems = can_read(parse_avro(reader), parse_avro(writer))
    assert [p.location for p in problems] == [location]
    assert location in problems[0].description or problems[0].rule in (Rule.TYPE_MISMATCH, Rule.MISSING_ENUM_SYMBOLS)


def test_transitive_reports_the_version_that_failed() -> None:
    old = [(1, parse_avro(V1)), (2, parse_avro(record(f("id", "string"))))]
    result = check(
        Level.BACKWARD_TRANSITIVE, parse_avro(record(f("id", "string"), f("amount", "string", default=""))), old
    )
    assert "{oldSchemaVersion: 1}" in result.messages
    assert "{oldSchemaVersion: 2}" not in result.messages


def test_nothing_registered_is_always_compatible() -> None:
    assert check(Level.FULL_TRANSITIVE, parse_avro(V1), []).compatible


def test_level_names_parse_case_insensitively_and_reject_unknown() -> None:
    assert Level.parse("full_transitive") is Level.FULL_TRANSITIVE
    assert Level.parse("SIDEWAYS") is None
    assert Level.parse(3) is None
