"""The reconciler's RESYNC_CRM_STATUS: the Account's write-back fields written to the CRM again, from this connector's
own latest decision.

    decision = decide_repair(state, event)   # pure: Decision(state noting the repair_id, commands=[one write-back])

The reconciler found the CRM Account's status fields (Payment_Status__c, Invoice_Status__c, Credit_Hold__c: see
`status.py`) disagreeing with billing, e.g. after a person edited them by hand, and asks the CRM connector to write
them again. The account's state (kept by the status consumer, keyed by the canonical account id, which is also the
key of recon.repairs for an account repair) holds what was last decided, at its version. The repair records the
same kind of command the status decider does (`crm/account_status`, an absolute write of the whole set of fields)
carrying that version, so `writeback.AccountStatusWriter`'s rule holds: when it runs, a newer decision supersedes
it and its own command writes the newer state; an older state never overwrites a newer one.

Once per repair_id: the ids carried out are kept in the state (the last `KEEP_REPAIRS`), so a redelivered request
(the runtime's idempotency store) or one re-published under a new event id records nothing new. A request for
another system is not ours; an account with no decision yet is logged and left alone (nothing to write from):
the reconciler tries again after its timeout, then hands the finding to a person.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from accord.events import RepairAction, RepairRequested, SourceSystem
from accord.runtime import CommandSpec, Decision, Envelope, Service

from .status import KIND, SYSTEM, State, command_key
from .status import service as status_service

log = logging.getLogger("accord_crm_connector")

#: repair ids remembered per account (a re-published request comes soon after the first, never 50 repairs later)
KEEP_REPAIRS = 50


def resync_key(account_id: str, version: int, repair_id: str) -> str:
    """Beside the decision's own `crm/account-status/<account>/v<version>`, so the two never share a key."""
    return f"{command_key(account_id, version)}/resync/{repair_id}"


def decide_repair(state: State | None, event: RepairRequested) -> Decision[State]:
    """A RESYNC_CRM_STATUS for the CRM → the account's last decided fields written again, once per repair_id."""
    if event.target_system is not SourceSystem.CRM:
        return Decision()
    repair = f"repair {event.repair_id} ({event.divergence_key})"
    if event.action is not RepairAction.RESYNC_CRM_STATUS or event.entity_type != "account":
        log.warning(
            "%s not carried out: the CRM connector re-syncs account status only (action RESYNC_CRM_STATUS on "
            "entity_type account), got action %s on %s",
            repair,
            event.action.value,
            event.entity_type,
        )
        return Decision()
    if state is None or not state.get("version"):
        log.warning(
            "%s not carried out: this connector has decided no status for account %s yet (no billing invoice or "
            "payment seen for it), so there is nothing to write back",
            repair,
            event.entity_id,
        )
        return Decision()
    done: list[str] = list(state.get("repairs", []))
    if event.repair_id in done:
        return Decision()  # carried out already: the same request re-published
    version = int(state["version"])
    command = CommandSpec(
        system=SYSTEM,
        kind=KIND,
        key=resync_key(event.entity_id, version, event.repair_id),
        payload={"account_id": event.entity_id, "version": version, "fields": dict(state["written"])},
    )
    log.info("%s: account %s status written again as decided at version %d", repair, event.entity_id, version)
    return Decision(state={**state, "repairs": [*done, event.repair_id][-KEEP_REPAIRS:]}, commands=[command])


def service(name: str, topics: Mapping[str, str] | None = None) -> Service:
    """The status consumer (`status.service`) with the reconciler's repairs: one more topic (under the same remap)
    and its handler, on the same per-account state."""
    mapped = dict(topics or {})
    base = status_service(name, mapped)

    def handler(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide_repair(state, envelope.event)

    return replace(
        base,
        topics=[*base.topics, mapped.get(RepairRequested.TOPIC, RepairRequested.TOPIC)],
        handlers={**base.handlers, RepairRequested.AVRO_NAME: handler},
    )
