"""ERP posting rules: billing documents → balanced journal entries. Pure: no I/O, no clock, no randomness.

    chart = ChartOfAccounts.default()
    decision = plan(document, rules=PostingRules(charts={LegalEntity("EU"): chart}, base_currencies=...),
                    calendar=calendar)
    match decision:
        case Post(entry): ...          # upsert `entry` under `entry.external_id`
        case Hold(entry, reason): ...  # its period is closed and the policy is HOLD: a person approves

The rules, per document (signs in the document's currency, then converted to the entity's base currency):

| document    | debit                                  | credit                                  |
|-------------|----------------------------------------|-----------------------------------------|
| invoice     | receivable (total)                     | revenue per line, tax payable           |
| credit note | revenue per line, tax payable          | receivable (total)                      |
| payment     | cash                                   | receivable                              |
| refund      | receivable, or refunds (contra-revenue) | cash                                   |
| void        | the invoice's posting, reversed        |                                         |

Every amount is converted line by line and rounded to the base currency's minor unit; what the rounding
leaves between debits and credits goes to the entity's rounding account, so an entry balances exactly.
`build_entry` asserts the balance: an unbalanced entry is a bug here, never something to send.
"""

from __future__ import annotations

import calendar as _calendar
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, NewType

LegalEntity = NewType("LegalEntity", str)  # the ERP subsidiary's code (its externalId): US, EU, UK
AccountCode = NewType("AccountCode", str)  # a general-ledger account code (the ERP account's externalId)
DocumentId = NewType("DocumentId", str)  # the billing document's id: in_…, cn_…, py_…, re_…
EventId = NewType("EventId", str)
ExternalId = NewType("ExternalId", str)  # the journal entry's externalId in the ERP: the upsert key
PeriodId = NewType("PeriodId", str)  # YYYY-MM

ZERO = Decimal(0)
#: ISO 4217 minor units where they are not 2.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}
#: How far ahead REROUTE looks for an open period before it gives up and holds.
REROUTE_HORIZON_MONTHS = 24


class PostingError(ValueError):
    """A document cannot become a journal entry as given (inconsistent totals, no chart for its entity)."""

    def __init__(self, message: str, *, document_id: str, code: str = "VALIDATION_FAILED") -> None:
        super().__init__(f"document {document_id}: {message}")
        self.document_id = document_id
        self.code = code  # a JournalRejectionReason name: VALIDATION_FAILED or MAPPING_MISSING


class DocumentKind(StrEnum):
    INVOICE = "INVOICE"
    CREDIT_NOTE = "CREDIT_NOTE"
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"
    VOID = "VOID"  # an invoice voided: its posting reversed


