"""The reconciler's RESYNC_CRM_STATUS in the CRM connector: the account's last decided write-back, again, once per
repair_id, as a versioned command the write-back executor's version rule still governs."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import pytest

from accord.events import (
    DeclineType,
    InvoiceIssued,
    Money,
    PaymentCollected,
    PaymentFailed,
    RepairAction,
    RepairRequested,
    SourceSystem,
    new_meta,
)
from accord.events.samples import sample_event
from accord.runtime import CommandSpec
from accord_crm_connector.repairs import KEEP_REPAIRS, decide_repair, service
from accord_crm_connector.status import KIND, SYSTEM, State, decide

pytestmark = pytest.mark.unit

ACCOUNT = "001ACME"
REPAIR = "3b0f5a8e-58f5-4f49-8c53-1b1d6f0e9a27"


def resync(**fields: Any) -> RepairRequested:
    values: dict[str, Any] = {
        "repair_id": REPAIR,
        "divergence_key": f"account:{ACCOUNT}:status_mismatch",
        "divergence_id": "d-1",
        "action": RepairAction.RESYNC_CRM_STATUS,
        "target_system": SourceSystem.CRM,
        "entity_type": "account",
        "entity_id": ACCOUNT,
        "account_id": ACCOUNT,
        "detail": "Payment_Status__c is Succeeded in the CRM, Failed in billing",
        **fields,
    }
    meta = new_meta(
        RepairRequested,
        source_system=SourceSystem.ACCORD,
        source_id=values["repair_id"],
        correlation_id="finding-1",
        entity_version=1,
        event_id=uuid.uuid4(),
    )
    return RepairRequested(meta=meta, **values)


def decided() -> State:
    """An account with an open invoice and a hard payment failure: two decisions, version 2."""
    state: State | None = None
    invoice = sample_event(InvoiceIssued).model_copy(
        update={"account_id": ACCOUNT, "invoice_id": "in_1", "amount_due": Money(amount=Decimal(100), currency="EUR")}
    )
    failed = sample_event(PaymentFailed).model_copy(
        update={"account_id": ACCOUNT, "invoice_id": "in_1", "decline_type": DeclineType.HARD}
    )
    for event in (invoice, failed):
        decision = decide(state, event)
        assert decision.state is not None
        state = decision.state
    assert state is not None
    return state


STATE = decided()
FIELDS = {"Invoice_Status__c": "Open", "Payment_Status__c": "Failed", "Credit_Hold__c": True}
WRITE = CommandSpec(
    SYSTEM,
    KIND,
    f"crm/account-status/{ACCOUNT}/v2/resync/{REPAIR}",
    {"account_id": ACCOUNT, "version": 2, "fields": FIELDS},
)


def test_the_state_used_below() -> None:
    assert (STATE["version"], STATE["written"]) == (2, FIELDS)


@pytest.mark.parametrize(
    ("state", "event", "commands"),
    [
        pytest.param(STATE, resync(), [WRITE], id="resync-at-the-current-version"),
        pytest.param({**STATE, "repairs": [REPAIR]}, resync(), [], id="same-repair-again"),
        pytest.param({**STATE, "repairs": ["another"]}, resync(), [WRITE], id="another-repair-before"),
        pytest.param(None, resync(), [], id="no-state-for-the-account"),
        pytest.param({**STATE, "version": 0}, resync(), [], id="nothing-decided-yet"),
        pytest.param(STATE, resync(target_system=SourceSystem.BILLING), [], id="for-billing-not-ours"),
        pytest.param(STATE, resync(target_system=SourceSystem.ERP), [], id="for-the-erp-not-ours"),
        pytest.param(STATE, resync(action=RepairAction.READ_BACK), [], id="not-a-crm-action"),
        pytest.param(STATE, resync(entity_type="invoice"), [], id="not-an-account"),
    ],
)
def test_which_requests_write_the_account_again(
    state: State | None, event: RepairRequested, commands: list[CommandSpec]
) -> None:
    decision = decide_repair(state, event)
    assert list(decision.commands) == commands
    assert list(decision.outputs) == []
    if commands:  # carried out: remembered, the decision itself untouched (version, fields)
        assert decision.state is not None and REPAIR in decision.state["repairs"]
        assert (decision.state["version"], decision.state["written"]) == (STATE["version"], STATE["written"])
    else:
        assert decision.state is None


def test_a_replay_after_the_repair_changes_nothing() -> None:
    first = decide_repair(STATE, resync())
    assert first.state is not None
    assert decide_repair(first.state, resync()) == decide_repair(None, resync())  # nothing: no state, no command


def test_a_later_decision_keeps_the_repairs_and_outranks_the_resync() -> None:
    # The invoice paid: version 3, whose command the write-back executor lets supersede the resync's version 2.
    after = decide_repair(STATE, resync()).state
    paid = sample_event(PaymentCollected).model_copy(
        update={
            "account_id": ACCOUNT,
            "invoice_id": "in_1",
            "amount": Money(amount=Decimal(100), currency="EUR"),
            "collected_at": datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC),
        }
    )
    newer = decide(after, paid)
    assert newer.state is not None and newer.state["repairs"] == [REPAIR]
    assert [(c.key, c.payload["version"]) for c in newer.commands] == [(f"crm/account-status/{ACCOUNT}/v3", 3)]
    assert newer.commands[0].payload["fields"]["Invoice_Status__c"] == "Paid"


def test_repair_ids_kept_are_bounded() -> None:
    state: State = {**STATE, "repairs": [f"r{n}" for n in range(KEEP_REPAIRS)]}
    decision = decide_repair(state, resync())
    assert decision.state is not None
    assert len(decision.state["repairs"]) == KEEP_REPAIRS and decision.state["repairs"][-1] == REPAIR


def test_the_service_consumes_the_repairs_topic_through_the_remap() -> None:
    svc = service("crm_connector", {"recon.repairs": "test-repairs", "billing.invoices": "test-invoices"})
    assert {"test-repairs", "test-invoices", "billing.payments"} <= set(svc.topics)
    assert RepairRequested.AVRO_NAME in svc.handlers and InvoiceIssued.AVRO_NAME in svc.handlers
