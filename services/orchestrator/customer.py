"""lead-to-customer: one long-lived instance per account, the owner of the cross-system identity map.

    account upserted in the CRM → validated (required fields, VAT id, legal entity from the billing country)
    → created or updated in billing and in the ERP under the entity's subsidiary → identity map
      (CRM id = canonical id ↔ billing customer id ↔ ERP customer id), kept current by every later upsert.

A newer version of the account re-validates and, if what the systems hold changes, asks both again (older
versions are ignored: last writer wins on the CRM's version). An invalid account raises a case and waits for
the fix in the CRM. A merge points the loser at the survivor and ends the loser's instance; if billing held a
customer for the loser, a person decides what becomes of its subscriptions (a case).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from accord.casework import Severity, Verdict
from accord.events import CustomerAccountMerged, CustomerAccountUpserted, SourceSystem, TaxCalculated
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

NAME = "lead-to-customer"
UPSERTED = CustomerAccountUpserted.AVRO_NAME
MERGED = CustomerAccountMerged.AVRO_NAME
TAX = TaxCalculated.AVRO_NAME
TARGETS = ("BILLING", "ERP")


def account_data(event: Any) -> dict[str, Any]:
    """The fields of an upsert the hub uses, as JSON, with the CRM's version."""
    meta = field_of(event, "meta")
    status = field_of(event, "status")
    return {
        "account_id": str(field_of(event, "account_id")),
        "name": str(field_of(event, "name")),
        "status": str(getattr(status, "value", status)),
        "country_code": str(field_of(event, "country_code")),
        "currency": str(field_of(event, "currency")),
        "tax_exempt": bool(field_of(event, "tax_exempt")),
        "tax_id": field_of(event, "tax_id"),
        "parent_account_id": field_of(event, "parent_account_id"),
        "payment_method": field_of(event, "payment_method"),
        "legal_entity": field_of(event, "legal_entity"),
        "version": int(field_of(meta, "entity_version")),
    }


def workflow_id(account: str) -> str:
    return f"{NAME}:{account}"


def _transition(
    state: dict[str, Any],
    step: str,
    *,
    config: hub.HubConfig,
    emit: Sequence[Any] = (),
    cases: Sequence[RaiseCase] = (),
    outcome: Outcome = Outcome.CONTINUE,
) -> Transition:
    """The transition to `state`: what it waits for is derived from the state, every time."""
    account = state["account_id"]
    waits = [Wait(UPSERTED, account), Wait(MERGED, account), Wait(TAX, account)]
    timers = []
    for target, t in state["targets"].items():
        if t["status"] == "asked":
            waits += hub.answer_waits(t["request"], config.answer_sla)
        elif t["status"] == "retrying":
            timers.append(Timer(f"retry:{target}:{t['attempt']}", timedelta(seconds=t["delay"])))
    return Transition(
        state={**state, "step": step},
        step=step,
        outcome=outcome,
        emit=[hub.outgoing(e) for e in emit],
        waits=waits,
        timers=timers,
        cases=cases,
    )


def _ask(state: dict[str, Any], target: str, attempt: int, cause: str | None) -> Any:
    """Ask `target` to hold the state's master (recording the request in the state); returns the request."""
    master = hub.CustomerMaster(**state["master"])
    request = hub.request_id(state["account_id"], "customer", target, state["version"], attempt)
    t = state["targets"].setdefault(target, {})
    t.update(status="asked", request=request, attempt=attempt)
    return hub.customer_request(
        master,
        SourceSystem[target],
        request=request,
        workflow_id=workflow_id(state["account_id"]),
        cause=cause,
        attempt=attempt,
    )


def _step(state: Mapping[str, Any]) -> str:
    statuses = {t["status"] for t in state["targets"].values()}
    if statuses & {"asked", "retrying"}:
        return "provisioning"
    if "case" in statuses:
        return "sync-failed"
    return "synced"


