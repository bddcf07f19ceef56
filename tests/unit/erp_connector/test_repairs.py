"""The reconciler's READ_BACK in the ERP connector: which requests become a `read_back` command, and which journal
command a READ_BACK hands back to the worker's read-back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from accord.commands import Status
from accord.events import RepairAction, RepairRequested, SourceSystem, new_meta
from accord.runtime import CommandSpec
from accord_erp_connector.handlers import LOCAL, READ_BACK_KIND, ConnectorConfig, decide_repair, service
from accord_erp_connector.posting import ChartOfAccounts, LegalEntity, PostingRules
from accord_erp_connector.repairs import Choice, Verdict, choose

pytestmark = pytest.mark.unit

REPAIR_ID = "7d1c9a52-0b7e-4d43-9d7e-2a9a6b1f0c11"


def request(**fields: Any) -> RepairRequested:
    values: dict[str, Any] = {
        "repair_id": REPAIR_ID,
        "divergence_key": "journal:EU/in_1:in_doubt",
        "divergence_id": "d-1",
        "action": RepairAction.READ_BACK,
        "target_system": SourceSystem.ERP,
        "entity_type": "invoice",
        "entity_id": "in_1",
        "account_id": "acc-1",
        "journal_request_id": "accord-EU-invoice-in_1",
        "detail": "the ERP write is in doubt",
        **fields,
    }
    meta = new_meta(
        RepairRequested,
        source_system=SourceSystem.ACCORD,
        source_id=values["repair_id"],
        correlation_id="finding-1",
        entity_version=1,
        legal_entity="EU",
        event_id=uuid.uuid4(),
    )
    return RepairRequested(meta=meta, **values)


READ_BACK = CommandSpec(
    LOCAL,
    READ_BACK_KIND,
    f"repair/{REPAIR_ID}",
    {
        "repair_id": REPAIR_ID,
        "divergence_key": "journal:EU/in_1:in_doubt",
        "entity_id": "in_1",
        "external_id": "accord-EU-invoice-in_1",
    },
)


@pytest.mark.parametrize(
    ("event", "commands"),
    [
        pytest.param(request(), [READ_BACK], id="read-back"),
        pytest.param(request(target_system=SourceSystem.BILLING), [], id="for-billing-not-ours"),
        pytest.param(request(target_system=SourceSystem.CRM), [], id="for-crm-not-ours"),
        pytest.param(request(action=RepairAction.REDRIVE_POSTING), [], id="not-an-erp-action"),
        pytest.param(request(action=RepairAction.UNKNOWN), [], id="unknown-action-from-a-newer-writer"),
        pytest.param(request(journal_request_id=None), [], id="no-external-id"),
        pytest.param(request(journal_request_id="  "), [], id="blank-external-id"),
    ],
)
def test_which_requests_become_a_read_back(event: RepairRequested, commands: list[CommandSpec]) -> None:
    decision = decide_repair(event)
    assert list(decision.commands) == commands
    assert decision.state is None and list(decision.outputs) == []  # no state kept under document keys


def test_the_same_request_under_another_event_id_is_the_same_command() -> None:
    # A re-published request must be the same command (enqueue: no-op), never a key conflict.
    assert decide_repair(request()).commands == decide_repair(request()).commands


def test_the_service_consumes_the_repairs_topic_through_the_remap() -> None:
    rules = PostingRules(
        charts={LegalEntity("EU"): ChartOfAccounts.default()}, base_currencies={LegalEntity("EU"): "EUR"}
    )
    svc = service(ConnectorConfig(rules=rules, topics={"recon.repairs": "test-repairs"}))
    assert "test-repairs" in svc.topics and "recon.repairs" not in svc.topics
    assert RepairRequested.AVRO_NAME in svc.handlers


S, D, P, R, F = Status.SUCCEEDED, Status.IN_DOUBT, Status.PENDING, Status.RUNNING, Status.FAILED


@pytest.mark.parametrize(
    ("commands", "choice"),
    [
        pytest.param([(7, D)], Choice(Verdict.READ_BACK, 7), id="in-doubt"),
        pytest.param([(3, D), (9, D)], Choice(Verdict.READ_BACK, 9), id="the-newest-in-doubt"),
        pytest.param([(3, D), (9, F)], Choice(Verdict.READ_BACK, 3), id="in-doubt-beside-a-refusal"),
        pytest.param([(3, D), (9, S)], Choice(Verdict.ALREADY_POSTED, 9), id="re-sent-and-posted-since"),
        pytest.param([(9, D), (3, S)], Choice(Verdict.READ_BACK, 9), id="the-resend-in-doubt-after-a-posting"),
        pytest.param([(3, D), (9, P)], Choice(Verdict.IN_PROGRESS, 9), id="re-sent-and-pending"),
        pytest.param([(7, S)], Choice(Verdict.ALREADY_POSTED, 7), id="already-read-back-by-an-earlier-repair"),
        pytest.param([(7, P)], Choice(Verdict.IN_PROGRESS, 7), id="pending"),
        pytest.param([(7, R)], Choice(Verdict.IN_PROGRESS, 7), id="running"),
        pytest.param([(7, F)], Choice(Verdict.FAILED, 7), id="refused-for-good"),
        pytest.param([(2, F), (7, F)], Choice(Verdict.FAILED, 7), id="every-one-refused"),
        pytest.param([], Choice(Verdict.UNKNOWN), id="never-requested-here"),
    ],
)
def test_which_journal_command_a_read_back_hands_back(commands: list[tuple[int, Status]], choice: Choice) -> None:
    assert choose(commands) == choice
