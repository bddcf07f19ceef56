"""`accord schemas generate|check|register|diff`: reviewing and publishing the event contracts.

`check` is what a CI pipeline runs on a schema change: it lints `schemas/` and reviews every subject
against the registry's latest version, and exits 1 on any violation.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from accord import schema_review as review
from accord.devstack import repo_root
from accord.errors import AccordError
from accord.events import catalogue as source
from accord.events import codegen
from accord.serde import registry_url_from_env

app = typer.Typer(help="The event contracts: Avro schemas in schemas/ and the schema registry.", no_args_is_help=True)
# soft_wrap: one finding per line whatever the width, so CI logs can be grepped
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SchemasOption = Annotated[Path, typer.Option("--schemas", help="The schemas/ folder (catalogue).")]
RegistryOption = Annotated[
    str | None,
    typer.Option("--registry", help="Schema registry URL (default: $SCHEMA_REGISTRY_URL, else the local stack's)."),
]
DEFAULT_SCHEMAS = repo_root() / "schemas"


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


def _load(schemas: Path) -> source.Catalogue:
    try:
        return source.load(schemas)
    except AccordError as exc:
        raise _fail(str(exc)) from None


def _registry(url: str | None) -> review.RegistryClient:
    try:
        return review.RegistryClient(url or registry_url_from_env())
    except AccordError as exc:
        raise _fail(str(exc)) from None


@app.command()
def generate(
    schemas: SchemasOption = DEFAULT_SCHEMAS,
    check: Annotated[bool, typer.Option("--check", help="Only report whether the files are current.")] = False,
) -> None:
    """Write the event classes (libs/accord/events/_generated.py) and schemas/README.md from the catalogue."""
    catalogue = _load(schemas)
    root = schemas.resolve().parent
    targets = {
        root / codegen.MODULE_PATH: codegen.generate_module(catalogue),
        root / codegen.README_PATH: codegen.generate_readme(catalogue),
    }
    stale = [path for path, text in targets.items() if not path.exists() or path.read_text() != text]
    if check:
        for path in stale:
            err.print(f"stale: {path} (run `accord schemas generate`)")
        if stale:
            raise typer.Exit(1)
        err.print(f"{len(targets)} generated file(s) current")
        return
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(targets[path])
        err.print(f"wrote {path}")
    err.print(f"{len(stale)} file(s) written, {len(targets) - len(stale)} already current")


def _print_findings(findings: list[review.Finding]) -> None:
    for f in findings:
        colour = "red" if f.severity is review.Severity.ERROR else "yellow"
        out.print(f"    [{colour}]{f.severity.value}[/{colour}] {escape(str(f))}")


def _baseline(schemas: Path, ref: str) -> source.Catalogue:
    """The catalogue as it is at git `ref`, exported to a temporary folder."""
    root = schemas.resolve()
    try:
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", top, "archive", "--format=tar", ref, "--", str(root.relative_to(top))],
            capture_output=True,
            check=True,
        ).stdout
    except (subprocess.CalledProcessError, OSError, ValueError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        raise _fail(f"cannot read {schemas} at git ref {ref!r}: {detail!s}") from None
    with tempfile.TemporaryDirectory(prefix="accord-baseline-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        return _load(Path(folder) / root.relative_to(top))


def _print_subject(event: source.EventSpec, report: review.SubjectReport) -> None:
    version = "-" if report.latest_version is None else f"v{report.latest_version}" if report.latest_version else "base"
    colour = {"incompatible": "red", "changed": "cyan", "new": "green"}.get(report.status, "dim")
    status_text = f"[{colour}]{report.status}[/{colour}]"
    out.print(f"  {escape(event.subject)}  {event.compatibility}  {version}  {status_text}")
    for change in report.changes:
        out.print(f"    - {escape(change.describe())}")
    _print_findings(report.findings)


@app.command()
def check(
    schemas: SchemasOption = DEFAULT_SCHEMAS,
    registry: RegistryOption = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not ask the registry.")] = False,
    baseline_ref: Annotated[
        str | None,
        typer.Option(
            "--baseline-ref",
            help="Also review each event against the catalogue at this git ref (e.g. origin/main), offline.",
        ),
    ] = None,
) -> None:
    """Lint the schemas and review each against its subject's latest version; exit 1 on any violation."""
    catalogue = _load(schemas)
    findings = review.lint(catalogue)
    out.print(f"accord schemas check: {len(catalogue.events)} events, {len(catalogue.types)} types in {schemas}")
    out.print(f"lint: {len(findings) or 'no'} problem(s)")
    _print_findings(findings)
    reports: list[review.SubjectReport] = []
    if baseline_ref is not None:
        baseline = _baseline(schemas, baseline_ref)
        out.print(f"baseline: git {baseline_ref}")
        for event in catalogue.events.values():
            report = review.check_against_baseline(baseline, event)
            reports.append(report)
            _print_subject(event, report)
    if not offline:
        client = _registry(registry)
        out.print(f"registry: {client.url}")
        try:
            with client, err.status("reviewing subjects") as status:
                for event in catalogue.events.values():
                    status.update(f"reviewing {event.subject}")
                    report = review.check_subject(client, event)
                    reports.append(report)
                    _print_subject(event, report)
        except review.RegistryError as exc:
            raise _fail(str(exc)) from None
    errors = [f for f in findings if f.severity is review.Severity.ERROR]
    errors += [f for r in reports for f in r.findings if f.severity is review.Severity.ERROR]
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    subjects = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "not reviewed"
    verdict = "[red]FAILED[/red]" if errors else "[green]OK[/green]"
    out.print(f"summary: {len(reports)} subject(s): {subjects}; {len(errors)} violation(s) -> {verdict}")
    if errors:
        raise typer.Exit(1)