class Side(StrEnum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class Role(StrEnum):
    """What an account is for, so a chart can name its own codes."""

    RECEIVABLE = "RECEIVABLE"
    REVENUE = "REVENUE"
    TAX_PAYABLE = "TAX_PAYABLE"
    CASH = "CASH"  # cash / undeposited funds
    REFUNDS = "REFUNDS"  # contra-revenue
    ROUNDING = "ROUNDING"  # currency rounding differences


class RefundTreatment(StrEnum):
    RECEIVABLE = "RECEIVABLE"  # Dr AR / Cr cash: the credit note that justifies the refund cleared AR before
    CONTRA_REVENUE = "CONTRA_REVENUE"  # Dr refunds / Cr cash: a refund with no credit note


class PeriodState(StrEnum):
    OPEN = "OPEN"
    AR_LOCKED = "AR_LOCKED"  # nothing on receivables posts (the ERP answers PERIOD_LOCKED)
    CLOSED = "CLOSED"  # nothing posts (the ERP answers PERIOD_CLOSED)


class ClosedPeriodPolicy(StrEnum):
    REROUTE = "REROUTE"  # to the first day of the next open period, the original date in the memo
    HOLD = "HOLD"  # raise an exception for a person to approve


class Summarization(StrEnum):
    PER_DOCUMENT = "PER_DOCUMENT"
    SUMMARIZED = "SUMMARIZED"  # one entry per legal entity x period, one line per account and side


@dataclass(frozen=True)
class ChartOfAccounts:
    """The accounts one legal entity posts to. `revenue_by_product` overrides REVENUE per product code."""

    accounts: Mapping[Role, AccountCode]
    revenue_by_product: Mapping[str, AccountCode] = field(default_factory=dict)
    refunds: RefundTreatment = RefundTreatment.RECEIVABLE

    def __post_init__(self) -> None:
        missing = [r.value for r in Role if r not in self.accounts]
        if missing:
            raise ValueError(f"chart of accounts has no account for {', '.join(missing)}: map every role")

    def account(self, role: Role) -> AccountCode:
        return self.accounts[role]

    def revenue_for(self, product_code: str | None) -> AccountCode:
        if product_code is not None and product_code in self.revenue_by_product:
            return self.revenue_by_product[product_code]
        return self.accounts[Role.REVENUE]

    @classmethod
    def default(cls, **overrides: str) -> ChartOfAccounts:
        """The sandbox generator's chart (externalIds acct-1100 …) plus refunds and rounding accounts."""
        accounts = {
            Role.RECEIVABLE: "acct-1100",
            Role.CASH: "acct-1000",
            Role.REVENUE: "acct-4000",
            Role.TAX_PAYABLE: "acct-2200",
            Role.REFUNDS: "acct-4900",
            Role.ROUNDING: "acct-7990",
        }
        for name, code in overrides.items():
            accounts[Role(name.upper())] = code
        return cls({role: AccountCode(code) for role, code in accounts.items()})


@dataclass(frozen=True)
class PostingRules:
    """Configuration: a chart and a base currency per legal entity, the policies."""

    charts: Mapping[LegalEntity, ChartOfAccounts]
    base_currencies: Mapping[LegalEntity, str]
    closed_period_policy: ClosedPeriodPolicy = ClosedPeriodPolicy.REROUTE
    summarization: Summarization = Summarization.PER_DOCUMENT
    external_id_prefix: str = "accord"


@dataclass(frozen=True)
class PeriodCalendar:
    """Period states per legal entity; a period not listed is open."""

    states: Mapping[tuple[LegalEntity, PeriodId], PeriodState] = field(default_factory=dict)

    def state(self, entity: LegalEntity, period: PeriodId) -> PeriodState:
        return self.states.get((entity, period), PeriodState.OPEN)

    def with_state(self, entity: LegalEntity, period: PeriodId, state: PeriodState) -> PeriodCalendar:
        return PeriodCalendar({**self.states, (entity, period): state})


@dataclass(frozen=True)
class RevenueLine:
    """A priced line of a document (before tax), in the document's currency; negative for a discount."""

    amount: Decimal
    product_code: str | None = None
    line_id: str | None = None


@dataclass(frozen=True)
class SourceDocument:
    """A billing document, reduced to what posting needs. Amounts in `currency`, with 4 decimals at most.

    For INVOICE, CREDIT_NOTE and VOID: `lines` and `tax`, and `total` = sum(lines) + tax.
    For PAYMENT and REFUND: `total` only. `rate` converts one unit of `currency` to the base currency.
    """

    kind: DocumentKind
    document_id: DocumentId
    event_id: EventId
    legal_entity: LegalEntity
    document_date: date
    currency: str
    total: Decimal
    rate: Decimal = Decimal(1)
    lines: Sequence[RevenueLine] = ()
    tax: Decimal = ZERO
    account_id: str | None = None
    reference: str | None = None  # the legal number (invoice or credit note number), for memos


@dataclass(frozen=True)
class EntryLine:
    account: AccountCode
    side: Side
    amount: Decimal  # base currency, rounded to its minor unit, positive
    source_amount: Decimal  # document currency, positive (0 for the rounding line)
    memo: str | None = None
    receivable: bool = False  # on the receivables account: what an AR-locked period refuses


@dataclass(frozen=True)
class JournalEntry:
    external_id: ExternalId
    legal_entity: LegalEntity
    period: PeriodId
    accounting_date: date  # the day it is booked on (the document's date, unless rerouted)
    currency: str  # the entity's base currency: the currency of `lines`
    source_currency: str  # the documents' currency ("MIXED" in a summary over several)
    rate: Decimal  # source → base ("0" in a summary over several rates)
    memo: str
    lines: Sequence[EntryLine]
    document_ids: Sequence[DocumentId]  # lineage: every source document …
    event_ids: Sequence[EventId]  # … and every event that brought one
    kinds: Sequence[DocumentKind]
    original_date: date | None = None  # set when rerouted out of a closed period

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines if ln.side is Side.DEBIT), ZERO)

    @property
    def touches_receivable(self) -> bool:
        return any(ln.receivable for ln in self.lines)


