"""Durable workflows: pure deciders over instance state, persisted in PostgreSQL with waits, timers,
compensation and an append-only history, each transition in one transaction with the runtime's outbox.

    def decide(state, trigger) -> Transition | None: ...          # pure; see _model.py

    ACTIVATION = Workflow("activation", decide, starts_on={"accord.crm.ContractActivated": lambda e: e.contract_id})

    # in the orchestrator's __main__.py: the standard host, with the engine as its runtime
    class OrchestratorHost(ServiceHost):
        runtime_class = workflow_runtime([ACTIVATION])

    service = Service(name="orchestrator", topics=workflow_topics([ACTIVATION]), handlers={})

    # or by hand (tests, tools): the same one-transaction path without Kafka
    engine = WorkflowEngine([ACTIVATION], pool=pool, schema="orchestrator", encode=codec.encode)
    await engine.migrate()          # runtime 0001+, commands 1001+, workflows 2001+, casework 3001+
    await engine.deliver(envelopes); await engine.fire_due_timers()

Exceptions a transition raises go to the exception queue (`accord.casework`); the operator's decision comes
back as `CaseDecided` through `accord.q2c.ExceptionChanged`.
"""

from accord.runtime import CommandSpec

from ._engine import (
    EXCEPTION_CHANGED,
    MIGRATIONS,
    Delivered,
    WorkflowDefinitionError,
    WorkflowEngine,
    field_of,
    workflow_topics,
)
from ._model import (
    CaseDecided,
    Decide,
    EventArrived,
    Outcome,
    RaiseCase,
    Started,
    Status,
    Step,
    Timer,
    TimerFired,
    Transition,
    Trigger,
    Wait,
    Workflow,
)
from ._runtime import WorkflowRuntime, workflow_runtime

__all__ = [
    "EXCEPTION_CHANGED",
    "MIGRATIONS",
    "CaseDecided",
    "CommandSpec",
    "Decide",
    "Delivered",
    "EventArrived",
    "Outcome",
    "RaiseCase",
    "Started",
    "Status",
    "Step",
    "Timer",
    "TimerFired",
    "Transition",
    "Trigger",
    "Wait",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowEngine",
    "WorkflowRuntime",
    "field_of",
    "workflow_runtime",
    "workflow_topics",
]
