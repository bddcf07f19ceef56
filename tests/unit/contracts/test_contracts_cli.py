"""`accord schemas check --offline` and `generate` on a catalogue copy: exit codes and messages."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli import app
from accord.devstack import repo_root
from accord.events import catalogue
from accord.serde import DecodeError, DecodeFailure, EventCodec

pytestmark = pytest.mark.unit


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    copy = tmp_path / "schemas"
    shutil.copytree(repo_root() / "schemas", copy)
    return copy


def test_offline_check_passes_on_the_committed_catalogue(schemas: Path) -> None:
    result = CliRunner().invoke(app, ["schemas", "check", "--offline", "--schemas", str(schemas)])
    assert result.exit_code == 0, result.output
    assert "lint: no problem(s)" in result.output and "-> OK" in result.output


def test_offline_check_fails_naming_file_field_and_rule(schemas: Path) -> None:
    path = schemas / "billing" / "PaymentRefunded.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "fee", "type": "double"})
    path.write_text(json.dumps(schema))

    result = CliRunner().invoke(app, ["schemas", "check", "--offline", "--schemas", str(schemas)])

    assert result.exit_code == 1
    assert "billing/PaymentRefunded.avsc field 'fee': every field needs a doc" in result.output
    assert "billing/PaymentRefunded.avsc field 'fee': double is not allowed" in result.output
    assert "[money-type]" in result.output
    assert "3 violation(s) -> FAILED" in result.output


def test_a_broken_file_is_an_error_not_a_traceback(schemas: Path) -> None:
    (schemas / "crm" / "ContractRenewed.avsc").write_text('{"type": "record", "name": ')
    result = CliRunner().invoke(app, ["schemas", "check", "--offline", "--schemas", str(schemas)])
    assert result.exit_code == 1
    assert "ContractRenewed.avsc: not valid JSON (line 1" in result.output
    assert "Traceback" not in result.output


def test_generate_writes_the_module_and_readme_for_a_changed_catalogue(schemas: Path) -> None:
    path = schemas / "billing" / "InvoiceVoided.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "voided_by", "type": ["null", "string"], "default": None, "doc": "Who voided."})
    path.write_text(json.dumps(schema))
    runner = CliRunner()

    assert runner.invoke(app, ["schemas", "generate", "--check", "--schemas", str(schemas)]).exit_code == 1
    result = runner.invoke(app, ["schemas", "generate", "--schemas", str(schemas)])
    assert result.exit_code == 0, result.output

    module = (schemas.parent / "libs" / "accord" / "events" / "_generated.py").read_text()
    assert '    voided_by: str | None = Field(\n        default=None,\n        description="Who voided.",' in module
    assert "| `voided_by` | optional string | Who voided. |" in (schemas / "README.md").read_text()
    assert runner.invoke(app, ["schemas", "generate", "--check", "--schemas", str(schemas)]).exit_code == 0


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        pytest.param(None, "no value (tombstone)", id="tombstone"),
        pytest.param(b"\x00\x00\x01", "3 byte(s), shorter than the 5-byte header", id="short"),
        pytest.param(b"\x02\x00\x00\x00\x01\x00", "first byte is 2, not 0: not Confluent-framed Avro", id="magic"),
    ],
)
def test_header_failures_need_no_registry(value: bytes | None, detail: str) -> None:
    # nothing listens on port 9: a header failure must be found before any registry call
    with EventCodec.connect("http://127.0.0.1:9") as codec, pytest.raises(DecodeError) as caught:
        codec.decode("billing.invoices", value)
    assert caught.value.reason is DecodeFailure.BAD_MAGIC_BYTE
    assert caught.value.schema_id is None
    assert caught.value.detail == detail
    assert "topic 'billing.invoices'" in str(caught.value)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(repo), *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository of its own holding a copy of schemas/, committed."""
    repo = tmp_path / "repo"
    shutil.copytree(repo_root() / "schemas", repo / "schemas")
    _git(repo, "init", "-q")
    _git(repo, "add", "schemas")
    _git(repo, "commit", "-q", "-m", "catalogue")
    return repo


def test_offline_review_against_a_git_baseline(repo: Path) -> None:
    runner = CliRunner()
    args = ["schemas", "check", "--offline", "--baseline-ref", "HEAD", "--schemas", str(repo / "schemas")]
    unchanged = runner.invoke(app, args)
    assert unchanged.exit_code == 0, unchanged.output
    events = len(catalogue.load(repo / "schemas").events)
    assert f"{events} subject(s): {events} unchanged" in unchanged.output

    path = repo / "schemas" / "billing" / "InvoiceIssued.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "po_number", "type": "string", "doc": "Purchase order."})
    path.write_text(json.dumps(schema))
    result = runner.invoke(app, args)

    assert result.exit_code == 1, result.output
    assert (
        "billing.invoices-accord.billing.InvoiceIssued field 'po_number': was added without a default" in result.output
    )
    assert f"1 incompatible, {events - 1} unchanged" in result.output


def test_a_bad_git_ref_is_a_clear_error(repo: Path) -> None:
    args = ["schemas", "check", "--offline", "--baseline-ref", "no-such-ref", "--schemas", str(repo / "schemas")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "at git ref 'no-such-ref'" in result.output