@dataclass(frozen=True)
class Post:
    entry: JournalEntry
    rerouted: bool = False


@dataclass(frozen=True)
class Hold:
    """The entry's period does not take it and the policy is HOLD (or no open period is near): a person
    decides. `entry` is what would be posted once approved (or once the period reopens)."""

    entry: JournalEntry
    reason: str
    period_state: PeriodState


Decision = Post | Hold

_AR_MEMO = "receivable"


# -- periods -----------------------------------------------------------------------------------------


def period_of(day: date) -> PeriodId:
    return PeriodId(f"{day.year:04d}-{day.month:02d}")


def period_start(period: PeriodId) -> date:
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1)


def period_end(period: PeriodId) -> date:
    start = period_start(period)
    return date(start.year, start.month, _calendar.monthrange(start.year, start.month)[1])


def next_period(period: PeriodId) -> PeriodId:
    start = period_start(period)
    return period_of(date(start.year + start.month // 12, start.month % 12 + 1, 1))


def accepts(state: PeriodState, *, touches_receivable: bool) -> bool:
    """The ERP's rule: a closed period takes nothing; an AR-locked one nothing on receivables."""
    if state is PeriodState.CLOSED:
        return False
    return not (state is PeriodState.AR_LOCKED and touches_receivable)


# -- money -------------------------------------------------------------------------------------------


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))


def to_base(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    return (amount * rate).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


# -- external ids ------------------------------------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def external_id(prefix: str, entity: LegalEntity, kind: DocumentKind, document_id: str) -> ExternalId:
    """The same document always yields the same id, so posting it again is an upsert, never a second entry.

    Readable when the document id is URL-safe and short; a digest of it otherwise (the id sits in a URL path).
    """
    ident = document_id if _SAFE.fullmatch(document_id) else hashlib.sha256(document_id.encode()).hexdigest()[:32]
    return ExternalId(f"{prefix}-{entity}-{kind.value.lower()}-{ident}")


def summary_external_id(prefix: str, entity: LegalEntity, period: PeriodId, documents: Iterable[str]) -> ExternalId:
    """A summary's id: its entity, period and the set of documents in it (order does not matter)."""
    digest = hashlib.sha256("\n".join(sorted(set(documents))).encode()).hexdigest()[:24]
    return ExternalId(f"{prefix}-{entity}-summary-{period}-{digest}")


# -- rules -------------------------------------------------------------------------------------------

#: (account, +amount debit / -amount credit, memo) in the document's currency
_Signed = tuple[AccountCode, Decimal, str]


def _signed_lines(doc: SourceDocument, chart: ChartOfAccounts) -> list[_Signed]:
    ar = chart.account(Role.RECEIVABLE)
    if doc.kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE, DocumentKind.VOID):
        net = sum((ln.amount for ln in doc.lines), ZERO)
        if net + doc.tax != doc.total:
            raise PostingError(
                f"lines ({net}) + tax ({doc.tax}) = {net + doc.tax}, not the total {doc.total}: fix the document",
                document_id=doc.document_id,
            )
        lines: list[_Signed] = [(ar, doc.total, _AR_MEMO)]
        for ln in doc.lines:
            memo = f"revenue {ln.product_code}" if ln.product_code else "revenue"
            lines.append((chart.revenue_for(ln.product_code), -ln.amount, memo))
        if doc.tax:
            lines.append((chart.account(Role.TAX_PAYABLE), -doc.tax, "tax payable"))
        if doc.kind is DocumentKind.INVOICE:
            return lines
        return [(account, -amount, memo) for account, amount, memo in lines]  # the reverse
    cash = chart.account(Role.CASH)
    if doc.kind is DocumentKind.PAYMENT:
        return [(cash, doc.total, "cash"), (ar, -doc.total, _AR_MEMO)]
    # REFUND
    if chart.refunds is RefundTreatment.RECEIVABLE:
        return [(ar, doc.total, _AR_MEMO), (cash, -doc.total, "cash")]
    return [(chart.account(Role.REFUNDS), doc.total, "refunds"), (cash, -doc.total, "cash")]


