"""Lint rules of `accord schemas check`, as a table of named cases on a tiny catalogue in tmp_path."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from accord.devstack import repo_root
from accord.events import catalogue as source
from accord.schema_review import lint

pytestmark = pytest.mark.unit

BASE_EVENT: dict[str, Any] = {
    "type": "record",
    "name": "ThingShipped",
    "namespace": "accord.billing",
    "doc": "A thing was shipped.",
    "fields": [
        {"name": "meta", "type": "accord.common.Meta", "doc": "Envelope."},
        {"name": "account_id", "type": "string", "doc": "Canonical account id."},
        {"name": "amount", "type": "accord.common.Money", "doc": "What it cost."},
        {"name": "shipped_at", "type": {"type": "long", "logicalType": "timestamp-micros"}, "doc": "When."},
        {"name": "due_date", "type": {"type": "int", "logicalType": "date"}, "doc": "Due."},
        {"name": "note", "type": ["null", "string"], "default": None, "doc": "A note."},
        {
            "name": "status",
            "type": {
                "type": "enum",
                "name": "ThingStatus",
                "namespace": "accord.billing",
                "doc": "Status.",
                "symbols": ["UNKNOWN", "SHIPPED"],
                "default": "UNKNOWN",
            },
            "doc": "Status.",
        },
    ],
}
BASE_ENTRY = {"topic": "billing.things", "key": "account_id", "owner": "billing", "producer": "p", "consumers": ["c"]}

Mutation = Callable[[dict[str, Any], dict[str, Any]], None]


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def add(**f: Any) -> Mutation:
    def mutate(schema: dict[str, Any], entry: dict[str, Any]) -> None:
        schema["fields"].append({"doc": "Something.", **f})

    return mutate


def change(name: str, **values: Any) -> Mutation:
    def mutate(schema: dict[str, Any], entry: dict[str, Any]) -> None:
        field(schema, name).update(values)

    return mutate


def drop_key(name: str, key: str) -> Mutation:
    def mutate(schema: dict[str, Any], entry: dict[str, Any]) -> None:
        del field(schema, name)[key]

    return mutate


def entry(**values: Any) -> Mutation:
    def mutate(schema: dict[str, Any], e: dict[str, Any]) -> None:
        e.update(values)

    return mutate


def record(**values: Any) -> Mutation:
    def mutate(schema: dict[str, Any], e: dict[str, Any]) -> None:
        schema.update(values)

    return mutate


def enum(**values: Any) -> Mutation:
    def mutate(schema: dict[str, Any], e: dict[str, Any]) -> None:
        field(schema, "status")["type"].update(values)

    return mutate


def meta_not_first(schema: dict[str, Any], e: dict[str, Any]) -> None:
    schema["fields"].append(schema["fields"].pop(0))


def no_enum_default(schema: dict[str, Any], e: dict[str, Any]) -> None:
    del field(schema, "status")["type"]["default"]


DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 4}
CASES = [
    pytest.param(None, set(), id="clean"),
    pytest.param(drop_key("account_id", "doc"), {("doc-missing", "account_id")}, id="field-without-doc"),
    pytest.param(change("note", doc="  "), {("doc-missing", "note")}, id="field-with-blank-doc"),
    pytest.param(record(doc=""), {("doc-missing", "")}, id="record-without-doc"),
    pytest.param(enum(doc=""), {("doc-missing", "")}, id="enum-without-doc"),
    pytest.param(add(name="weight", type="double"), {("no-float", "weight")}, id="double-field"),
    pytest.param(add(name="fee", type="float"), {("no-float", "fee"), ("money-type", "fee")}, id="money-as-float"),
    pytest.param(
        add(name="total", type=DECIMAL), {("money-type", "total")}, id="money-as-bare-decimal-without-currency"
    ),
    pytest.param(add(name="unit_price", type="string"), {("money-type", "unit_price")}, id="money-as-string"),
    pytest.param(
        add(name="credit_limit", type=["null", "accord.common.Money"], default=None), set(), id="optional-money-ok"
    ),
    pytest.param(
        add(name="ratio", type={"type": "bytes", "logicalType": "decimal"}),
        {("decimal-shape", "ratio")},
        id="decimal-without-precision",
    ),
    pytest.param(
        add(name="quantity", type={"type": "array", "items": "double"}),
        {("no-float", "quantity[]")},
        id="float-in-array",
    ),
    pytest.param(
        add(name="sent_at", type={"type": "long", "logicalType": "timestamp-millis"}),
        {("timestamp-micros", "sent_at")},
        id="timestamp-millis",
    ),
    pytest.param(add(name="created_at", type="string"), {("timestamp-micros", "created_at")}, id="at-as-string"),
    pytest.param(change("due_date", type="string"), {("date-type", "due_date")}, id="date-as-string"),
    pytest.param(add(name="order_id", type="long"), {("id-string", "order_id")}, id="id-as-long"),
    pytest.param(
        change("note", type=["string", "null"], default="x"),
        {("union-shape", "note"), ("optional-default", "note")},
        id="null-not-first",
    ),
    pytest.param(drop_key("note", "default"), {("optional-default", "note")}, id="optional-without-default"),
    pytest.param(add(name="x", type=["string", "long"]), {("union-shape", "x")}, id="union-of-two-types"),
    pytest.param(add(name="shipTo", type="string"), {("field-name", "shipTo")}, id="camel-case-field"),
    pytest.param(add(name="schema", type="string"), {("field-name", "schema")}, id="reserved-field-name"),
    pytest.param(add(name="model_name", type="string"), {("field-name", "model_name")}, id="pydantic-reserved-prefix"),
    pytest.param(enum(symbols=["UNKNOWN", "shipped"]), {("enum-symbol", "")}, id="lower-case-symbol"),
    pytest.param(no_enum_default, {("enum-default", "")}, id="enum-without-default"),
    pytest.param(meta_not_first, {("event-meta", "")}, id="meta-not-first"),
    pytest.param(entry(topic="crm.things"), {("topic-known", ""), ("event-namespace", "")}, id="wrong-domain-topic"),
    pytest.param(entry(key="customer_id"), {("key-field", "")}, id="key-field-missing"),
    pytest.param(entry(key="note"), {("key-field", "note")}, id="key-field-optional"),
    pytest.param(entry(owner="salesforce"), {("owner-known", "")}, id="unknown-owner"),
    pytest.param(entry(topic="billing.invoices"), {("compatibility", "")}, id="financial-topic-not-full"),
    pytest.param(entry(topic="billing.invoices", compatibility="FULL"), set(), id="financial-topic-full"),
    pytest.param(entry(compatibility="NONE"), {("compatibility", "")}, id="compatibility-none"),
]


def write_catalogue(root: Path, schema: dict[str, Any], catalogue_entry: dict[str, Any]) -> Path:
    schemas = root / "schemas"
    (schemas / "common").mkdir(parents=True)
    (schemas / "billing").mkdir()
    for name in ("Meta", "Money", "SourceSystem"):
        shutil.copy(repo_root() / "schemas" / "common" / f"{name}.avsc", schemas / "common")
    (schemas / "billing" / f"{schema['name']}.avsc").write_text(json.dumps(schema, indent=2))
    topics = [
        {"name": name, "owner": "billing", "key": "canonical customer account id", "partitions": 1}
        for name in ("billing.things", "billing.invoices")
    ]
    (schemas / "topics.yaml").write_text(yaml.safe_dump({"topics": topics}))
    catalogue = {
        "systems": {"billing": {"name": "Billing", "system_of_record_for": "things"}},
        "events": {f"{schema['namespace']}.{schema['name']}": catalogue_entry},
    }
    (schemas / "catalogue.yaml").write_text(yaml.safe_dump(catalogue))
    return schemas


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_lint_rule(tmp_path: Path, mutate: Mutation | None, expected: set[tuple[str, str]]) -> None:
    schema, catalogue_entry = copy.deepcopy(BASE_EVENT), dict(BASE_ENTRY)
    if mutate is not None:
        mutate(schema, catalogue_entry)
    findings = lint(source.load(write_catalogue(tmp_path, schema, catalogue_entry)))
    assert {(f.rule, f.path) for f in findings} == expected, [str(f) for f in findings]


def test_a_finding_names_file_field_and_what_to_do(tmp_path: Path) -> None:
    schema = copy.deepcopy(BASE_EVENT)
    schema["fields"].append({"name": "total", "type": DECIMAL, "doc": "Sum."})
    [finding] = lint(source.load(write_catalogue(tmp_path, schema, dict(BASE_ENTRY))))
    assert str(finding) == (
        "billing/ThingShipped.avsc field 'total': money is accord.common.Money (amount and currency), "
        "not a bare decimal [money-type]"
    )


def test_an_event_without_catalogue_entry_is_reported(tmp_path: Path) -> None:
    schemas = write_catalogue(tmp_path, copy.deepcopy(BASE_EVENT), dict(BASE_ENTRY))
    other = {**copy.deepcopy(BASE_EVENT), "name": "ThingLost"}
    other["fields"] = other["fields"][:3]
    (schemas / "billing" / "ThingLost.avsc").write_text(json.dumps(other))
    findings = lint(source.load(schemas))
    assert [(f.rule, f.where) for f in findings] == [("event-catalogued", "ThingLost.avsc")]


@pytest.mark.parametrize(
    ("write", "message"),
    [
        pytest.param(lambda s: (s / "billing" / "Bad.avsc").write_text("{"), "not valid JSON", id="invalid-json"),
        pytest.param(
            lambda s: (s / "billing" / "Bad.avsc").write_text('{"type": "string"}'), "one named type", id="not-named"
        ),
        pytest.param(
            lambda s: (s / "billing" / "Dup.avsc").write_text((s / "common" / "Money.avsc").read_text()),
            "already defined",
            id="duplicate-type",
        ),
    ],
)
def test_unreadable_catalogue_is_a_clear_error(tmp_path: Path, write: Callable[[Path], Any], message: str) -> None:
    schemas = write_catalogue(tmp_path, copy.deepcopy(BASE_EVENT), dict(BASE_ENTRY))
    write(schemas)
    with pytest.raises(source.CatalogueError, match=message):
        source.load(schemas)


def test_unknown_type_reference_names_it(tmp_path: Path) -> None:
    schema = copy.deepcopy(BASE_EVENT)
    field(schema, "amount")["type"] = "accord.common.Mony"
    with pytest.raises(source.CatalogueError, match=r"unknown type 'accord\.common\.Mony'"):
        source.load(write_catalogue(tmp_path, schema, dict(BASE_ENTRY)))
