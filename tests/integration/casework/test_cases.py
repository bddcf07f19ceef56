"""The exception queue on real PostgreSQL: one open case per (kind, subject), a history of every action,
ExceptionChanged in the outbox, and the `accord exceptions` commands acting on it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from typer.testing import CliRunner

from accord.casework import CaseClosed, CaseNotFound, CaseState, Raised, Verdict, decide_case, get_case, raise_case
from accord.cli import app
from accord.events import ExceptionChanged, ExceptionStatus
from accord.serde import EventCodec

from .conftest import SCHEMA

pytestmark = pytest.mark.postgres

SUBJECT = {"account_id": "acc-1", "invoice_id": "in-1"}


async def raise_tax(conn: asyncpg.Connection, codec: EventCodec, erp_tax: str) -> Raised:
    async with conn.transaction():
        return await raise_case(
            conn,
            schema=SCHEMA,
            encode=codec.encode,
            kind="tax-mismatch",
            reason="tax differs between billing and ERP",
            subject=SUBJECT,
            evidence={
                "billing": {"tax": "20.00"},
                "erp": {"tax": erp_tax},
                "api_token": "sk_live_x",
                "last_error": None,
            },
            legal_entity="FR01",
        )


async def published(conn: asyncpg.Connection, codec: EventCodec) -> list[ExceptionChanged]:
    values = await conn.fetch(f"SELECT value FROM {SCHEMA}.outbox WHERE topic = $1 ORDER BY id", ExceptionChanged.TOPIC)
    events = [codec.decode(ExceptionChanged.TOPIC, v["value"]).event for v in values]
    assert all(isinstance(e, ExceptionChanged) for e in events)
    return events


async def test_raising_the_same_exception_twice_gives_one_case(conn: asyncpg.Connection, codec: EventCodec) -> None:
    first = await raise_tax(conn, codec, "19.00")
    second = await raise_tax(conn, codec, "18.00")
    assert (first.created, second.created) == (True, False)
    assert first.case.id == second.case.id
    case, actions = await get_case(conn, schema=SCHEMA, case_id=first.case.id)
    assert case.evidence["erp"] == {"tax": "18.00"}  # the latest evidence
    assert case.evidence["api_token"] == "[redacted]"  # never a secret
    assert (case.state, case.version, case.legal_entity) == (CaseState.OPEN, 2, "FR01")
    assert [(a.action, a.actor) for a in actions] == [("raised", "accord"), ("raised-again", "accord")]
    events = await published(conn, codec)
    assert [(e.exception_id, e.status, e.account_id) for e in events] == [(case.id, ExceptionStatus.OPEN, "acc-1")]

    async with conn.transaction():
        await decide_case(
            conn, schema=SCHEMA, encode=codec.encode, case_id=case.id, verdict=Verdict.APPROVE, actor="bob"
        )
    third = await raise_tax(conn, codec, "17.00")  # the problem came back after it was resolved: a new case
    assert third.created and third.case.id != case.id


async def test_a_retried_case_raised_again_is_open_again(conn: asyncpg.Connection, codec: EventCodec) -> None:
    case = (await raise_tax(conn, codec, "19.00")).case
    await decide_case(conn, schema=SCHEMA, encode=codec.encode, case_id=case.id, verdict=Verdict.RETRY, actor="bob")
    again = await raise_tax(conn, codec, "19.00")  # the re-run step failed the same way
    assert (again.created, again.case.id, again.case.state) == (False, case.id, CaseState.OPEN)
    _, actions = await get_case(conn, schema=SCHEMA, case_id=case.id)
    assert [(a.action, a.from_state, a.to_state) for a in actions] == [
        ("raised", None, "open"),
        ("retried", "open", "retrying"),
        ("raised-again", "retrying", "open"),
    ]
    statuses = [e.status for e in await published(conn, codec)]
    assert statuses == [ExceptionStatus.OPEN, ExceptionStatus.RETRYING, ExceptionStatus.OPEN]


async def test_concurrent_raises_of_the_same_exception_give_one_case(
    db_url: str, conn: asyncpg.Connection, codec: EventCodec
) -> None:
    others = [await asyncpg.connect(db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(raise_tax(c, codec, f"1{i}.00") for i, c in enumerate(others)))
    finally:
        for c in others:
            await c.close()
    assert sum(r.created for r in results) == 1
    assert len({r.case.id for r in results}) == 1
    assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.case_actions") == 4


async def test_a_decision_on_a_closed_or_unknown_case_is_refused(conn: asyncpg.Connection, codec: EventCodec) -> None:
    case = (await raise_tax(conn, codec, "19.00")).case
    await decide_case(conn, schema=SCHEMA, encode=codec.encode, case_id=case.id, verdict=Verdict.REJECT, actor="bob")
    with pytest.raises(CaseClosed, match="already rejected"):
        await decide_case(
            conn, schema=SCHEMA, encode=codec.encode, case_id=case.id, verdict=Verdict.APPROVE, actor="bob"
        )
    with pytest.raises(CaseNotFound, match="accord exceptions list"):
        await decide_case(
            conn, schema=SCHEMA, encode=codec.encode, case_id="nope", verdict=Verdict.APPROVE, actor="bob"
        )


def cli(args: list[str], *, db_url: str, registry_url: str) -> tuple[int, str, BaseException | None]:
    env = {"DATABASE_URL": db_url, "SCHEMA_REGISTRY_URL": registry_url, "ACCORD_OPERATOR": "alice", "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["exceptions", *args], env=env)
    return result.exit_code, result.output, result.exception


@pytest.mark.parametrize(
    ("verdict", "state", "action", "status"),
    [
        ("approve", CaseState.RESOLVED, "approved", ExceptionStatus.RESOLVED),
        ("reject", CaseState.REJECTED, "rejected", ExceptionStatus.DISMISSED),
        ("retry", CaseState.RETRYING, "retried", ExceptionStatus.RETRYING),
    ],
)
async def test_operator_decisions_through_the_cli(
    conn: asyncpg.Connection,
    codec: EventCodec,
    db_url: str,
    registry_url: str,
    verdict: str,
    state: CaseState,
    action: str,
    status: ExceptionStatus,
) -> None:
    case = (await raise_tax(conn, codec, "19.00")).case
    code, out, error = await asyncio.to_thread(
        cli, [verdict, case.id, "--note", "checked with the tax team"], db_url=db_url, registry_url=registry_url
    )
    assert (code, error) == (0, None), out
    assert f"exception {case.id} {action} by alice: open → {state.value}" in out

    after, actions = await get_case(conn, schema=SCHEMA, case_id=case.id)
    assert after.state is state
    assert [(a.action, a.actor, a.note) for a in actions][-1] == (action, "alice", "checked with the tax team")
    events = await published(conn, codec)
    assert [e.status for e in events] == [ExceptionStatus.OPEN, status]
    assert events[-1].exception_id == case.id

    code, out, _ = await asyncio.to_thread(cli, ["show", case.id], db_url=db_url, registry_url=registry_url)
    assert code == 0 and f"{len(actions)} action(s) in its history" in out
    assert "sk_live_x" not in out and "[redacted]" in out  # evidence printed as data, never markup


async def test_list_filters_and_summarises(
    conn: asyncpg.Connection, codec: EventCodec, db_url: str, registry_url: str
) -> None:
    case = (await raise_tax(conn, codec, "19.00")).case
    async with conn.transaction():
        await raise_case(
            conn,
            schema=SCHEMA,
            encode=codec.encode,
            kind="erp-period-closed",
            reason="period 2026-11 closed",
            subject={"invoice_id": "in-2"},
            evidence={},
        )
    code, out, _ = await asyncio.to_thread(
        cli, ["list", "--kind", "tax-mismatch"], db_url=db_url, registry_url=registry_url
    )
    assert code == 0 and case.id in out and "erp-period-closed" not in out
    assert "1 exception case(s) (kind=tax-mismatch)" in out
    code, out, _ = await asyncio.to_thread(
        cli, ["list", "--state", "resolved"], db_url=db_url, registry_url=registry_url
    )
    assert code == 0 and "0 exception case(s) (state=resolved)" in out


async def test_cli_errors_are_diagnoses(conn: asyncpg.Connection, db_url: str, registry_url: str) -> None:
    code, _, error = await asyncio.to_thread(cli, ["approve", "not-a-case"], db_url=db_url, registry_url=registry_url)
    assert code != 0 and isinstance(error, CaseNotFound)
    code, _, error = await asyncio.to_thread(
        cli, ["list", "--schema", "nowhere"], db_url=db_url, registry_url=registry_url
    )
    assert code != 0 and "has no exception queue" in str(error)
    code, out, _ = await asyncio.to_thread(cli, ["list", "--state", "lost"], db_url=db_url, registry_url=registry_url)
    assert code == 2 and "lost" in out
