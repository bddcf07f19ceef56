"""The rules against what the real ERP connector emits (its pure decider and result events, no I/O): a clean flow
— foreign currency, per-line rounding, a void's reversal, a rerouted posting — yields no finding, and the
connector's own rejected, held and in-doubt outcomes are classified as the reconciler expects.

This is the contract between the two services' readings of `erp.journal`: if the connector changes how it marks
an in-doubt write or where it books a reversal, this fails here rather than as noise in production.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from accord.commands import Command, Outcome, Status
from accord.events import Event, JournalPosted
from accord_erp_connector.handlers import ConnectorConfig, decide, result_event
from accord_erp_connector.posting import (
    ChartOfAccounts,
    ClosedPeriodPolicy,
    LegalEntity,
    PeriodCalendar,
    PeriodId,
    PeriodState,
    PostingRules,
)
from accord_reconciler.model import MatchState
from accord_reconciler.rules import FindingClass, Policy, SubCause, evaluate

from .builders import at, book, invoice, line, payment, period_closed, states, void

pytestmark = pytest.mark.unit

EU = LegalEntity("EU")
RULES = PostingRules(charts={EU: ChartOfAccounts.default()}, base_currencies={EU: "EUR"})
CLOSED_OCTOBER = PeriodCalendar().with_state(EU, PeriodId("2026-10"), PeriodState.CLOSED)
LATER = at(days=40)


def connector(
    events: list[Event],
    *,
    rules: PostingRules = RULES,
    calendar: PeriodCalendar = CLOSED_OCTOBER,
    outcome: Status = Status.SUCCEEDED,
) -> list[Event]:
    """Every event, what the connector decides for it, and the ERP's answer to each posting command."""
    config = ConnectorConfig(rules=rules, calendar=lambda: calendar, rates={("USD", "EUR"): Decimal("0.917")})
    state = None
    out: list[Event] = []
    for n, event in enumerate(events):
        out.append(event)
        decision = decide(state, event, config)
        state = decision.state if decision.state is not None else state
        out.extend(o.event for o in decision.outputs)
        for spec in decision.commands:
            if spec.kind != "post_journal":
                continue
            command = Command(n, spec.system, spec.kind, spec.key, spec.payload, 1, Status.PENDING)
            p = spec.payload
            debits = sum((Decimal(str(ln["amount"])) for ln in p["lines"] if ln["side"] == "DEBIT"), Decimal(0))
            result = {
                "erp_id": f"je-{p['external_id']}",  # the ERP upserts by externalId: one entry per document
                "posting_period": p["period"],
                "total": str(debits),
                "currency": p["currency"],
            }
            answer = Outcome(outcome, result=result if outcome is Status.SUCCEEDED else None, error="HTTP 504")
            when: datetime = event.meta.occurred_at + timedelta(seconds=5)  # type: ignore[attr-defined]
            out.append(result_event(command, answer, now=when))
    return out


def findings(events: list[Event]) -> dict[str, list[tuple[FindingClass, SubCause | None]]]:
    periods = book(period_closed("2026-10"))
    found: dict[str, list[tuple[FindingClass, SubCause | None]]] = {}
    for key, state in states(*events).items():
        got = evaluate(state, LATER, Policy(), periods=periods)
        if got:
            found[key] = [(f.finding_class, f.sub_cause) for f in got]
    return found


USD = invoice(
    "in_usd", lines=[line("33.33", "USD"), line("33.33", "USD"), line("33.34", "USD")], tax="0.00", currency="USD"
)
FLOW = [
    invoice("in_1"),
    payment("py_1", "120.00", invoice_id="in_1", when=at(days=2)),
    USD,
    invoice("in_2", when=at(minutes=1)),
    void("in_2", when=at(days=3)),
    # dated in a closed period: the connector reroutes it to November (REROUTE is its default policy)
    invoice("in_oct", issued=date(2026, 10, 28), when=at(minutes=2)),
]


def test_a_clean_flow_through_the_real_connector_has_no_findings() -> None:
    events = connector(FLOW)
    posted_periods = {e.source_document_id: e.posting_period for e in events if isinstance(e, JournalPosted)}
    assert posted_periods["in_oct"] == "2026-11"  # it was rerouted, so the no-finding below means something
    assert findings(events) == {}


def test_dropping_one_erp_answer_is_exactly_one_missing_posting() -> None:
    events = [e for e in connector(FLOW) if not (isinstance(e, JournalPosted) and e.source_document_id == "py_1")]
    assert findings(events) == {"journal:EU/py_1": [(FindingClass.MISSING, SubCause.NO_ANSWER)]}


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Status.IN_DOUBT, (FindingClass.IN_DOUBT, None)),
        (Status.FAILED, (FindingClass.MISSING, SubCause.REJECTED)),
    ],
    ids=["in doubt", "refused"],
)
def test_the_connectors_failed_outcomes_are_classified(
    outcome: Status, expected: tuple[FindingClass, SubCause | None]
) -> None:
    assert findings(connector([invoice()], outcome=outcome)) == {"journal:EU/in_1": [expected]}


def test_a_posting_held_under_the_hold_policy_is_missing_for_a_person() -> None:
    hold = replace(RULES, closed_period_policy=ClosedPeriodPolicy.HOLD)
    events = connector([invoice(issued=date(2026, 10, 28))], rules=hold)
    assert findings(events) == {"journal:EU/in_1": [(FindingClass.MISSING, SubCause.HELD)]}


def test_a_posting_moved_by_a_person_into_another_period_is_timing() -> None:
    events = connector([invoice()])
    moved = [e.model_copy(update={"posting_period": "2026-12"}) if isinstance(e, JournalPosted) else e for e in events]
    assert findings(moved) == {"journal:EU/in_1": [(FindingClass.TIMING, None)]}


def test_states_built_from_the_flow_survive_json() -> None:
    for state in states(*connector(FLOW)).values():
        assert MatchState.from_json(state.to_json()) == state
