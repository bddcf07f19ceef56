"""The matching rules as tables of named cases: per class, the divergences it must find and the neighbours it must
not (a payment a cent off, a redelivered webhook, a posting rerouted by policy …).

Each case is a set of events (and snapshot observations) around one fact; the assertion is the WHOLE answer for the
key: exactly the expected (class, sub-cause), or nothing — so a divergence never also shows as another class.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import pytest

from accord.events import BillingFrequency, Event, JournalRejectionReason, SubscriptionStatus
from accord_reconciler.model import Observation, PeriodBook, Relation, crm_account_status
from accord_reconciler.rules import FindingClass, Policy, Repair, SubCause, evaluate

from .builders import (
    activated,
    amended,
    at,
    book,
    cancelled,
    changed,
    contract_line,
    in_doubt,
    invoice,
    line,
    payment,
    payment_failed,
    period_closed,
    posted,
    provisioned,
    rejected,
    renewed,
    requested,
    states,
    status_changed,
    uncollectible,
    void,
)

pytestmark = pytest.mark.unit

LATER = at(hours=1)  # every SLA of the default policy has passed
INVOICE = "journal:EU/in_1"
PAYMENT = "journal:EU/py_1"
CONTRACT = "contract:ctr_1"
AMENDMENT = "amendment:am_1"
ACCOUNT = "account:acc-1"
F = FindingClass
S = SubCause


@dataclass(frozen=True)
class Case:
    name: str
    items: tuple[Event | Observation, ...]
    key: str
    expect: tuple[FindingClass, SubCause | None] | None  # None: the systems agree (or still have time)
    #: the class this case is about, for neighbours (expect None) too
    about: FindingClass
    now: datetime = LATER
    policy: Policy = field(default_factory=Policy)
    periods: PeriodBook = field(default_factory=PeriodBook)


def case(
    name: str,
    about: FindingClass,
    key: str,
    expect: tuple[FindingClass, SubCause | None] | None,
    *items: Event | Observation,
    **kw: object,
) -> Case:
    return Case(name, items, key, expect, about, **kw)  # type: ignore[arg-type]


CLEAN = (invoice(), requested(), posted())
USD_INVOICE = invoice(lines=[line("100.00", "USD")], tax="0.00", currency="USD")
USD_REQUEST = requested(amount="92.00", source_currency="USD", source_amount="100.00", rate="0.92")
VOIDED = (*CLEAN, void(when=at(hours=0.5)))  # voided half an hour after it was issued and posted
REVERSAL = requested(request_id="accord-EU-void-in_1", version=2, when=at(hours=0.5, seconds=1))
REVERSED = posted(request_id="accord-EU-void-in_1", erp_id="je_2", version=2, when=at(hours=0.5, seconds=2))

CASES = [
    # -- missing: a billing document with no ERP posting after the SLA -------------------------------------------
    case("invoice never requested", F.MISSING, INVOICE, (F.MISSING, S.NEVER_REQUESTED), invoice()),
    case("requested, no answer", F.MISSING, INVOICE, (F.MISSING, S.NO_ANSWER), invoice(), requested()),
    case("rejected by the ERP", F.MISSING, INVOICE, (F.MISSING, S.REJECTED), invoice(), requested(), rejected()),
    case(
        "held for approval in a closed period",
        F.MISSING,
        INVOICE,
        (F.MISSING, S.HELD),
        invoice(),
        rejected(
            reason=JournalRejectionReason.PERIOD_CLOSED, detail="period 2026-11 of EU is closed; held for approval"
        ),
    ),
    case("payment never posted", F.MISSING, PAYMENT, (F.MISSING, S.NEVER_REQUESTED), payment()),
    case("neighbour: still within the SLA", F.MISSING, INVOICE, None, invoice(), now=at(minutes=9)),
    case("neighbour: posted", F.MISSING, INVOICE, None, *CLEAN),
    case(
        "neighbour: a zero invoice posts nothing", F.MISSING, INVOICE, None, invoice(lines=[line("0.00")], tax="0.00")
    ),
    # -- duplicate: more ERP entries than the document needs ---------------------------------------------------------
    case(
        "two ERP entries for one request",
        F.DUPLICATE,
        INVOICE,
        (F.DUPLICATE, S.SAME_REQUEST),
        *CLEAN,
        posted(erp_id="je_2", when=at(5)),
    ),
    case(
        "a second entry under another request",
        F.DUPLICATE,
        INVOICE,
        (F.DUPLICATE, S.SECOND_ENTRY),
        *CLEAN,
        requested(request_id="retry-2"),
        posted(request_id="retry-2", erp_id="je_2", when=at(5)),
    ),
    case(
        "a manual second entry found in the ERP",
        F.DUPLICATE,
        INVOICE,
        (F.DUPLICATE, S.SECOND_ENTRY),
        *CLEAN,
        posted(request_id="manual-7", erp_id="je_9", when=at(minutes=30)),
    ),
    case(
        "a duplicate payment posting",
        F.DUPLICATE,
        PAYMENT,
        (F.DUPLICATE, S.SECOND_ENTRY),
        payment(),
        posted("py_1", "p1", "je_1"),
        posted("py_1", "p2", "je_2"),
    ),
    case(
        "neighbour: both postings came first, the invoice just now, its void not yet (cross-topic order)",
        F.DUPLICATE,
        INVOICE,
        None,
        posted(when=at(2)),
        posted(request_id="accord-EU-invoice-in_1-void", erp_id="je_2", version=2, when=at(3)),
        invoice(when=at(minutes=5)),
        now=at(minutes=5, seconds=30),
    ),
    case(
        "two live subscriptions of one cadence for a contract",
        F.DUPLICATE,
        CONTRACT,
        (F.DUPLICATE, S.SECOND_ENTRY),
        activated(),
        provisioned(),
        provisioned("sub_2", when=at(minutes=2)),
    ),
    case(
        "neighbour: one subscription per cadence (monthly and annual lines)",
        F.DUPLICATE,
        CONTRACT,
        None,
        activated(lines=[contract_line(), contract_line(BillingFrequency.ANNUAL)]),
        provisioned(),
        provisioned("sub_2", frequency=BillingFrequency.ANNUAL, when=at(minutes=2)),
    ),
    case(
        "neighbour: monthly licensed and usage-based lines make two monthly subscriptions",
        F.DUPLICATE,
        CONTRACT,
        None,
        activated(lines=[contract_line(), contract_line(usage=True)]),
        provisioned(),
        provisioned("sub_2", when=at(minutes=2)),
    ),
    case(
        "three live subscriptions for a contract of two cadences",
        F.DUPLICATE,
        CONTRACT,
        (F.DUPLICATE, S.SECOND_ENTRY),
        activated(lines=[contract_line(), contract_line(BillingFrequency.ANNUAL)]),
        provisioned(),
        provisioned("sub_2", frequency=BillingFrequency.ANNUAL, when=at(minutes=2)),
        provisioned("sub_3", when=at(minutes=3)),
    ),
    case(
        "neighbour: the same webhook delivered twice",
        F.DUPLICATE,
        INVOICE,
        None,
        *CLEAN,
        posted(event_id=CLEAN[2].meta.event_id),
    ),
    case(
        "neighbour: the posting re-announced under a new event (read back)",
        F.DUPLICATE,
        INVOICE,
        None,
        *CLEAN,
        posted(when=at(minutes=3)),
    ),
    case(
        "neighbour: a voided invoice has its original and its reversal",
        F.DUPLICATE,
        INVOICE,
        None,
        *VOIDED,
        REVERSAL,
        REVERSED,
    ),
    case(
        "neighbour: not settled yet",
        F.DUPLICATE,
        INVOICE,
        None,
        *CLEAN,
        posted(erp_id="je_2", when=at(minutes=59, seconds=30)),
    ),
    # -- amount mismatch, with what the difference is -------------------------------------------------------------
    case(
        "posted without the tax",
        F.AMOUNT_MISMATCH,
        INVOICE,
        (F.AMOUNT_MISMATCH, S.TAX),
        invoice(),
        requested(),
        posted(total="100.00"),
    ),
    case(
        "accord asked for the subtotal",
        F.AMOUNT_MISMATCH,
        INVOICE,
        (F.AMOUNT_MISMATCH, S.TAX),
        invoice(),
        requested(amount="100.00"),
        posted(total="100.00"),
    ),
    case(
        "proration line left out",
        F.AMOUNT_MISMATCH,
        INVOICE,
        (F.AMOUNT_MISMATCH, S.PRORATION),
        invoice(lines=[line("100.00"), line("30.00", proration=True)]),
        posted(total="120.00"),
    ),
    case(
        "converted at another rate",
        F.AMOUNT_MISMATCH,
        INVOICE,
        (F.AMOUNT_MISMATCH, S.FX),
        USD_INVOICE,
        USD_REQUEST,
        posted(total="95.00"),
    ),
    case(
        "rounding beyond the tolerance",
        F.AMOUNT_MISMATCH,
        INVOICE,
        (F.AMOUNT_MISMATCH, S.ROUNDING),
        invoice(lines=[line("40.00"), line("30.00"), line("30.00")]),
        requested(),
        posted(total="120.02"),
    ),
    case(
        "an unexplained difference",
        F.AMOUNT_MISMATCH,
        PAYMENT,
        (F.AMOUNT_MISMATCH, None),
        payment(amount="50.00"),
        posted("py_1", "p1", total="45.00"),
    ),
    case(
        "neighbour: a payment one cent off is within tolerance",
        F.AMOUNT_MISMATCH,
        PAYMENT,
        None,
        payment(amount="50.00"),
        posted("py_1", "p1", total="49.99"),
    ),
    case(
        "neighbour: a converted posting equal to its request",
        F.AMOUNT_MISMATCH,
        INVOICE,
        None,
        USD_INVOICE,
        USD_REQUEST,
        posted(total="92.00"),
    ),
    case(
        "neighbour: exact tolerance 0 still lets equal amounts pass",
        F.AMOUNT_MISMATCH,
        INVOICE,
        None,
        *CLEAN,
        policy=Policy(amount_tolerance=Decimal(0)),
    ),
    # -- currency mismatch -----------------------------------------------------------------------------------------
    case(
        "posted in another currency than requested",
        F.CURRENCY_MISMATCH,
        INVOICE,
        (F.CURRENCY_MISMATCH, None),
        invoice(),
        requested(),
        posted(currency="USD"),
    ),
    case(
        "request converts from the wrong currency",
        F.CURRENCY_MISMATCH,
        INVOICE,
        (F.CURRENCY_MISMATCH, None),
        invoice(),
        requested(source_currency="GBP"),
        posted(),
    ),
    case(
        "no request; neither the document's nor the base currency",
        F.CURRENCY_MISMATCH,
        INVOICE,
        (F.CURRENCY_MISMATCH, None),
        USD_INVOICE,
        posted(currency="GBP"),
        policy=Policy(base_currencies={"EU": "EUR"}),
    ),
    case(
        "payment posted in another currency",
        F.CURRENCY_MISMATCH,
        PAYMENT,
        (F.CURRENCY_MISMATCH, None),
        payment(),
        posted("py_1", "p1", currency="CHF"),
    ),
    case(
        "neighbour: no request, posted in the entity's base currency",
        F.CURRENCY_MISMATCH,
        INVOICE,
        None,
        USD_INVOICE,
        posted(total="92.00"),
        policy=Policy(base_currencies={"EU": "EUR"}),
    ),
    case("neighbour: same currency everywhere", F.CURRENCY_MISMATCH, INVOICE, None, *CLEAN),
    # -- status mismatch -------------------------------------------------------------------------------------------
    case(
        "activated contract without a subscription",
        F.STATUS_MISMATCH,
        CONTRACT,
        (F.STATUS_MISMATCH, S.NO_SUBSCRIPTION),
        activated(),
    ),
    case(
        "cancelled contract still billed",
        F.STATUS_MISMATCH,
        CONTRACT,
        (F.STATUS_MISMATCH, S.NOT_CANCELLED),
        activated(),
        provisioned(),
        cancelled(when=at(minutes=2)),
        now=at(days=2),
    ),
    case(
        "paid in billing, the CRM says Failed",
        F.STATUS_MISMATCH,
        ACCOUNT,
        (F.STATUS_MISMATCH, S.PAYMENT_STATUS),
        payment_failed(when=at(-60)),
        payment(),
        crm_account_status("acc-1", "Failed", observed_at=at(minutes=20)),
    ),
    case(
        "paid in billing, the CRM field is empty",
        F.STATUS_MISMATCH,
        ACCOUNT,
        (F.STATUS_MISMATCH, S.PAYMENT_STATUS),
        payment(),
        crm_account_status("acc-1", None, observed_at=at(minutes=30)),
    ),
    case("neighbour: activated and provisioned", F.STATUS_MISMATCH, CONTRACT, None, activated(), provisioned()),
    case(
        "neighbour: a renewal under a new id (the flow does not provision renewals yet)",
        F.STATUS_MISMATCH,
        "contract:ctr_2",
        None,
        renewed(),
    ),
    case(
        "a renewal without a subscription, where renewals must be provisioned",
        F.STATUS_MISMATCH,
        "contract:ctr_2",
        (F.STATUS_MISMATCH, S.NO_SUBSCRIPTION),
        renewed(),
        policy=Policy(renewals_need_subscription=True),
    ),
    case(
        "neighbour: cancelled in both (status change routed by alias)",
        F.STATUS_MISMATCH,
        CONTRACT,
        None,
        activated(),
        provisioned(),
        cancelled(when=at(minutes=2)),
        status_changed(),
        now=at(days=2),
    ),
    case(
        "neighbour: cancellation effective at the end of the term",
        F.STATUS_MISMATCH,
        CONTRACT,
        None,
        activated(),
        provisioned(),
        cancelled(effective=datetime(2027, 10, 31).date()),
        now=at(days=2),
    ),
    case(
        "neighbour: the CRM was read before the write-back was due",
        F.STATUS_MISMATCH,
        ACCOUNT,
        None,
        payment(),
        crm_account_status("acc-1", "Failed", observed_at=at(minutes=1)),
    ),
    case(
        "neighbour: the CRM agrees",
        F.STATUS_MISMATCH,
        ACCOUNT,
        None,
        payment(),
        crm_account_status("acc-1", "Succeeded", observed_at=at(minutes=30)),
    ),
    # -- orphan: a posting, payment or subscription with no source -----------------------------------------------
    case("ERP posting with no billing document", F.ORPHAN, INVOICE, (F.ORPHAN, S.NO_SOURCE), posted()),
    case(
        "payment with no legal entity",
        F.ORPHAN,
        "journal:UNKNOWN/py_1",
        (F.ORPHAN, S.UNKNOWN_MAPPING),
        payment(entity=None),
    ),
    case(
        "subscription for a contract the CRM never reported",
        F.ORPHAN,
        CONTRACT,
        (F.ORPHAN, S.UNKNOWN_MAPPING),
        provisioned(),
    ),
    case("subscription change for an unknown amendment", F.ORPHAN, AMENDMENT, (F.ORPHAN, S.UNKNOWN_MAPPING), changed()),
    case(
        "neighbour: the posting came first, the invoice is late but within the SLA",
        F.ORPHAN,
        INVOICE,
        None,
        posted(),
        now=at(minutes=5),
    ),
    case(
        "neighbour: posting before invoice, both there",
        F.ORPHAN,
        INVOICE,
        None,
        posted(when=at(0)),
        requested(when=at(1)),
        invoice(when=at(minutes=4)),
    ),
    case(
        "neighbour: a subscription sold outside the CRM",
        F.ORPHAN,
        CONTRACT,
        None,
        activated(),
        provisioned(),
        provisioned("sub_2", None),
    ),
    # -- stale: the target reflects an older version than the source ----------------------------------------------
    case("void never reversed in the ERP", F.STALE, INVOICE, (F.STALE, S.REVERSAL), *VOIDED),
    case("void requested, reversal not posted", F.STALE, INVOICE, (F.STALE, S.REVERSAL), *VOIDED, REVERSAL),
    case(
        "billing re-issued version 2; posting reflects version 1",
        F.STALE,
        INVOICE,
        (F.STALE, S.SUPERSEDED),
        *CLEAN,
        invoice(version=2, when=at(minutes=20)),
    ),
    case("amendment not applied in billing", F.STALE, AMENDMENT, (F.STALE, S.UNAPPLIED_AMENDMENT), amended()),
    case("neighbour: void reversed", F.STALE, INVOICE, None, *VOIDED, REVERSAL, REVERSED),
    case("neighbour: void still within the SLA", F.STALE, INVOICE, None, *VOIDED, now=at(minutes=35)),
    case("neighbour: uncollectible posts nothing", F.STALE, INVOICE, None, *CLEAN, uncollectible(when=at(minutes=20))),
    case("neighbour: amendment applied", F.STALE, AMENDMENT, None, amended(), changed()),
    # -- timing: posted into another period than the document's --------------------------------------------------
    case(
        "posted into the next period while the document's is open",
        F.TIMING,
        INVOICE,
        (F.TIMING, None),
        invoice(),
        requested(),
        posted(period="2026-12"),
    ),
    case(
        "rerouted out of a closed period, policy forbids it",
        F.TIMING,
        INVOICE,
        (F.TIMING, None),
        invoice(),
        posted(period="2026-12"),
        periods=book(period_closed()),
        policy=Policy(allow_reroute=False),
    ),
    case(
        "posted into an earlier period",
        F.TIMING,
        INVOICE,
        (F.TIMING, None),
        invoice(),
        requested(),
        posted(period="2026-10"),
        periods=book(period_closed()),
    ),
    case(
        "payment posted a month late",
        F.TIMING,
        PAYMENT,
        (F.TIMING, None),
        payment(),
        posted("py_1", "p1", period="2026-12"),
    ),
    case(
        "neighbour: rerouted out of a closed period, as the policy allows",
        F.TIMING,
        INVOICE,
        None,
        invoice(),
        requested(booked=datetime(2026, 12, 1).date()),
        posted(period="2026-12"),
        periods=book(period_closed()),
    ),
    case("neighbour: same period", F.TIMING, INVOICE, None, *CLEAN),
    case(
        "neighbour: rerouted by accord after the ERP refused the period, before erp.periods says so",
        F.TIMING,
        INVOICE,
        None,
        invoice(),
        requested(booked=datetime(2026, 12, 1).date()),
        posted(period="2026-12"),
    ),
    case(
        "moved by a person although accord asked for the document's period",
        F.TIMING,
        INVOICE,
        (F.TIMING, None),
        invoice(),
        requested(),
        posted(period="2026-12", when=at(hours=0.5)),
    ),
    case(
        "neighbour: a reversal in the period of its void",
        F.TIMING,
        INVOICE,
        None,
        *CLEAN,
        void(when=datetime(2026, 12, 3, tzinfo=at().tzinfo)),
        requested(request_id="accord-EU-void-in_1", version=2, when=datetime(2026, 12, 3, 0, 1, tzinfo=at().tzinfo)),
        posted(
            request_id="accord-EU-void-in_1",
            erp_id="je_2",
            version=2,
            period="2026-12",
            when=datetime(2026, 12, 3, 0, 2, tzinfo=at().tzinfo),
        ),
        now=datetime(2026, 12, 4, tzinfo=at().tzinfo),
    ),
    # -- in doubt: a write with unknown outcome ------------------------------------------------------------------
    case("ERP write in doubt", F.IN_DOUBT, INVOICE, (F.IN_DOUBT, None), invoice(), requested(), in_doubt()),
    case(
        "in doubt, reported as in doubt rather than missing",
        F.IN_DOUBT,
        INVOICE,
        (F.IN_DOUBT, None),
        invoice(),
        requested(),
        in_doubt(),
        now=at(days=3),
    ),
    case(
        "reversal in doubt while the original is posted",
        F.IN_DOUBT,
        INVOICE,
        (F.IN_DOUBT, None),
        *VOIDED,
        REVERSAL,
        in_doubt(request_id="accord-EU-void-in_1", version=2, when=at(hours=0.5, seconds=3)),
    ),
    case(
        "neighbour: in doubt, then read back as posted",
        F.IN_DOUBT,
        INVOICE,
        None,
        invoice(),
        requested(),
        in_doubt(),
        posted(when=at(minutes=3)),
    ),
    case(
        "neighbour: in doubt, within the read-back grace",
        F.IN_DOUBT,
        INVOICE,
        None,
        invoice(),
        requested(),
        in_doubt(),
        now=at(minutes=1),
    ),
]


@pytest.mark.parametrize("c", CASES, ids=[f"{c.about.value}: {c.name}" for c in CASES])
def test_finding(c: Case) -> None:
    state = states(*c.items)[c.key]
    findings = evaluate(state, c.now, c.policy, periods=c.periods)
    got = [(f.finding_class, f.sub_cause) for f in findings]
    assert got == ([] if c.expect is None else [c.expect]), [f.detail for f in findings]


def test_every_class_has_at_least_four_cases_and_a_neighbour() -> None:
    per_class = Counter(c.about for c in CASES)
    neighbours = Counter(c.about for c in CASES if c.expect is None)
    assert {cls: n for cls, n in per_class.items() if n >= 4}.keys() == set(FindingClass)
    assert set(neighbours) == set(FindingClass)
    assert len({c.name for c in CASES}) == len(CASES)


FOUND = [c for c in CASES if c.expect is not None]


@pytest.mark.parametrize("c", FOUND, ids=[c.name for c in FOUND])
def test_a_finding_carries_its_evidence_and_what_is_at_risk(c: Case) -> None:
    state = states(*c.items)[c.key]
    (finding,) = evaluate(state, c.now, c.policy, periods=c.periods)
    assert finding.key == c.key
    assert finding.evidence, "no evidence"
    assert all(o.key == c.key for o in finding.evidence)
    assert any(o.source_event_ids for o in finding.evidence)
    assert finding.first_seen <= finding.last_seen == c.now
    assert finding.detail
    if finding.amount_at_risk is not None:
        assert finding.amount_at_risk > 0 and finding.currency is not None


def test_amount_at_risk_is_the_difference_in_the_documents_currency() -> None:
    (tax,) = evaluate(states(invoice(), requested(), posted(total="100.00"))[INVOICE], LATER, Policy())
    assert (tax.amount_at_risk, tax.currency) == (Decimal("20.00"), "EUR")
    # 95.00 EUR posted against 92.00 EUR requested at 0.92: 3.00 EUR is 3.2609 USD
    (fx,) = evaluate(states(USD_INVOICE, USD_REQUEST, posted(total="95.00"))[INVOICE], LATER, Policy())
    assert (fx.amount_at_risk, fx.currency) == (Decimal("3.2609"), "USD")
    (missing,) = evaluate(states(invoice())[INVOICE], LATER, Policy())
    assert (missing.amount_at_risk, missing.currency) == (Decimal("120.00"), "EUR")


def test_a_wider_tolerance_absorbs_the_difference() -> None:
    state = states(payment(amount="50.00"), posted("py_1", "p1", total="49.95"))[PAYMENT]
    assert [f.finding_class for f in evaluate(state, LATER, Policy())] == [F.AMOUNT_MISMATCH]
    assert evaluate(state, LATER, Policy(amount_tolerance=Decimal("0.05"))) == []


def test_a_longer_sla_defers_a_missing_posting() -> None:
    state = states(invoice())[INVOICE]
    policy = Policy(slas={Relation.JOURNAL: at(hours=2) - at()})
    assert evaluate(state, LATER, policy) == []
    assert [f.finding_class for f in evaluate(state, at(hours=2), policy)] == [F.MISSING]


# -- repairs, by system-of-record rules ---------------------------------------------------------------------------

REPAIRS = [
    ("missing, never requested: re-drive from billing", (F.MISSING, S.NEVER_REQUESTED), Repair.REDRIVE_POSTING),
    ("missing, no answer: re-drive from billing", (F.MISSING, S.NO_ANSWER), Repair.REDRIVE_POSTING),
    ("missing, rejected: a person (it would be refused again)", (F.MISSING, S.REJECTED), Repair.EXCEPTION),
    ("missing, held: a person approves held entries", (F.MISSING, S.HELD), Repair.EXCEPTION),
    ("void not reversed: re-drive the void", (F.STALE, S.REVERSAL), Repair.REDRIVE_POSTING),
    ("CRM payment status: re-sync it", (F.STATUS_MISMATCH, S.PAYMENT_STATUS), Repair.RESYNC_CRM_STATUS),
    ("contract without subscription: a person", (F.STATUS_MISMATCH, S.NO_SUBSCRIPTION), Repair.EXCEPTION),
    ("in doubt: read back", (F.IN_DOUBT, None), Repair.READ_BACK),
    ("duplicate posting: a person", (F.DUPLICATE, S.SAME_REQUEST), Repair.EXCEPTION),
    ("amount mismatch: a person", (F.AMOUNT_MISMATCH, S.TAX), Repair.EXCEPTION),
    ("currency mismatch: a person", (F.CURRENCY_MISMATCH, None), Repair.EXCEPTION),
    ("orphan: a person", (F.ORPHAN, S.NO_SOURCE), Repair.EXCEPTION),
    ("timing: a person", (F.TIMING, None), Repair.EXCEPTION),
    ("amendment not applied: a person", (F.STALE, S.UNAPPLIED_AMENDMENT), Repair.EXCEPTION),
]


@pytest.mark.parametrize(("name", "finding", "repair"), REPAIRS, ids=[r[0] for r in REPAIRS])
def test_default_repairs_follow_the_systems_of_record(
    name: str, finding: tuple[FindingClass, SubCause | None], repair: Repair
) -> None:
    assert Policy().repair_for(*finding) is repair


def test_a_finding_says_whether_it_is_safe_and_the_policy_can_change_it() -> None:
    state = states(invoice())[INVOICE]
    (finding,) = evaluate(state, LATER, Policy())
    assert (finding.repair, finding.safe) == (Repair.REDRIVE_POSTING, True)
    cautious = Policy(repairs={})
    (finding,) = evaluate(state, LATER, cautious)
    assert (finding.repair, finding.safe) == (Repair.EXCEPTION, False)


def test_the_finding_id_is_stable_per_key_and_class() -> None:
    (first,) = evaluate(states(invoice())[INVOICE], LATER, Policy())
    (again,) = evaluate(states(invoice(), requested())[INVOICE], at(days=1), Policy())
    (other,) = evaluate(states(invoice(), requested(), posted(total="1.00"))[INVOICE], LATER, Policy())
    assert first.finding_id == again.finding_id  # another evaluation, another sub-cause: the same finding
    assert other.finding_id != first.finding_id
    assert first.divergence_key == "journal:EU/in_1:missing"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount_tolerance": Decimal("-0.01")}, "amount_tolerance -0.01 is negative"),
        ({"settle": at(0) - at(1)}, "negative SLA or grace"),
    ],
    ids=["negative tolerance", "negative settle"],
)
def test_a_policy_refuses_negative_limits(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**kwargs)  # type: ignore[arg-type]


def test_a_cancelled_subscription_by_status_change_needs_the_alias_to_reach_the_contract() -> None:
    # Without the provisioning (which declares the alias) the status change stays under its subscription key.
    alone = states(status_changed())
    assert set(alone) == {"subscription:sub_1"}
    assert evaluate(alone["subscription:sub_1"], LATER, Policy()) == []
    routed = states(provisioned(), status_changed())
    assert set(routed) == {CONTRACT}
    assert {o.status for o in routed[CONTRACT].observations} == {
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.CANCELLED,
    }