@app.command()
def register(schemas: SchemasOption = DEFAULT_SCHEMAS, registry: RegistryOption = None) -> None:
    """Register every event schema under its subject and set its compatibility level (FULL for financial)."""
    catalogue = _load(schemas)
    problems = [f for f in review.lint(catalogue) if f.severity is review.Severity.ERROR]
    if problems:
        _print_findings(problems)
        raise _fail(f"{len(problems)} lint problem(s): fix them (see `accord schemas check --offline`) first")
    client = _registry(registry)
    done: list[review.Registration] = []
    try:
        with client:
            for event in catalogue.events.values():
                r = review.register_event(client, event)
                done.append(r)
                out.print(f"  {escape(r.subject)}  {r.compatibility}  id {r.schema_id}  {r.outcome}")
    except review.RegistryError as exc:
        raise _fail(f"{exc} ({len(done)} of {len(catalogue.events)} subjects done; safe to run again)") from None
    new = sum(r.outcome == "registered" for r in done)
    out.print(f"summary: {len(done)} subject(s) on {client.url}: {new} registered, {len(done) - new} unchanged")


@app.command()
def diff(
    subject: Annotated[str, typer.Argument(help="Subject, e.g. billing.invoices-accord.billing.InvoiceIssued.")],
    v1: Annotated[int | None, typer.Argument(help="Older version (default: the latest registered).")] = None,
    v2: Annotated[int | None, typer.Argument(help="Newer version (default: the local schema, else latest).")] = None,
    schemas: SchemasOption = DEFAULT_SCHEMAS,
    registry: RegistryOption = None,
) -> None:
    """What changed between two versions of a subject, in words.

    With no versions: the latest registered version against the local schema (what `register` would
    change). With V1 only: V1 against the local schema, or against the latest when the subject is
    not in the local catalogue. With V1 and V2: those two registered versions.
    """
    catalogue = _load(schemas)
    event = catalogue.event_for_subject(subject)
    client = _registry(registry)
    try:
        with client:
            versions = client.versions(subject)
            if not versions and event is None:
                raise _fail(f"subject {subject!r} is neither registered on {client.url} nor in the catalogue")

            def fetch(version: int) -> str:
                found = client.version(subject, version)
                if found is None:
                    raise _fail(f"subject {subject!r} has no version {version}; it has {versions or 'none'}")
                return found.schema

            if v1 is not None and v2 is not None:
                old_label, old, new_label, new = f"version {v1}", fetch(v1), f"version {v2}", fetch(v2)
            else:
                older = v1 if v1 is not None else (versions[-1] if versions else None)
                if event is not None:
                    new_label, new = f"local {catalogue.types[event.fullname].path.name}", event.schema_str
                elif len(versions) >= 2 or (v1 is not None and versions):
                    new_label, new = f"version {versions[-1]}", fetch(versions[-1])
                    older = v1 if v1 is not None else versions[-2]
                else:
                    raise _fail(f"subject {subject!r} has a single version; nothing to compare")
                old_label, old = (f"version {older}", fetch(older)) if older is not None else ("nothing", "")
            level = event.compatibility if event else (client.compatibility(subject) or "BACKWARD")
    except review.RegistryError as exc:
        raise _fail(str(exc)) from None
    out.print(f"{escape(subject)}: {old_label} -> {new_label} (compatibility {level})")
    if not old:
        out.print("  new subject: every field is new")
        return
    changes = review.diff(json.loads(old), json.loads(new))
    if not changes:
        out.print("  no changes")
    for change in changes:
        out.print(f"  - {escape(change.describe())}")
    findings = review.compatibility_findings(subject, json.loads(old), json.loads(new), level, changes)
    findings += review.meaning_changes(subject, changes)
    _print_findings(findings)
    breaking = [f for f in findings if f.severity is review.Severity.ERROR]
    out.print(f"summary: {len(changes)} change(s), {len(breaking)} breaking under {level}")
