"""quote-to-cash activation: one instance per activated contract.

    contract activated → credit review when its value is above the threshold (a person approves)
    → subscriptions provisioned in billing (the billing connector finds the account's customer; a customer not
      there yet is a retryable failure: the hub waits and asks again while lead-to-customer creates it)
    → first invoice (SLA) → its ERP posting confirmed (SLA) → done.

An invoice or a posting consumed before the step that waits for it is handed over by the engine's mailbox.
A zero invoice (e.g. metered usage not yet used) is not the first invoice. A rejected posting (a closed period
under the hold policy) goes to a person: approve ends the workflow, retry waits for the posting again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from accord.casework import Severity, Verdict
from accord.events import ContractActivated, ContractCancelled, InvoiceIssued, JournalPosted, JournalRejected
from accord.workflows import (
    CaseDecided,
    EventArrived,
    Outcome,
    RaiseCase,
    Started,
    Timer,
    TimerFired,
    Transition,
    Trigger,
    Wait,
    Workflow,
    field_of,
)

from . import hub

NAME = "activation"
ACTIVATED = ContractActivated.AVRO_NAME
INVOICE = InvoiceIssued.AVRO_NAME
POSTED = JournalPosted.AVRO_NAME
REJECTED = JournalRejected.AVRO_NAME
CANCELLED = ContractCancelled.AVRO_NAME
#: steps before the contract's subscriptions exist: a cancellation then means they are never created
BEFORE_SUBSCRIPTIONS = ("credit-review", "provisioning", "retrying", "provisioning-failed")


def contract_data(event: Any) -> dict[str, Any]:
    value = field_of(event, "total_contract_value")
    meta = field_of(event, "meta")
    return {
        "contract_id": str(field_of(event, "contract_id")),
        "account_id": str(field_of(event, "account_id")),
        "legal_entity": field_of(meta, "legal_entity"),
        "activated_at": str(field_of(meta, "occurred_at")),  # in the CRM: where end-to-end latency starts
        "currency": str(field_of(value, "currency")),
        "value": str(field_of(value, "amount")),
        "start_date": str(field_of(event, "start_date")),
        "end_date": str(field_of(event, "end_date")),
        "lines": [line.model_dump(mode="json") for line in field_of(event, "lines")],
    }


def workflow_id(contract: str) -> str:
    return f"{NAME}:{contract}"


def _transition(
    state: dict[str, Any],
    step: str,
    config: hub.HubConfig,
    *,
    emit: Sequence[Any] = (),
    cases: Sequence[RaiseCase] = (),
    outcome: Outcome = Outcome.CONTINUE,
) -> Transition:
    waits: list[Wait] = []
    timers: list[Timer] = []
    contract = state["contract_id"]
    if step == "provisioning":
        waits += hub.answer_waits(state["request"], config.answer_sla)
    elif step == "retrying":
        timers.append(Timer(f"retry:{state['attempt']}", timedelta(seconds=state["delay"])))
    if step in BEFORE_SUBSCRIPTIONS and not state.get("cancelled"):
        waits.append(Wait(CANCELLED, contract))
    if step in BEFORE_SUBSCRIPTIONS and not state.get("invoice_id"):
        waits.append(Wait(INVOICE, contract))  # an early invoice is kept in state
    elif step == "await-first-invoice":
        waits.append(Wait(INVOICE, contract, deadline=config.first_invoice_sla))
    elif step == "await-posting":
        waits += [Wait(POSTED, state["invoice_id"], deadline=config.posting_sla), Wait(REJECTED, state["invoice_id"])]
    return Transition(
        state={**state, "step": step},
        step=step,
        outcome=outcome,
        emit=[hub.outgoing(e) for e in emit],
        waits=waits,
        timers=timers,
        cases=cases,
    )


def _provision(state: dict[str, Any], attempt: int, cause: str | None, config: hub.HubConfig) -> Transition:
    request = hub.request_id(state["contract_id"], "create", attempt)
    state.update(request=request, attempt=attempt)
    event = hub.subscription_request(
        state,
        action="CREATE",
        request=request,
        workflow_id=workflow_id(state["contract_id"]),
        cause=cause,
        attempt=attempt,
        start_date=state["start_date"],
        end_date=state["end_date"],
        lines=state["lines"],
    )
    return _transition(state, "provisioning", config, emit=[event])


def _after_provisioned(state: dict[str, Any], config: hub.HubConfig) -> Transition:
    if state.get("invoice_id"):
        return _transition(state, "await-posting", config)
    return _transition(state, "await-first-invoice", config)


def _cancel_provisioned(state: dict[str, Any], config: hub.HubConfig) -> Transition:
    """The contract was cancelled while billing created its subscriptions: cancel them, and end here (the
    cancellation's own instance found nothing to cancel when it asked)."""
    request = hub.request_id(state["contract_id"], "cancel-after-create")
    event = hub.subscription_request(
        state,
        action="CANCEL",
        request=request,
        workflow_id=workflow_id(state["contract_id"]),
        cause=None,
        attempt=0,
        start_date=state["cancelled"],
        end_date=state["cancelled"],
        lines=[],
        proration="NO_PRORATION",
    )
    return _transition(state, "cancelled", config, emit=[event], outcome=Outcome.COMPLETE)


def _invoice(state: dict[str, Any], event: Any) -> bool:
    """Record the contract's first invoice with an amount; False for a zero invoice."""
    total = field_of(event, "total")
    if Decimal(str(field_of(total, "amount"))) == 0:
        return False
    state["invoice_id"] = str(field_of(event, "invoice_id"))
    return True


def _case(state: dict[str, Any], kind: str, reason: str, evidence: Mapping[str, Any], severity: Severity) -> RaiseCase:
    return RaiseCase(
        kind=kind,
        reason=reason,
        subject={"contract_id": state["contract_id"], "account_id": state["account_id"]},
        evidence=evidence,
        severity=severity,
        legal_entity=state.get("legal_entity"),
    )


def decide(state: Mapping[str, Any] | None, trigger: Trigger, config: hub.HubConfig) -> Transition | None:
    if state is None:
        if not isinstance(trigger, Started):
            return None
        s = dict(trigger.input)
        if Decimal(s["value"]) > config.credit_review_threshold:
            case = _case(
                s,
                "credit-review",
                f"contract value {s['value']} {s['currency']} is above the credit review threshold",
                {"value": s["value"], "currency": s["currency"], "threshold": str(config.credit_review_threshold)},
                Severity.MEDIUM,
            )
            return _transition(s, "credit-review", config, cases=[case])
        return _provision(s, 0, trigger.event_id, config)
    s = dict(state)
    step = s["step"]
    match trigger:
        case CaseDecided(kind="credit-review", verdict=verdict) if step == "credit-review":
            if verdict is Verdict.REJECT:
                return _transition(s, "credit-declined", config, outcome=Outcome.FAIL)
            return _provision(s, 0, None, config)
        case EventArrived(event_type=t) if t == CANCELLED and step in BEFORE_SUBSCRIPTIONS:
            if step != "provisioning":  # nothing asked of billing, or nothing it did: nothing to provision
                return _transition(s, "cancelled", config, outcome=Outcome.COMPLETE)
            s["cancelled"] = str(field_of(trigger.event, "effective_date"))  # billing is creating them: undo after
            return _transition(s, step, config)
        case EventArrived(event_type=t, key=request) if t == hub.COMPLETED and step == "provisioning":
            if request != s["request"]:
                return None
            s["subscription_ids"] = list(field_of(trigger.event, "system_ids"))
            if s.get("cancelled"):
                return _cancel_provisioned(s, config)
            return _after_provisioned(s, config)
        case EventArrived(event_type=t, key=request) if t == hub.FAILED and step == "provisioning":
            if request != s["request"]:
                return None
            error = hub.failure(trigger.event)
            s["error"] = error
            delay = config.retry_delay(s["attempt"], error["code"]) if error["retryable"] else None
            if delay is not None:
                s["delay"] = delay.total_seconds()
                return _transition(s, "retrying", config)
            case = _case(
                s,
                "subscription-provisioning-failed",
                f"billing did not provision the contract: {error['code']}",
                {"request_id": s["request"], "attempts": s["attempt"] + 1, "last_error": error},
                Severity.HIGH,
            )
            return _transition(s, "provisioning-failed", config, cases=[case])
        case TimerFired(name=name) if step == "retrying" and name == f"retry:{s['attempt']}":
            return _provision(s, s["attempt"] + 1, None, config)
        case TimerFired(name=name) if step == "provisioning" and name == hub.answer_deadline(s["request"]):
            s["error"] = {"code": "no-answer", "message": f"no answer within {config.answer_sla}", "retryable": True}
            return _provision(s, s["attempt"] + 1, None, config)
        case CaseDecided(kind="subscription-provisioning-failed", verdict=verdict) if step == "provisioning-failed":
            if verdict is Verdict.RETRY:
                return _provision(s, s["attempt"] + 1, None, config)
            if verdict is Verdict.APPROVE:  # provisioned by hand
                return _transition(s, "await-first-invoice", config)
            return _transition(s, "abandoned", config, outcome=Outcome.FAIL)
        case EventArrived(event_type=t, event=event) if t == INVOICE:
            if s.get("invoice_id") or not _invoice(s, event):
                return None
            if step == "await-first-invoice":
                return _transition(s, "await-posting", config)
            return _transition(s, step, config)
        case TimerFired(name=name) if step == "await-first-invoice":
            case = _case(
                s,
                "first-invoice-overdue",
                f"no invoice within {config.first_invoice_sla} of the subscription",
                {"subscription_ids": s.get("subscription_ids", [])},
                Severity.MEDIUM,
            )
            return Transition(
                state=s, step=step, waits=[Wait(INVOICE, s["contract_id"])], cases=[case]
            )  # keeps waiting, the deadline spent
        case EventArrived(event_type=t, event=event) if t == POSTED and step == "await-posting":
            s["journal"] = {
                "erp_journal_id": str(field_of(event, "erp_journal_id")),
                "period": str(field_of(event, "posting_period")),
                "legal_entity": str(field_of(event, "legal_entity")),
            }
            return _transition(s, "done", config, outcome=Outcome.COMPLETE)
        case EventArrived(event_type=t, event=event) if t == REJECTED and step == "await-posting":
            reason = field_of(event, "reason")
            reason = str(getattr(reason, "value", reason))
            kind = "erp-period-closed" if reason == "PERIOD_CLOSED" else "erp-posting-rejected"
            case = _case(
                s,
                kind,
                f"the ERP did not post invoice {s['invoice_id']}: {reason}",
                {"invoice_id": s["invoice_id"], "reason": reason, "detail": str(field_of(event, "detail"))},
                Severity.HIGH,
            )
            return _transition(s, "posting-rejected", config, cases=[case])
        case CaseDecided(kind=kind, verdict=verdict) if step == "posting-rejected":
            if verdict is Verdict.RETRY:
                return _transition(s, "await-posting", config)
            if verdict is Verdict.APPROVE:
                return _transition(s, "done", config, outcome=Outcome.COMPLETE)
            return _transition(s, "posting-abandoned", config, outcome=Outcome.FAIL)
        case TimerFired(name=name) if step == "await-posting":
            case = _case(
                s,
                "posting-overdue",
                f"invoice {s['invoice_id']} not posted within {config.posting_sla}",
                {"invoice_id": s["invoice_id"]},
                Severity.MEDIUM,
            )
            return Transition(
                state=s,
                step=step,
                waits=[Wait(POSTED, s["invoice_id"]), Wait(REJECTED, s["invoice_id"])],
                cases=[case],
            )
    return None


def workflow(config: hub.HubConfig) -> Workflow:
    return Workflow(
        name=NAME,
        decide=lambda state, trigger: decide(state, trigger, config),
        starts_on={ACTIVATED: lambda e: str(field_of(e, "contract_id"))},
        start_input=contract_data,
        correlate={
            hub.COMPLETED: lambda e: str(field_of(e, "request_id")),
            hub.FAILED: lambda e: str(field_of(e, "request_id")),
            INVOICE: lambda e: str(field_of(e, "contract_id") or ""),
            POSTED: lambda e: str(field_of(e, "source_document_id")),
            REJECTED: lambda e: str(field_of(e, "source_document_id")),
            CANCELLED: lambda e: str(field_of(e, "contract_id")),
        },
    )
