"""What each system holds of a match key, summarized alike from events and from snapshots, and the SQL that compares
the two for a whole book at once. A pure summary (`view_rows`) plus three small SQL helpers.

    rows = view_rows(state)                                   # a MatchState → one ViewRow per system holding records
    await write_views(conn, schema, rows, keys=changed)       # the consumer, in the transaction of the states
    await load_snapshot(conn, schema, run_id, snapshot_rows)  # a state run: what the systems' read APIs said (COPY)
    for c in await candidates(conn, schema, run_id, tolerance=Decimal("0.01"), complete={System.BILLING, System.ERP}):
        ...                                                   # only these keys go through the Python rules

Running the rules on every key of a million-document book costs minutes (pydantic + jsonb); the state run asks SQL
which keys are worth it instead. A row says, per key and system: how many records (the ERP's postings of a document,
billing's live subscriptions of a contract), their amount, currency, status, newest source version and latest period
— only what the relation's rules compare, so a difference in a row is a difference the rules may care about. The
event view (table `views`) is written by the streaming consumer from the key's MatchState; a snapshot (table
`snapshot_rows`) is the same function applied to a MatchState of the snapshot's observations, so the two compare like
for like. `candidates` then names each key where

- accord's view holds nothing of it (`unknown`: it never reached accord; `orphan` if only a target holds it);
- the systems disagree with each other (`missing`, `duplicate`, `currency`, `amount`, `stale`, `orphan`, `status`),
  judged on what the snapshot says, or on the view where the run did not read a system completely;
- a system's snapshot differs from accord's view of it (`vanished`, `unseen`, `changed`): someone changed the system
  outside the event flow, or an event was lost.

One reason per key, the first that holds in that order. A snapshot that cannot know a field (the event version of an
object read from an API, a period) leaves it None, and None is not compared for `version` and `period`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Any

import asyncpg

from .model import LIVE_SUBSCRIPTION, MatchState, Observation, RecordKind, Relation, Status, System

#: the systems a view row names; accord's own journal requests are no system's record, and no snapshot shows them
VIEWED: tuple[System, ...] = (System.BILLING, System.ERP, System.CRM)

_COLUMNS = ("key", "system", "records", "amount", "currency", "status", "version", "period")
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ViewRow:
    """What one system holds of one match key: one row of `views` or `snapshot_rows`."""

    key: str
    system: System
    records: int
    amount: Decimal | None = None
    currency: str | None = None
    status: str | None = None
    version: int | None = None
    period: str | None = None

    def record(self) -> tuple[Any, ...]:
        """The row's columns after the run id, in table order (for COPY and unnest)."""
        return (
            self.key,
            self.system.value,
            self.records,
            self.amount,
            self.currency,
            self.status,
            self.version,
            self.period,
        )


# -- the summary --------------------------------------------------------------------------------------------------

_DOCUMENT_KINDS = (RecordKind.INVOICE, RecordKind.CREDIT_NOTE, RecordKind.PAYMENT, RecordKind.REFUND)
#: the statements that carry a document's amount (as rules._Journal.original reads them)
_ORIGINAL = frozenset({Status.ISSUED, Status.COLLECTED, Status.REFUNDED})


def view_rows(state: MatchState) -> list[ViewRow]:
    """One row per system that holds records of `state`'s key, in system order (BILLING, CRM, ERP)."""
    rows = _SUMMARIES[state.relation](state)
    return sorted(rows, key=lambda r: r.system.value)


def _recency(o: Observation) -> tuple[int, Any]:
    return o.recency()


def _newest(observations: Iterable[Observation]) -> int | None:
    return max((o.version for o in observations if o.version is not None), default=None)