def _memo(doc: SourceDocument) -> str:
    name = doc.kind.value.lower().replace("_", " ")
    ref = f" {doc.reference}" if doc.reference else ""
    return f"{name}{ref} ({doc.document_id}) of {doc.document_date.isoformat()}"


def build_entry(doc: SourceDocument, rules: PostingRules) -> JournalEntry:
    """The document's entry in the period of its date: balanced in the base currency, exactly."""
    chart = rules.charts.get(doc.legal_entity)
    base = rules.base_currencies.get(doc.legal_entity)
    if chart is None or base is None:
        raise PostingError(
            f"no chart of accounts or base currency for legal entity {doc.legal_entity!r}; configure one",
            document_id=doc.document_id,
            code="MAPPING_MISSING",
        )
    if doc.rate <= 0:
        raise PostingError(f"exchange rate {doc.rate} must be positive", document_id=doc.document_id)
    if doc.currency == base and doc.rate != 1:
        raise PostingError(
            f"a document in the base currency {base} has rate 1, not {doc.rate}", document_id=doc.document_id
        )
    if doc.total < 0:
        raise PostingError(f"total {doc.total} is negative", document_id=doc.document_id)
    lines: list[EntryLine] = []
    for account, amount, memo in _signed_lines(doc, chart):
        converted = to_base(abs(amount), doc.rate, base)
        if converted == 0:
            continue  # an empty line (untaxed, zero-priced) is nothing to post, and the ERP refuses it
        side = Side.DEBIT if amount > 0 else Side.CREDIT
        lines.append(EntryLine(account, side, converted, abs(amount), memo, receivable=memo == _AR_MEMO))
    lines = _with_rounding(lines, chart.account(Role.ROUNDING))
    entry = JournalEntry(
        external_id=external_id(rules.external_id_prefix, doc.legal_entity, doc.kind, doc.document_id),
        legal_entity=doc.legal_entity,
        period=period_of(doc.document_date),
        accounting_date=doc.document_date,
        currency=base,
        source_currency=doc.currency,
        rate=doc.rate,
        memo=_memo(doc),
        lines=tuple(lines),
        document_ids=(doc.document_id,),
        event_ids=(doc.event_id,),
        kinds=(doc.kind,),
    )
    assert_balanced(entry)
    return entry


def _with_rounding(lines: list[EntryLine], rounding: AccountCode) -> list[EntryLine]:
    debits = sum((ln.amount for ln in lines if ln.side is Side.DEBIT), ZERO)
    credits = sum((ln.amount for ln in lines if ln.side is Side.CREDIT), ZERO)
    if debits == credits:
        return lines
    side = Side.CREDIT if debits > credits else Side.DEBIT
    return [*lines, EntryLine(rounding, side, abs(debits - credits), ZERO, "currency rounding")]


