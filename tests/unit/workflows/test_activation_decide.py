"""The example activation workflow driven through its pure decider: tables of named cases, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from accord.casework import Verdict
from accord.workflows import CaseDecided, EventArrived, Outcome, Started, TimerFired, Trigger, Wait

from .activation import ACTIVATION, CUSTOMER, CUSTOMER_SLA, INVOICE, INVOICE_SLA, invoice_wait

pytestmark = pytest.mark.unit

BASE = {"contract_id": "ctr-1", "account_id": "acc-1"}


def at(step: str, **extra: Any) -> dict[str, Any]:
    return {**BASE, "step": step, **extra}


def customer(status: str) -> EventArrived:
    return EventArrived(CUSTOMER, "acc-1", {"account_id": "acc-1", "status": status}, "e-1")


INVOICE_ISSUED = EventArrived(INVOICE, "acc-1", {"account_id": "acc-1", "invoice_id": "in-1"}, "e-2")

# (name, state, trigger, expected step, expected outcome, expected waits, timer names, case kinds, command keys)
CASES: list[
    tuple[str, Mapping[str, Any] | None, Trigger, str, Outcome, list[Wait], list[str], list[str], list[str]]
] = [
    (
        "start reserves, waits for the customer with a 2 h SLA",
        None,
        Started(BASE),
        "await-customer",
        Outcome.CONTINUE,
        [Wait(CUSTOMER, "acc-1")],
        ["customer-sla"],
        [],
        ["ctr-1:reserve"],
    ),
    (
        "active customer provisions and waits for the invoice",
        at("await-customer"),
        customer("ACTIVE"),
        "await-invoice",
        Outcome.CONTINUE,
        [invoice_wait("acc-1")],
        [],
        [],
        ["ctr-1:provision"],
    ),
    (
        "inactive customer raises a case with the evidence",
        at("await-customer"),
        customer("INACTIVE"),
        "customer-review",
        Outcome.CONTINUE,
        [],
        [],
        ["customer-master-invalid"],
        [],
    ),
    (
        "customer SLA timer raises a case",
        at("await-customer"),
        TimerFired("customer-sla"),
        "customer-review",
        Outcome.CONTINUE,
        [],
        [],
        ["customer-master-missing"],
        [],
    ),
    (
        "approve continues to provisioning",
        at("customer-review"),
        CaseDecided("c-1", "customer-master-invalid", Verdict.APPROVE),
        "await-invoice",
        Outcome.CONTINUE,
        [invoice_wait("acc-1")],
        [],
        [],
        ["ctr-1:provision"],
    ),
    (
        "retry waits for the customer again",
        at("customer-review"),
        CaseDecided("c-1", "customer-master-invalid", Verdict.RETRY),
        "await-customer",
        Outcome.CONTINUE,
        [Wait(CUSTOMER, "acc-1")],
        ["customer-sla"],
        [],
        [],
    ),
    (
        "reject compensates",
        at("customer-review"),
        CaseDecided("c-1", "customer-master-invalid", Verdict.REJECT),
        "rejected",
        Outcome.COMPENSATE,
        [],
        [],
        [],
        [],
    ),
    (
        "first invoice completes",
        at("await-invoice"),
        INVOICE_ISSUED,
        "done",
        Outcome.COMPLETE,
        [],
        [],
        [],
        [],
    ),
    (
        "invoice SLA raises a case and keeps waiting",
        at("await-invoice"),
        TimerFired(invoice_wait("acc-1").timer_name),
        "await-invoice",
        Outcome.CONTINUE,
        [Wait(INVOICE, "acc-1")],
        [],
        ["invoice-sla-breached"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("state", "trigger", "step", "outcome", "waits", "timers", "cases", "commands"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_transitions(
    state: Mapping[str, Any] | None,
    trigger: Trigger,
    step: str,
    outcome: Outcome,
    waits: list[Wait],
    timers: list[str],
    cases: list[str],
    commands: list[str],
) -> None:
    t = ACTIVATION.decide(state, trigger)
    assert t is not None
    assert (t.step, t.outcome, list(t.waits)) == (step, outcome, waits)
    assert [x.name for x in t.timers] == timers
    assert [c.kind for c in t.cases] == cases
    assert [c.key for c in t.commands] == commands
    assert t.state["step"] == step


IGNORED: list[tuple[str, Mapping[str, Any], Trigger]] = [
    ("a customer timer after the customer arrived", at("await-invoice"), TimerFired("customer-sla")),
    ("an invoice before the customer", at("await-customer"), INVOICE_ISSUED),
    ("a second customer event while under review", at("customer-review"), customer("ACTIVE")),
    ("a verdict when no case is open", at("await-invoice"), CaseDecided("c-1", "k", Verdict.APPROVE)),
    ("a second start", at("await-customer"), Started(BASE)),
]


@pytest.mark.parametrize(("state", "trigger"), [c[1:] for c in IGNORED], ids=[c[0] for c in IGNORED])
def test_irrelevant_triggers_change_nothing(state: Mapping[str, Any], trigger: Trigger) -> None:
    assert ACTIVATION.decide(state, trigger) is None


def test_steps_declare_their_compensation_and_the_sla() -> None:
    started = ACTIVATION.decide(None, Started(BASE))
    provisioned = ACTIVATION.decide(at("await-customer"), customer("ACTIVE"))
    assert started is not None and provisioned is not None
    assert started.timers[0].after == CUSTOMER_SLA
    assert started.completed is not None and provisioned.completed is not None
    assert [c.kind for c in started.completed.compensation] == ["release_plan"]
    assert [c.kind for c in provisioned.completed.compensation] == ["cancel_subscription"]


def test_the_invoice_wait_carries_its_sla_as_a_deadline() -> None:
    provisioned = ACTIVATION.decide(at("await-customer"), customer("ACTIVE"))
    assert provisioned is not None
    assert [(w.event_type, w.deadline) for w in provisioned.waits] == [(INVOICE, INVOICE_SLA)]
    assert invoice_wait("acc-1").timer_name == f"deadline:{INVOICE}:acc-1"


def test_first_invoice_requests_the_journal_for_it() -> None:
    done = ACTIVATION.decide(at("await-invoice"), INVOICE_ISSUED)
    assert done is not None
    assert [(o.topic, o.event.source_document_id) for o in done.emit] == [("erp.journal", "in-1")]
