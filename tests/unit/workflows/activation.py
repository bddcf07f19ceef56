"""A small activation workflow used by the workflow tests (unit and integration); not production logic.

contract activated → reserve a plan (undo: release it) → wait for the customer master (SLA 2 h) →
provision the subscription (undo: cancel it) → wait for the first invoice (SLA 24 h) → request the journal.
A customer that is not active, or an SLA breach, raises an exception case; the operator's verdict continues
(approve), re-runs the step (retry) or compensates (reject).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from accord.casework import Verdict
from accord.events import (
    ContractActivated,
    CustomerAccountUpserted,
    InvoiceIssued,
    JournalRequested,
    SourceSystem,
    new_meta,
)
from accord.events.samples import sample_event
from accord.runtime import Outgoing
from accord.workflows import (
    CaseDecided,
    CommandSpec,
    EventArrived,
    Outcome,
    RaiseCase,
    Started,
    Step,
    Timer,
    TimerFired,
    Transition,
    Trigger,
    Wait,
    Workflow,
    field_of,
)

CUSTOMER = CustomerAccountUpserted.AVRO_NAME
INVOICE = InvoiceIssued.AVRO_NAME
CUSTOMER_SLA = timedelta(hours=2)
INVOICE_SLA = timedelta(hours=24)


def invoice_wait(account_id: str) -> Wait:
    """The first invoice, with its SLA as the wait's own deadline."""
    return Wait(INVOICE, account_id, deadline=INVOICE_SLA)


def _await_customer(state: Mapping[str, Any]) -> Transition:
    return Transition(
        state=state,
        step="await-customer",
        waits=[Wait(CUSTOMER, state["account_id"])],
        timers=[Timer("customer-sla", CUSTOMER_SLA)],
    )


def _provision(state: Mapping[str, Any]) -> Transition:
    contract = state["contract_id"]
    return Transition(
        state=state,
        step="await-invoice",
        commands=[CommandSpec("billing", "provision_subscription", f"{contract}:provision", {"contract": contract})],
        completed=Step(
            "provision",
            compensation=[CommandSpec("billing", "cancel_subscription", f"{contract}:cancel", {"contract": contract})],
        ),
        waits=[invoice_wait(state["account_id"])],
    )


def _case(state: Mapping[str, Any], kind: str, reason: str, evidence: Mapping[str, Any]) -> Transition:
    return Transition(
        state={**state, "case_step": state.get("step", "await-customer")},
        step="customer-review",
        cases=[
            RaiseCase(
                kind=kind,
                reason=reason,
                subject={"account_id": state["account_id"], "contract_id": state["contract_id"]},
                evidence=evidence,
            )
        ],
    )


def decide(state: Mapping[str, Any] | None, trigger: Trigger) -> Transition | None:
    if state is None:
        if not isinstance(trigger, Started):
            return None
        contract = trigger.input["contract_id"]
        first = _await_customer({"contract_id": contract, "account_id": trigger.input["account_id"]})
        return Transition(
            state=first.state,
            step=first.step,
            waits=first.waits,
            timers=first.timers,
            commands=[CommandSpec("billing", "reserve_plan", f"{contract}:reserve", {"contract": contract})],
            completed=Step(
                "reserve",
                compensation=[CommandSpec("billing", "release_plan", f"{contract}:release", {"contract": contract})],
            ),
        )
    step = _step(state)
    match trigger:
        case EventArrived(event_type=t, event=event) if t == CUSTOMER and step == "await-customer":
            status = str(field_of(event, "status"))
            if status != "ACTIVE":
                return _case(
                    state,
                    "customer-master-invalid",
                    "customer master is not active",
                    {"crm": {"account_id": state["account_id"], "status": status}},
                )
            return _provision(state)
        case TimerFired(name="customer-sla") if step == "await-customer":
            return _case(
                state, "customer-master-missing", "no customer master within the SLA", {"waited": str(CUSTOMER_SLA)}
            )
        case CaseDecided(verdict=Verdict.APPROVE) if step == "customer-review":
            return _provision(state)
        case CaseDecided(verdict=Verdict.RETRY) if step == "customer-review":
            return _await_customer(state)
        case CaseDecided(verdict=Verdict.REJECT) if step in ("customer-review", "await-invoice"):
            return Transition(state=state, step="rejected", outcome=Outcome.COMPENSATE)
        case EventArrived(event_type=t, event=event) if t == INVOICE and step == "await-invoice":
            invoice_id = str(field_of(event, "invoice_id"))
            journal = sample_event(JournalRequested, minimal=True).model_copy(
                update={
                    "meta": new_meta(
                        JournalRequested,
                        source_system=SourceSystem.ACCORD,
                        source_id=invoice_id,
                        correlation_id=state["contract_id"],
                        entity_version=1,
                    ),
                    "source_document_id": invoice_id,
                }
            )
            return Transition(
                state={**state, "invoice_id": invoice_id},
                step="done",
                outcome=Outcome.COMPLETE,
                emit=[Outgoing(JournalRequested.TOPIC, journal.key(), journal)],
            )
        case TimerFired(name=name) if step == "await-invoice" and name == invoice_wait(state["account_id"]).timer_name:
            return Transition(
                state=state,
                step="await-invoice",
                waits=[Wait(INVOICE, state["account_id"])],  # keeps waiting, the deadline spent
                cases=[
                    RaiseCase(
                        kind="invoice-sla-breached",
                        reason="no first invoice within the SLA",
                        subject={"contract_id": state["contract_id"]},
                    )
                ],
            )
    return None


def _step(state: Mapping[str, Any]) -> str:
    return str(state.get("step", "await-customer"))


def decide_with_step(state: Mapping[str, Any] | None, trigger: Trigger) -> Transition | None:
    """`decide`, keeping the step inside the state too, so the pure decider sees where it is."""
    t = decide(state, trigger)
    return None if t is None else dataclasses.replace(t, state={**t.state, "step": t.step})


ACTIVATION = Workflow(
    name="activation",
    decide=decide_with_step,
    starts_on={ContractActivated.AVRO_NAME: lambda e: str(field_of(e, "contract_id"))},
    correlate={CUSTOMER: lambda e: str(field_of(e, "account_id")), INVOICE: lambda e: str(field_of(e, "account_id"))},
    start_input=lambda e: {
        "contract_id": str(field_of(e, "contract_id")),
        "account_id": str(field_of(e, "account_id")),
    },
)
