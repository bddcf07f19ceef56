"""What a workflow definition is: a pure decider over its instance state, and the effects it returns.

    def decide(state: Mapping | None, trigger: Trigger) -> Transition | None

`state` is the instance's JSON state (None before the first transition, i.e. for `Started`); the trigger is
what happened: the instance was started, an awaited event arrived, a timer fired, or an operator decided on
an exception case the instance raised. The transition says the new state and step and lists effects; the
engine persists all of it in one PostgreSQL transaction. None means "not my business": nothing changes.

Waits and timers are declarative: a transition lists everything the instance waits for from now on. Waits
not listed are dropped; a timer not listed is cancelled (a timer listed again keeps its original due time),
so a timer that would fire after its wait was satisfied is simply gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from accord.casework import Severity, Verdict
from accord.runtime import CommandSpec, Outgoing


class Status(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"

    @property
    def finished(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.COMPENSATED)


class Outcome(StrEnum):
    """Where a transition leaves the instance."""

    CONTINUE = "continue"  # waiting on what the transition lists
    COMPLETE = "complete"  # done
    FAIL = "fail"  # stop, without undoing anything
    COMPENSATE = "compensate"  # undo the completed steps, last first, then stop


# -- triggers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """The instance was created (by a start event or by `WorkflowEngine.start`) with this input."""

    input: Mapping[str, Any]
    event_id: str | None = None


@dataclass(frozen=True)
class EventArrived:
    """An event the instance waited for: its type, correlation key and the decoded event itself."""

    event_type: str
    key: str
    event: Any
    event_id: str


@dataclass(frozen=True)
class TimerFired:
    name: str


@dataclass(frozen=True)
class CaseDecided:
    """An operator decided on an exception case this instance raised (`ExceptionChanged` came back)."""

    case_id: str
    kind: str
    verdict: Verdict


Trigger = Started | EventArrived | TimerFired | CaseDecided


# -- effects ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """Resume when an event of `event_type` (full Avro name) with this correlation key arrives.

    With a `deadline`, a timer named `timer_name` fires `TimerFired(timer_name)` if it has not arrived by then
    (and is cancelled with the wait when it does)."""

    event_type: str
    key: str
    deadline: timedelta | None = None

    @property
    def timer_name(self) -> str:
        return f"deadline:{self.event_type}:{self.key}"


@dataclass(frozen=True)
class Timer:
    """Fire `TimerFired(name)` after `after` (from when it was first declared), unless cancelled by then."""

    name: str
    after: timedelta


@dataclass(frozen=True)
class Step:
    """A step this transition completed, and the commands that undo it if the workflow compensates."""

    name: str
    compensation: Sequence[CommandSpec] = ()


@dataclass(frozen=True)
class RaiseCase:
    """An exception for a person (`accord.casework`). The engine waits for its decision on the instance's
    behalf and hands it back as `CaseDecided`. Evidence carries ids and values, never secrets."""

    kind: str
    reason: str
    subject: Mapping[str, str]
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity = Severity.MEDIUM
    legal_entity: str | None = None
    due_in: timedelta | None = None


@dataclass(frozen=True)
class Transition:
    """The instance's new state and step, and what to do about it."""

    state: Mapping[str, Any]
    step: str
    outcome: Outcome = Outcome.CONTINUE
    emit: Sequence[Outgoing] = ()
    commands: Sequence[CommandSpec] = ()
    waits: Sequence[Wait] = ()
    timers: Sequence[Timer] = ()
    completed: Step | None = None
    cases: Sequence[RaiseCase] = ()


Decide = Callable[[Mapping[str, Any] | None, Trigger], Transition | None]


@dataclass(frozen=True)
class Workflow:
    """A workflow type: its name, its decider, and which events start an instance.

    `starts_on` maps an event type to the correlation key of the instance it starts (one instance per
    (workflow, key): a redelivered start event is a no-op). `correlate` maps EVERY event type the workflow
    may wait for to the correlation key an event of that type carries; together they say which topics the
    service subscribes to (`workflow_topics`). A wait on a type missing here fails the instance with that
    diagnosis rather than waiting forever for an event nobody consumes. (Case decisions need no entry.)
    """

    name: str
    decide: Decide
    starts_on: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)
    start_input: Callable[[Any], Mapping[str, Any]] = field(default=lambda event: {})
    correlate: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)
