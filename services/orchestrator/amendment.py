"""Contract changes: one instance per amendment (and per cancellation), carried out in billing.

    amendment (or cancellation) in the CRM → AMEND (or CANCEL) asked of billing, co-termed to the contract's
    end → done.

Order: an amendment may be consumed before its contract's subscriptions exist (the activation is still
provisioning, or waits for a credit review). Billing then answers a retryable failure (no subscription for the
contract yet) and the instance waits and asks again, so a change never lands on a subscription before the
subscription itself; when the retries are spent, a person gets a case (retry asks again, approve means done by
hand, reject abandons the change).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from accord.casework import Severity, Verdict
from accord.events import ContractAmended, ContractCancelled
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

NAME = "amendment"
AMENDED = ContractAmended.AVRO_NAME
CANCELLED = ContractCancelled.AVRO_NAME


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


def amendment_data(event: Any) -> dict[str, Any]:
    meta = field_of(event, "meta")
    delta = field_of(event, "delta_contract_value")
    return {
        "action": "AMEND",
        "key": str(field_of(event, "amendment_id")),
        "amendment_id": str(field_of(event, "amendment_id")),
        "amendment_type": _enum(field_of(event, "amendment_type")),
        "contract_id": str(field_of(event, "contract_id")),
        "account_id": str(field_of(event, "account_id")),
        "legal_entity": field_of(meta, "legal_entity"),
        "currency": str(field_of(delta, "currency")),
        "start_date": str(field_of(event, "effective_date")),
        "end_date": str(field_of(event, "co_term_end_date")),
        "proration": _enum(field_of(event, "proration_policy")),
        "lines": [line.model_dump(mode="json") for line in field_of(event, "changed_lines")],
    }


def cancellation_data(event: Any) -> dict[str, Any]:
    meta = field_of(event, "meta")
    contract = str(field_of(event, "contract_id"))
    return {
        "action": "CANCEL",
        "key": f"cancel:{contract}",
        "amendment_id": None,
        "contract_id": contract,
        "account_id": str(field_of(event, "account_id")),
        "legal_entity": field_of(meta, "legal_entity"),
        "currency": "XXX",  # no money moves on a cancellation request; billing keeps the subscription's currency
        "start_date": str(field_of(event, "effective_date")),
        "end_date": str(field_of(event, "effective_date")),
        "proration": _enum(field_of(event, "proration_policy")),
        "lines": [],
    }


def _transition(
    state: dict[str, Any],
    step: str,
    config: hub.HubConfig,
    *,
    emit: Sequence[Any] = (),
    cases: Sequence[RaiseCase] = (),
    outcome: Outcome = Outcome.CONTINUE,
) -> Transition:
    waits = hub.answer_waits(state["request"], config.answer_sla) if step == "provisioning" else []
    if state["action"] == "AMEND" and step in ("provisioning", "retrying"):
        waits.append(Wait(CANCELLED, state["contract_id"]))  # a cancelled contract needs no amendment
    timers = [Timer(f"retry:{state['attempt']}", timedelta(seconds=state["delay"]))] if step == "retrying" else []
    return Transition(
        state={**state, "step": step},
        step=step,
        outcome=outcome,
        emit=[hub.outgoing(e) for e in emit],
        waits=waits,
        timers=timers,
        cases=cases,
    )


def _ask(state: dict[str, Any], attempt: int, cause: str | None, config: hub.HubConfig) -> Transition:
    request = hub.request_id(state["key"], state["action"].lower(), attempt)
    state.update(request=request, attempt=attempt)
    event = hub.subscription_request(
        state,
        action=state["action"],
        request=request,
        workflow_id=f"{NAME}:{state['key']}",
        cause=cause,
        attempt=attempt,
        start_date=state["start_date"],
        end_date=state["end_date"],
        lines=state["lines"],
        proration=state["proration"] if state["proration"] != "UNKNOWN" else "PRORATE_DAILY",
        amendment_id=state["amendment_id"],
    )
    return _transition(state, "provisioning", config, emit=[event])


def decide(state: dict[str, Any] | None, trigger: Trigger, config: hub.HubConfig) -> Transition | None:
    if state is None:
        return _ask(dict(trigger.input), 0, trigger.event_id, config) if isinstance(trigger, Started) else None
    s = dict(state)
    step = s["step"]
    match trigger:
        case EventArrived(event_type=t, key=request) if t == hub.COMPLETED and step == "provisioning":
            if request != s["request"]:
                return None
            s["subscription_ids"] = list(field_of(trigger.event, "system_ids"))
            return _transition(s, "done", config, outcome=Outcome.COMPLETE)
        case EventArrived(event_type=t, key=request) if t == hub.FAILED and step == "provisioning":
            if request != s["request"]:
                return None
            error = hub.failure(trigger.event)
            s["error"] = error
            if s["action"] == "CANCEL" and error["code"] == "no-subscriptions":
                # Never provisioned (cancelled before its activation reached billing): nothing to cancel. An
                # activation still provisioning saw the cancellation too and cancels what billing creates.
                return _transition(s, "nothing-to-cancel", config, outcome=Outcome.COMPLETE)
            delay = config.retry_delay(s["attempt"], error["code"]) if error["retryable"] else None
            if delay is not None:
                s["delay"] = delay.total_seconds()
                return _transition(s, "retrying", config)
            case = RaiseCase(
                kind="contract-change-failed",
                reason=f"billing did not carry out the {s['action'].lower()}: {error['code']}",
                subject={"contract_id": s["contract_id"], "account_id": s["account_id"], "change": s["key"]},
                evidence={"request_id": s["request"], "attempts": s["attempt"] + 1, "last_error": error},
                severity=Severity.HIGH,
                legal_entity=s.get("legal_entity"),
            )
            return _transition(s, "failed", config, cases=[case])
        case EventArrived(event_type=t) if t == CANCELLED and step in ("provisioning", "retrying"):
            # Cancelled while this change waited for the contract's subscriptions (or was being carried out: the
            # cancellation's own instance ends the subscriptions whatever this change did to them).
            return _transition(s, "superseded", config, outcome=Outcome.COMPLETE)
        case TimerFired(name=name) if step == "retrying" and name == f"retry:{s['attempt']}":
            return _ask(s, s["attempt"] + 1, None, config)
        case TimerFired(name=name) if step == "provisioning" and name == hub.answer_deadline(s["request"]):
            return _ask(s, s["attempt"] + 1, None, config)
        case CaseDecided(verdict=verdict) if step == "failed":
            if verdict is Verdict.RETRY:
                return _ask(s, s["attempt"] + 1, None, config)
            if verdict is Verdict.APPROVE:
                return _transition(s, "done", config, outcome=Outcome.COMPLETE)
            return _transition(s, "abandoned", config, outcome=Outcome.FAIL)
    return None


def workflow(config: hub.HubConfig) -> Workflow:
    return Workflow(
        name=NAME,
        decide=lambda state, trigger: decide(None if state is None else dict(state), trigger, config),
        starts_on={
            AMENDED: lambda e: str(field_of(e, "amendment_id")),
            CANCELLED: lambda e: f"cancel:{field_of(e, 'contract_id')}",
        },
        start_input=lambda e: (
            amendment_data(e) if field_of(field_of(e, "meta"), "event_type") == AMENDED else cancellation_data(e)
        ),
        correlate={
            hub.COMPLETED: lambda e: str(field_of(e, "request_id")),
            hub.FAILED: lambda e: str(field_of(e, "request_id")),
            CANCELLED: lambda e: str(field_of(e, "contract_id")),
        },
    )