def _upsert(
    state: dict[str, Any] | None, data: dict[str, Any], cause: str | None, config: hub.HubConfig
) -> Transition | None:
    if state is not None and data["version"] <= state["version"]:
        return None  # an older or repeated version: the newer one is already applied
    if state is not None and state.get("merged_into"):
        return None
    if data["status"] == "PROSPECT":
        base = state or {"account_id": data["account_id"], "targets": {}, "master": None}
        return _transition({**base, "version": data["version"], "pending": data}, "prospect", config=config)
    master, problems = hub.validate(data)
    base = state or {"account_id": data["account_id"], "targets": {}, "master": None}
    new = {
        **base,
        "version": data["version"],
        "pending": data,
        "targets": {k: dict(v) for k, v in base["targets"].items()},
    }
    if master is None:
        case = RaiseCase(
            kind="customer-master-invalid",
            reason="; ".join(problems),
            subject={"account_id": data["account_id"]},
            evidence={
                "crm": {k: v for k, v in data.items() if k not in ("name", "payment_method")},
                "problems": problems,
            },
            severity=Severity.MEDIUM,
        )
        return _transition(new, "invalid", config=config, cases=[case])
    return _provision(new, master, cause, config)


def _provision(
    state: dict[str, Any], master: hub.CustomerMaster, cause: str | None, config: hub.HubConfig
) -> Transition:
    changed = state.get("master") != master.as_json()
    state["master"] = master.as_json()
    emit = []
    for target in TARGETS:
        t = state["targets"].get(target)
        if changed or t is None or t["status"] not in ("done", "asked", "retrying"):
            emit.append(_ask(state, target, 0, cause))
    return _transition(state, _step(state), config=config, emit=emit)


def _answered(state: dict[str, Any], request: str) -> str | None:
    return next((k for k, t in state["targets"].items() if t.get("request") == request), None)


def _failed(state: dict[str, Any], target: str, error: dict[str, Any], config: hub.HubConfig) -> Transition:
    t = state["targets"][target]
    t["error"] = error
    delay = config.retry_delay(t["attempt"], error["code"]) if error["retryable"] else None
    if delay is not None:
        t.update(status="retrying", delay=delay.total_seconds())
        return _transition(state, _step(state), config=config)
    t["status"] = "case"
    case = RaiseCase(
        kind=f"{target.lower()}-customer-sync-failed",
        reason=f"{target.lower()} did not take the customer: {error['code']}",
        subject={"account_id": state["account_id"], "system": target.lower()},
        evidence={"request_id": t["request"], "attempts": t["attempt"] + 1, "last_error": error},
        severity=Severity.HIGH,
        legal_entity=(state.get("master") or {}).get("legal_entity"),
    )
    return _transition(state, _step(state), config=config, cases=[case])


def decide(state: Mapping[str, Any] | None, trigger: Trigger, config: hub.HubConfig) -> Transition | None:
    if state is None:
        if not isinstance(trigger, Started):
            return None
        return _upsert(None, dict(trigger.input), trigger.event_id, config)
    s: dict[str, Any] = {**state, "targets": {k: dict(v) for k, v in state["targets"].items()}}
    match trigger:
        case EventArrived(event_type=t, event=event, event_id=cause) if t == UPSERTED:
            return _upsert(s, account_data(event), cause, config)
        case EventArrived(event_type=t, event=event) if t == MERGED:
            survivor = str(field_of(event, "account_id"))
            s["merged_into"] = survivor
            cases = []
            billing = s["targets"].get("BILLING", {})
            if billing.get("id"):
                cases.append(
                    RaiseCase(
                        kind="account-merged",
                        reason="the CRM merged this account into another; billing still has its customer",
                        subject={"account_id": s["account_id"], "survivor": survivor},
                        evidence={"billing_customer_id": billing["id"], "survivor_account_id": survivor},
                        severity=Severity.LOW,
                    )
                )
            return _transition(s, "merged", config=config, cases=cases, outcome=Outcome.COMPLETE)
        case EventArrived(event_type=t, event=event) if t == TAX:
            if not s.get("master"):
                return None
            return _tax_check(s, event, config)
        case EventArrived(event_type=t, key=request, event=event) if t == hub.COMPLETED:
            target = _answered(s, request)
            if target is None or s["targets"][target]["status"] != "asked":
                return None  # an answer to an earlier request, superseded
            ids = list(field_of(event, "system_ids"))
            s["targets"][target].update(status="done", id=ids[0] if ids else None, error=None)
            return _transition(s, _step(s), config=config)
        case EventArrived(event_type=t, key=request, event=event) if t == hub.FAILED:
            target = _answered(s, request)
            if target is None or s["targets"][target]["status"] != "asked":
                return None
            return _failed(s, target, hub.failure(event), config)
        case TimerFired(name=name) if name.startswith("retry:"):
            _, target, attempt = name.split(":")
            t = s["targets"].get(target, {})
            if t.get("status") != "retrying" or str(t.get("attempt")) != attempt:
                return None
            request = _ask(s, target, int(attempt) + 1, None)
            return _transition(s, _step(s), config=config, emit=[request])
        case TimerFired(name=name):
            target = next(
                (k for k, t in s["targets"].items() if hub.answer_deadline(t.get("request", "")) == name), None
            )
            if target is None or s["targets"][target]["status"] != "asked":
                return None
            error = {"code": "no-answer", "message": f"no answer within {config.answer_sla}", "retryable": True}
            return _failed(s, target, error, config)
        case CaseDecided(kind="customer-master-invalid", verdict=verdict):
            if verdict is Verdict.REJECT or s.get("pending") is None:
                return _transition(s, "invalid", config=config)
            master, _ = hub.validate(s["pending"])
            if master is None and verdict is Verdict.APPROVE:
                master = _accepted_as_is(s["pending"])
            if master is None:
                return _upsert({**s, "version": s["version"] - 1}, s["pending"], None, config)
            return _provision(s, master, None, config)
        case CaseDecided(kind=kind, verdict=verdict) if kind.endswith("-customer-sync-failed"):
            target = kind.split("-", 1)[0].upper()
            t = s["targets"].get(target)
            if t is None or t["status"] != "case":
                return None
            if verdict is Verdict.RETRY:
                request = _ask(s, target, t["attempt"] + 1, None)
                return _transition(s, _step(s), config=config, emit=[request])
            t["status"] = "done" if verdict is Verdict.APPROVE else "abandoned"
            return _transition(s, _step(s), config=config)
    return None


