"""`accord sandbox …`: the operator's knobs of the SaaS sandbox, over its admin HTTP API.

The sandbox is found at --url, else ACCORD_SANDBOX_URL, else the running local stack (`accord dev up`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from accord.devstack import Stack
from accord.errors import AccordError, ConfigurationError

app = typer.Typer(
    help="Drive the SaaS sandbox: clock, faults, periods, edits, webhooks, generator.", no_args_is_help=True
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Sandbox URL (default $ACCORD_SANDBOX_URL or the local stack).")
]
SYSTEMS = ("crm", "billing", "erp")


class SandboxRequestError(AccordError):
    """The sandbox refused an admin request; the message carries its answer."""


def sandbox_url(url: str | None) -> str:
    value = url or os.environ.get("ACCORD_SANDBOX_URL") or Stack().env().get("ACCORD_SANDBOX_URL")
    if not value:
        raise ConfigurationError(
            "no sandbox: pass --url, set ACCORD_SANDBOX_URL or start the stack with `accord dev up`"
        )
    return value.rstrip("/")


def call(url: str | None, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    base = sandbox_url(url)
    try:
        response = httpx.request(method, base + path, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SandboxRequestError(f"the sandbox at {base} does not answer ({type(exc).__name__}: {exc})") from None
    if response.status_code >= 400:
        try:
            detail = response.json()
            detail = detail.get("detail") or detail.get("title") or detail if isinstance(detail, dict) else detail
        except ValueError:
            detail = response.text[:300]
        raise SandboxRequestError(f"{method} {path} → {response.status_code}: {detail}")
    return response.json() if response.content else None


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise typer.BadParameter(f"{text!r}: use a number with s, m, h or d (for example 90s, 2h, 3d)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}[match.group(2)]


def _system(value: str) -> str:
    if value not in SYSTEMS:
        raise typer.BadParameter(f"{value!r}: one of {', '.join(SYSTEMS)}")
    return value


@app.command()
def status(url: UrlOption = None) -> None:
    """Clock, knobs, ERP governance, record counts and webhook deliveries."""
    data = call(url, "GET", "/admin/status")
    console.print(f"sandbox time {data['now']} (offset {data['clock_offset_seconds']:.0f}s), seed {data['seed']}")
    erp = data["erp"]
    console.print(
        f"ERP concurrency limit {erp['concurrency_limit']}, in flight {erp['in_flight']}, rejected {erp['rejected']}"
    )
    table = Table(title="records")
    table.add_column("system.kind")
    table.add_column("count", justify="right")
    for name, count in data["records"].items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"webhook deliveries: {data['deliveries'] or 'none'}")
    console.print(f"faults: {json.dumps(data['faults']) if data['faults'] else 'none'}")


@app.command()
def clock(
    advance: Annotated[str | None, typer.Option("--advance", help="Move sandbox time forward: 90s, 2h, 3d.")] = None,
    url: UrlOption = None,
) -> None:
    """Show sandbox time, or advance it (renewals, finalizations and payment retries that fall due then run)."""
    if advance is None:
        console.print(call(url, "GET", "/admin/clock")["now"])
        return
    data = call(url, "POST", "/admin/clock/advance", {"seconds": _duration(advance)}, timeout=300)
    console.print(f"sandbox time now {data['now']}; {data['billing_actions']} billing action(s) ran")


@app.command()
def fault(
    system: Annotated[str, typer.Argument(help="crm, billing or erp.", callback=_system)],
    endpoint: Annotated[str, typer.Option(help='"*", "webhooks", or a "METHOD /path" prefix.')] = "*",
    latency_ms: Annotated[int, typer.Option(help="Added latency per request.")] = 0,
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 5xx (before they run).")] = 0.0,
    rate_429: Annotated[float, typer.Option("--rate-429", help="Share answered 429 (403 on the CRM).")] = 0.0,
    timeout_after_write: Annotated[float, typer.Option(help="Share of writes applied, then answered 504.")] = 0.0,
    hang: Annotated[float, typer.Option(help="Seconds to hang before such a 504.")] = 0.0,
    webhook_drop: Annotated[float, typer.Option(help="Share of webhook deliveries dropped.")] = 0.0,
    webhook_duplicate: Annotated[float, typer.Option(help="Share delivered twice.")] = 0.0,
    webhook_delay: Annotated[float, typer.Option(help="Share delayed.")] = 0.0,
    webhook_delay_seconds: Annotated[float, typer.Option(help="Longest delay, sandbox seconds.")] = 60.0,
    webhook_reorder: Annotated[float, typer.Option(help="Share held back so later events overtake.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed of this knob's draws.")] = None,
    url: UrlOption = None,
) -> None:
    """Set the fault knob of a system's endpoint (replaces the knob already there)."""
    body = {
        "system": system,
        "endpoint": endpoint,
        "latency_ms": latency_ms,
        "error_rate": error_rate,
        "rate_429": rate_429,
        "timeout_after_write_rate": timeout_after_write,
        "timeout_hang_seconds": hang,
        "webhook_drop_rate": webhook_drop,
        "webhook_duplicate_rate": webhook_duplicate,
        "webhook_delay_rate": webhook_delay,
        "webhook_delay_seconds": webhook_delay_seconds,
        "webhook_reorder_rate": webhook_reorder,
        "seed": seed,
    }
    console.print(f"knob set: {json.dumps(call(url, 'PUT', '/admin/faults', body))}")


@app.command("clear-faults")
def clear_faults(
    system: Annotated[str | None, typer.Argument(help="Only this system's knobs.")] = None, url: UrlOption = None
) -> None:
    """Remove fault knobs (all, or one system's)."""
    path = "/admin/faults" + (f"?system={_system(system)}" if system else "")
    console.print(f"{call(url, 'DELETE', path)['cleared']} knob(s) cleared")


