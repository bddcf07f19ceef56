"""The hub's workflows, bound to its configuration, and the service that consumes what they wait for."""

from __future__ import annotations

from accord.runtime import Service
from accord.workflows import Workflow, workflow_topics

from . import activation, amendment, customer
from .hub import HubConfig

NAME = "orchestrator"


def workflows(config: HubConfig) -> list[Workflow]:
    return [customer.workflow(config), activation.workflow(config), amendment.workflow(config)]


def service(config: HubConfig, name: str = NAME) -> Service:
    return Service(name=name, topics=workflow_topics(workflows(config)), handlers={})