def assert_balanced(entry: JournalEntry) -> None:
    debits = sum((ln.amount for ln in entry.lines if ln.side is Side.DEBIT), ZERO)
    credits = sum((ln.amount for ln in entry.lines if ln.side is Side.CREDIT), ZERO)
    if debits != credits or any(ln.amount <= 0 for ln in entry.lines):
        raise AssertionError(
            f"journal entry {entry.external_id} is unbalanced (debits {debits}, credits {credits}) or has a "
            "non-positive line: a bug in the posting rules"
        )


def place(entry: JournalEntry, calendar: PeriodCalendar, policy: ClosedPeriodPolicy) -> Decision:
    """Apply the period calendar: post where the date falls, or reroute, or hold."""
    state = calendar.state(entry.legal_entity, entry.period)
    touches_ar = entry.touches_receivable
    if accepts(state, touches_receivable=touches_ar):
        return Post(entry)
    why = f"period {entry.period} of {entry.legal_entity} is {state.value.lower().replace('_', '-')}"
    if policy is ClosedPeriodPolicy.HOLD:
        return Hold(entry, f"{why}; held for approval (policy HOLD)", state)
    period = entry.period
    for _ in range(REROUTE_HORIZON_MONTHS):
        period = next_period(period)
        if accepts(calendar.state(entry.legal_entity, period), touches_receivable=touches_ar):
            original = entry.accounting_date
            moved = replace(
                entry,
                period=period,
                accounting_date=period_start(period),
                original_date=original,
                memo=f"{entry.memo}; original date {original.isoformat()}, rerouted from {entry.period} ({why})",
            )
            return Post(moved, rerouted=True)
    return Hold(entry, f"{why} and no open period within {REROUTE_HORIZON_MONTHS} months; held", state)


def plan(doc: SourceDocument, *, rules: PostingRules, calendar: PeriodCalendar) -> Decision:
    """One document's decision: its balanced entry, placed by the calendar and the closed-period policy."""
    return place(build_entry(doc, rules), calendar, rules.closed_period_policy)


# -- summarization -----------------------------------------------------------------------------------


def summarize(entries: Sequence[JournalEntry], *, prefix: str = "accord") -> list[JournalEntry]:
    """One entry per legal entity x period, one line per account and side (net of both sides), with the
    lineage of every entry folded in. Entries keep balancing: netting moves equal amounts off both sides."""
    groups: dict[tuple[LegalEntity, PeriodId, str], list[JournalEntry]] = defaultdict(list)
    for entry in entries:
        groups[(entry.legal_entity, entry.period, entry.currency)].append(entry)
    out = []
    for (entity, period, currency), members in sorted(groups.items()):
        net: dict[AccountCode, Decimal] = defaultdict(lambda: ZERO)
        receivable: set[AccountCode] = set()
        for entry in members:
            for ln in entry.lines:
                net[ln.account] += ln.amount if ln.side is Side.DEBIT else -ln.amount
                if ln.receivable:
                    receivable.add(ln.account)
        lines = tuple(
            EntryLine(
                account,
                Side.DEBIT if amount > 0 else Side.CREDIT,
                abs(amount),
                ZERO,
                f"summary of {len(members)} document(s)",
                receivable=account in receivable,
            )
            for account, amount in sorted(net.items())
            if amount != 0
        )
        document_ids = tuple(d for e in members for d in e.document_ids)
        currencies = {e.source_currency for e in members}
        rates = {e.rate for e in members}
        summary = JournalEntry(
            external_id=summary_external_id(prefix, entity, period, document_ids),
            legal_entity=entity,
            period=period,
            accounting_date=max(e.accounting_date for e in members),
            currency=currency,
            source_currency=currencies.pop() if len(currencies) == 1 else "MIXED",
            rate=rates.pop() if len(rates) == 1 else ZERO,
            memo=f"summary of {len(members)} document(s) for {entity} {period}",
            lines=lines,
            document_ids=document_ids,
            event_ids=tuple(ev for e in members for ev in e.event_ids),
            kinds=tuple(sorted({k for e in members for k in e.kinds})),
        )
        if summary.lines:
            assert_balanced(summary)
            out.append(summary)
    return out


