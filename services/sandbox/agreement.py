"""The agreement oracle: do the CRM, billing and the ERP tell the same story about one namespace's book?

The sandbox holds all three systems, so it can answer from its own tables, with a handful of SQL queries
whatever the size of the book (`load`), then judge the snapshot with a pure function (`judge`). A book is the
CRM accounts of a namespace (External_Id__c `<ns>-c<n>` or Name `<ns> …`: namespace `demo` is not `demo-2`)
and everything hanging off them:

- every Activated contract that has started has one billing subscription per cadence group of its active lines
  (Annual, Monthly, Usage: `metadata.crm_contract_id` = the contract, `metadata.frequency` the group, as the
  generator's full mode builds them) and no duplicate or extra ones; a contract that starts in the future (a
  renewal) needs none yet; a Terminated contract's subscriptions are canceled, set to cancel or never started;
- every CRM account has exactly one billing customer (`metadata.crm_account_id`) whose `metadata.legal_entity`
  is the account's Legal_Entity__c, and one ERP customer (externalId = the account id) in that subsidiary;
- every finalized invoice (open, paid, void, uncollectible) with a non-zero total is posted to the ERP exactly
  once — found by the erp connector's external id `<prefix>-<entity>-invoice-<invoice id>`, by the lineage field
  `custbody_accord_documents` or by the memo's `(<invoice id>)` — in the subsidiary of the account's legal
  entity, in the period of its document date (the finalization date, UTC), or later when the memo says it was
  rerouted out of a closed period, and in the invoice's currency (`custbody_accord_source_currency`, else the
  entry's currency);
- a paid invoice's payment is on the account (`Payment_Status__c` set); an account with finalized invoices has
  `Invoice_Status__c` set, and when all of them are paid its statuses say so (paid / collected / succeeded);
- `Credit_Hold__c` is true exactly for the accounts with an open invoice whose payment was hard-declined, or an
  uncollectible invoice.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from .core import Sandbox

FINALIZED = ("open", "paid", "void", "uncollectible")
FREQUENCIES = ("Annual", "Monthly", "Usage")
#: a terminated contract's subscriptions are over, or will be: canceled, expired, set to cancel (`cancel_at`), or
#: still incomplete (a first invoice never paid: billing expires it after 23 hours, as the full mode leaves it)
ENDED = ("canceled", "incomplete_expired", "incomplete")
#: the erp connector's journal external ids: <prefix>-<entity>-<kind>-<document id> (posting.external_id)
JOURNAL_ID = re.compile(r"^(?P<prefix>.+?)-(?P<entity>[A-Za-z0-9]+)-(?P<kind>[a-z_]+)-(?P<rest>.+)$")
POSTING_KINDS = ("invoice", "credit_note", "payment", "refund", "void", "summary")
MEMO_DOCUMENT = re.compile(r"\(((?:in|ch)_[A-Za-z0-9]+)\)")
PAID_WORDS = re.compile(r"paid|collect|succeed", re.IGNORECASE)


@dataclass
class Book:
    """What the three systems hold for one namespace (records as stored, plain JSON)."""

    today: date
    accounts: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    contract_lines: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    erp_customers: list[dict[str, Any]] = field(default_factory=list)
    #: ERP subsidiary internal id → its externalId (the legal-entity code)
    subsidiaries: dict[str, str] = field(default_factory=dict)
    #: ERP accounting period internal id → (startDate, endDate)
    periods: dict[str, tuple[str, str]] = field(default_factory=dict)
    journals: list[dict[str, Any]] = field(default_factory=list)


# -- loading: one query per kind of record -------------------------------------------------------------


async def load(box: Sandbox, namespace: str) -> Book:
    """The namespace's records, read in ONE repeatable-read snapshot: a book being written while it is read is
    seen as it stood at one instant, never half before and half after a change (no spurious agreement)."""
    async with box.store.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await _load(conn, box.store.clock.now().date(), namespace)


async def _load(conn: asyncpg.Connection, today: date, namespace: str) -> Book:
    book = Book(today=today)

    async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r["data"]) for r in await conn.fetch(sql, *args)]

    book.accounts = await fetch(
        "SELECT data FROM records WHERE system = 'crm' AND kind = 'Account' AND NOT deleted "
        "AND (external_id ~ ('^' || $1 || '-c[0-9]+$') OR data->>'Name' LIKE $1 || ' %') ORDER BY id",
        namespace,
    )
    account_ids = [a["Id"] for a in book.accounts]
    book.contracts = await fetch(
        "SELECT data FROM records WHERE system = 'crm' AND kind = 'Contract' AND NOT deleted "
        "AND data->>'AccountId' = ANY($1::text[]) ORDER BY id",
        account_ids,
    )
    contract_ids = [c["Id"] for c in book.contracts]
    book.contract_lines = await fetch(
        "SELECT data FROM records WHERE system = 'crm' AND kind = 'Contract_Line__c' AND NOT deleted "
        "AND data->>'Contract__c' = ANY($1::text[]) ORDER BY id",
        contract_ids,
    )
    book.customers = await fetch(
        "SELECT data FROM records WHERE system = 'billing' AND kind = 'customer' AND NOT deleted "
        "AND (data->'metadata'->>'crm_account_id' = ANY($1::text[]) OR data->>'name' LIKE $2 || ' %') ORDER BY id",
        account_ids,
        namespace,
    )
    customer_ids = [c["id"] for c in book.customers]
    book.subscriptions = await fetch(
        "SELECT data FROM records WHERE system = 'billing' AND kind = 'subscription' AND NOT deleted "
        "AND (data->>'customer' = ANY($1::text[]) OR data->'metadata'->>'crm_contract_id' = ANY($2::text[])) "
        "ORDER BY id",
        customer_ids,
        contract_ids,
    )
    book.invoices = await fetch(
        "SELECT data FROM records WHERE system = 'billing' AND kind = 'invoice' AND NOT deleted "
        "AND data->>'customer' = ANY($1::text[]) ORDER BY id",
        customer_ids,
    )
    book.charges = await fetch(
        "SELECT data FROM records WHERE system = 'billing' AND kind = 'charge' AND NOT deleted "
        "AND data->>'customer' = ANY($1::text[]) ORDER BY id",
        customer_ids,
    )
    book.erp_customers = await fetch(
        "SELECT data FROM records WHERE system = 'erp' AND kind = 'customer' AND NOT deleted "
        "AND external_id = ANY($1::text[]) ORDER BY id",
        account_ids,
    )
    for row in await conn.fetch(
        "SELECT id, external_id FROM records WHERE system = 'erp' AND kind = 'subsidiary' AND NOT deleted"
    ):
        book.subsidiaries[row["id"]] = row["external_id"] or ""
    for row in await conn.fetch(
        "SELECT id, data->>'startDate' AS start, data->>'endDate' AS end_ FROM records "
        "WHERE system = 'erp' AND kind = 'accountingPeriod'"
    ):
        book.periods[row["id"]] = (row["start"], row["end_"])
    documents = [i["id"] for i in book.invoices] + [c["id"] for c in book.charges]
    book.journals = await fetch(
        "SELECT data FROM records WHERE system = 'erp' AND kind = 'journalEntry' AND NOT deleted AND ("
        "substring(coalesce(external_id, '') from '-(?:invoice|payment|void|credit_note|refund)-([^-]+)$') "
        "= ANY($1::text[]) "
        "OR string_to_array(coalesce(data->>'custbody_accord_documents', ''), ',') && $1::text[] "
        "OR substring(coalesce(data->>'memo', '') from '\\(((?:in|ch)_[A-Za-z0-9]+)\\)') = ANY($1::text[])"
        ") ORDER BY id",
        documents,
    )
    return book


async def report(box: Sandbox, namespace: str) -> dict[str, Any]:
    return judge(await load(box, namespace), namespace)


# -- judging: pure ---------------------------------------------------------------------------------------


def frequency_of(sub: dict[str, Any]) -> str:
    """The cadence group of a subscription: its metadata.frequency, else what its prices say."""
    named = (sub.get("metadata") or {}).get("frequency")
    if named in FREQUENCIES:
        return str(named)
    recurring = [((i.get("price") or {}).get("recurring") or {}) for i in (sub.get("items") or {}).get("data", [])]
    if any(r.get("usage_type") == "metered" for r in recurring):
        return "Usage"
    if any(r.get("interval") == "year" for r in recurring):
        return "Annual"
    return "Monthly"


def document_date(invoice: dict[str, Any]) -> date:
    """The invoice's date as the billing connector reads it: finalized_at, else created (UTC)."""
    stamp = (invoice.get("status_transitions") or {}).get("finalized_at") or invoice["created"]
    return datetime.fromtimestamp(int(stamp), UTC).date()


