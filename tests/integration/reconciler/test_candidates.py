"""The state reconciliation's SQL on real PostgreSQL: the event view written from MatchStates, a snapshot loaded with
COPY, and `candidates` naming exactly the keys where the systems changed outside the event flow or disagree, each
with its reason.

The book: invoices in_1 … in_8, a contract and an account, each as accord's events told it. The snapshot says what
the systems hold when read: one ERP entry's amount edited by hand, one entry deleted, one entry duplicated, a billing
document that never reached accord, an invoice voided in billing without the event, a subscription cancelled in
billing, a CRM Account's payment status edited by hand. The clean keys must not be named.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

import accord_reconciler
from accord.events import Event, SubscriptionStatus
from accord.migrations import migrate
from accord_reconciler.model import MatchState, Observation, RecordKind, Relation, Status, System, crm_account_status
from accord_reconciler.views import (
    Candidate,
    Reason,
    ViewRow,
    ViewsError,
    candidates,
    drop_snapshot,
    load_snapshot,
    view_rows,
    write_views,
)
from tests.unit.reconciler.builders import (
    activated,
    at,
    invoice,
    payment,
    posted,
    provisioned,
    requested,
    states,
)

pytestmark = pytest.mark.postgres

SCHEMA = "recon_views"
MIGRATIONS = Path(accord_reconciler.__file__).parent / "migrations"
TOLERANCE = Decimal("0.01")
READ_AT = at(hours=2)
B, E, C = System.BILLING, System.ERP, System.CRM


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_url)
    await migrate(c, MIGRATIONS, schema=SCHEMA)
    yield c
    await c.close()


def doc(n: int) -> str:
    return f"in_{n}"


def key(n: int) -> str:
    return f"journal:EU/{doc(n)}"


def invoice_events(n: int) -> list[Event]:
    rid = f"accord-EU-invoice-{doc(n)}"
    return [invoice(doc(n)), requested(doc(n), rid), posted(doc(n), rid, f"je_{n}")]


def read(system: System, kind: RecordKind, record_id: str, amount: str | None, status: str, *, k: str) -> Observation:
    """A record as the system's read API shows it (no event ids, no version)."""
    return Observation(
        key=k,
        system=system,
        kind=kind,
        record_id=record_id,
        amount=None if amount is None else Decimal(amount),
        currency=None if amount is None else "EUR",
        status=status,
        legal_entity="EU",
        period="2026-11" if k.startswith("journal:") else None,
        observed_at=READ_AT,
    )


def billing_doc(n: int, status: str = Status.ISSUED) -> Observation:
    return read(B, RecordKind.INVOICE, doc(n), "120.00", status, k=key(n))


def erp_entry(n: int, erp_id: str | None = None, amount: str = "120.00") -> Observation:
    return read(E, RecordKind.JOURNAL_ENTRY, erp_id or f"je_{n}", amount, Status.POSTED, k=key(n))


def summarize(observations: Iterable[Observation]) -> list[ViewRow]:
    """The snapshot's rows: its observations per key, summarized as the event view is."""
    by_key: dict[str, MatchState] = {}
    for o in observations:
        by_key[o.key] = (by_key.get(o.key) or MatchState.empty(o.key)).add(o)
    return [r for k in sorted(by_key) for r in view_rows(by_key[k])]


CONTRACT, ACCOUNT = "contract:ctr_1", "account:acc-1"
PAYMENT_DOC, PAYMENT_REQUEST = "py_1", "accord-EU-payment-py_1"
PAYMENT_KEY = f"journal:EU/{PAYMENT_DOC}"


def payment_read() -> list[Observation]:
    """The payment as billing and the ERP show it: collected, posted."""
    return [
        read(B, RecordKind.PAYMENT, PAYMENT_DOC, "120.00", Status.COLLECTED, k=PAYMENT_KEY),
        read(E, RecordKind.JOURNAL_ENTRY, "je_py_1", "120.00", Status.POSTED, k=PAYMENT_KEY),
    ]


def event_view() -> list[ViewRow]:
    events: list[Event | Observation] = [e for n in (1, 2, 3, 4, 6, 7) for e in invoice_events(n)]
    events += [invoice(doc(8))]  # issued a minute ago: its posting is on its way
    events += [activated(), provisioned()]
    events += [payment(invoice_id=doc(1)), crm_account_status("acc-1", "Succeeded", observed_at=at(minutes=30))]
    events += [requested(PAYMENT_DOC, PAYMENT_REQUEST), posted(PAYMENT_DOC, PAYMENT_REQUEST, "je_py_1")]
    built = states(*events)
    return [r for k in sorted(built) for r in view_rows(built[k])]


