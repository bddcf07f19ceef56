"""The reconciler's REDRIVE_POSTING repairs: publish a billing document's canonical event again, from billing's API.

The reconciler asks for one when the ERP lacks (or holds a stale) posting of a billing document: a
`RepairRequested` on `recon.repairs` with target BILLING, action REDRIVE_POSTING, and the document (entity_type
invoice | credit_note | payment | refund, entity_id its billing id). Billing is the system of record, so the
connector reads the document as it is NOW and tells it again through the ordinary flow; the ERP connector posts it
as any document (it upserts by externalId: a document posted already stays one entry), and the reconciler sees the
systems agree and closes the finding by itself. In order:

1. the consumer (`decide`, pure) turns a request into one `redrive_posting` command (accord.commands), keyed by the
   request: a redelivered request records nothing new. Requests for other systems are not ours; one this
   connector cannot carry out (another action, an unknown document type) is logged and dropped;
2. the worker runs `RedriveExecutor`: reads only, under the connector's rate limit: billing's position (its newest
   event), then the document (and what it hangs on), then its customer. A document billing does not have (404) or
   cannot report yet (a draft invoice) is a permanent refusal;
3. in the transaction that closes the command (`on_result`), each document becomes a synthetic billing event
   (`invoice.finalized` and, for a void invoice, `invoice.voided`; `invoice.payment_succeeded`; `charge.refunded`;
   `credit_note.created`), fed through accord.ingest with mapping.py's own mapper, as the catch-up poller does. Its
   source event id is `accord-repair:<repair_id>:<type>`, so the canonical event ids derive from the repair
   (a replayed request re-ingests nothing: the inbox dedupes) and `meta.causation_id` is the request's event id.
   A refused or failed command is logged (ids and the reason, no personal data) and nothing else: the reconciler
   retries after its timeout, then hands the finding to a person.

Versions: the canonical events carry billing's position when the document was read (the sequence number of billing's
newest event, `mapping.entity_version`, read BEFORE the document). The document reflects every change up to it, and
every later change of it gets a higher number, so the re-driven event ranks after what it restates and before what
changes it next, for the reconciler as for the ERP entry's `custbody_accord_version`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from accord.commands import Command, OnResult, Outcome, Status
from accord.events import RepairAction, RepairRequested, SourceSystem
from accord.ingest import Delivery, Mapped, MapResult, Source, Via, ingest, json_body, meta_of
from accord.runtime import CommandSpec, Decision, Envelope, EventCodec, Service

from .executor import BillingApi, BillingRefused
from .mapping import SOURCE, Customer, entity_version, map_event
from .provisioning import SYSTEM
from .store import context_loader, record_customer

log = logging.getLogger("accord_billing_connector.repairs")

REDRIVE_KIND = "redrive_posting"
#: the document types a re-drive knows, and where billing keeps each (payment: the charge PaymentCollected names)
COLLECTIONS = {"invoice": "invoices", "credit_note": "credit_notes", "payment": "charges", "refund": "refunds"}
#: where the synthetic events carry what the repair adds to mapping.py's output
REPAIR_FIELD = "accord_repair"
#: billing object ids as they go into an API path: nothing that could change the path
_BILLING_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


@dataclass(frozen=True, slots=True)
class Redrive:
    """A request this connector carries out (the command's payload)."""

    repair_id: str
    entity_type: str
    entity_id: str
    causation_id: str  # the RepairRequested's event id

    def payload(self) -> dict[str, str]:
        return {
            "repair_id": self.repair_id,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "causation_id": self.causation_id,
        }

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Redrive:
        return cls(**{name: str(payload[name]) for name in ("repair_id", "entity_type", "entity_id", "causation_id")})


@dataclass(frozen=True, slots=True)
class Refused:
    """A request for this connector that it cannot carry out, and why (logged; nothing else happens)."""

    reason: str


# -- 1. the request → a command (pure) ------------------------------------------------------------------------


def plan(request: RepairRequested) -> Redrive | Refused | None:
    """What to do with a repair request: None when it is another system's, else a re-drive or why not."""
    if request.target_system is not SourceSystem.BILLING:
        return None
    if request.action is not RepairAction.REDRIVE_POSTING:
        return Refused(f"the billing connector carries out REDRIVE_POSTING only, not {request.action.value}")
    if request.entity_type not in COLLECTIONS:
        known = ", ".join(sorted(COLLECTIONS))
        return Refused(f"entity_type {request.entity_type!r} is no billing document a re-drive knows ({known})")
    if not _BILLING_ID.fullmatch(request.entity_id):
        return Refused(f"entity_id {request.entity_id!r} is not a billing object id (letters, digits and _)")
    return Redrive(request.repair_id, request.entity_type, request.entity_id, str(request.meta.event_id))


def command_key(redrive: Redrive) -> str:
    """One command per request event: a redelivery records nothing new. The same repair_id re-sent under another
    event id is a second command whose events the ingest inbox finds already told (their ids come from repair_id)."""
    return f"redrive/{redrive.repair_id}/{redrive.causation_id}"


def decide(state: Any, request: RepairRequested) -> Decision[Any]:
    """A repair request → one `redrive_posting` command, or nothing (not ours, or refused: logged)."""
    planned = plan(request)
    if planned is None:
        return Decision()
    if isinstance(planned, Refused):
        log.warning(
            "repair %s (%s %s %s) not carried out: %s",
            request.repair_id,
            request.action.value,
            request.entity_type,
            request.entity_id,
            planned.reason,
        )
        return Decision()
    return Decision(commands=[CommandSpec(SYSTEM, REDRIVE_KIND, command_key(planned), planned.payload())])


def with_repairs(service: Service, *, topics: Mapping[str, str] | None = None) -> Service:
    """`service` consuming the reconciler's repair requests too (`recon.repairs`, or what `topics` maps it to).
    The handler keeps no state: the command's key is the idempotency."""
    topic = dict(topics or {}).get(RepairRequested.TOPIC, RepairRequested.TOPIC)

    def handler(state: Any, envelope: Envelope) -> Decision[Any]:
        return decide(state, envelope.event)

    return replace(
        service,
        topics=[*service.topics, topic],
        handlers={**service.handlers, RepairRequested.AVRO_NAME: handler},
    )


# -- 2. the reads (the worker's executor) ----------------------------------------------------------------------


def _refused(redrive: Redrive, code: str, why: str) -> BillingRefused:
    return BillingRefused(code, f"{redrive.entity_type} {redrive.entity_id} {why}: nothing to re-drive")


def synthetic_events(redrive: Redrive, documents: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The billing events that report the documents read (pure): the shape mapping.py maps, each carrying the
    repair's stamp. `documents` holds `position` and what was read: `invoice`, `charge`, `refund`, `credit_note`.
    Raises BillingRefused when the document cannot be reported (a draft invoice, a failed payment)."""
    stamp = {"repair_id": redrive.repair_id, "causation_id": redrive.causation_id, "position": documents["position"]}

    def event(kind: str, obj: Mapping[str, Any], created: Any) -> dict[str, Any]:
        return {
            "id": f"accord-repair:{redrive.repair_id}:{kind}",
            "object": "event",
            "type": kind,
            "created": created,
            "data": {"object": dict(obj)},
            REPAIR_FIELD: stamp,
        }

    kind = redrive.entity_type
    if kind == "invoice":
        invoice = documents["invoice"]
        moments = invoice.get("status_transitions") or {}
        if invoice.get("status") == "draft" or not moments.get("finalized_at"):
            raise _refused(redrive, "not-finalized", "is a draft (not finalized)")
        out = [event("invoice.finalized", invoice, moments["finalized_at"])]
        if invoice.get("status") == "void":
            out.append(event("invoice.voided", invoice, moments.get("voided_at") or moments["finalized_at"]))
        return out
    if kind == "payment":
        charge, invoice = documents["charge"], documents.get("invoice")
        if charge.get("status") != "succeeded":
            raise _refused(redrive, "not-succeeded", f"is {charge.get('status')!s}, not succeeded")
        if invoice is None or invoice.get("charge") != charge["id"]:
            raise _refused(redrive, "no-invoice", "is no invoice's payment")
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or charge.get("created")
        return [event("invoice.payment_succeeded", invoice, paid_at)]
    if kind == "refund":
        refund, charge = documents["refund"], documents["charge"]
        if refund.get("status") != "succeeded":
            raise _refused(redrive, "not-succeeded", f"is {refund.get('status')!s}, not succeeded")
        # charge.refunded tells the charge's cumulative refunds; this refund alone is what the event reports
        # (mapping.py refuses a charge with several refunds, whose latest amount it cannot tell).
        alone = {**charge, "refunds": [refund["id"]], "amount_refunded": refund["amount"]}
        return [event("charge.refunded", alone, refund.get("created"))]
    note = documents["credit_note"]
    if note.get("status") == "void":
        raise _refused(redrive, "void", "is void")
    return [event("credit_note.created", note, note.get("created"))]


class RedriveExecutor:
    """`billing/redrive_posting`: reads the document and its customer; writes nothing to billing, so it is safe
    to run again at any time (its read-back finds nothing to reuse and lets the worker execute)."""

    def __init__(self, api: BillingApi) -> None:
        self.api = api

    async def execute(self, command: Command) -> Mapping[str, Any]:
        redrive = Redrive.of(command.payload)
        newest = (await self.api.get("/events", {"limit": 1})).get("data") or []
        # 1. billing's position first: the document read next reflects at least every change up to it.
        documents: dict[str, Any] = {"position": entity_version(newest[0]) if newest else 0}
        kind, doc_id = redrive.entity_type, redrive.entity_id
        if kind == "invoice":
            documents["invoice"] = await self.api.get(f"/invoices/{doc_id}")
        elif kind == "credit_note":
            documents["credit_note"] = await self.api.get(f"/credit_notes/{doc_id}")
        elif kind == "payment":
            charge = documents["charge"] = await self.api.get(f"/charges/{doc_id}")
            if _BILLING_ID.fullmatch(str(charge.get("invoice") or "")):
                documents["invoice"] = await self.api.get(f"/invoices/{charge['invoice']}")
        elif kind == "refund":
            refund = documents["refund"] = await self.api.get(f"/refunds/{doc_id}")
            if not _BILLING_ID.fullmatch(str(refund.get("charge") or "")):
                raise _refused(redrive, "no-charge", "names no charge")
            documents["charge"] = await self.api.get(f"/charges/{refund['charge']}")
        else:
            raise _refused(redrive, "unknown-type", "is of no type a re-drive knows")
        events = synthetic_events(redrive, documents)  # refuses what cannot be reported before reading more
        customer_id = str(events[0]["data"]["object"].get("customer") or "")
        if not _BILLING_ID.fullmatch(customer_id):
            raise _refused(redrive, "no-customer", "names no customer")
        customer = await self.api.get(f"/customers/{customer_id}")
        return {"position": documents["position"], "customer": _customer_link(customer), "events": events}

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        return None  # nothing was written: reading again is the whole procedure


def _customer_link(customer: Mapping[str, Any]) -> dict[str, Any]:
    """What accord keeps of a billing customer (store.record_customer's fields), nothing personal."""
    metadata = customer.get("metadata") or {}
    return {
        "id": customer["id"],
        "metadata": {k: metadata[k] for k in ("crm_account_id", "legal_entity") if k in metadata},
        "address": {"country": (customer.get("address") or {}).get("country")},
        "tax_exempt": customer.get("tax_exempt"),
    }


# -- 3. the documents → canonical events, where the command closes ------------------------------------------


def map_redrive(delivery: Delivery, customer: Customer | None) -> MapResult:
    """mapping.py's mapper, then the repair's stamp on each event: caused by the request, at billing's position."""
    result = map_event(delivery, customer)
    stamp = delivery.payload.get(REPAIR_FIELD)
    if not isinstance(result, Mapped) or not isinstance(stamp, Mapping):
        return result
    events = []
    for e in result.events:
        meta = meta_of(e).model_copy(
            update={"causation_id": str(stamp["causation_id"]), "entity_version": int(stamp["position"])}
        )
        events.append(e.model_copy(update={"meta": meta}))
    return Mapped(events, result.entity, result.entities)


def redrive_source(schema: str, topics: Mapping[str, str] | None = None) -> Source:
    """The billing source as a re-drive feeds it: the same name (one inbox, one id space), mapper and lookup."""
    return Source(name=SOURCE, mapper=map_redrive, context=context_loader(schema), topics=dict(topics or {}))


async def record_redrive(
    conn: asyncpg.Connection, *, schema: str, source: Source, codec: EventCodec, command: Command, outcome: Outcome
) -> Counter[str]:
    """The re-drive's events into the outbox (through the ingest, in the caller's transaction); returns how many
    synthetic events had each ingest outcome. A command that did not succeed is logged, nothing else."""
    redrive = Redrive.of(command.payload)
    what = f"repair {redrive.repair_id} (re-drive of billing {redrive.entity_type} {redrive.entity_id})"
    outcomes: Counter[str] = Counter()
    if outcome.status is not Status.SUCCEEDED or outcome.result is None:
        log.warning(
            "%s not done: %s; the reconciler tries again after its timeout, then hands it to a person",
            what,
            outcome.error or outcome.status.value,
        )
        return outcomes
    result = outcome.result
    await record_customer(conn, schema, result["customer"], int(result["position"]))
    for payload in result["events"]:
        done = await ingest(
            conn, schema=schema, source=source, codec=codec, raw_body=json_body(payload), payload=payload, via=Via.POLL
        )
        outcomes[done.outcome.value] += 1
        if done.reason is not None:
            log.warning("%s: %s %s: %s", what, payload["type"], done.outcome.value, done.reason)
    log.info("%s at billing position %s: %s", what, result["position"], dict(outcomes))
    return outcomes


def on_result(schema: str, codec: EventCodec, *, topics: Mapping[str, str], otherwise: OnResult) -> OnResult:
    """The worker's `on_result`: re-drives recorded here, every other command's answer by `otherwise`."""
    source = redrive_source(schema, topics)

    async def record(conn: asyncpg.Connection, command: Command, outcome: Outcome) -> None:
        if command.kind != REDRIVE_KIND:
            await otherwise(conn, command, outcome)
            return
        await record_redrive(conn, schema=schema, source=source, codec=codec, command=command, outcome=outcome)

    return record


__all__ = [
    "COLLECTIONS",
    "REDRIVE_KIND",
    "Redrive",
    "RedriveExecutor",
    "Refused",
    "command_key",
    "decide",
    "map_redrive",
    "on_result",
    "plan",
    "record_redrive",
    "redrive_source",
    "synthetic_events",
    "with_repairs",
]