def _single(values: Iterable[str | None]) -> str | None:
    """The one value all records share, or None when they differ (mixed currencies, statuses)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _journal(state: MatchState) -> list[ViewRow]:
    rows: list[ViewRow] = []
    document = state.of(System.BILLING, *_DOCUMENT_KINDS)
    if document:
        # The amount, currency and period of the statement that carries the document's amount (the newest issue,
        # collection or refund: a void or an uncollectible mark does not change what the ERP was asked to post);
        # the status and version of the newest statement.
        originals = [o for o in document if o.status in _ORIGINAL] or [o for o in document if o.amount is not None]
        latest = max(document, key=_recency)
        source = max(originals, key=_recency) if originals else latest
        rows.append(
            ViewRow(
                key=state.key,
                system=System.BILLING,
                records=len({o.record_id for o in document}),
                amount=source.amount,
                currency=source.currency,
                status=latest.status,
                version=_newest(document),
                period=source.period,
            )
        )
    postings = list(state.latest_per_record(System.ERP, RecordKind.JOURNAL_ENTRY).values())
    if postings:
        amounts = [p.amount for p in postings if p.amount is not None]
        rows.append(
            ViewRow(
                key=state.key,
                system=System.ERP,
                records=len(postings),
                amount=sum(amounts, Decimal(0)) if amounts else None,
                currency=_single(p.currency for p in postings),
                status=_single(p.status for p in postings),
                version=_newest(postings),
                period=max((p.period for p in postings if p.period), default=None),
            )
        )
    return rows


def _contract(state: MatchState) -> list[ViewRow]:
    # The contract rules compare the CRM's status with the number of live subscriptions: nothing else is summarized
    # (a subscription's current period moves every month; a CRM version is not billing's).
    rows: list[ViewRow] = []
    crm = state.of(System.CRM, RecordKind.CONTRACT)
    if crm:
        latest = max(crm, key=_recency)
        rows.append(ViewRow(state.key, System.CRM, records=len({o.record_id for o in crm}), status=latest.status))
    subscriptions = state.latest_per_record(System.BILLING, RecordKind.SUBSCRIPTION)
    if subscriptions:
        live = [s for s in subscriptions.values() if (s.status or "") in LIVE_SUBSCRIPTION]
        statuses = sorted({s.status or "" for s in subscriptions.values()})
        rows.append(ViewRow(state.key, System.BILLING, records=len(live), status=",".join(statuses)))
    return rows


def _amendment(state: MatchState) -> list[ViewRow]:
    rows: list[ViewRow] = []
    crm = state.of(System.CRM, RecordKind.AMENDMENT)
    if crm:
        latest = max(crm, key=_recency)
        rows.append(
            ViewRow(
                state.key, System.CRM, records=1, amount=latest.amount, currency=latest.currency, status=latest.status
            )
        )
    applied = [o for o in state.of(System.BILLING, RecordKind.SUBSCRIPTION) if o.status == Status.APPLIED]
    if applied:
        rows.append(
            ViewRow(state.key, System.BILLING, records=len({o.record_id for o in applied}), status=Status.APPLIED)
        )
    return rows


def _account(state: MatchState) -> list[ViewRow]:
    # Billing's latest payment outcome (by when it happened) against the CRM Account's latest read, in the CRM's words.
    rows: list[ViewRow] = []
    outcomes = state.of(System.BILLING, RecordKind.PAYMENT)
    if outcomes:
        latest = max(outcomes, key=lambda o: (o.extra.get("outcome_at", ""), o.observed_at))
        rows.append(ViewRow(state.key, System.BILLING, records=1, status=latest.status))
    reads = state.of(System.CRM, RecordKind.ACCOUNT_STATUS)
    if reads:
        rows.append(ViewRow(state.key, System.CRM, records=1, status=max(reads, key=lambda o: o.observed_at).status))
    return rows


def _nothing(state: MatchState) -> list[ViewRow]:
    return []  # a subscription not routed to its contract yet: nothing to compare


_SUMMARIES = {
    Relation.JOURNAL: _journal,
    Relation.CONTRACT: _contract,
    Relation.AMENDMENT: _amendment,
    Relation.ACCOUNT: _account,
    Relation.SUBSCRIPTION: _nothing,
}


# -- SQL ----------------------------------------------------------------------------------------------------------


class ViewsError(ValueError):
    """Rows or arguments the views cannot take; the message says which and what to do."""


def _schema(schema: str) -> str:
    if not _SCHEMA.fullmatch(schema):
        raise ViewsError(f"schema name {schema!r} must be a lower-case SQL identifier")
    return schema


def _checked(rows: Iterable[ViewRow]) -> list[ViewRow]:
    out = list(rows)
    for row in out:
        if row.system not in VIEWED:
            raise ViewsError(
                f"view row of {row.key!r} names system {row.system.value}: only {', '.join(VIEWED)} are viewed"
            )
        if row.records < 0:
            raise ViewsError(f"view row of {row.key!r} ({row.system.value}) has {row.records} records: at least 0")
    return out


async def write_views(
    conn: asyncpg.Connection, schema: str, rows: Iterable[ViewRow], *, keys: Iterable[str] | None = None
) -> None:
    """Make `views` say `rows` for their keys: upsert each row, and delete the rows of those keys' systems that are no
    longer in `rows`. `keys` (default: the rows' keys) are the keys whose rows these are: pass the changed keys so that
    a key that no longer summarizes to any row is cleared too. One statement; run it in the caller's transaction."""
    schema = _schema(schema)
    # in (key, system) order, so that two transactions writing overlapping keys lock them in the same order
    written = sorted(_checked(rows), key=lambda r: (r.key, r.system.value))
    twice = next((a for a, b in pairwise(written) if (a.key, a.system) == (b.key, b.system)), None)
    if twice is not None:
        raise ViewsError(
            f"two view rows of {twice.key!r} for {twice.system.value}: a key's records of one system are summarized "
            "in one row (view_rows of its MatchState)"
        )
    all_keys = sorted({*(r.key for r in written), *(keys or ())})
    if not all_keys:
        return
    columns = list(zip(*(r.record() for r in written), strict=True)) if written else [()] * len(_COLUMNS)
    await conn.execute(
        f"""
        WITH new AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::numeric[], $5::text[], $6::text[],
                                 $7::bigint[], $8::text[])
                AS t(key, system, records, amount, currency, status, version, period)
        ), gone AS (
            DELETE FROM {schema}.views v
            WHERE v.key = ANY($9::text[])
              AND NOT EXISTS (SELECT 1 FROM new WHERE new.key = v.key AND new.system = v.system)
        )
        INSERT INTO {schema}.views AS v (key, system, records, amount, currency, status, version, period)
        SELECT * FROM new
        ON CONFLICT (key, system) DO UPDATE
            SET records = excluded.records, amount = excluded.amount, currency = excluded.currency,
                status = excluded.status, version = excluded.version, period = excluded.period, updated_at = now()
            WHERE (v.records, v.amount, v.currency, v.status, v.version, v.period)
                IS DISTINCT FROM (excluded.records, excluded.amount, excluded.currency, excluded.status,
                                  excluded.version, excluded.period)
        """,
        *(list(c) for c in columns),
        all_keys,
    )


async def load_snapshot(conn: asyncpg.Connection, schema: str, run_id: uuid.UUID, rows: Iterable[ViewRow]) -> int:
    """Append `rows` to run `run_id`'s snapshot with COPY; returns how many. A key's records of one system must be
    summarized together (all its observations in one MatchState): a second row of the same key and system is
    refused, naming it. Call it page by page (it holds one call's rows in memory); after a large run, `ANALYZE
    <schema>.snapshot_rows` before `candidates`, so the planner sees the rows (autovacuum comes later)."""
    schema = _schema(schema)
    checked = _checked(rows)
    try:
        await conn.copy_records_to_table(
            "snapshot_rows",
            schema_name=schema,
            columns=["run_id", *_COLUMNS],
            records=[(run_id, *r.record()) for r in checked],
        )
    except asyncpg.UniqueViolationError as exc:
        raise ViewsError(
            f"snapshot run {run_id} already has a row for {exc.detail or 'one of these keys and systems'}: "
            "summarize all of a key's records of one system in one view row (view_rows of one MatchState)"
        ) from exc
    return len(checked)


async def drop_snapshot(conn: asyncpg.Connection, schema: str, run_id: uuid.UUID) -> int:
    """Forget run `run_id`'s snapshot rows (once its candidates are evaluated); returns how many were deleted."""
    schema = _schema(schema)
    status: str = await conn.execute(f"DELETE FROM {schema}.snapshot_rows WHERE run_id = $1", run_id)
    return int(status.rpartition(" ")[2])


class Reason(StrEnum):
    """Why a key is a candidate, most telling first (a key gets the first that holds)."""

    UNKNOWN = "unknown"  # accord's view holds nothing of the key (and it is no orphan): it never reached accord
    MISSING = "missing"  # a billing document that posts has no ERP posting
    DUPLICATE = "duplicate"  # more postings than the document needs; more live subscriptions than one
    CURRENCY = "currency"  # the postings are in another currency than the document (and not the entity's base)
    AMOUNT = "amount"  # the postings' total is not the document's amount per posting, beyond the tolerance
    STALE = "stale"  # the postings are behind the document: a void not reversed, an older version posted
    ORPHAN = "orphan"  # the target holds records of a source that does not exist (a posting of no document)
    STATUS = "status"  # two systems' statuses disagree (contract ↔ live subscriptions, account ↔ payment outcome)
    VANISHED = "vanished"  # accord's view has records of a system that its complete snapshot does not
    UNSEEN = "unseen"  # the snapshot has records of a system that accord's view lacks (the systems agree)
    CHANGED = "changed"  # a system's records differ from accord's view of them: changed outside the event flow


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    reason: Reason


_ALIAS = {System.BILLING: "b", System.ERP: "e", System.CRM: "c"}
_ALL: frozenset[Relation] = frozenset(Relation)


def _completeness(complete: Collection[System | tuple[System, Relation]]) -> dict[System, frozenset[Relation]]:
    """system → the relations the run read completely (all of them for a system named alone)."""
    out: dict[System, set[Relation]] = {}
    for item in complete:
        system, relations = (item, _ALL) if isinstance(item, System) else (item[0], frozenset({Relation(item[1])}))
        if system not in VIEWED:
            raise ViewsError(f"complete names {system}: only {', '.join(VIEWED)} are read by a state run")
        out.setdefault(system, set()).update(relations)
    return {s: frozenset(r) for s, r in out.items()}


def _of(relations: Collection[Relation], key: str) -> str:
    """SQL: whether `key` (an expression) is of one of `relations`."""
    return "(" + " OR ".join(f"starts_with({key}, '{r.value}:')" for r in sorted(relations)) + ")"


def candidates_sql(
    schema: str,
    *,
    complete: Collection[System | tuple[System, Relation]],
    prefix: bool,
    systems: Collection[System] = VIEWED,
) -> str:
    """The candidate query: $1 run id, $2 tolerance, $3 base currencies (jsonb, legal entity → ISO code), [$4 key
    prefix]. `systems`: those with rows to compare; the others (no rows in the run nor in the view) are constants.

    Per system, the run's snapshot rows and the view rows are full-outer-joined by key: hash joins (parallel where
    the server allows), the shape of the plain floor, no grouping and no sort but the result's. The inner query names
    each key's relation and each system's columns as the run judges them; the outer one classifies with CASEs nested
    by relation, so a row pays only for its own relation's tests. (Fencing the inner query with OFFSET 0, to compute
    its columns once, measured 1.6 times slower on a million keys: it kept the joins from running in parallel.)
    """
    schema = _schema(schema)
    whole = _completeness(complete)
    where_prefix = " AND starts_with(key, $4)" if prefix else ""
    cols = ("records", "amount", "currency", "status", "version", "period")
    select = f"SELECT key, {', '.join(cols)}"
    joining = {s: a for s, a in _ALIAS.items() if s in systems}
    if not joining:
        raise ViewsError("no system to compare: name at least one of " + ", ".join(_ALIAS))
    sources: list[tuple[str, str]] = []
    for system, a in joining.items():
        sources.append(
            (f"s{a}", f"{select} FROM {schema}.snapshot_rows WHERE run_id = $1 AND system = '{system}'{where_prefix}")
        )
    for system, a in joining.items():
        view = f"{select} FROM {schema}.views v WHERE system = '{system}'{where_prefix}"
        relations = whole.get(system, frozenset())
        if relations != _ALL:
            # Read in part ("changed since", or not every relation): only the keys the run read are compared; a view
            # row of a key the run did not read is no news.
            read = f"EXISTS (SELECT 1 FROM {schema}.snapshot_rows s WHERE s.run_id = $1 AND s.key = v.key)"
            view += f" AND ({_of(relations, 'v.key')} OR {read})" if relations else f" AND {read}"
        sources.append((f"v{a}", view))
    joined = f"({sources[0][1]}) {sources[0][0]}"
    seen = [sources[0][0]]
    for alias, sql in sources[1:]:
        on = seen[0] + ".key" if len(seen) == 1 else "coalesce(" + ", ".join(f"{x}.key" for x in seen) + ")"
        joined += f"\n            FULL JOIN ({sql}) {alias} ON {alias}.key = {on}"
        seen.append(alias)
    key = "coalesce(" + ", ".join(f"{x}.key" for x in seen) + ")"

    # Inner columns: per system a (b, e, c): s<a>/v<a> (in the snapshot / in the view), s<a>_<col> and v<a>_<col>,
    # and the effective <a>_<col> and <a> (present): the snapshot's, or the view's where the run read in part.
    inner = [f"{key} AS key"]
    types = {"records": "int", "amount": "numeric", "currency": "text", "status": "text", "version": "bigint"}
    for system, a in _ALIAS.items():
        if system not in joining:  # holds nothing anywhere: its tests fold to constants
            inner += [f"false AS s{a}", f"false AS v{a}", f"false AS {a}"]
            for c in cols:
                inner += [f"NULL::{types.get(c, 'text')} AS {x}{a}_{c}" for x in ("s", "v")]
                inner.append(f"NULL::{types.get(c, 'text')} AS {a}_{c}")
            continue
        inner += [f"s{a}.key IS NOT NULL AS s{a}", f"v{a}.key IS NOT NULL AS v{a}"]
        inner += [f"s{a}.{c} AS s{a}_{c}" for c in cols] + [f"v{a}.{c} AS v{a}_{c}" for c in cols]
        relations = whole.get(system, frozenset())
        if relations == _ALL:
            inner += [f"s{a}.key IS NOT NULL AS {a}"] + [f"s{a}.{c} AS {a}_{c}" for c in cols]
        elif not relations:
            inner.append(f"(s{a}.key IS NOT NULL OR v{a}.key IS NOT NULL) AS {a}")
            inner += [f"CASE WHEN s{a}.key IS NOT NULL THEN s{a}.{c} ELSE v{a}.{c} END AS {a}_{c}" for c in cols]
        else:
            read = _of(relations, key)
            inner.append(f"(s{a}.key IS NOT NULL OR (v{a}.key IS NOT NULL AND NOT {read})) AS {a}")
            inner += [
                f"CASE WHEN s{a}.key IS NOT NULL OR {read} THEN s{a}.{c} ELSE v{a}.{c} END AS {a}_{c}" for c in cols
            ]
        inner.append(f"{'true' if relations == _ALL else _of(relations, key) if relations else 'false'} AS r{a}")

    def changed(a: str) -> str:
        return (
            f"(s{a} AND v{a} AND ((s{a}_records, s{a}_amount, s{a}_currency, s{a}_status) IS DISTINCT FROM "
            f"(v{a}_records, v{a}_amount, v{a}_currency, v{a}_status) "
            f"OR s{a}_version <> v{a}_version OR s{a}_period <> v{a}_period))"
        )

    # What a document needs in the ERP (rules._journal): nothing for a zero amount, the posting and its reversal for
    # a void, else one posting.
    expected = "(CASE WHEN b_amount = 0 THEN 0 WHEN b_status = 'VOIDED' THEN 2 ELSE 1 END)"
    legal_entity = "split_part(substr(key, 9), '/', 1)"
    by_relation = {
        Relation.JOURNAL: [
            (Reason.MISSING, f"b AND coalesce(e_records, 0) = 0 AND {expected} > 0"),
            (Reason.DUPLICATE, f"b AND e_records > 1 AND e_records > greatest({expected}, 1)"),
            (
                Reason.CURRENCY,
                "b AND e_records > 0 AND e_currency IS DISTINCT FROM b_currency "
                f"AND e_currency IS DISTINCT FROM ($3::jsonb ->> {legal_entity})",
            ),
            (
                Reason.AMOUNT,
                "b AND e_records > 0 AND e_currency = b_currency "
                "AND abs(e_amount - b_amount * e_records) > $2::numeric * e_records",
            ),
            (Reason.STALE, f"b AND ((b_status = 'VOIDED' AND e_records < {expected}) OR e_version < b_version)"),
            (Reason.ORPHAN, "NOT b AND e_records > 0"),
        ],
        Relation.CONTRACT: [
            (
                Reason.STATUS,
                "c AND ((c_status = 'ACTIVE' AND coalesce(b_records, 0) = 0) "
                "OR (c_status = 'CANCELLED' AND b_records > 0))",
            ),
            (Reason.DUPLICATE, "b_records > 1"),
            (Reason.ORPHAN, "b AND NOT c"),
        ],
        Relation.AMENDMENT: [(Reason.STALE, "c AND NOT b"), (Reason.ORPHAN, "b AND NOT c")],
        Relation.ACCOUNT: [(Reason.STATUS, "b AND c AND c_status IS DISTINCT FROM b_status")],
    }
    relation = (
        "CASE "
        + " ".join(f"WHEN starts_with({key}, '{r.value}:') THEN '{r.value}'" for r in by_relation)
        + " END AS relation"
    )
    inner.append(relation)

    def case(whens: list[tuple[Reason, str]], indent: str) -> str:
        return (
            f"CASE\n{indent}    "
            + f"\n{indent}    ".join(f"WHEN {cond} THEN '{r.value}'" for r, cond in whens)
            + (f"\n{indent}END")
        )

    agreement = (
        "CASE relation\n"
        + "\n".join(
            f"                WHEN '{r.value}' THEN {case(whens, ' ' * 16)}" for r, whens in by_relation.items()
        )
        + "\n            END"
    )
    own = []
    complete_aliases = [a for s_, a in joining.items() if whole.get(s_)]
    if complete_aliases:
        own.append((Reason.VANISHED, " OR ".join(f"(v{a} AND NOT s{a} AND r{a})" for a in complete_aliases)))
    own.append((Reason.UNSEEN, " OR ".join(f"(s{a} AND NOT v{a})" for a in _ALIAS.values())))
    own.append((Reason.CHANGED, " OR ".join(changed(a) for a in _ALIAS.values())))
    fields = ",\n                ".join(inner)
    in_view = " OR ".join(f"v{a}" for a in _ALIAS.values())
    return f"""
    SELECT key, reason FROM (
        SELECT key,
            CASE WHEN NOT ({in_view}) THEN
                CASE WHEN {agreement} = '{Reason.ORPHAN.value}' THEN '{Reason.ORPHAN.value}'
                ELSE '{Reason.UNKNOWN.value}' END
            ELSE coalesce(
            {agreement},
            {case(own, " " * 12)})
            END AS reason
        FROM (
            SELECT
                {fields}
            FROM {joined}
        ) j
    ) c
    WHERE reason IS NOT NULL
    ORDER BY key"""


async def systems_held(conn: asyncpg.Connection, schema: str, run_id: uuid.UUID) -> list[System]:
    """The systems with rows in run `run_id` or in the view (one index probe per partition): a system with none is
    left out of the joins instead of joined empty."""
    probes = ", ".join(
        f"EXISTS (SELECT 1 FROM {schema}.snapshot_rows WHERE run_id = $1 AND system = '{s}') "
        f"OR EXISTS (SELECT 1 FROM {schema}.views WHERE system = '{s}')"
        for s in VIEWED
    )
    row = await conn.fetchrow(f"SELECT {probes}", run_id)
    assert row is not None
    return [s for s, held in zip(VIEWED, row, strict=True) if held]


async def candidates(
    conn: asyncpg.Connection,
    schema: str,
    run_id: uuid.UUID,
    *,
    tolerance: Decimal,
    keys_prefix: str | None = None,
    complete: Collection[System | tuple[System, Relation]] = (),
    base_currencies: Mapping[str, str] | None = None,
) -> list[Candidate]:
    """The keys of run `run_id` worth the rules, with why (see `Reason`), in key order.

    `complete`: what this run read completely (a full read, not "changed since"): a system (all its records), or a
    (system, relation) pair when the run reads only some of a system's records (the CRM's Accounts but not its
    contracts: `(System.CRM, Relation.ACCOUNT)`). There a view row the snapshot lacks means the record is gone;
    elsewhere the run's rows are compared with the view only for the keys it read, and a system it did not read is
    judged by accord's view. `tolerance`: the largest difference per
    posting that is no amount mismatch (Policy.amount_tolerance). `base_currencies`: legal entity → base currency, so
    a posting converted to the entity's currency is not a currency candidate. `keys_prefix` limits the run to keys
    that start with it (`journal:EU/`).
    """
    if tolerance < 0:
        raise ViewsError(f"tolerance {tolerance} is negative: use 0 for exact amounts")
    _completeness(complete)
    systems = await systems_held(conn, _schema(schema), run_id)
    if not systems:
        return []
    sql = candidates_sql(schema, complete=complete, prefix=keys_prefix is not None, systems=systems)
    args: list[Any] = [run_id, tolerance, json.dumps(dict(base_currencies or {}))]
    if keys_prefix is not None:
        args.append(keys_prefix)
    rows = await conn.fetch(sql, *args)
    return [Candidate(r["key"], Reason(r["reason"])) for r in rows]


def summarize(states: Iterable[MatchState]) -> list[ViewRow]:
    """The rows of many states (a snapshot's, key by key), for `load_snapshot` or `write_views`."""
    return [row for state in states for row in view_rows(state)]


__all__ = [
    "VIEWED",
    "Candidate",
    "Reason",
    "ViewRow",
    "ViewsError",
    "candidates",
    "candidates_sql",
    "drop_snapshot",
    "load_snapshot",
    "summarize",
    "systems_held",
    "view_rows",
    "write_views",
]
