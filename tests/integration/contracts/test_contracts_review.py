"""`accord schemas register|check|diff` against the real schema registry (on real Kafka)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from accord.cli import app
from accord.events import catalogue as source

pytestmark = pytest.mark.kafka


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["schemas", *args])


def subject_of(schemas: Path, record: str) -> str:
    return source.load(schemas).events[record].subject


def edit_event(schemas: Path, path: str, **new_field: object) -> None:
    file = schemas / path
    schema = json.loads(file.read_text())
    schema["fields"].append(new_field)
    file.write_text(json.dumps(schema, indent=2))


def test_register_all_sets_levels_and_then_check_passes(registry_url: str, isolated_schemas: Path) -> None:
    n = len(source.load(isolated_schemas).events)
    first = run("register", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert first.exit_code == 0, first.output
    assert f"{n} subject(s)" in first.output and f"{n} registered, 0 unchanged" in first.output

    again = run("register", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert again.exit_code == 0, again.output
    assert f"0 registered, {n} unchanged" in again.output

    catalogue = source.load(isolated_schemas)
    for event in catalogue.events.values():
        config = httpx.get(f"{registry_url}/config/{event.subject}").json()
        assert config["compatibilityLevel"] == event.compatibility, event.subject
        latest = httpx.get(f"{registry_url}/subjects/{event.subject}/versions/latest").json()
        assert json.loads(latest["schema"]) == event.schema
    assert catalogue.events["accord.billing.InvoiceIssued"].compatibility == "FULL"

    check = run("check", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert check.exit_code == 0, check.output
    assert f"{n} unchanged; 0 violation(s) -> OK" in check.output


def test_check_of_a_new_catalogue_reports_new_subjects(registry_url: str, isolated_schemas: Path) -> None:
    result = run("check", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert result.exit_code == 0, result.output
    assert f"{len(source.load(isolated_schemas).events)} new" in result.output


def test_new_field_without_default_fails_check_naming_subject_and_field(
    registry_url: str, isolated_schemas: Path
) -> None:
    assert run("register", "--schemas", str(isolated_schemas), "--registry", registry_url).exit_code == 0
    edit_event(isolated_schemas, "billing/InvoiceIssued.avsc", name="po_number", type="string", doc="PO number.")
    subject = subject_of(isolated_schemas, "accord.billing.InvoiceIssued")

    result = run("check", "--schemas", str(isolated_schemas), "--registry", registry_url)

    assert result.exit_code == 1, result.output
    assert f"{subject} field 'po_number': was added without a default" in result.output
    # the registry's own verdict is reported too, under the subject's level
    assert f"{subject}: the registry says it is incompatible with version 1 under FULL" in result.output
    assert "added field `po_number` (string) without a default" in result.output
    assert "1 incompatible" in result.output and "FAILED" in result.output


def test_compatible_change_passes_check_and_registers_as_a_new_version(
    registry_url: str, isolated_schemas: Path
) -> None:
    assert run("register", "--schemas", str(isolated_schemas), "--registry", registry_url).exit_code == 0
    edit_event(
        isolated_schemas,
        "billing/PaymentFailed.avsc",
        name="network_advice_code",
        type=["null", "string"],
        default=None,
        doc="Card network's advice code, if any.",
    )
    subject = subject_of(isolated_schemas, "accord.billing.PaymentFailed")

    check = run("check", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert check.exit_code == 0, check.output
    others = len(source.load(isolated_schemas).events) - 1
    assert f"1 changed, {others} unchanged" in check.output

    register = run("register", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert register.exit_code == 0, register.output
    assert f"1 registered, {others} unchanged" in register.output

    diff = run("diff", subject, "1", "2", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert diff.exit_code == 0, diff.output
    assert f"{subject}: version 1 -> version 2 (compatibility FULL)" in diff.output
    assert "added field `network_advice_code` (optional string, default null)" in diff.output
    assert "1 change(s), 0 breaking under FULL" in diff.output


def test_diff_without_versions_compares_latest_with_the_local_schema(registry_url: str, isolated_schemas: Path) -> None:
    assert run("register", "--schemas", str(isolated_schemas), "--registry", registry_url).exit_code == 0
    edit_event(isolated_schemas, "crm/ContractAmended.avsc", name="signed_by", type="string", doc="Signer.")
    subject = subject_of(isolated_schemas, "accord.crm.ContractAmended")

    result = run("diff", subject, "--schemas", str(isolated_schemas), "--registry", registry_url)

    assert result.exit_code == 0, result.output
    assert f"{subject}: version 1 -> local ContractAmended.avsc (compatibility BACKWARD)" in result.output
    assert "added field `signed_by` (string) without a default" in result.output
    assert "[new-field-default]" in result.output


def test_register_refuses_a_catalogue_that_does_not_lint(registry_url: str, isolated_schemas: Path) -> None:
    edit_event(isolated_schemas, "billing/InvoiceVoided.avsc", name="fee", type="double", doc="Fee.")
    result = run("register", "--schemas", str(isolated_schemas), "--registry", registry_url)
    assert result.exit_code == 1
    assert "field 'fee'" in result.output and "lint problem(s)" in result.output
    subject = subject_of(isolated_schemas, "accord.billing.InvoiceVoided")
    assert httpx.get(f"{registry_url}/subjects/{subject}/versions").status_code == 404


def test_unreachable_registry_is_a_clear_error(isolated_schemas: Path) -> None:
    result = run("check", "--schemas", str(isolated_schemas), "--registry", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "schema registry http://127.0.0.1:9 did not answer" in result.output


def test_check_applies_the_catalogue_level_even_where_the_registry_is_laxer(
    registry_url: str, isolated_schemas: Path
) -> None:
    assert run("register", "--schemas", str(isolated_schemas), "--registry", registry_url).exit_code == 0
    subject = subject_of(isolated_schemas, "accord.billing.PaymentCollected")
    # someone relaxed the subject by hand: removing a field without default is fine under BACKWARD ...
    assert httpx.put(f"{registry_url}/config/{subject}", json={"compatibility": "BACKWARD"}).status_code == 200
    file = isolated_schemas / "billing" / "PaymentCollected.avsc"
    schema = json.loads(file.read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "method"]
    file.write_text(json.dumps(schema, indent=2))

    result = run("check", "--schemas", str(isolated_schemas), "--registry", registry_url)

    # ... but the catalogue says FULL (a financial event), so old readers must still read new events
    assert result.exit_code == 1, result.output
    assert f"{subject} field 'method': was removed but had no default" in result.output
    assert "(compatibility FULL) [removed-field-default]" in result.output
    assert f"{subject}: the registry enforces BACKWARD but the catalogue says FULL" in result.output
    assert "the registry says it is incompatible" not in result.output  # the registry alone would let it in