def systems_snapshot() -> list[ViewRow]:
    observations = [billing_doc(n) for n in (1, 2, 3, 4, 6, 8)] + [erp_entry(n) for n in (1, 4, 6)]
    observations += [erp_entry(2, amount="130.00")]  # in_2: the entry's amount edited in the ERP by hand
    # in_3: its entry deleted in the ERP by hand (no erp_entry(3))
    observations += [erp_entry(4, "je_4b")]  # in_4: a second entry for it keyed in by hand
    observations += [billing_doc(5)]  # in_5: billing's document as read; accord never heard of it
    observations += [erp_entry(5, "je_5")]  # ... though the ERP holds a posting for it (keyed in by hand)
    observations += [billing_doc(7), billing_doc(7, Status.VOIDED).model_copy(update={"observed_at": at(hours=3)})]
    observations += [erp_entry(7)]  # in_7: voided in billing, the event lost: its posting is not reversed
    observations += [billing_doc(9)]  # in_9: never reached accord, and never posted
    # in_8 (issued, posting on its way) is read too: the ERP has nothing yet
    observations += payment_read()
    observations += [
        read(C, RecordKind.CONTRACT, "ctr_1", None, Status.ACTIVE, k=CONTRACT),
        read(B, RecordKind.SUBSCRIPTION, "sub_1", None, SubscriptionStatus.CANCELLED.value, k=CONTRACT),
        read(B, RecordKind.PAYMENT, "py_1", "120.00", Status.SUCCEEDED, k=ACCOUNT),
        crm_account_status("acc-1", "Failed", observed_at=READ_AT),  # edited in the CRM by hand
    ]
    return summarize(observations)


EXPECTED_FULL = [
    Candidate(CONTRACT, Reason.STATUS),  # the CRM contract is active, billing's only subscription is cancelled
    Candidate(ACCOUNT, Reason.STATUS),  # billing: Succeeded; the CRM now says Failed
    Candidate(key(2), Reason.AMOUNT),
    Candidate(key(3), Reason.MISSING),
    Candidate(key(4), Reason.DUPLICATE),
    Candidate(key(5), Reason.UNKNOWN),
    Candidate(key(7), Reason.STALE),
    Candidate(key(8), Reason.MISSING),
    Candidate(key(9), Reason.UNKNOWN),
]


async def test_a_full_run_names_exactly_the_divergent_keys_with_their_reason(conn: asyncpg.Connection) -> None:
    await write_views(conn, SCHEMA, event_view())
    run = uuid.uuid4()
    assert await load_snapshot(conn, SCHEMA, run, systems_snapshot()) == len(systems_snapshot())

    found = await candidates(conn, SCHEMA, run, tolerance=TOLERANCE, complete={B, E, C})

    assert sorted(found, key=lambda c: c.key) == sorted(EXPECTED_FULL, key=lambda c: c.key)


async def test_the_tolerance_decides_an_amount(conn: asyncpg.Connection) -> None:
    """An entry a cent off is no amount candidate at a cent's tolerance (the rules' own), but still a change: the ERP
    now says something accord's events never did."""
    await write_views(conn, SCHEMA, event_view())
    run = uuid.uuid4()
    await load_snapshot(conn, SCHEMA, run, summarize([billing_doc(1), erp_entry(1, amount="120.01")]))

    lenient = await candidates(conn, SCHEMA, run, tolerance=Decimal("0.01"), keys_prefix=key(1))
    strict = await candidates(conn, SCHEMA, run, tolerance=Decimal("0"), keys_prefix=key(1))

    assert lenient == [Candidate(key(1), Reason.CHANGED)]
    assert strict == [Candidate(key(1), Reason.AMOUNT)]


async def test_a_partial_run_compares_only_what_it_read(conn: asyncpg.Connection) -> None:
    """A "changed since" run read only in_2's entry (edited) and in_6's invoice (unchanged): keys it did not read are
    no news, and in_2's billing side is judged by accord's view."""
    await write_views(conn, SCHEMA, event_view())
    run = uuid.uuid4()
    await load_snapshot(conn, SCHEMA, run, summarize([erp_entry(2, amount="130.00"), billing_doc(6)]))

    found = await candidates(conn, SCHEMA, run, tolerance=TOLERANCE)

    assert found == [Candidate(key(2), Reason.AMOUNT)]


async def test_a_full_run_finds_what_vanished_and_what_accord_never_saw(conn: asyncpg.Connection) -> None:
    await write_views(conn, SCHEMA, event_view())
    run = uuid.uuid4()
    # in_1: deleted by hand in both systems (they agree with each other: nothing); in_8: a draft deleted in billing
    # before it was posted; in_6: read from the systems, as told; every other journal key exactly as accord knows it
    rows = [r for r in event_view() if r.key not in (key(1), key(6), key(8)) and r.key.startswith("journal:")]
    rows += summarize([billing_doc(6), erp_entry(6)])

    await load_snapshot(conn, SCHEMA, run, rows)
    found = await candidates(conn, SCHEMA, run, tolerance=TOLERANCE, complete={B, E}, keys_prefix="journal:")

    assert found == [Candidate(key(1), Reason.VANISHED), Candidate(key(8), Reason.VANISHED)]