@app.command()
def period(
    period_id: Annotated[str, typer.Argument(help="ERP accounting period id.")],
    status_: Annotated[str, typer.Option("--status", help="open, ar_locked or closed.")] = "closed",
    url: UrlOption = None,
) -> None:
    """Close, A/R-lock or reopen an ERP accounting period."""
    data = call(url, "POST", f"/admin/erp/periods/{period_id}", {"status": status_})
    console.print(
        f"period {data['periodName']} (id {data['id']}, subsidiary {data['subsidiary']['id']}) is {data['status']}"
    )


@app.command("erp-limit")
def erp_limit(
    concurrency: Annotated[int, typer.Argument(help="Concurrent ERP requests allowed.")], url: UrlOption = None
) -> None:
    """Set the ERP's governance limit (shared by every caller)."""
    call(url, "PUT", "/admin/erp/limit", {"concurrency": concurrency})
    console.print(f"ERP concurrency limit is {concurrency}")


@app.command()
def edit(
    system: Annotated[str, typer.Argument(help="crm, billing or erp.", callback=_system)],
    kind: Annotated[str, typer.Argument(help="Record type: Account, invoice, ...")],
    record_id: Annotated[str, typer.Argument(help="Record id.")],
    fields: Annotated[list[str], typer.Argument(help="FIELD=VALUE pairs; values are JSON when they parse.")],
    url: UrlOption = None,
) -> None:
    """An out-of-band edit, as a person in the system's UI would make it."""
    values: dict[str, Any] = {}
    for pair in fields:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r}: write FIELD=VALUE")
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    call(url, "POST", "/admin/edit", {"system": system, "kind": kind, "id": record_id, "fields": values})
    console.print(f"{system} {kind} {record_id} edited: {', '.join(values)}")


@app.command()
def subscribe(
    system: Annotated[str, typer.Argument(help="crm or billing.", callback=_system)],
    target: Annotated[str, typer.Argument(help="Webhook URL.")],
    secret: Annotated[str | None, typer.Option(help="Signing secret (generated when omitted).")] = None,
    url: UrlOption = None,
) -> None:
    """Register a webhook subscriber; prints its id and secret."""
    data = call(url, "POST", "/admin/webhooks", {"system": system, "url": target, "secret": secret})
    console.print(f"subscriber {data['id']} secret {data['secrets'][0]}")


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Customers in the book (in this wave, with --mode sales).")] = 20,
    seed: Annotated[int, typer.Option(help="The same seed gives the same book.")] = 0,
    namespace: Annotated[str, typer.Option(help="Prefix of names and external ids.")] = "gen",
    mode: Annotated[
        str, typer.Option(help="full: the book in every system; sales: only the CRM side, accord does the rest.")
    ] = "full",
    offset: Annotated[int, typer.Option(help="--mode sales: start this wave at customer k of the plan.")] = 0,
    expected: Annotated[
        bool, typer.Option("--expected", help="--mode sales: print the per-customer expectations as JSON.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Create a realistic book across CRM, billing and ERP (or, with --mode sales, its CRM side only)."""
    if mode not in ("full", "sales"):
        raise typer.BadParameter(f"{mode!r}: full or sales", param_hint="--mode")
    err.print(f"generating {customers} customer(s) with seed {seed} ({mode}) ...")
    body: dict[str, Any] = {"customers": customers, "seed": seed, "namespace": namespace, "mode": mode}
    if offset:
        body["offset"] = offset
    data = call(url, "POST", "/admin/generate", body, timeout=1800)
    if mode == "sales":
        cards = data["cards"]
        console.print(
            f"{data['customers']} customers (from #{data['offset']}) in {', '.join(data['legal_entities'])} "
            f"({', '.join(data['currencies'])}), CRM only: {data['contracts']} contracts, {data['amendments']} "
            f"amendments, {data['renewals']} renewals, {data['cancellations']} cancellations; cards {cards['ok']} ok, "
            f"{cards['soft']} soft-declining, {cards['hard']} hard-declining; digest {data['digest'][:16]}"
        )
        if expected:
            console.print_json(json.dumps(data["expected"]))
        return
    console.print(
        f"{data['customers']} customers in {', '.join(data['legal_entities'])} ({', '.join(data['currencies'])}); "
        f"{data['subscriptions']} subscriptions, {data['amendments']} amendments, {data['renewals']} renewals, "
        f"{data['cancellations']} cancellations, {data['usage_records']} usage records; invoices {data['invoices']}; "
        f"{data['payment_failures']} with failed payments; digest {data['digest'][:16]}"
    )


@app.command()
def agreement(
    namespace: Annotated[str, typer.Option(help="The book's namespace (generator --namespace).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Do CRM, billing and ERP agree on a namespace's book? Counts, then every disagreement; exit 1 if any."""
    data = call(url, "GET", f"/admin/agreement?namespace={namespace}", timeout=300)
    if as_json:
        console.print_json(json.dumps(data))
    else:
        counts = data["counts"]
        console.print(
            f"{namespace}: {counts['customers']} customers, {counts['contracts']} contracts, "
            f"{counts['subscriptions']} subscriptions, invoices {counts['invoices']}, {counts['payments']} payments, "
            f"journal entries {counts['journal_entries']}, {counts['credit_holds']} credit hold(s)"
        )
        if data["disagreements"]:
            table = Table(title=f"{len(data['disagreements'])} disagreement(s)")
            for column in ("kind", "key", "detail"):
                table.add_column(column)
            for item in data["disagreements"]:
                table.add_row(item["kind"], item["key"], item["detail"])
            console.print(table)
        console.print("the three systems agree" if data["agree"] else "the three systems DISAGREE")
    if not data["agree"]:
        raise typer.Exit(1)
