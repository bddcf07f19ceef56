"""ERP posting rules: documents → balanced journal entries, periods and policies, summaries, external ids."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from accord_erp_connector.posting import (
    AccountCode,
    ChartOfAccounts,
    ClosedPeriodPolicy,
    DocumentId,
    DocumentKind,
    EventId,
    Hold,
    JournalEntry,
    LegalEntity,
    PeriodCalendar,
    PeriodId,
    PeriodState,
    Post,
    PostingError,
    PostingRules,
    RefundTreatment,
    RevenueLine,
    Side,
    SourceDocument,
    assert_balanced,
    build_entry,
    plan,
    summarize,
    to_payload,
)

pytestmark = pytest.mark.unit

EU, US = LegalEntity("EU"), LegalEntity("US")
D = Decimal
CHART = ChartOfAccounts.default()
RULES = PostingRules(charts={EU: CHART, US: CHART}, base_currencies={EU: "EUR", US: "USD"})
OPEN = PeriodCalendar()


def doc(kind: DocumentKind = DocumentKind.INVOICE, **fields: object) -> SourceDocument:
    base: dict[str, object] = {
        "kind": kind,
        "document_id": DocumentId("in_1"),
        "event_id": EventId("ev-1"),
        "legal_entity": EU,
        "document_date": date(2026, 3, 14),
        "currency": "EUR",
        "total": D("121.00"),
        "lines": (RevenueLine(D("100.00"), "SEAT"),),
        "tax": D("21.00"),
    }
    if kind in (DocumentKind.PAYMENT, DocumentKind.REFUND):
        base.update(lines=(), tax=D(0))
    base.update(fields)
    return SourceDocument(**base)  # type: ignore[arg-type]


def shape(entry: JournalEntry) -> list[tuple[str, str, str]]:
    return [(ln.account, ln.side.value, str(ln.amount)) for ln in entry.lines]


AR, CASH, REV, TAX, REFUNDS, ROUND = "acct-1100", "acct-1000", "acct-4000", "acct-2200", "acct-4900", "acct-7990"


@pytest.mark.parametrize(
    ("document", "chart", "expected"),
    [
        pytest.param(
            doc(),
            CHART,
            [(AR, "DEBIT", "121.00"), (REV, "CREDIT", "100.00"), (TAX, "CREDIT", "21.00")],
            id="invoice-dr-ar-cr-revenue-cr-tax",
        ),
        pytest.param(
            doc(DocumentKind.CREDIT_NOTE, document_id=DocumentId("cn_1")),
            CHART,
            [(AR, "CREDIT", "121.00"), (REV, "DEBIT", "100.00"), (TAX, "DEBIT", "21.00")],
            id="credit-note-is-the-reverse",
        ),
        pytest.param(
            doc(DocumentKind.PAYMENT, document_id=DocumentId("py_1")),
            CHART,
            [(CASH, "DEBIT", "121.00"), (AR, "CREDIT", "121.00")],
            id="payment-dr-cash-cr-ar",
        ),
        pytest.param(
            doc(DocumentKind.REFUND, document_id=DocumentId("re_1")),
            CHART,
            [(AR, "DEBIT", "121.00"), (CASH, "CREDIT", "121.00")],
            id="refund-dr-ar-cr-cash",
        ),
        pytest.param(
            doc(DocumentKind.REFUND, document_id=DocumentId("re_1")),
            replace(CHART, refunds=RefundTreatment.CONTRA_REVENUE),
            [(REFUNDS, "DEBIT", "121.00"), (CASH, "CREDIT", "121.00")],
            id="refund-dr-contra-revenue-cr-cash",
        ),
        pytest.param(
            doc(DocumentKind.VOID),
            CHART,
            [(AR, "CREDIT", "121.00"), (REV, "DEBIT", "100.00"), (TAX, "DEBIT", "21.00")],
            id="void-reverses-the-invoice",
        ),
        pytest.param(
            doc(
                lines=(RevenueLine(D("100.00"), "SEAT"), RevenueLine(D("50.00"), "PLAT"), RevenueLine(D("-20.00"))),
                tax=D(0),
                total=D("130.00"),
            ),
            replace(CHART, revenue_by_product={"PLAT": AccountCode("acct-4100")}),
            [
                (AR, "DEBIT", "130.00"),
                (REV, "CREDIT", "100.00"),
                ("acct-4100", "CREDIT", "50.00"),
                (REV, "DEBIT", "20.00"),
            ],
            id="invoice-revenue-per-product-untaxed-with-a-discount",
        ),
    ],
)
def test_each_document_type_posts_its_rule(
    document: SourceDocument, chart: ChartOfAccounts, expected: list[tuple[str, str, str]]
) -> None:
    rules = replace(RULES, charts={EU: chart})
    entry = build_entry(document, rules)
    assert shape(entry) == expected
    assert entry.period == "2026-03" and entry.accounting_date == date(2026, 3, 14)
    assert entry.document_ids == (document.document_id,) and entry.event_ids == ("ev-1",)
    assert entry.total == sum((D(a) for _, s, a in expected if s == "DEBIT"), D(0))


def test_multi_currency_converts_each_line_and_books_the_rounding_difference() -> None:
    # 3 x 33.33 + 0.01 tax in USD at 0.917 EUR: each line rounds on its own and the parts sum to 91.69, the
    # total to 91.70; the cent goes to the rounding account so that debits equal credits exactly.
    usd = doc(
        currency="USD",
        rate=D("0.917"),
        lines=(RevenueLine(D("33.33")), RevenueLine(D("33.33")), RevenueLine(D("33.33"))),
        tax=D("0.01"),
        total=D("100.00"),
    )
    entry = build_entry(usd, RULES)
    assert entry.currency == "EUR" and entry.source_currency == "USD" and entry.rate == D("0.917")
    assert shape(entry) == [
        (AR, "DEBIT", "91.70"),
        (REV, "CREDIT", "30.56"),
        (REV, "CREDIT", "30.56"),
        (REV, "CREDIT", "30.56"),
        (TAX, "CREDIT", "0.01"),
        (ROUND, "CREDIT", "0.01"),
    ]
    assert [ln.source_amount for ln in entry.lines if ln.account == REV] == [D("33.33")] * 3
    assert entry.total == D("91.70")


def test_a_document_in_the_base_currency_has_no_rounding_line() -> None:
    entry = build_entry(doc(total=D("0.03"), lines=(RevenueLine(D("0.01")),) * 3, tax=D(0)), RULES)
    assert all(ln.account != ROUND for ln in entry.lines)


def test_zero_decimal_currency_rounds_to_whole_units() -> None:
    rules = replace(RULES, charts={LegalEntity("JP"): CHART}, base_currencies={LegalEntity("JP"): "JPY"})
    entry = build_entry(doc(legal_entity=LegalEntity("JP"), currency="USD", rate=D("149.37")), rules)
    assert all(ln.amount == ln.amount.to_integral_value() for ln in entry.lines)
    assert_balanced(entry)


@pytest.mark.parametrize(
    ("document", "code", "says"),
    [
        pytest.param(doc(total=D("120.00")), "VALIDATION_FAILED", "not the total 120.00", id="totals-disagree"),
        pytest.param(doc(legal_entity=LegalEntity("XX")), "MAPPING_MISSING", "legal entity 'XX'", id="no-chart"),
        pytest.param(doc(rate=D("1.1")), "VALIDATION_FAILED", "rate 1", id="base-currency-rate-not-1"),
        pytest.param(doc(currency="USD", rate=D(0)), "VALIDATION_FAILED", "must be positive", id="zero-rate"),
    ],
)
def test_bad_documents_are_refused_with_a_diagnosis(document: SourceDocument, code: str, says: str) -> None:
    with pytest.raises(PostingError, match=says) as caught:
        build_entry(document, RULES)
    assert caught.value.code == code and caught.value.document_id == "in_1"


def test_the_chart_must_map_every_role() -> None:
    with pytest.raises(ValueError, match="ROUNDING"):
        ChartOfAccounts({role: AccountCode("x") for role in list(CHART.accounts)[:-1]})


# -- periods and the closed-period policy ------------------------------------------------------------


def cal(**states: PeriodState) -> PeriodCalendar:
    return PeriodCalendar({(EU, PeriodId(k.replace("_", "-")[1:])): v for k, v in states.items()})


C, L = PeriodState.CLOSED, PeriodState.AR_LOCKED


@pytest.mark.parametrize(
    ("kind", "calendar", "policy", "outcome", "period", "day"),
    [
        pytest.param(
            DocumentKind.INVOICE, OPEN, ClosedPeriodPolicy.REROUTE, Post, "2026-03", date(2026, 3, 14), id="open"
        ),
        pytest.param(
            DocumentKind.INVOICE,
            cal(p2026_03=C),
            ClosedPeriodPolicy.REROUTE,
            Post,
            "2026-04",
            date(2026, 4, 1),
            id="closed-reroute-next-open",
        ),
        pytest.param(
            DocumentKind.INVOICE,
            cal(p2026_03=C, p2026_04=C, p2026_05=L),
            ClosedPeriodPolicy.REROUTE,
            Post,
            "2026-06",
            date(2026, 6, 1),
            id="closed-reroute-skips-closed-and-ar-locked",
        ),
        pytest.param(
            DocumentKind.INVOICE,
            cal(p2026_03=C),
            ClosedPeriodPolicy.HOLD,
            Hold,
            "2026-03",
            date(2026, 3, 14),
            id="closed-hold",
        ),
        pytest.param(
            DocumentKind.INVOICE,
            cal(p2026_03=L),
            ClosedPeriodPolicy.HOLD,
            Hold,
            "2026-03",
            date(2026, 3, 14),
            id="ar-locked-holds-an-invoice",
        ),
        pytest.param(
            DocumentKind.PAYMENT,
            cal(p2026_03=L),
            ClosedPeriodPolicy.HOLD,
            Hold,
            "2026-03",
            date(2026, 3, 14),
            id="ar-locked-holds-a-payment-it-credits-ar",
        ),
        pytest.param(
            DocumentKind.PAYMENT,
            cal(p2026_03=L),
            ClosedPeriodPolicy.REROUTE,
            Post,
            "2026-04",
            date(2026, 4, 1),
            id="ar-locked-reroutes-a-payment",
        ),
        pytest.param(
            DocumentKind.REFUND,
            cal(p2026_03=L),
            ClosedPeriodPolicy.HOLD,
            Post,
            "2026-03",
            date(2026, 3, 14),
            id="ar-locked-takes-a-contra-revenue-refund-no-ar-line",
        ),
        pytest.param(
            DocumentKind.REFUND,
            cal(p2026_03=C),
            ClosedPeriodPolicy.HOLD,
            Hold,
            "2026-03",
            date(2026, 3, 14),
            id="closed-holds-even-a-contra-revenue-refund",
        ),
    ],
)
def test_the_period_calendar_and_the_closed_period_policy(
    kind: DocumentKind, calendar: PeriodCalendar, policy: ClosedPeriodPolicy, outcome: type, period: str, day: date
) -> None:
    chart = replace(CHART, refunds=RefundTreatment.CONTRA_REVENUE)
    rules = replace(RULES, charts={EU: chart}, closed_period_policy=policy)
    decision = plan(doc(kind, document_id=DocumentId("d_1")), rules=rules, calendar=calendar)
    assert isinstance(decision, outcome)
    assert decision.entry.period == period and decision.entry.accounting_date == day
    original = build_entry(doc(kind, document_id=DocumentId("d_1")), rules)
    # Rerouted or held, it is the same entry under the same external id: the upsert key does not move.
    assert decision.entry.external_id == original.external_id and decision.entry.lines == original.lines
    if isinstance(decision, Post) and decision.rerouted:
        assert decision.entry.original_date == date(2026, 3, 14)
        assert "original date 2026-03-14" in decision.entry.memo and "rerouted from 2026-03" in decision.entry.memo
    if isinstance(decision, Hold):
        assert "2026-03" in decision.reason and decision.period_state in (C, L)


def test_reroute_gives_up_and_holds_when_nothing_is_open_for_two_years() -> None:
    states = {(EU, PeriodId(f"{2026 + (3 + i - 1) // 12}-{(3 + i - 1) % 12 + 1:02d}")): C for i in range(30)}
    decision = plan(doc(), rules=RULES, calendar=PeriodCalendar(states))
    assert isinstance(decision, Hold) and "no open period within 24 months" in decision.reason


def test_reroute_crosses_the_year_end() -> None:
    decision = plan(doc(document_date=date(2026, 12, 31)), rules=RULES, calendar=cal(p2026_12=C))
    assert isinstance(decision, Post) and decision.entry.period == "2027-01"


# -- external ids --------------------------------------------------------------------------------------


def test_external_ids_are_deterministic_per_document_and_distinct_across_documents() -> None:
    first = build_entry(doc(), RULES).external_id
    assert build_entry(doc(event_id=EventId("ev-redelivered")), RULES).external_id == first
    assert first == "accord-EU-invoice-in_1"
    others = {
        build_entry(doc(document_id=DocumentId("in_2")), RULES).external_id,
        build_entry(doc(DocumentKind.VOID), RULES).external_id,
        build_entry(doc(DocumentKind.CREDIT_NOTE), RULES).external_id,
        build_entry(doc(legal_entity=US, currency="USD"), RULES).external_id,
    }
    assert first not in others and len(others) == 4


def test_an_unsafe_document_id_becomes_a_digest_fit_for_a_url() -> None:
    entry = build_entry(doc(document_id=DocumentId("in/1 ?#" + "x" * 80)), RULES)
    assert entry.external_id.startswith("accord-EU-invoice-") and len(entry.external_id) < 64
    assert "/" not in entry.external_id and " " not in entry.external_id


# -- summarization ---------------------------------------------------------------------------------------


def test_summary_nets_per_account_period_and_entity_keeping_lineage() -> None:
    entries = [
        build_entry(doc(document_id=DocumentId("in_1"), event_id=EventId("e1")), RULES),
        build_entry(
            doc(document_id=DocumentId("in_2"), event_id=EventId("e2"), document_date=date(2026, 3, 20)), RULES
        ),
        build_entry(doc(DocumentKind.PAYMENT, document_id=DocumentId("py_1"), event_id=EventId("e3")), RULES),
        build_entry(doc(document_id=DocumentId("in_3"), event_id=EventId("e4"), document_date=date(2026, 4, 2)), RULES),
        build_entry(
            doc(document_id=DocumentId("in_4"), event_id=EventId("e5"), legal_entity=US, currency="USD"), RULES
        ),
    ]
    summaries = summarize(entries)
    assert [(s.legal_entity, s.period) for s in summaries] == [("EU", "2026-03"), ("EU", "2026-04"), ("US", "2026-03")]
    march = summaries[0]
    assert shape(march) == [
        (CASH, "DEBIT", "121.00"),
        (AR, "DEBIT", "121.00"),
        (TAX, "CREDIT", "42.00"),
        (REV, "CREDIT", "200.00"),
    ]
    assert march.document_ids == ("in_1", "in_2", "py_1") and march.event_ids == ("e1", "e2", "e3")
    assert march.accounting_date == date(2026, 3, 20) and march.touches_receivable
    # The same documents in any order give the same summary id; another set, another id.
    assert summarize(list(reversed(entries)))[0].external_id == march.external_id
    assert summarize(entries[:1])[0].external_id != march.external_id


def test_a_summary_that_nets_to_nothing_is_not_posted() -> None:
    invoice = build_entry(doc(), RULES)
    void = build_entry(doc(DocumentKind.VOID), RULES)
    assert summarize([invoice, void]) == []


def test_payload_carries_amounts_as_strings_and_the_lineage() -> None:
    payload = to_payload(build_entry(doc(currency="USD", rate=D("0.919")), RULES))
    assert payload["lines"][0] == {"account": AR, "side": "DEBIT", "amount": "111.20", "memo": "receivable"}  # type: ignore[index]
    assert payload["document_ids"] == ["in_1"] and payload["event_ids"] == ["ev-1"] and payload["rate"] == "0.919"


# -- balance, over many generated documents ---------------------------------------------------------------

CURRENCIES = {"EUR": D(1), "USD": D("0.919"), "GBP": D("1.1627"), "JPY": D("0.006131"), "CHF": D("1.0391")}


def random_document(rng: random.Random, n: int) -> SourceDocument:
    kind = rng.choice(list(DocumentKind))
    currency = rng.choice(list(CURRENCIES))
    quantum = D(1) if currency == "JPY" else D("0.0001") if rng.random() < 0.3 else D("0.01")
    amount = lambda hi: (D(rng.randint(-500, hi * 100)) / 100 * D(rng.random()).quantize(D("0.0001"))).quantize(quantum)  # noqa: E731
    lines: tuple[RevenueLine, ...] = ()
    tax = D(0)
    if kind in (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE, DocumentKind.VOID):
        lines = tuple(
            RevenueLine(abs(amount(99_999)) if i == 0 else amount(9_999), rng.choice(["SEAT", "PLAT", None]))
            for i in range(rng.randint(1, 8))
        )
        tax = abs(amount(999)) if rng.random() < 0.7 else D(0)
        total = sum((ln.amount for ln in lines), D(0)) + tax
        if total < 0:
            lines = (*lines, RevenueLine(-total))
            total = D(0)
    else:
        total = abs(amount(99_999))
    return SourceDocument(
        kind=kind,
        document_id=DocumentId(f"doc_{n}"),
        event_id=EventId(f"ev_{n}"),
        legal_entity=EU,
        document_date=date(2026, rng.randint(1, 12), rng.randint(1, 28)),
        currency=currency,
        rate=CURRENCIES[currency],
        lines=lines,
        tax=tax,
        total=total,
    )


def test_every_generated_document_balances_exactly_alone_and_summarized() -> None:
    rng = random.Random(20261128)
    rules = replace(RULES, charts={EU: replace(CHART, revenue_by_product={"PLAT": AccountCode("acct-4100")})})
    entries = []
    rounded = 0
    for n in range(3000):
        document = random_document(rng, n)
        entry = build_entry(document, rules)
        debits = sum((ln.amount for ln in entry.lines if ln.side is Side.DEBIT), D(0))
        credits = sum((ln.amount for ln in entry.lines if ln.side is Side.CREDIT), D(0))
        assert debits == credits, (document, entry)
        assert all(ln.amount > 0 for ln in entry.lines)
        assert all(ln.amount == ln.amount.quantize(D("0.01")) for ln in entry.lines)
        rounded += any(ln.account == ROUND for ln in entry.lines)
        entries.append(entry)
    assert rounded > 100  # the generator does reach the rounding rule, so the balance above means something
    summaries = summarize(entries)
    assert len(summaries) == 12
    assert sorted(d for s in summaries for d in s.document_ids) == sorted(d for e in entries for d in e.document_ids)
    for summary in summaries:
        assert_balanced(summary)