async def test_an_orphan_and_a_currency(conn: asyncpg.Connection) -> None:
    await write_views(conn, SCHEMA, event_view())
    run = uuid.uuid4()
    usd = replace(summarize([erp_entry(6)])[0], currency="USD", amount=Decimal("130.00"))
    gbp = replace(summarize([erp_entry(4)])[0], currency="GBP", amount=Decimal("104.00"))
    orphan = summarize([erp_entry(20)])  # a posting of a document billing does not have
    await load_snapshot(conn, SCHEMA, run, [*summarize([billing_doc(6), billing_doc(4)]), usd, gbp, *orphan])

    found = await candidates(
        conn, SCHEMA, run, tolerance=TOLERANCE, base_currencies={"EU": "GBP"}, keys_prefix="journal:EU/"
    )

    # in_4's entry is in the entity's base currency (converted): the rules judge its rate; in_6's is in neither
    assert found == [
        Candidate(key(20), Reason.ORPHAN),
        Candidate(key(4), Reason.CHANGED),
        Candidate(key(6), Reason.CURRENCY),
    ]


async def test_write_views_upserts_deletes_what_vanished_and_keeps_unchanged_rows(conn: asyncpg.Connection) -> None:
    built = states(*invoice_events(1), *invoice_events(2))
    await write_views(conn, SCHEMA, [r for k in sorted(built) for r in view_rows(built[k])])
    before = {
        (r["key"], r["system"]): r["updated_at"]
        for r in await conn.fetch(f"SELECT key, system, updated_at FROM {SCHEMA}.views")
    }
    assert set(before) == {(key(1), "BILLING"), (key(1), "ERP"), (key(2), "BILLING"), (key(2), "ERP")}

    # in_1's posting vanished from its state (a replay without it); in_2 is written again unchanged
    again = states(invoice(doc(1)), *invoice_events(2))
    await write_views(conn, SCHEMA, [r for k in sorted(again) for r in view_rows(again[k])])
    # in_2's state summarizes to nothing any more: cleared by naming its key
    await write_views(conn, SCHEMA, [], keys=[key(2)])

    after = await conn.fetch(f"SELECT key, system, records, amount, updated_at FROM {SCHEMA}.views ORDER BY 1, 2")
    assert [(r["key"], r["system"], r["records"], r["amount"]) for r in after] == [
        (key(1), "BILLING", 1, Decimal("120.00"))
    ]
    assert after[0]["updated_at"] == before[(key(1), "BILLING")]  # an unchanged row is not rewritten


async def test_a_key_summarized_twice_in_one_run_is_refused_naming_it(conn: asyncpg.Connection) -> None:
    run = uuid.uuid4()
    rows = summarize([erp_entry(1)])
    await load_snapshot(conn, SCHEMA, run, rows)
    with pytest.raises(ViewsError, match=r"journal:EU/in_1.*summarize all of a key's records"):
        await load_snapshot(conn, SCHEMA, run, rows)
    assert await drop_snapshot(conn, SCHEMA, run) == 1
    assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.snapshot_rows") == 0


async def test_a_system_that_is_not_viewed_is_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(ViewsError, match="names system ACCORD"):
        await write_views(conn, SCHEMA, [ViewRow(key(1), System.ACCORD, 1)])
    with pytest.raises(ViewsError, match="complete names ACCORD"):
        await candidates(conn, SCHEMA, uuid.uuid4(), tolerance=TOLERANCE, complete={System.ACCORD})


async def test_a_book_with_no_crm_rows_leaves_the_crm_out_and_still_classifies(conn: asyncpg.Connection) -> None:
    built = states(*invoice_events(1), *invoice_events(2), invoice(doc(3)))
    await write_views(conn, SCHEMA, [r for k in sorted(built) for r in view_rows(built[k])])
    run = uuid.uuid4()
    await load_snapshot(
        conn, SCHEMA, run, summarize([billing_doc(1), erp_entry(1), billing_doc(2), erp_entry(2, amount="99.00")])
    )

    found = await candidates(conn, SCHEMA, run, tolerance=TOLERANCE, complete={B, E})

    assert found == [Candidate(key(2), Reason.AMOUNT), Candidate(key(3), Reason.VANISHED)]
    assert await candidates(conn, SCHEMA, uuid.uuid4(), tolerance=TOLERANCE) == []  # a run that read nothing


async def test_a_system_read_completely_for_some_relations_only(conn: asyncpg.Connection) -> None:
    """The run read billing's documents and payments and the CRM's Accounts, not contracts or subscriptions: the
    contract's rows in the view are no news for it, unless the run says it read those systems whole."""
    await write_views(conn, SCHEMA, event_view())
    run = uuid.uuid4()
    await load_snapshot(conn, SCHEMA, run, [r for r in systems_snapshot() if r.key != CONTRACT])
    by_relation = {E, (B, Relation.JOURNAL), (B, Relation.ACCOUNT), (C, Relation.ACCOUNT)}

    found = await candidates(conn, SCHEMA, run, tolerance=TOLERANCE, complete=by_relation)
    whole = await candidates(conn, SCHEMA, run, tolerance=TOLERANCE, complete={B, E, C}, keys_prefix="contract:")

    assert found == [c for c in EXPECTED_FULL if c.key != CONTRACT]
    assert whole == [Candidate(CONTRACT, Reason.VANISHED)]