# -- the wire shape ----------------------------------------------------------------------------------


def from_payload(payload: Mapping[str, Any]) -> JournalEntry:
    """The entry back from its command payload (`to_payload`), to place it again after the ERP refused its period.

    The receivable flag comes from `receivable_accounts` (a payload written before it existed: a line is on
    receivables when its memo says so, which is how `build_entry` marks it). Kinds are not carried (only
    summarization reads them, and it runs on staged entries before they are payloads again).
    """

    def text(name: str) -> str:
        return str(payload[name])

    receivable = payload.get("receivable_accounts")
    original = payload.get("original_date")
    return JournalEntry(
        external_id=ExternalId(text("external_id")),
        legal_entity=LegalEntity(text("legal_entity")),
        period=PeriodId(text("period")),
        accounting_date=date.fromisoformat(text("tran_date")),
        currency=text("currency"),
        source_currency=text("source_currency"),
        rate=Decimal(text("rate")),
        memo=text("memo"),
        lines=tuple(
            EntryLine(
                AccountCode(str(ln["account"])),
                Side(str(ln["side"])),
                Decimal(str(ln["amount"])),
                ZERO,
                None if ln.get("memo") is None else str(ln["memo"]),
                receivable=ln["account"] in receivable if receivable is not None else ln.get("memo") == _AR_MEMO,
            )
            for ln in payload["lines"]
        ),
        document_ids=tuple(DocumentId(str(d)) for d in payload.get("document_ids") or ()),
        event_ids=tuple(EventId(str(e)) for e in payload.get("event_ids") or ()),
        kinds=(),
        original_date=None if original is None else date.fromisoformat(str(original)),
    )


def replace_after_refusal(
    entry: JournalEntry, calendar: PeriodCalendar, refused: PeriodState, policy: ClosedPeriodPolicy
) -> Decision:
    """The ERP refused `entry`'s period (it is `refused` there, whatever the calendar believed): place it again
    under the policy. A rerouted entry keeps the date it was first meant for as its original date."""
    decision = place(entry, calendar.with_state(entry.legal_entity, entry.period, refused), policy)
    if isinstance(decision, Post) and decision.entry.period == entry.period:
        # The calendar says the refused period takes it (an entry whose receivable lines are unknown): sending it
        # there again would be refused again, so a person decides.
        why = f"the ERP refused period {entry.period} of {entry.legal_entity} ({refused.value.lower()})"
        return Hold(entry, f"{why}; held for approval", refused)
    if isinstance(decision, Post) and entry.original_date is not None:
        return Post(replace(decision.entry, original_date=entry.original_date), rerouted=True)
    return decision


def to_payload(entry: JournalEntry) -> dict[str, object]:
    """The entry as the ERP command's JSON payload (amounts as strings: no float ever carries money)."""
    return {
        "external_id": entry.external_id,
        "legal_entity": entry.legal_entity,
        "period": entry.period,
        "tran_date": entry.accounting_date.isoformat(),
        "currency": entry.currency,
        "source_currency": entry.source_currency,
        "rate": str(entry.rate),
        "memo": entry.memo[:999],
        "original_date": None if entry.original_date is None else entry.original_date.isoformat(),
        "document_ids": list(entry.document_ids),
        "event_ids": list(entry.event_ids),
        # what an AR-locked period refuses, kept so the entry can be placed again from its payload
        "receivable_accounts": sorted({ln.account for ln in entry.lines if ln.receivable}),
        "lines": [
            {"account": ln.account, "side": ln.side.value, "amount": str(ln.amount), "memo": ln.memo}
            for ln in entry.lines
        ],
    }
