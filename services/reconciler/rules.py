"""The matching rules: one match key's state → its findings, and when to look again. Pure: no I/O, no clock.

    findings = evaluate(state, now, policy, periods=book)          # what diverges now, one finding per class
    wake_at = next_deadline(state, policy, after=now, periods=book)  # when the answer can change by itself

Every rule is either *due* (its deadline has passed: a finding, or nothing if the systems agree) or *pending* (the
systems do not agree yet but still have time): `evaluate` returns the due findings and `next_deadline` the
earliest pending deadline, so the streaming consumer keeps ONE durable timer per key (a column next to the
state, indexed) and re-evaluates when it fires or when a new observation arrives; nothing else needs a clock.
The deadlines derive from the observations' `observed_at` and the policy, so a restarted consumer recomputes the
same timers from the stored states: no pending deadline is lost.

Two kinds of deadline:

- an *absence* (no posting, no subscription, an amendment not applied) is a finding after the relation's SLA,
  counted from when accord learned of the source fact;
- a *contradiction* (two postings, another amount, another period) is a finding after `settle`, counted from the
  key's latest observation (any new statement about the fact restarts the wait: a void that follows its invoice by a
  batch turns two postings from a duplicate into a reversal): events of one fact arrive on several topics in no
  guaranteed order (a posting may come before its request, a period's closing after the rerouted posting), and a
  short wait keeps that from being noise.

Exactly one class per finding; on one key the rules are ordered so that one divergence yields one finding: an
orphan is not also missing, a duplicate is not also an amount mismatch, an unresolved in-doubt write is not also a
missing posting.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict

from accord.events import UtcDatetime

from .model import (
    LIVE_SUBSCRIPTION,
    MatchState,
    Observation,
    PeriodBook,
    RecordKind,
    Relation,
    Status,
    System,
)

#: namespace of finding ids: uuid5(FINDINGS, "<match key>#<class>")
FINDINGS = uuid.UUID("3c1f6a2e-8d4b-5e7a-9c0f-2b6d8e4a1f37")


class FindingClass(StrEnum):
    MISSING = "missing"
    DUPLICATE = "duplicate"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    ORPHAN = "orphan"
    STALE = "stale"
    TIMING = "timing"
    IN_DOUBT = "in_doubt"


class SubCause(StrEnum):
    # amount mismatches: what the difference is, where the rules can tell
    TAX = "tax"
    FX = "fx"
    PRORATION = "proration"
    ROUNDING = "rounding"
    # missing postings: how far the write got
    NEVER_REQUESTED = "never_requested"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    HELD = "held"
    # duplicates
    SAME_REQUEST = "same_request"  # the ERP holds two entries for one request (the upsert key did not hold)
    SECOND_ENTRY = "second_entry"  # more entries than the document needs
    # status mismatches
    NO_SUBSCRIPTION = "no_subscription"
    NOT_CANCELLED = "not_cancelled"
    PAYMENT_STATUS = "payment_status"
    # orphans
    NO_SOURCE = "no_source"
    UNKNOWN_MAPPING = "unknown_mapping"
    # stale targets
    REVERSAL = "reversal"  # a void not reversed in the ERP
    SUPERSEDED = "superseded"  # the posting reflects an older version of the document
    UNAPPLIED_AMENDMENT = "unapplied_amendment"


class Repair(StrEnum):
    """What the reconciler does about a finding. Everything but EXCEPTION is safe and idempotent."""

    REDRIVE_POSTING = "redrive_posting"  # post again from the billing document (the ERP upserts by externalId)
    RESYNC_CRM_STATUS = "resync_crm_status"  # write billing's status to the CRM again (absolute values)
    READ_BACK = "read_back"  # ask the target whether the write landed, then finish it or retry it
    EXCEPTION = "exception"  # a person decides, with the evidence


#: The system-of-record rules (schemas/catalogue.yaml `systems`): billing owns documents and payments, so a posting
#: or a CRM status derived from them may be re-derived; the ERP owns its ledger and the CRM its contracts, so
#: removing, changing or creating their records is a person's decision.
DEFAULT_REPAIRS: Mapping[tuple[FindingClass, SubCause | None], Repair] = {
    (FindingClass.MISSING, SubCause.NEVER_REQUESTED): Repair.REDRIVE_POSTING,
    (FindingClass.MISSING, SubCause.NO_ANSWER): Repair.REDRIVE_POSTING,
    (FindingClass.STALE, SubCause.REVERSAL): Repair.REDRIVE_POSTING,
    (FindingClass.STALE, SubCause.SUPERSEDED): Repair.REDRIVE_POSTING,
    (FindingClass.STATUS_MISMATCH, SubCause.PAYMENT_STATUS): Repair.RESYNC_CRM_STATUS,
    (FindingClass.IN_DOUBT, None): Repair.READ_BACK,
}


def _default_slas() -> dict[Relation, datetime.timedelta]:
    return {
        Relation.JOURNAL: datetime.timedelta(minutes=10),
        Relation.CONTRACT: datetime.timedelta(minutes=15),
        Relation.AMENDMENT: datetime.timedelta(minutes=15),
        Relation.ACCOUNT: datetime.timedelta(minutes=10),
        Relation.SUBSCRIPTION: datetime.timedelta(minutes=15),
    }


@dataclass(frozen=True)
class Policy:
    """How long systems get to agree, how close amounts must be, and which repairs are safe."""

    #: per relation: how long after the source fact the target must reflect it
    slas: Mapping[Relation, datetime.timedelta] = field(default_factory=_default_slas)
    #: how long a contradiction waits after the observation that shows it (cross-topic ordering)
    settle: datetime.timedelta = datetime.timedelta(minutes=1)
    #: how long an in-doubt write is left to the command worker's own read-back before it is a finding
    in_doubt_grace: datetime.timedelta = datetime.timedelta(minutes=2)
    #: largest difference that is no mismatch, in the compared amounts' currency
    amount_tolerance: Decimal = Decimal("0.01")
    #: the ERP connector's closed-period policy is REROUTE: a posting moved out of a closed period is expected
    allow_reroute: bool = True
    #: base currency per legal entity, to tell a converted posting from one in the wrong currency
    base_currencies: Mapping[str, str] = field(default_factory=dict)
    #: whether a contract renewed under a new id must get its own subscription; the q2c flow does not provision
    #: renewals yet (the orchestrator ignores contract-renewed), so by default a renewal is not expected in billing
    renewals_need_subscription: bool = False
    #: how long a safe repair has to make the systems agree before it is tried again
    repair_timeout: datetime.timedelta = datetime.timedelta(minutes=10)
    #: attempts of a safe repair before the finding goes to a person
    repair_attempts: int = 3
    #: (class, sub-cause) → repair; a class with no entry (for its sub-cause or for None) is an exception
    repairs: Mapping[tuple[FindingClass, SubCause | None], Repair] = field(default_factory=lambda: DEFAULT_REPAIRS)

    def __post_init__(self) -> None:
        if self.amount_tolerance < 0:
            raise ValueError(f"amount_tolerance {self.amount_tolerance} is negative: use 0 for exact amounts")
        bad = [r.value for r, sla in self.slas.items() if sla < datetime.timedelta(0)]
        if bad or self.settle < datetime.timedelta(0) or self.in_doubt_grace < datetime.timedelta(0):
            raise ValueError(f"negative SLA or grace ({', '.join(bad) or 'settle/in_doubt_grace'}): use 0 for none")

    def sla(self, relation: Relation) -> datetime.timedelta:
        return self.slas.get(relation, _default_slas()[relation])

    def repair_for(self, cls: FindingClass, sub_cause: SubCause | None) -> Repair:
        return self.repairs.get((cls, sub_cause)) or self.repairs.get((cls, None)) or Repair.EXCEPTION


def finding_id(key: str, cls: FindingClass) -> uuid.UUID:
    """Stable across evaluations, restarts and replays: one finding per key and class."""
    return uuid.uuid5(FINDINGS, f"{key}#{cls.value}")


_FIELDS = {
    FindingClass.MISSING: "posting",
    FindingClass.DUPLICATE: "posting",
    FindingClass.AMOUNT_MISMATCH: "total",
    FindingClass.CURRENCY_MISMATCH: "currency",
    FindingClass.STATUS_MISMATCH: "status",
    FindingClass.ORPHAN: "source_document",
    FindingClass.STALE: "version",
    FindingClass.TIMING: "period",
    FindingClass.IN_DOUBT: "write",
}


class Finding(BaseModel):
    """One divergence of one match key, of one class. JSON both ways (`model_dump(mode="json")`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    finding_id: uuid.UUID
    key: str
    relation: Relation
    finding_class: FindingClass
    sub_cause: SubCause | None
    #: the compared field (DivergenceDetected.field)
    field: str
    #: the record the finding is about (DivergenceDetected.entity_type / entity_id)
    entity_type: str
    entity_id: str
    account_id: str | None
    legal_entity: str | None
    #: each side's statements the rule compared, with their source event ids and the last write attempt
    evidence: tuple[Observation, ...]
    #: the diagnosis in words: what differs, by how much, what was tried
    detail: str
    #: money at stake, in the document's currency (None when no amount is involved)
    amount_at_risk: Decimal | None
    currency: str | None
    #: divergent since (the deadline that passed, or the contradicting observation) … and still at this evaluation
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    repair: Repair

    @property
    def divergence_key(self) -> str:
        """The `recon.divergences` Kafka key: unique per key and class (the topic is compacted)."""
        return f"{self.key}:{self.finding_class.value}"

    @property
    def safe(self) -> bool:
        return self.repair is not Repair.EXCEPTION


@dataclass(frozen=True)
class Assessment:
    findings: list[Finding]
    pending: list[datetime.datetime]  # deadlines not reached yet whose outcome would change the findings

    @property
    def next_deadline(self) -> datetime.datetime | None:
        return min(self.pending, default=None)


class _Check:
    """One evaluation: the findings so far and the deadlines still pending."""

    def __init__(self, state: MatchState, now: datetime.datetime, policy: Policy, periods: PeriodBook) -> None:
        self.state, self.now, self.policy, self.periods = state, now, policy, periods
        self.findings: list[Finding] = []
        self.pending: list[datetime.datetime] = []

    def due(self, deadline: datetime.datetime) -> bool:
        if deadline <= self.now:
            return True
        self.pending.append(deadline)
        return False

    @property
    def sla(self) -> datetime.timedelta:
        return self.policy.sla(self.state.relation)

    def settled(self, shown_at: datetime.datetime) -> datetime.datetime:
        """When a contradiction shown at `shown_at` is due: `settle` after it, or after the key's latest observation
        if that came later (what arrived since may explain it)."""
        latest = self.state.last_seen or shown_at
        return max(shown_at, latest) + self.policy.settle

    def add(
        self,
        cls: FindingClass,
        sub_cause: SubCause | None,
        *,
        since: datetime.datetime,
        evidence: Iterable[Observation],
        detail: str,
        entity: tuple[str, str],
        amount: Decimal | None = None,
        currency: str | None = None,
    ) -> None:
        ev = tuple(evidence)
        self.findings.append(
            Finding(
                finding_id=finding_id(self.state.key, cls),
                key=self.state.key,
                relation=self.state.relation,
                finding_class=cls,
                sub_cause=sub_cause,
                field=_FIELDS[cls],
                entity_type=entity[0],
                entity_id=entity[1],
                account_id=self.state.account_id,
                legal_entity=next((o.legal_entity for o in ev if o.legal_entity), None),
                evidence=ev,
                detail=detail,
                amount_at_risk=None if amount is None else abs(amount),
                currency=currency if amount is not None else None,
                first_seen=since,
                last_seen=self.now,
                repair=self.policy.repair_for(cls, sub_cause),
            )
        )


def assess(
    state: MatchState, now: datetime.datetime, policy: Policy, *, periods: PeriodBook | None = None
) -> Assessment:
    """The findings due at `now` and the deadlines still pending."""
    check = _Check(state, now, policy, periods or PeriodBook())
    if state.observations:
        _RULES[state.relation](check)
    return Assessment(check.findings, check.pending)


def evaluate(
    state: MatchState, now: datetime.datetime, policy: Policy, *, periods: PeriodBook | None = None
) -> list[Finding]:
    """The divergences of `state` at `now`: at most one finding per class."""
    return assess(state, now, policy, periods=periods).findings


def next_deadline(
    state: MatchState, policy: Policy, *, after: datetime.datetime, periods: PeriodBook | None = None
) -> datetime.datetime | None:
    """When to evaluate `state` again if nothing new is observed (None: only a new observation changes it).

    The earliest deadline later than `after` at which a rule's outcome changes by the passing of time alone.
    """
    return assess(state, after, policy, periods=periods).next_deadline


# -- money helpers ------------------------------------------------------------------------------------------------

#: ISO 4217 minor units where they are not 2.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


def minor_unit(currency: str | None) -> Decimal:
    return Decimal(1).scaleb(-_MINOR_UNITS.get(currency or "", 2))


def _span(delta: datetime.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _fmt(amount: Decimal | None, currency: str | None) -> str:
    return "nothing" if amount is None else f"{amount.normalize():f} {currency or '?'}"


# -- journal: billing document ↔ accord's request ↔ the ERP posting ---------------------------------------------

_DOCUMENT_KINDS = (RecordKind.INVOICE, RecordKind.CREDIT_NOTE, RecordKind.PAYMENT, RecordKind.REFUND)
_ORIGINAL = frozenset({Status.ISSUED, Status.COLLECTED, Status.REFUNDED})
_POSTS = _ORIGINAL | {Status.VOIDED}  # the statuses the ERP connector posts (an uncollectible invoice posts nothing)


@dataclass
class _Journal:
    document: list[Observation]  # billing's statements about the document, in arrival order
    requests: dict[str, Observation]  # journal_request_id → accord's request (REQUESTED)
    attempts: dict[str, Observation]  # journal_request_id → the latest outcome of that request
    postings: dict[str, Observation]  # erp_journal_id → the ERP's posting (latest)

    @classmethod
    def of(cls, state: MatchState) -> Self:
        requested = [o for o in state.of(System.ACCORD, RecordKind.JOURNAL_REQUEST) if o.status == Status.REQUESTED]
        requests: dict[str, Observation] = {}
        for o in requested:
            held = requests.get(o.record_id)
            if held is None or o.recency() >= held.recency():
                requests[o.record_id] = o
        return cls(
            document=state.of(System.BILLING, *_DOCUMENT_KINDS),
            requests=requests,
            attempts=state.latest_per_record(System.ACCORD, RecordKind.JOURNAL_REQUEST),
            postings=state.latest_per_record(System.ERP, RecordKind.JOURNAL_ENTRY),
        )

    @property
    def original(self) -> Observation | None:
        """The statement that carries the document's amount (issued, collected, refunded), the newest one."""
        originals = [o for o in self.document if o.status in _ORIGINAL]
        pool = originals or [o for o in self.document if o.amount is not None]
        return max(pool, key=lambda o: o.recency(), default=None)

    @property
    def voided(self) -> Observation | None:
        return next((o for o in self.document if o.status == Status.VOIDED), None)

    def request_of(self, posting: Observation) -> Observation | None:
        rid = posting.extra.get("journal_request_id")
        return None if rid is None else self.requests.get(rid)


def _journal(c: _Check) -> None:
    j = _Journal.of(c.state)
    sla, settle = c.sla, c.policy.settle
    entity_label = c.state.key.removeprefix("journal:")
    postings = list(j.postings.values())
    doc = j.original
    if doc is None:
        if postings:
            first = min(p.observed_at for p in postings)
            if c.due(first + sla):
                total = sum((p.amount or Decimal(0) for p in postings), Decimal(0))
                c.add(
                    FindingClass.ORPHAN,
                    SubCause.NO_SOURCE,
                    since=first + sla,
                    evidence=[*postings, *j.attempts.values()],
                    detail=f"the ERP holds {len(postings)} posting(s) for {entity_label} "
                    f"({', '.join(sorted(j.postings))}) and billing has no such document",
                    entity=("journal", entity_label),
                    amount=total,
                    currency=postings[0].currency,
                )
        return
    kind = doc.kind.value
    entity = (kind, doc.record_id)
    if doc.legal_entity in (None, "", "UNKNOWN"):
        if c.due(doc.observed_at + settle):
            c.add(
                FindingClass.ORPHAN,
                SubCause.UNKNOWN_MAPPING,
                since=doc.observed_at + settle,
                evidence=[doc, *j.attempts.values()],
                detail=f"billing {kind} {doc.record_id} has no legal entity: it cannot be mapped to an ERP subsidiary",
                entity=entity,
                amount=doc.amount,
                currency=doc.currency,
            )
        return
    amount, currency = doc.amount or Decimal(0), doc.currency
    voided = j.voided
    expected = (2 if voided else 1) if amount != 0 else 0

    # In doubt: a write whose outcome nobody knows, and no posting of that request has been seen since.
    posted_requests = {p.extra.get("journal_request_id") for p in postings}
    doubtful = [a for rid, a in j.attempts.items() if a.status == Status.IN_DOUBT and rid not in posted_requests]
    if doubtful:
        since = max(a.observed_at for a in doubtful) + c.policy.in_doubt_grace
        if c.due(since):
            c.add(
                FindingClass.IN_DOUBT,
                None,
                since=since,
                evidence=[doc, *doubtful],
                detail=f"the ERP write(s) {', '.join(a.record_id for a in doubtful)} for {kind} {doc.record_id} "
                f"have an unknown outcome: {doubtful[-1].extra.get('error', 'no answer')}",
                entity=entity,
                amount=amount,
                currency=currency,
            )
        return  # until it is read back, a missing or stale posting may be the in-doubt one

    if not postings:
        if expected == 0:
            return
        first = min(o.observed_at for o in j.document)
        if c.due(first + sla):
            last = max(j.attempts.values(), key=lambda a: a.observed_at, default=None)
            if last is None:
                sub = SubCause.NEVER_REQUESTED
            elif last.status == Status.REQUESTED:
                sub = SubCause.NO_ANSWER
            elif last.status == Status.HELD:
                sub = SubCause.HELD  # a person approves held entries (the exception queue): re-driving would hold again
            else:
                sub = SubCause.REJECTED
            tried = "never requested" if last is None else f"last attempt {last.record_id}: {last.status}"
            if last is not None and "error" in last.extra:
                tried += f" ({last.extra['error']})"
            c.add(
                FindingClass.MISSING,
                sub,
                since=first + sla,
                evidence=[*j.document, *j.attempts.values()],
                detail=f"billing {kind} {doc.record_id} of {_fmt(amount, currency)} has no ERP posting in "
                f"{doc.legal_entity} after {_span(sla)}; {tried}",
                entity=entity,
                amount=amount,
                currency=currency,
            )
        return

    latest_posting = max(p.observed_at for p in postings)
    by_request: dict[str | None, list[Observation]] = {}
    for p in postings:
        by_request.setdefault(p.extra.get("journal_request_id"), []).append(p)
    same_request = [ps for rid, ps in by_request.items() if rid is not None and len(ps) > 1]
    if same_request or len(postings) > max(expected, 1):
        if c.due(c.settled(latest_posting)):
            extra_entries = len(postings) - max(expected, 1) if not same_request else len(same_request[0]) - 1
            c.add(
                FindingClass.DUPLICATE,
                SubCause.SAME_REQUEST if same_request else SubCause.SECOND_ENTRY,
                since=c.settled(latest_posting),
                evidence=[doc, *postings],
                detail=f"{kind} {doc.record_id} needs {max(expected, 1)} posting(s) in {doc.legal_entity}; the ERP "
                f"holds {len(postings)}: {', '.join(sorted(j.postings))}",
                entity=entity,
                amount=amount * max(extra_entries, 1),
                currency=currency,
            )
        return

    _journal_currency(c, j, doc, postings)
    if any(f.finding_class is FindingClass.CURRENCY_MISMATCH for f in c.findings):
        return
    _journal_amount(c, j, doc, postings)
    _journal_timing(c, j, doc, postings)
    _journal_stale(c, j, doc, postings, expected)


def _journal_currency(c: _Check, j: _Journal, doc: Observation, postings: list[Observation]) -> None:
    wrong: list[tuple[Observation, str, str]] = []  # (observation, expected currency, why)
    for r in j.requests.values():
        source = r.extra.get("source_currency")
        if source is not None and source != doc.currency:
            wrong.append((r, doc.currency or "?", f"request {r.record_id} converts from {source}"))
    base = c.policy.base_currencies.get(doc.legal_entity or "")
    for p in postings:
        request = j.request_of(p)
        allowed = {cur for cur in (request.currency if request else None, base) if cur}
        if not allowed:
            allowed = {doc.currency or "?"}
        if p.currency not in allowed:
            want = " or ".join(sorted(allowed))
            wrong.append((p, want, f"posting {p.record_id} is in {p.currency}"))
    if not wrong:
        return
    since = c.settled(max(o.observed_at for o, _, _ in wrong))
    if c.due(since):
        c.add(
            FindingClass.CURRENCY_MISMATCH,
            None,
            since=since,
            evidence=[doc, *(o for o, _, _ in wrong)],
            detail=f"{doc.kind.value} {doc.record_id} is in {doc.currency}: "
            + "; ".join(f"{why}, expected {want}" for _, want, why in wrong),
            entity=(doc.kind.value, doc.record_id),
            amount=doc.amount,
            currency=doc.currency,
        )


def _sub_cause(diff: Decimal, doc: Observation, *, converted: bool) -> SubCause | None:
    """What a difference (in the document's currency) most likely is."""
    size = abs(diff)
    lines = int(doc.extra.get("lines", "1") or 1)
    allowance = minor_unit(doc.currency) * max(lines, 1)
    if size <= allowance:
        return SubCause.ROUNDING
    tax = doc.decimal("tax") or Decimal(0)
    if tax and abs(size - tax) <= allowance:
        return SubCause.TAX
    proration = doc.decimal("proration") or Decimal(0)
    proration_tax = doc.decimal("proration_tax") or Decimal(0)
    if proration and min(abs(size - proration), abs(size - proration - proration_tax)) <= allowance:
        return SubCause.PRORATION
    if converted:
        return SubCause.FX
    return None


def _journal_amount(c: _Check, j: _Journal, doc: Observation, postings: list[Observation]) -> None:
    amount = doc.amount or Decimal(0)
    tolerance = c.policy.amount_tolerance
    diffs: list[tuple[Decimal, Observation, SubCause | None, str]] = []  # (in document currency, what, sub, words)
    for r in j.requests.values():  # leg 1: what accord asked for against the document
        source = r.decimal("source_amount")
        if source is not None and abs(source - amount) > tolerance:
            diff = source - amount
            diffs.append(
                (
                    diff,
                    r,
                    _sub_cause(diff, doc, converted=False),
                    f"request {r.record_id} is for {_fmt(source, doc.currency)}",
                )
            )
    for p in postings:  # leg 2: what the ERP holds against what was asked (or against the document)
        if p.amount is None:
            continue
        request = j.request_of(p)
        if request is not None and request.amount is not None and request.currency == p.currency:
            expected, rate = request.amount, request.decimal("rate")
        elif p.currency == doc.currency:
            expected, rate = amount, None
        else:
            continue  # another currency and no request to say at what rate: the currency rule judges it
        if abs(p.amount - expected) <= tolerance:
            continue
        diff = p.amount - expected
        converted = p.currency != doc.currency
        in_doc = (diff / rate).quantize(Decimal("0.0001")) if converted and rate else diff
        words = f"posting {p.record_id} is {_fmt(p.amount, p.currency)}, expected {_fmt(expected, p.currency)}"
        diffs.append((in_doc, p, _sub_cause(in_doc, doc, converted=converted), words))
    if not diffs:
        return
    since = c.settled(max(o.observed_at for _, o, _, _ in diffs))
    if c.due(since):
        worst = max(diffs, key=lambda d: abs(d[0]))
        c.add(
            FindingClass.AMOUNT_MISMATCH,
            worst[2],
            since=since,
            evidence=[doc, *(o for _, o, _, _ in diffs)],
            detail=f"{doc.kind.value} {doc.record_id} is {_fmt(amount, doc.currency)}: "
            + "; ".join(words for _, _, _, words in diffs),
            entity=(doc.kind.value, doc.record_id),
            amount=worst[0],
            currency=doc.currency,
        )


def _journal_timing(c: _Check, j: _Journal, doc: Observation, postings: list[Observation]) -> None:
    by_version = {o.version: o for o in j.document if o.status in _POSTS and o.version is not None}
    off: list[tuple[Observation, str]] = []
    for p in postings:
        source = doc if p.version is None else by_version.get(p.version, doc)
        due_period = source.period or doc.period
        if due_period is None or p.period is None or p.period == due_period:
            continue
        entity = p.legal_entity or doc.legal_entity or ""
        if c.policy.allow_reroute and p.period > due_period and _rerouted(c, j, p, entity, due_period):
            continue  # rerouted out of a closed period, as the policy says: the original date is in its memo
        off.append((p, due_period))
    if not off:
        return
    since = c.settled(max(p.observed_at for p, _ in off))
    if c.due(since):
        c.add(
            FindingClass.TIMING,
            None,
            since=since,
            evidence=[doc, *(p for p, _ in off)],
            detail="; ".join(
                f"posting {p.record_id} is in period {p.period}, the document's period is {due} "
                f"({'open' if not c.periods.closed(p.legal_entity or '', due) else 'closed'}"
                f"{'' if c.policy.allow_reroute else ', and rerouting is not allowed'})"
                for p, due in off
            ),
            entity=(doc.kind.value, doc.record_id),
            amount=doc.amount,
            currency=doc.currency,
        )


def _rerouted(c: _Check, j: _Journal, posting: Observation, entity: str, due_period: str) -> bool:
    """Whether a later period is a reroute: the period book says the document's period is closed, or accord's own
    request booked the entry on the first day of the posting's period (the ERP connector reroutes there when the
    ERP refuses a period before its closing reaches `erp.periods`)."""
    if c.periods.closed(entity, due_period):
        return True
    request = j.request_of(posting)
    booked = None if request is None else request.extra.get("accounting_date")
    return booked is not None and request is not None and request.period == posting.period and booked.endswith("-01")


def _journal_stale(c: _Check, j: _Journal, doc: Observation, postings: list[Observation], expected: int) -> None:
    relevant = [o for o in j.document if o.status in _POSTS]
    newest = max(relevant, key=lambda o: o.recency(), default=None)
    if newest is None:
        return
    posted_versions = [p.version for p in postings if p.version is not None]
    behind = newest.version is not None and bool(posted_versions) and newest.version > max(posted_versions)
    short = j.voided is not None and len(postings) < expected
    if not (behind or short):
        return
    source = j.voided if short and j.voided is not None else newest
    since = source.observed_at + c.sla
    if c.due(since):
        c.add(
            FindingClass.STALE,
            SubCause.REVERSAL if source.status == Status.VOIDED else SubCause.SUPERSEDED,
            since=since,
            evidence=[*j.document, *postings],
            detail=f"billing {doc.kind.value} {doc.record_id} is at version {source.version} ({source.status}); "
            f"the ERP's postings reflect version(s) {sorted(set(posted_versions)) or '?'} after {_span(c.sla)}",
            entity=(doc.kind.value, doc.record_id),
            amount=source.amount,
            currency=source.currency,
        )


# -- contract: the CRM contract ↔ billing's subscriptions --------------------------------------------------------


def _contract(c: _Check) -> None:
    state, sla = c.state, c.sla
    contract_id = state.key.removeprefix("contract:")
    crm_obs = state.of(System.CRM, RecordKind.CONTRACT)
    subs = state.latest_per_record(System.BILLING, RecordKind.SUBSCRIPTION)
    entity = ("contract", contract_id)
    if not crm_obs:
        if subs:
            first = min(s.observed_at for s in subs.values())
            if c.due(first + sla):
                c.add(
                    FindingClass.ORPHAN,
                    SubCause.UNKNOWN_MAPPING,
                    since=first + sla,
                    evidence=subs.values(),
                    detail=f"billing subscription(s) {', '.join(sorted(subs))} name CRM contract {contract_id}, "
                    "which the CRM never reported",
                    entity=entity,
                )
        return
    crm = max(crm_obs, key=lambda o: o.recency())
    value = next((o for o in sorted(crm_obs, key=lambda o: o.recency(), reverse=True) if o.amount is not None), None)
    live = {sid: s for sid, s in subs.items() if (s.status or "") in LIVE_SUBSCRIPTION}
    # One subscription per cadence group is the design (monthly, annual and usage-based lines make three); more live
    # subscriptions than the contract's groups bill the customer twice.
    groups = max((int(o.extra.get("subscriptions", "1")) for o in crm_obs), default=1)
    if len(live) > groups:
        since = c.settled(max(s.observed_at for s in live.values()))
        if c.due(since):
            c.add(
                FindingClass.DUPLICATE,
                SubCause.SECOND_ENTRY,
                since=since,
                evidence=[crm, *live.values()],
                detail=f"CRM contract {contract_id} needs {groups} subscription(s), one per cadence; billing has "
                f"{len(live)} live: {', '.join(sorted(live))}",
                entity=entity,
                amount=None if value is None else value.amount,
                currency=None if value is None else value.currency,
            )
        return
    renewal_only = all("renewed_from" in o.extra for o in crm_obs)
    expects_subscription = not renewal_only or c.policy.renewals_need_subscription
    if crm.status == Status.ACTIVE and not subs and expects_subscription:
        first = min(o.observed_at for o in crm_obs)
        if c.due(first + sla):
            c.add(
                FindingClass.STATUS_MISMATCH,
                SubCause.NO_SUBSCRIPTION,
                since=first + sla,
                evidence=crm_obs,
                detail=f"CRM contract {contract_id} is active; billing has no subscription for it after {_span(sla)}",
                entity=entity,
                amount=None if value is None else value.amount,
                currency=None if value is None else value.currency,
            )
    elif crm.status == Status.CANCELLED and live:
        since = crm.observed_at + sla
        effective = crm.extra.get("effective_date")
        if effective is not None:  # the last day of service: billing may bill until then
            end = datetime.datetime.combine(
                datetime.date.fromisoformat(effective) + datetime.timedelta(days=1), datetime.time(), datetime.UTC
            )
            since = max(since, end + sla)
        if c.due(since):
            c.add(
                FindingClass.STATUS_MISMATCH,
                SubCause.NOT_CANCELLED,
                since=since,
                evidence=[crm, *live.values()],
                detail=f"CRM contract {contract_id} is cancelled; billing subscription(s) "
                + ", ".join(f"{sid} ({s.status})" for sid, s in sorted(live.items()))
                + " still bill",
                entity=entity,
            )


# -- amendment: the CRM amendment ↔ billing's subscription change ------------------------------------------------


def _amendment(c: _Check) -> None:
    state, sla = c.state, c.sla
    amendment_id = state.key.removeprefix("amendment:")
    crm = state.of(System.CRM, RecordKind.AMENDMENT)
    applied = [o for o in state.of(System.BILLING, RecordKind.SUBSCRIPTION) if o.status == Status.APPLIED]
    entity = ("amendment", amendment_id)
    if crm and not applied:
        first = min(o.observed_at for o in crm)
        if c.due(first + sla):
            c.add(
                FindingClass.STALE,
                SubCause.UNAPPLIED_AMENDMENT,
                since=first + sla,
                evidence=crm,
                detail=f"CRM amendment {amendment_id} of contract {crm[0].extra.get('contract_id', '?')} is not "
                f"applied to any billing subscription after {_span(sla)}: billing reflects the contract before it",
                entity=entity,
                amount=crm[0].amount,
                currency=crm[0].currency,
            )
    elif applied and not crm:
        first = min(o.observed_at for o in applied)
        if c.due(first + sla):
            c.add(
                FindingClass.ORPHAN,
                SubCause.UNKNOWN_MAPPING,
                since=first + sla,
                evidence=applied,
                detail=f"billing changed subscription(s) {', '.join(sorted({o.record_id for o in applied}))} for "
                f"amendment {amendment_id}, which the CRM never reported",
                entity=entity,
            )


# -- account: billing's payment outcome ↔ the CRM Account's Payment_Status__c -----------------------------------


def _account(c: _Check) -> None:
    state = c.state
    outcomes = state.of(System.BILLING, RecordKind.PAYMENT)
    crm_reads = state.of(System.CRM, RecordKind.ACCOUNT_STATUS)
    if not outcomes or not crm_reads:
        return  # the CRM side comes from reading the Account; until it is read there is nothing to compare
    latest = max(outcomes, key=lambda o: (o.extra.get("outcome_at", ""), o.observed_at))
    crm = max(crm_reads, key=lambda o: o.observed_at)
    if crm.status == latest.status:
        return
    # Only a CRM read made after the write-back had its SLA is evidence: an earlier read may predate it.
    if crm.observed_at < latest.observed_at + c.sla:
        return
    account_id = state.key.removeprefix("account:")
    c.add(
        FindingClass.STATUS_MISMATCH,
        SubCause.PAYMENT_STATUS,
        since=crm.observed_at,
        evidence=[latest, crm],
        detail=f"billing's latest payment outcome for account {account_id} is {latest.status} (payment "
        f"{latest.record_id}); the CRM's Payment_Status__c reads {crm.status or 'empty'}",
        entity=("account", account_id),
        amount=latest.amount,
        currency=latest.currency,
    )


def _subscription(c: _Check) -> None:
    """A subscription whose contract is not known yet (no alias): nothing to compare until it is routed."""


_RULES = {
    Relation.JOURNAL: _journal,
    Relation.CONTRACT: _contract,
    Relation.AMENDMENT: _amendment,
    Relation.ACCOUNT: _account,
    Relation.SUBSCRIPTION: _subscription,
}


__all__ = [
    "DEFAULT_REPAIRS",
    "Assessment",
    "Finding",
    "FindingClass",
    "Policy",
    "Repair",
    "SubCause",
    "assess",
    "evaluate",
    "finding_id",
    "minor_unit",
    "next_deadline",
]