def _tax_check(state: dict[str, Any], event: Any, config: hub.HubConfig) -> Transition | None:
    """Tax billing calculated on one of the customer's documents, against the treatment the hub asked for."""
    master = hub.CustomerMaster(**state["master"])
    taxable, tax = field_of(event, "taxable_amount"), field_of(event, "tax_amount")
    problem = hub.tax_mismatch(master, Decimal(str(field_of(taxable, "amount"))), Decimal(str(field_of(tax, "amount"))))
    if problem is None:
        return None
    document = str(field_of(event, "document_id"))
    case = RaiseCase(
        kind="tax-mismatch",
        reason=problem,
        subject={"account_id": state["account_id"], "invoice_id": document},
        evidence={
            "billing": {
                "document_id": document,
                "taxable": str(field_of(taxable, "amount")),
                "tax": str(field_of(tax, "amount")),
                "currency": str(field_of(tax, "currency")),
            },
            "hub": {"tax_exempt": master.tax_exempt, "country": master.country, "legal_entity": master.legal_entity},
        },
        severity=Severity.HIGH,
        legal_entity=master.legal_entity,
    )
    return _transition(state, state.get("step", _step(state)), config=config, cases=[case])


def _accepted_as_is(data: Mapping[str, Any]) -> hub.CustomerMaster | None:
    """An operator approved an account the rules refuse: provision it if at least its legal entity is known."""
    entity = data.get("legal_entity") or hub.legal_entity_of(str(data.get("country_code") or ""))
    if entity not in hub.ENTITIES:
        return None
    country = str(data.get("country_code") or "")
    return hub.CustomerMaster(
        account_id=str(data["account_id"]),
        name=str(data.get("name") or data["account_id"]),
        country=country,
        currency=str(data.get("currency") or ""),
        legal_entity=str(entity),
        tax_id=data.get("tax_id"),
        tax_exempt=bool(data.get("tax_exempt")) or hub.reverse_charge(str(entity), country, data.get("tax_id")),
        parent_account_id=data.get("parent_account_id"),
        payment_method=data.get("payment_method"),
    )


def workflow(config: hub.HubConfig) -> Workflow:
    return Workflow(
        name=NAME,
        decide=lambda state, trigger: decide(state, trigger, config),
        starts_on={UPSERTED: lambda e: str(field_of(e, "account_id"))},
        start_input=account_data,
        correlate={
            UPSERTED: lambda e: str(field_of(e, "account_id")),
            MERGED: lambda e: str(field_of(e, "merged_account_id")),
            TAX: lambda e: str(field_of(e, "account_id")),
            hub.COMPLETED: lambda e: str(field_of(e, "request_id")),
            hub.FAILED: lambda e: str(field_of(e, "request_id")),
        },
    )
