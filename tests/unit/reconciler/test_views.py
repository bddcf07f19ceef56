"""The view rows as tables of named cases: what a key's events and what a snapshot of the systems summarize to, so
that SQL can compare the two like for like (a clean invoice summarizes equal on both sides; a duplicated, edited or
missing posting changes exactly the field that says so).

Snapshot observations are built here as the snapshot adapter builds them from the systems' read APIs: the same key,
kind, status words, amounts and periods as the events, no event ids, and no version where the API carries none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest

from accord.events import Event, SubscriptionStatus
from accord_reconciler.model import MatchState, Observation, RecordKind, Status, System, crm_account_status
from accord_reconciler.views import ViewRow, ViewsError, candidates_sql, summarize, view_rows

from .builders import (
    activated,
    amended,
    at,
    cancelled,
    changed,
    invoice,
    payment,
    payment_failed,
    posted,
    provisioned,
    requested,
    states,
    status_changed,
    uncollectible,
    void,
)

pytestmark = pytest.mark.unit

INVOICE = "journal:EU/in_1"
READ_AT = at(hours=2)  # when the state run read the systems
B, E, C = System.BILLING, System.ERP, System.CRM


def read(
    system: System,
    kind: RecordKind,
    record_id: str,
    amount: str | None,
    status: str,
    *,
    key: str = INVOICE,
    currency: str | None = "EUR",
    period: str | None = "2026-11",
    version: int | None = None,
    observed_at: datetime = READ_AT,
) -> Observation:
    """A record as a system's read API shows it (the snapshot adapter's observation)."""
    return Observation(
        key=key,
        system=system,
        kind=kind,
        record_id=record_id,
        amount=None if amount is None else Decimal(amount),
        currency=currency if amount is not None else None,
        status=status,
        legal_entity="EU",
        period=period,
        version=version,
        observed_at=observed_at,
    )


def billing_invoice(amount: str = "120.00", status: str = Status.ISSUED, **kw: object) -> Observation:
    return read(B, RecordKind.INVOICE, "in_1", amount, status, **kw)  # type: ignore[arg-type]


def erp_entry(erp_id: str = "je_1", amount: str = "120.00", **kw: object) -> Observation:
    return read(E, RecordKind.JOURNAL_ENTRY, erp_id, amount, Status.POSTED, **kw)  # type: ignore[arg-type]


def rows_of(*items: Event | Observation, key: str = INVOICE) -> list[ViewRow]:
    built = states(*items)
    return view_rows(built[key]) if key in built else []


def snapshot(*observations: Observation, key: str = INVOICE) -> list[ViewRow]:
    return view_rows(MatchState.empty(key).add(*observations))


def row(system: System, records: int, amount: str | None, status: str | None, **kw: object) -> ViewRow:
    defaults: dict[str, object] = {"currency": "EUR" if amount is not None else None, "version": 1}
    defaults["period"] = "2026-11" if amount is not None else None
    fields = {**defaults, **kw}
    return ViewRow(
        INVOICE if "key" not in fields else str(fields.pop("key")),
        system,
        records,
        None if amount is None else Decimal(amount),
        status=status,
        **fields,  # type: ignore[arg-type]
    )


CLEAN = (invoice(), requested(), posted())


@dataclass(frozen=True)
class Case:
    name: str
    rows: list[ViewRow]
    expect: list[ViewRow]


CASES = [
    # -- journal: the event view -------------------------------------------------------------------------------------
    Case(
        "clean invoice, request and posting: billing's document and one posting (accord's request is not viewed)",
        rows_of(*CLEAN),
        [row(B, 1, "120.00", Status.ISSUED), row(E, 1, "120.00", Status.POSTED)],
    ),
    Case("an invoice not posted yet: billing alone", rows_of(invoice()), [row(B, 1, "120.00", Status.ISSUED)]),
    Case("accord's request alone: nothing a system holds", rows_of(requested()), []),
    Case(
        "a duplicate posting: two records, their total",
        rows_of(*CLEAN, posted(erp_id="je_2", when=at(5))),
        [row(B, 1, "120.00", Status.ISSUED), row(E, 2, "240.00", Status.POSTED)],
    ),
    Case(
        "a redelivered posting event is one posting",
        rows_of(*CLEAN, posted(when=at(5))),
        [row(B, 1, "120.00", Status.ISSUED), row(E, 1, "120.00", Status.POSTED)],
    ),
    Case(
        "a voided invoice: the issued amount, the void's status and version; posting and reversal",
        rows_of(
            *CLEAN,
            void(when=at(hours=0.5)),
            posted(request_id="accord-EU-void-in_1", erp_id="je_2", version=2, when=at(hours=0.5, seconds=2)),
        ),
        [row(B, 1, "120.00", Status.VOIDED, version=2), row(E, 2, "240.00", Status.POSTED, version=2)],
    ),
    Case(
        "an invoice written off: the status changes, not the amount to post",
        rows_of(*CLEAN, uncollectible()),
        [row(B, 1, "120.00", Status.UNCOLLECTIBLE, version=3), row(E, 1, "120.00", Status.POSTED)],
    ),
    Case(
        "postings in two currencies: no single currency",
        rows_of(*CLEAN, posted(erp_id="je_2", total="110.00", currency="USD", when=at(5))),
        [row(B, 1, "120.00", Status.ISSUED), row(E, 2, "230.00", Status.POSTED, currency=None)],
    ),
    Case(
        "postings in two periods: the latest",
        rows_of(*CLEAN, posted(erp_id="je_2", period="2026-12", when=at(5))),
        [row(B, 1, "120.00", Status.ISSUED), row(E, 2, "240.00", Status.POSTED, period="2026-12")],
    ),
    Case(
        "a payment collected",
        rows_of(payment(), key="journal:EU/py_1"),
        [row(B, 1, "120.00", Status.COLLECTED, key="journal:EU/py_1")],
    ),
    Case(
        "a posting of no document: the ERP alone",
        rows_of(posted(), requested()),
        [row(E, 1, "120.00", Status.POSTED)],
    ),
    # -- journal: snapshots, read with no version --------------------------------------------------------------------
    Case(
        "clean snapshot: billing's invoice and the ERP's entry",
        snapshot(billing_invoice(), erp_entry()),
        [row(B, 1, "120.00", Status.ISSUED, version=None), row(E, 1, "120.00", Status.POSTED, version=None)],
    ),
    Case(
        "snapshot with an entry edited by hand",
        snapshot(billing_invoice(), erp_entry(amount="130.00")),
        [row(B, 1, "120.00", Status.ISSUED, version=None), row(E, 1, "130.00", Status.POSTED, version=None)],
    ),
    Case(
        "snapshot with the entry deleted: billing alone",
        snapshot(billing_invoice()),
        [row(B, 1, "120.00", Status.ISSUED, version=None)],
    ),
    Case(
        "snapshot of a voided invoice: the issue and the void a microsecond later",
        snapshot(
            billing_invoice(),
            billing_invoice(status=Status.VOIDED, observed_at=READ_AT.replace(microsecond=1)),
            erp_entry(),
        ),
        [row(B, 1, "120.00", Status.VOIDED, version=None), row(E, 1, "120.00", Status.POSTED, version=None)],
    ),
    # -- contract, amendment, account --------------------------------------------------------------------------------
    Case(
        "an active contract with its subscription: the CRM's status, one live subscription",
        rows_of(activated(), provisioned(), key="contract:ctr_1"),
        [
            ViewRow("contract:ctr_1", B, 1, status="ACTIVE"),
            ViewRow("contract:ctr_1", C, 1, status=Status.ACTIVE),
        ],
    ),
    Case(
        "a cancelled contract whose subscription still bills",
        rows_of(activated(), provisioned(), cancelled(), key="contract:ctr_1"),
        [
            ViewRow("contract:ctr_1", B, 1, status="ACTIVE"),
            ViewRow("contract:ctr_1", C, 1, status=Status.CANCELLED),
        ],
    ),
    Case(
        "a subscription cancelled (routed by its alias): no live subscription, its status kept",
        rows_of(activated(), provisioned(), status_changed(status=SubscriptionStatus.CANCELLED), key="contract:ctr_1"),
        [
            ViewRow("contract:ctr_1", B, 0, status="CANCELLED"),
            ViewRow("contract:ctr_1", C, 1, status=Status.ACTIVE),
        ],
    ),
    Case(
        "two live subscriptions",
        rows_of(activated(), provisioned(), provisioned("sub_2"), key="contract:ctr_1"),
        [
            ViewRow("contract:ctr_1", B, 2, status="ACTIVE"),
            ViewRow("contract:ctr_1", C, 1, status=Status.ACTIVE),
        ],
    ),
    Case(
        "an amendment applied",
        rows_of(amended(), changed(), key="amendment:am_1"),
        [
            ViewRow("amendment:am_1", B, 1, status=Status.APPLIED),
            ViewRow("amendment:am_1", C, 1, amount=Decimal("500.00"), currency="EUR", status=Status.ACTIVE),
        ],
    ),
    Case(
        "an account: billing's latest outcome (by when it happened) and the CRM's latest read",
        rows_of(
            payment(when=at(minutes=1)),
            payment_failed(when=at(minutes=2)),
            crm_account_status("acc-1", "Succeeded", observed_at=at(minutes=3)),
            crm_account_status("acc-1", "Failed", observed_at=at(minutes=30)),
            key="account:acc-1",
        ),
        [ViewRow("account:acc-1", B, 1, status=Status.FAILED), ViewRow("account:acc-1", C, 1, status="Failed")],
    ),
    Case(
        "a subscription not routed to a contract yet: nothing",
        rows_of(status_changed(), key="subscription:sub_1"),
        [],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_view_rows(case: Case) -> None:
    assert case.rows == case.expect


def _comparable(rows: list[ViewRow]) -> list[ViewRow]:
    """What the SQL compares between a view and a snapshot: version only when both know it (a snapshot does not)."""
    return [ViewRow(r.key, r.system, r.records, r.amount, r.currency, r.status, None, r.period) for r in rows]


@dataclass(frozen=True)
class Pair:
    name: str
    events: tuple[Event | Observation, ...]
    snapshot: tuple[Observation, ...]
    differs: set[tuple[System, str]]  # (system, field) that differ between the view and the snapshot


PAIRS = [
    Pair("clean invoice and posting", CLEAN, (billing_invoice(), erp_entry()), set()),
    Pair(
        "a second entry added by hand",
        CLEAN,
        (billing_invoice(), erp_entry(), erp_entry("je_2")),
        {(E, "records"), (E, "amount")},
    ),
    Pair("an entry's amount edited by hand", CLEAN, (billing_invoice(), erp_entry(amount="121.00")), {(E, "amount")}),
    Pair("the entry deleted by hand", CLEAN, (billing_invoice(),), {(E, "row")}),
    Pair(
        "an entry moved to another period by hand",
        CLEAN,
        (billing_invoice(), erp_entry(period="2026-12")),
        {(E, "period")},
    ),
    Pair(
        "the invoice voided in billing, never told",
        CLEAN,
        (
            billing_invoice(),
            billing_invoice(status=Status.VOIDED, observed_at=READ_AT.replace(microsecond=1)),
            erp_entry(),
        ),
        {(B, "status")},
    ),
    Pair("a document accord never heard of", (), (billing_invoice(),), {(B, "row")}),
]


@pytest.mark.parametrize("pair", PAIRS, ids=[p.name for p in PAIRS])
def test_a_snapshot_summarizes_like_the_events(pair: Pair) -> None:
    view = {r.system: r for r in _comparable(rows_of(*pair.events))}
    snap = {r.system: r for r in _comparable(snapshot(*pair.snapshot))}
    differs: set[tuple[System, str]] = set()
    for system in {*view, *snap}:
        if system not in view or system not in snap:
            differs.add((system, "row"))
            continue
        for name in ("records", "amount", "currency", "status", "period"):
            if getattr(view[system], name) != getattr(snap[system], name):
                differs.add((system, name))
    assert differs == pair.differs


def test_summarize_many_states_in_key_then_system_order() -> None:
    built = states(*CLEAN, invoice("in_2"))
    rows = summarize(built[k] for k in sorted(built))
    assert [(r.key, r.system) for r in rows] == [(INVOICE, B), (INVOICE, E), ("journal:EU/in_2", B)]


def test_a_row_goes_to_copy_and_unnest_in_table_order() -> None:
    assert row(E, 2, "240.00", Status.POSTED).record() == (
        INVOICE,
        "ERP",
        2,
        Decimal("240.00"),
        "EUR",
        "POSTED",
        1,
        "2026-11",
    )


@pytest.mark.parametrize("schema", ["Recon", "recon; DROP TABLE views", "", "1recon"])
def test_a_schema_name_that_is_no_plain_identifier_is_refused(schema: str) -> None:
    with pytest.raises(ViewsError, match="lower-case SQL identifier"):
        candidates_sql(schema, complete=(), prefix=False)
