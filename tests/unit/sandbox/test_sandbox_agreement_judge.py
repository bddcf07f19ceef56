"""The agreement oracle's judgement, on hand-made snapshots: one agreeing book, then one defect per case."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from accord_sandbox.agreement import Book, judge

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 20)
FINALIZED_AT = int(datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp())
ACCOUNT, CONTRACT, CUSTOMER = "001A", "800K", "cus_1"
INV_ANNUAL, INV_MONTHLY = "in_annual", "in_monthly"


def invoice(invoice_id: str, status: str = "paid", total: int = 10_000, **extra: Any) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "customer": CUSTOMER,
        "status": status,
        "currency": "eur",
        "total": total,
        "amount_paid": total if status == "paid" else 0,
        "charge": f"ch_{invoice_id}" if status == "paid" and total else None,
        "created": FINALIZED_AT,
        "number": f"INV-{invoice_id}",
        "status_transitions": {"finalized_at": FINALIZED_AT},
        **extra,
    }


def journal(invoice_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"j-{invoice_id}",
        "externalId": f"accord-EU-invoice-{invoice_id}",
        "subsidiary": {"id": "2"},
        "postingPeriod": {"id": "p-nov"},
        "tranDate": "2026-11-03",
        "currency": "EUR",
        "memo": f"invoice INV-{invoice_id} ({invoice_id}) of 2026-11-03",
        "custbody_accord_documents": invoice_id,
        "custbody_accord_source_currency": "EUR",
        **extra,
    }


def agreeing_book() -> Book:
    return Book(
        today=TODAY,
        accounts=[
            {
                "Id": ACCOUNT,
                "Name": "ns Acme",
                "External_Id__c": "ns-c00000",
                "Legal_Entity__c": "EU",
                "Invoice_Status__c": "Paid",
                "Payment_Status__c": "Succeeded",
                "Credit_Hold__c": False,
            }
        ],
        contracts=[{"Id": CONTRACT, "AccountId": ACCOUNT, "Status": "Activated", "StartDate": "2026-11-03"}],
        contract_lines=[
            {"Contract__c": CONTRACT, "Status__c": "Active", "Billing_Frequency__c": f, "Start_Date__c": "2026-11-03"}
            for f in ("Annual", "Annual", "Monthly")
        ],
        customers=[{"id": CUSTOMER, "name": "ns Acme", "metadata": {"crm_account_id": ACCOUNT, "legal_entity": "EU"}}],
        subscriptions=[
            {
                "id": f"sub_{f}",
                "customer": CUSTOMER,
                "status": "active",
                "metadata": {"crm_contract_id": CONTRACT, "frequency": f},
            }
            for f in ("Annual", "Monthly")
        ],
        invoices=[invoice(INV_ANNUAL), invoice(INV_MONTHLY)],
        charges=[{"id": f"ch_{i}", "customer": CUSTOMER, "status": "succeeded"} for i in (INV_ANNUAL, INV_MONTHLY)],
        erp_customers=[{"id": "77", "externalId": ACCOUNT, "subsidiary": {"id": "2"}}],
        subsidiaries={"1": "US", "2": "EU", "3": "UK"},
        periods={
            "p-oct": ("2026-10-01", "2026-10-31"),
            "p-nov": ("2026-11-01", "2026-11-30"),
            "p-dec": ("2026-12-01", "2026-12-31"),
        },
        journals=[journal(INV_ANNUAL), journal(INV_MONTHLY)],
    )


def test_an_agreeing_book_agrees_and_is_counted() -> None:
    result = judge(agreeing_book(), "ns")
    assert result["disagreements"] == [] and result["agree"] is True
    assert result["counts"] == {
        "customers": 1,
        "billing_customers": 1,
        "erp_customers": 1,
        "contracts": 1,
        "contracts_not_started": 0,
        "subscriptions": 2,
        "invoices": {"paid": 2},
        "payments": 2,
        "journal_entries": {"EU": 2},
        "credit_holds": 0,
    }


def _drop_monthly_sub(b: Book) -> None:
    b.subscriptions = [s for s in b.subscriptions if s["metadata"]["frequency"] != "Monthly"]


def _second_annual_sub(b: Book) -> None:
    b.subscriptions.append({**copy.deepcopy(b.subscriptions[0]), "id": "sub_again"})


def _usage_sub(b: Book) -> None:
    b.subscriptions.append(
        {"id": "sub_u", "customer": CUSTOMER, "status": "active", "metadata": {"crm_contract_id": CONTRACT}}
        | {"items": {"data": [{"price": {"recurring": {"interval": "month", "usage_type": "metered"}}}]}}
    )


def _orphan_sub(b: Book) -> None:
    b.subscriptions.append({"id": "sub_x", "customer": CUSTOMER, "status": "active", "metadata": {}})


def _terminated_still_running(b: Book) -> None:
    b.contracts[0].update(Status="Terminated", Cancellation_Date__c="2026-11-19")


def _no_billing_customer(b: Book) -> None:
    b.customers[0]["metadata"]["crm_account_id"] = "001OTHER"


def _two_billing_customers(b: Book) -> None:
    b.customers.append({**copy.deepcopy(b.customers[0]), "id": "cus_2"})


def _billing_customer_in_us(b: Book) -> None:
    b.customers[0]["metadata"]["legal_entity"] = "US"


def _no_erp_customer(b: Book) -> None:
    b.erp_customers = []


def _erp_customer_in_uk(b: Book) -> None:
    b.erp_customers[0]["subsidiary"] = {"id": "3"}


def _journal_missing(b: Book) -> None:
    b.journals = b.journals[:1]


def _journal_twice(b: Book) -> None:
    b.journals.append({**journal(INV_MONTHLY), "id": "j-again", "externalId": None})


def _journal_in_us(b: Book) -> None:
    b.journals[1]["subsidiary"] = {"id": "1"}


def _journal_in_december(b: Book) -> None:
    b.journals[1].update(postingPeriod={"id": "p-dec"}, tranDate="2026-12-01")


def _journal_in_usd(b: Book) -> None:
    b.journals[1]["custbody_accord_source_currency"] = "USD"


def _payment_not_on_account(b: Book) -> None:
    b.accounts[0]["Payment_Status__c"] = None


def _no_invoice_status(b: Book) -> None:
    b.accounts[0]["Invoice_Status__c"] = None


def _all_paid_but_status_says_open(b: Book) -> None:
    b.accounts[0].update(Invoice_Status__c="Open", Payment_Status__c="Pending")


def _hard_decline_without_hold(b: Book) -> None:
    b.invoices[1] = invoice(INV_MONTHLY, "open", last_payment_error={"decline_type": "hard", "decline_code": "x"})


def _uncollectible_without_hold(b: Book) -> None:
    b.invoices[1] = invoice(INV_MONTHLY, "uncollectible")


def _hold_without_reason(b: Book) -> None:
    b.accounts[0]["Credit_Hold__c"] = True


CASES: dict[str, tuple[Callable[[Book], None], str, str]] = {
    "subscription missing": (_drop_monthly_sub, "subscription_missing", CONTRACT),
    "subscription duplicate": (_second_annual_sub, "subscription_duplicate", CONTRACT),
    "subscription without a line": (_usage_sub, "subscription_unexpected", CONTRACT),
    "subscription of no contract": (_orphan_sub, "subscription_orphan", "sub_x"),
    "terminated contract still billed": (_terminated_still_running, "subscription_not_canceled", CONTRACT),
    "billing customer missing": (_no_billing_customer, "billing_customer_missing", ACCOUNT),
    "billing customer duplicate": (_two_billing_customers, "billing_customer_duplicate", ACCOUNT),
    "billing customer wrong entity": (_billing_customer_in_us, "billing_customer_wrong_entity", ACCOUNT),
    "erp customer missing": (_no_erp_customer, "erp_customer_missing", ACCOUNT),
    "erp customer wrong subsidiary": (_erp_customer_in_uk, "erp_customer_wrong_subsidiary", ACCOUNT),
    "journal missing": (_journal_missing, "journal_missing", INV_MONTHLY),
    "journal duplicate": (_journal_twice, "journal_duplicate", INV_MONTHLY),
    "journal wrong subsidiary": (_journal_in_us, "journal_wrong_subsidiary", INV_MONTHLY),
    "journal wrong period": (_journal_in_december, "journal_wrong_period", INV_MONTHLY),
    "journal wrong currency": (_journal_in_usd, "journal_wrong_currency", INV_MONTHLY),
    "payment not reflected": (_payment_not_on_account, "payment_not_reflected", ACCOUNT),
    "invoice status missing": (_no_invoice_status, "invoice_status_missing", ACCOUNT),
    "invoice status inconsistent": (_all_paid_but_status_says_open, "invoice_status_inconsistent", ACCOUNT),
    "hard decline, no hold": (_hard_decline_without_hold, "credit_hold_missing", ACCOUNT),
    "uncollectible, no hold": (_uncollectible_without_hold, "credit_hold_missing", ACCOUNT),
    "hold without reason": (_hold_without_reason, "credit_hold_unexpected", ACCOUNT),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_defect_is_reported_by_kind_and_key(case: str) -> None:
    mutate, kind, key = CASES[case]
    book = agreeing_book()
    mutate(book)
    result = judge(book, "ns")
    extra = set()
    if case == "billing customer missing":
        extra = {("billing_customer_unlinked", CUSTOMER)}  # the customer now names an account of no namespace
    assert {(d["kind"], d["key"]) for d in result["disagreements"]} == {(kind, key)} | extra
    assert result["agree"] is False


def test_a_rerouted_posting_in_a_later_period_agrees() -> None:
    book = agreeing_book()
    book.journals[1].update(
        postingPeriod={"id": "p-dec"},
        tranDate="2026-12-01",
        memo="invoice (in_monthly) of 2026-11-03; original date 2026-11-03, rerouted from 2026-11 (period closed)",
        custbody_accord_original_date="2026-11-03",
    )
    assert judge(book, "ns")["agree"] is True
    book.journals[1].update(postingPeriod={"id": "p-oct"}, tranDate="2026-10-31")  # earlier is never a reroute
    assert {(d["kind"], d["key"]) for d in judge(book, "ns")["disagreements"]} == {
        ("journal_wrong_period", INV_MONTHLY)
    }


def test_zero_invoices_need_no_journal_and_drafts_are_not_judged() -> None:
    book = agreeing_book()
    book.invoices += [invoice("in_zero", total=0), invoice("in_draft", "draft")]
    result = judge(book, "ns")
    assert result["agree"] is True and result["counts"]["invoices"] == {"draft": 1, "paid": 3}


def test_a_contract_not_started_yet_needs_no_subscription() -> None:
    book = agreeing_book()
    book.contracts.append({"Id": "800R", "AccountId": ACCOUNT, "Status": "Activated", "StartDate": "2027-11-03"})
    book.contract_lines.append(
        {"Contract__c": "800R", "Status__c": "Active", "Billing_Frequency__c": "Annual", "Start_Date__c": "2027-11-03"}
    )
    result = judge(book, "ns")
    assert result["agree"] is True and result["counts"]["contracts_not_started"] == 1


def test_a_summary_entry_covers_its_invoices() -> None:
    book = agreeing_book()
    book.journals = [
        journal(INV_ANNUAL)
        | {
            "id": "j-sum",
            "externalId": "accord-EU-summary-2026-11-abc",
            "custbody_accord_documents": f"{INV_ANNUAL},{INV_MONTHLY},ch_x",
            "custbody_accord_source_currency": "MIXED",
        }
    ]
    result = judge(book, "ns")
    assert result["agree"] is True and result["counts"]["journal_entries"] == {"EU": 1}
