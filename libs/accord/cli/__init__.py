"""The `accord` command: one sub-command group per concern, each in its own module here."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from accord.errors import AccordError

from . import demo, dev, dlq, exceptions, replay, sandbox, schemas, topics

app = typer.Typer(
    name="accord",
    help="accord: quote-to-cash integration over Apache Kafka. Operator and developer commands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(dev.app, name="dev")
app.add_typer(topics.app, name="topics")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(schemas.app, name="schemas")
app.add_typer(dlq.app, name="dlq")
app.add_typer(exceptions.app, name="exceptions")
app.command("replay")(replay.replay)
app.command("demo")(demo.demo)
# Services add their own groups (`accord reconcile`) through the `accord.cli` entry point group.
for _entry in entry_points(group="accord.cli"):
    app.add_typer(_entry.load(), name=_entry.name)


def main() -> None:
    try:
        app()
    except AccordError as exc:
        # Errors accord raises on purpose are diagnoses for a person, not stack traces.
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None


__all__ = ["app", "main"]
