"""`accord schemas diff` wording and which changes break which compatibility level."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from accord.avro import Level, check, parse_avro
from accord.events import InvoiceIssued
from accord.schema_review import Severity, compatibility_findings, diff, meaning_changes

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = json.loads(InvoiceIssued.SCHEMA)
SUBJECT = "billing.invoices-accord.billing.InvoiceIssued"


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema["fields"]  # type: ignore[no-any-return]


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in fields(schema) if f["name"] == name)


def line_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return field(schema, "lines")["type"]["items"]["fields"]  # type: ignore[no-any-return]


def _add_po(s: dict[str, Any]) -> None:
    fields(s).append({"name": "po_number", "type": "string", "doc": "Purchase order."})


def _add_optional_po(s: dict[str, Any]) -> None:
    fields(s).append({"name": "po_number", "type": ["null", "string"], "default": None, "doc": "PO."})


def _add_line_discount(s: dict[str, Any]) -> None:
    line_fields(s).append({"name": "discount", "type": ["null", "accord.common.Money"], "default": None, "doc": "D."})


def _remove_contract_id(s: dict[str, Any]) -> None:
    s["fields"] = [f for f in fields(s) if f["name"] != "contract_id"]


def _remove_invoice_number(s: dict[str, Any]) -> None:
    s["fields"] = [f for f in fields(s) if f["name"] != "invoice_number"]


def _rename_with_alias(s: dict[str, Any]) -> None:
    field(s, "invoice_number").update(name="number", aliases=["invoice_number"])


def _rename_without_alias(s: dict[str, Any]) -> None:
    field(s, "invoice_number")["name"] = "number"


def _retype(s: dict[str, Any]) -> None:
    field(s, "invoice_id")["type"] = "long"


def _make_optional(s: dict[str, Any]) -> None:
    field(s, "invoice_number").update(type=["null", "string"], default=None)


def _make_required(s: dict[str, Any]) -> None:
    field(s, "contract_id").update(type="string")
    del field(s, "contract_id")["default"]


def _add_symbol(s: dict[str, Any]) -> None:
    meta = field(s, "meta")["type"]
    field(meta, "source_system")["type"]["symbols"].append("TAX")


def _remove_symbol(s: dict[str, Any]) -> None:
    meta = field(s, "meta")["type"]
    field(meta, "source_system")["type"]["symbols"].remove("ERP")


def _redoc(s: dict[str, Any]) -> None:
    field(s, "due_date")["doc"] = "When payment is due."


def _scale(s: dict[str, Any]) -> None:
    money = field(field(s, "lines")["type"]["items"], "unit_price")["type"]  # the first use of Money defines it
    money["fields"][0]["type"]["scale"] = 2


Mutation = Callable[[dict[str, Any]], None]
# (mutation, the sentences `diff` prints, {level: rules broken})
CASES = [
    pytest.param(lambda s: None, [], {}, id="identical"),
    pytest.param(
        _add_po,
        ["added field `po_number` (string) without a default"],
        {"BACKWARD": ["new-field-default"], "FULL": ["new-field-default"], "FORWARD": []},
        id="field-added-without-default",
    ),
    pytest.param(
        _add_optional_po,
        ["added field `po_number` (optional string, default null)"],
        {"BACKWARD": [], "FULL": []},
        id="optional-field-added",
    ),
    pytest.param(
        _add_line_discount,
        ["added field `lines[].discount` (optional accord.common.Money, default null)"],
        {"FULL": []},
        id="nested-field-added",
    ),
    pytest.param(
        _remove_contract_id,
        ["removed field `contract_id` (optional string, had default null)"],
        {"BACKWARD": [], "FULL": []},
        id="optional-field-removed",
    ),
    pytest.param(
        _remove_invoice_number,
        ["removed field `invoice_number` (string, had no default)"],
        {"BACKWARD": [], "FULL": ["removed-field-default"]},
        id="required-field-removed",
    ),
    pytest.param(
        _rename_with_alias,
        ["renamed field `invoice_number` to `number` (the alias `invoice_number` keeps old data readable)"],
        {"BACKWARD": []},
        id="renamed-with-alias",
    ),
    pytest.param(
        _rename_without_alias,
        [
            "removed field `invoice_number` (string, had no default)",
            "added field `number` (string) without a default",
        ],
        {
            "BACKWARD": ["rename-without-alias", "new-field-default"],
            "FULL": ["removed-field-default", "rename-without-alias", "new-field-default"],
        },
        id="renamed-without-alias",
    ),
    pytest.param(
        _retype,
        ["changed the type of `invoice_id` from string to long"],
        {"BACKWARD": ["type-change"]},
        id="type-changed",
    ),
    pytest.param(
        _make_optional,
        [
            "made `invoice_number` optional (string -> optional string)",
            "changed the default of `invoice_number` from no default to null",
        ],
        {"BACKWARD": []},
        id="made-optional",
    ),
    pytest.param(
        _make_required,
        [
            "made `contract_id` required (optional string -> string)",
            "changed the default of `contract_id` from null to no default",
        ],
        {"BACKWARD": ["became-required"], "FORWARD": []},
        id="made-required",
    ),
    pytest.param(
        _add_symbol,
        ["added symbol(s) TAX to enum `meta.source_system`"],
        {"FULL": []},
        id="enum-symbol-added-with-default",
    ),
    pytest.param(
        _remove_symbol,
        ["removed symbol(s) ERP from enum `meta.source_system`"],
        {"BACKWARD": []},
        id="enum-symbol-removed-with-default",
    ),
    pytest.param(
        _redoc,
        ['reworded the doc of `due_date`: "Date payment is due." -> "When payment is due."'],
        {"FULL": []},
        id="doc-reworded",
    ),
    pytest.param(
        _scale,
        ["changed the type of `lines[].unit_price.amount` from decimal(18,4) to decimal(18,2)"],
        # Avro's resolution rules (and so the registry) ignore logical types: bytes reads bytes
        {"BACKWARD": []},
        id="decimal-scale-changed",
    ),
]


CASES_BY_ID = {case.id: case.values[0] for case in CASES}


@pytest.mark.parametrize(("mutate", "sentences", "broken"), CASES)
def test_diff(mutate: Mutation, sentences: list[str], broken: dict[str, list[str]]) -> None:
    new = copy.deepcopy(BASE)
    mutate(new)
    changes = diff(BASE, new)
    assert [c.describe() for c in changes] == sentences
    for level, rules in broken.items():
        findings = compatibility_findings(SUBJECT, BASE, new, level, changes)
        assert [f.rule for f in findings] == rules, level
        # the verdict is the shared checker's, the very one the registry runs
        verdict = check(Level(level), parse_avro(json.dumps(new)), [(1, parse_avro(json.dumps(BASE)))])
        assert verdict.compatible is not any(f.severity is Severity.ERROR for f in findings), level


def test_a_breaking_change_names_subject_field_level_and_fix() -> None:
    new = copy.deepcopy(BASE)
    _add_po(new)
    [finding] = compatibility_findings(SUBJECT, BASE, new, "FULL")
    assert str(finding) == (
        "billing.invoices-accord.billing.InvoiceIssued field 'po_number': was added without a default: new readers "
        'cannot read old events; make it optional with "default": null or give it a default (compatibility FULL) '
        "[new-field-default]"
    )
    assert (finding.where, finding.path) == (SUBJECT, "po_number")


def test_enum_symbol_removed_without_default_breaks_backward() -> None:
    old = copy.deepcopy(BASE)
    source_system = field(field(old, "meta")["type"], "source_system")["type"]
    del source_system["default"]
    new = copy.deepcopy(old)
    field(field(new, "meta")["type"], "source_system")["type"]["symbols"].remove("ERP")
    assert [f.rule for f in compatibility_findings(SUBJECT, old, new, "BACKWARD")] == ["enum-symbol-removed"]


def test_a_compatible_rename_without_alias_still_warns() -> None:
    new = copy.deepcopy(BASE)
    field(new, "contract_id")["name"] = "crm_contract_id"  # optional: compatible, but values are lost
    [finding] = compatibility_findings(SUBJECT, BASE, new, "FULL")
    assert finding.rule == "rename-without-alias"
    assert finding.severity.value == "warning"
    assert finding.path == "crm_contract_id"
    assert '"aliases": ["contract_id"]' in finding.message


def test_an_incompatibility_without_advice_carries_the_checkers_reason_at_its_field() -> None:
    new = copy.deepcopy(BASE)
    _rename_with_alias(new)  # new readers find the old field by its alias; old readers know no alias
    [finding] = compatibility_findings(SUBJECT, BASE, new, "FULL")
    assert (finding.rule, finding.path) == ("reader-field-missing-default-value", "invoice_number")
    assert "has no default value and is missing in the new schema (compatibility FULL)" in finding.message


def test_making_a_field_optional_breaks_forward() -> None:
    new = copy.deepcopy(BASE)
    _make_optional(new)
    [finding] = compatibility_findings(SUBJECT, BASE, new, "FULL")
    assert (finding.rule, finding.path) == ("became-optional", "invoice_number")


def test_a_renamed_record_is_a_new_subject() -> None:
    new = copy.deepcopy(BASE)
    new["name"] = "InvoiceRaised"
    [finding] = compatibility_findings(SUBJECT, BASE, new, "FULL")
    assert (finding.rule, finding.path) == ("record-renamed", "")
    assert "from accord.billing.InvoiceIssued to accord.billing.InvoiceRaised" in finding.message


def test_a_decimal_scale_change_fails_review_though_every_level_accepts_it() -> None:
    new = copy.deepcopy(BASE)
    CASES_BY_ID["decimal-scale-changed"](new)
    changes = diff(BASE, new)
    assert compatibility_findings(SUBJECT, BASE, new, "FULL_TRANSITIVE", changes) == []
    [finding] = meaning_changes(SUBJECT, changes)
    assert finding.rule == "decimal-scale-changed" and finding.severity is Severity.ERROR
    assert finding.path == "lines[].unit_price.amount"
    assert "decimal(18,4) to decimal(18,2)" in finding.message