def _journal_documents(journal: dict[str, Any]) -> tuple[str | None, set[str]]:
    """(posting kind from the external id or None, the billing documents the entry says it carries)."""
    external = journal.get("externalId") or ""
    match = JOURNAL_ID.match(external)
    kind = match["kind"] if match and match["kind"] in POSTING_KINDS else None
    docs = {d for d in str(journal.get("custbody_accord_documents") or "").split(",") if d}
    if match and kind not in (None, "summary"):
        docs.add(match["rest"])
    docs.update(MEMO_DOCUMENT.findall(str(journal.get("memo") or "")))
    return kind, docs


class _Findings:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, kind: str, key: str, detail: str) -> None:
        self.items.append({"kind": kind, "key": key, "detail": detail})


def judge(book: Book, namespace: str) -> dict[str, Any]:
    found = _Findings()
    accounts = {a["Id"]: a for a in book.accounts}
    contracts = {c["Id"]: c for c in book.contracts}

    def label(account_id: str) -> str:
        account = accounts.get(account_id) or {}
        return f"account {account_id} ({account.get('External_Id__c') or account.get('Name')})"

    # customers: one billing customer per account, in its legal entity; one ERP customer in its subsidiary
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for customer in book.customers:
        owner = (customer.get("metadata") or {}).get("crm_account_id")
        if isinstance(owner, str) and owner in accounts:
            by_account[owner].append(customer)
        else:
            found.add(
                "billing_customer_unlinked",
                customer["id"],
                f"billing customer {customer['id']} ({customer.get('name')}) names CRM account {owner!r}, "
                f"which is no account of namespace {namespace}",
            )
    erp_by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for erp_customer in book.erp_customers:
        erp_by_account[str(erp_customer.get("externalId"))].append(erp_customer)
    for account_id, account in accounts.items():
        entity = account.get("Legal_Entity__c")
        mine = by_account.get(account_id, [])
        if not mine:
            found.add("billing_customer_missing", account_id, f"{label(account_id)} has no billing customer")
        elif len(mine) > 1:
            found.add(
                "billing_customer_duplicate",
                account_id,
                f"{label(account_id)} has {len(mine)} billing customers: {', '.join(c['id'] for c in mine)}",
            )
        for customer in mine:
            theirs = (customer.get("metadata") or {}).get("legal_entity")
            if theirs != entity:
                found.add(
                    "billing_customer_wrong_entity",
                    account_id,
                    f"billing customer {customer['id']} has legal_entity {theirs!r}, the CRM says {entity!r}",
                )
        erp = erp_by_account.get(account_id, [])
        if not erp:
            found.add("erp_customer_missing", account_id, f"{label(account_id)} has no ERP customer (externalId)")
        for erp_customer in erp:
            subsidiary = book.subsidiaries.get(str((erp_customer.get("subsidiary") or {}).get("id")))
            if subsidiary != entity:
                found.add(
                    "erp_customer_wrong_subsidiary",
                    account_id,
                    f"ERP customer {erp_customer.get('id')} is in subsidiary {subsidiary!r}, the CRM says {entity!r}",
                )

    # subscriptions: one per cadence group of each started, activated contract
    subs_by_contract: dict[str, list[dict[str, Any]]] = defaultdict(list)
    customer_ids = {c["id"] for c in book.customers}
    for sub in book.subscriptions:
        contract_id = (sub.get("metadata") or {}).get("crm_contract_id")
        if isinstance(contract_id, str) and contract_id in contracts:
            subs_by_contract[contract_id].append(sub)
        elif sub.get("customer") in customer_ids:
            found.add(
                "subscription_orphan",
                sub["id"],
                f"subscription {sub['id']} names contract {contract_id!r}, which is no contract of namespace "
                f"{namespace}",
            )
    lines_by_contract: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in book.contract_lines:
        lines_by_contract[line["Contract__c"]].append(line)
    today = book.today.isoformat()
    not_started = 0
    for contract_id, contract in contracts.items():
        subs = subs_by_contract.get(contract_id, [])
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for sub in subs:
            groups[frequency_of(sub)].append(sub)
        for frequency, members in sorted(groups.items()):
            if len(members) > 1:
                found.add(
                    "subscription_duplicate",
                    contract_id,
                    f"contract {contract_id} has {len(members)} {frequency} subscriptions: "
                    f"{', '.join(s['id'] for s in members)}",
                )
        status = contract.get("Status")
        if status == "Activated":
            if str(contract.get("StartDate")) > today:
                not_started += 1
                continue
            expected = {
                str(line.get("Billing_Frequency__c") or "Monthly")
                for line in lines_by_contract.get(contract_id, [])
                if line.get("Status__c") == "Active" and str(line.get("Start_Date__c") or "") <= today
            }
            for frequency in sorted(expected - set(groups)):
                found.add(
                    "subscription_missing",
                    contract_id,
                    f"activated contract {contract_id} of {label(contract['AccountId'])} has {frequency} lines "
                    f"and no {frequency} subscription",
                )
            for frequency in sorted(set(groups) - expected):
                found.add(
                    "subscription_unexpected",
                    contract_id,
                    f"contract {contract_id} has a {frequency} subscription "
                    f"({', '.join(s['id'] for s in groups[frequency])}) but no active {frequency} line",
                )
        elif status == "Terminated":
            live = [s for s in subs if s.get("status") not in ENDED and not s.get("cancel_at")]
            if live:
                found.add(
                    "subscription_not_canceled",
                    contract_id,
                    f"contract {contract_id} was terminated ({contract.get('Cancellation_Date__c')}) but "
                    f"{', '.join(s['id'] + ' (' + str(s.get('status')) + ')' for s in live)} still run",
                )

    # invoices in the ERP: exactly once, right subsidiary, period and currency
    owner_of: dict[str, str] = {
        c["id"]: str((c.get("metadata") or {}).get("crm_account_id"))
        for c in book.customers
        if (c.get("metadata") or {}).get("crm_account_id") in accounts
    }
    invoice_ids = {i["id"] for i in book.invoices}
    charge_ids = {c["id"] for c in book.charges}
    postings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    journal_counts: Counter[str] = Counter()
    for journal in book.journals:
        kind, docs = _journal_documents(journal)
        if docs & (invoice_ids | charge_ids):
            journal_counts[book.subsidiaries.get(str((journal.get("subsidiary") or {}).get("id")), "?")] += 1
        if kind in ("void", "payment", "credit_note", "refund"):
            continue  # other postings of the same documents: reversals, cash
        for doc in docs & invoice_ids:
            postings[doc].append(journal)
    invoice_counts: Counter[str] = Counter(str(i.get("status")) for i in book.invoices)
    for invoice in book.invoices:
        if invoice.get("status") not in FINALIZED:
            continue
        invoice_id = invoice["id"]
        account_id = owner_of.get(str(invoice.get("customer")))
        entity = (accounts.get(account_id or "") or {}).get("Legal_Entity__c") or (
            next((c for c in book.customers if c["id"] == invoice.get("customer")), {}).get("metadata") or {}
        ).get("legal_entity")
        entries = postings.get(invoice_id, [])
        if not entries:
            if invoice.get("total", 0) != 0:
                found.add(
                    "journal_missing",
                    invoice_id,
                    f"{invoice.get('status')} invoice {invoice_id} ({invoice.get('number')}, "
                    f"{invoice.get('total')} {invoice.get('currency')}) is not in the ERP",
                )
            continue
        if len(entries) > 1:
            found.add(
                "journal_duplicate",
                invoice_id,
                f"invoice {invoice_id} is in the ERP {len(entries)} times: "
                f"{', '.join(str(j.get('externalId') or 'id ' + str(j.get('id'))) for j in entries)}",
            )
        day = document_date(invoice)
        currency = str(invoice.get("currency") or "").upper()
        for journal in entries:
            name = journal.get("externalId") or f"id {journal.get('id')}"
            subsidiary = book.subsidiaries.get(str((journal.get("subsidiary") or {}).get("id")))
            if subsidiary != entity:
                found.add(
                    "journal_wrong_subsidiary",
                    invoice_id,
                    f"journal {name} of invoice {invoice_id} is in subsidiary {subsidiary!r}, "
                    f"the customer's legal entity is {entity!r}",
                )
            start, end = book.periods.get(str((journal.get("postingPeriod") or {}).get("id")), ("", ""))
            if not start <= day.isoformat() <= end:
                memo = str(journal.get("memo") or "")
                original = journal.get("custbody_accord_original_date")
                rerouted = ("rerouted" in memo.lower() or original == day.isoformat()) and start > day.isoformat()
                if not rerouted:
                    found.add(
                        "journal_wrong_period",
                        invoice_id,
                        f"journal {name} of invoice {invoice_id} dated {day.isoformat()} is posted in the period "
                        f"{start or '?'}..{end or '?'} and its memo does not say it was rerouted",
                    )
            source = str(journal.get("custbody_accord_source_currency") or journal.get("currency") or "").upper()
            if source not in (currency, "MIXED"):
                found.add(
                    "journal_wrong_currency",
                    invoice_id,
                    f"journal {name} of invoice {invoice_id} is in {source or 'no currency'}, "
                    f"the invoice in {currency}",
                )

    # the CRM account: payment and invoice status, credit hold
    invoices_by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for invoice in book.invoices:
        owner = owner_of.get(str(invoice.get("customer")))
        if owner is not None:
            invoices_by_account[owner].append(invoice)
    holds = 0
    for account_id, account in accounts.items():
        mine = [i for i in invoices_by_account.get(account_id, []) if i.get("status") in FINALIZED]
        payment_status = str(account.get("Payment_Status__c") or "")
        invoice_status = str(account.get("Invoice_Status__c") or "")
        paid = [i for i in mine if i.get("status") == "paid" and (i.get("charge") or i.get("amount_paid", 0) > 0)]
        if paid and not payment_status:
            found.add(
                "payment_not_reflected",
                account_id,
                f"{label(account_id)} paid {len(paid)} invoice(s) ({', '.join(i['id'] for i in paid[:3])}) "
                "and its Payment_Status__c is empty",
            )
        live = [i for i in mine if i.get("status") != "void"]
        if mine and not invoice_status:
            found.add(
                "invoice_status_missing",
                account_id,
                f"{label(account_id)} has {len(mine)} finalized invoice(s) and its Invoice_Status__c is empty",
            )
        elif (
            paid
            and all(i.get("status") == "paid" for i in live)
            and not PAID_WORDS.search(f"{invoice_status} {payment_status}")
        ):
            found.add(
                "invoice_status_inconsistent",
                account_id,
                f"every invoice of {label(account_id)} is paid, yet Invoice_Status__c is {invoice_status!r} "
                f"and Payment_Status__c {payment_status!r}",
            )
        reasons = [
            f"{i['id']} hard-declined ({(i.get('last_payment_error') or {}).get('decline_code')})"
            for i in mine
            if i.get("status") == "open" and (i.get("last_payment_error") or {}).get("decline_type") == "hard"
        ] + [f"{i['id']} uncollectible" for i in mine if i.get("status") == "uncollectible"]
        on_hold = account.get("Credit_Hold__c") is True
        holds += on_hold
        if reasons and not on_hold:
            found.add(
                "credit_hold_missing", account_id, f"{label(account_id)} is not on credit hold: {'; '.join(reasons)}"
            )
        elif on_hold and not reasons:
            found.add(
                "credit_hold_unexpected",
                account_id,
                f"{label(account_id)} is on credit hold without a hard-declined open or an uncollectible invoice",
            )

    disagreements = sorted(found.items, key=lambda d: (d["kind"], d["key"], d["detail"]))
    return {
        "namespace": namespace,
        "counts": {
            "customers": len(accounts),
            "billing_customers": len(book.customers),
            "erp_customers": len(book.erp_customers),
            "contracts": len(contracts),
            "contracts_not_started": not_started,
            "subscriptions": len(book.subscriptions),
            "invoices": dict(sorted(invoice_counts.items())),
            "payments": sum(1 for c in book.charges if c.get("status") == "succeeded"),
            "journal_entries": dict(sorted(journal_counts.items())),
            "credit_holds": holds,
        },
        "disagreements": disagreements,
        "agree": not disagreements,
    }
