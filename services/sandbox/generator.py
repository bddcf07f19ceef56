"""The traffic generator: a realistic book of business, the same for the same seed.

`plan(customers, seed)` is pure: every choice comes from one random.Random(seed), and dates are offsets
from the sandbox's "today", so two plans of the same seed are equal. `run` applies a plan through the
systems' own HTTP APIs (in process, through ASGI, without the fault knobs) and returns a summary whose
`digest` covers everything the book contains except ids and wall-clock stamps.

The book: three legal entities (US Inc in USD, EU B.V. in EUR, UK Ltd in GBP) with their period
calendars and a chart of accounts in the ERP; CRM accounts (some under a parent), won opportunities and
activated contracts with annual, monthly and usage-based lines; billing customers (some with cards that
decline, softly or hard) and subscriptions started up to four months ago; mid-term amendments with
prorations, usage records, renewals and cancellations.

`run_sales` applies the same plan as a sales team would: ONLY the CRM side (accounts carrying the payment method
the customer gave on the order form in `Payment_Method__c`, won opportunities, activated contracts, amendments,
renewals, cancellations). Billing customers, subscriptions, ERP customers and journals are accord's job; the
summary lists, per customer, what the plan expects accord to produce. It runs in waves: `offset` starts at
customer k of the plan (the plan of `offset + customers` customers, sliced), so wave after wave under one
namespace is one book.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from .app import GENERATOR_HEADER
from .billing import PAYMENT_METHODS
from .core import Sandbox
from .errors import SandboxError

ENTITIES = {
    # entity: (country of the subsidiary, base currency, customer countries)
    "US": ("US", "USD", ["US", "US", "US", "CA"]),
    "EU": ("NL", "EUR", ["DE", "FR", "NL", "IE", "ES", "IT"]),
    "UK": ("GB", "GBP", ["GB"]),
}
#: the ERP's subsidiaries are shared by every book: their externalId is the legal-entity code
LEGAL_NAMES = {"US": "Accord Demo US Inc.", "EU": "Accord Demo Europe B.V.", "UK": "Accord Demo UK Ltd"}
PRODUCTS = {
    # code: (billing frequency, USD unit price)
    "PLAT": ("Annual", Decimal("12000")),
    "SUPP": ("Annual", Decimal("3000")),
    "SEAT": ("Monthly", Decimal("40")),
    "API": ("Usage", Decimal("0.05")),
}
FX = {"USD": Decimal("1"), "EUR": Decimal("0.92"), "GBP": Decimal("0.79")}
CARDS = [
    ("pm_card_visa", 80),
    ("pm_card_chargeDeclinedInsufficientFunds", 10),
    ("pm_card_chargeDeclined", 5),
    ("pm_card_chargeDeclinedLostCard", 5),
]
WORDS_A = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Gringotts",
    "Wonka",
    "Oscorp",
    "Pied Piper",
    "Massive",
    "Nakatomi",
]
WORDS_B = ["Systems", "Labs", "Logistics", "Foods", "Analytics", "Health", "Robotics", "Media", "Energy", "Retail"]
SUFFIX = {
    "US": "Inc.",
    "CA": "Ltd.",
    "DE": "GmbH",
    "FR": "SAS",
    "NL": "B.V.",
    "IE": "Ltd.",
    "ES": "S.L.",
    "IT": "S.r.l.",
    "GB": "Ltd",
}


@dataclass(frozen=True)
class Line:
    code: str
    frequency: str
    quantity: int
    unit_price: str


@dataclass
class Customer:
    key: str
    name: str
    country: str
    entity: str
    currency: str
    tax_id: str | None
    parent: str | None
    card: str
    start_days_ago: int
    term_months: int
    lines: list[Line]
    amendment: dict[str, Any] | None = None
    usage: list[int] = field(default_factory=list)
    renew: bool = False
    cancel: bool = False


def plan(customers: int, seed: int) -> list[Customer]:
    rng = random.Random(seed)
    book: list[Customer] = []
    for n in range(customers):
        # the first customers visit every legal entity, so even a small book spans them all
        entity = list(ENTITIES)[n] if n < len(ENTITIES) else rng.choices(list(ENTITIES), weights=[5, 4, 1])[0]
        country = rng.choice(ENTITIES[entity][2])
        currency = "USD" if entity == "US" else ("GBP" if entity == "UK" else rng.choice(["EUR", "EUR", "EUR", "USD"]))
        name = f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)} {n} {SUFFIX[country]}"
        parent = book[rng.randrange(len(book))].key if book and rng.random() < 0.15 else None
        codes = ["PLAT", *rng.sample(["SUPP", "SEAT", "API"], k=rng.randint(1, 3))]
        lines = []
        for code in codes:
            freq, usd = PRODUCTS[code]
            quantity = 1 if code in ("PLAT", "SUPP") else (rng.randint(5, 200) if code == "SEAT" else 0)
            price = (usd * FX[currency]).quantize(Decimal("0.01"))
            lines.append(Line(code, freq, quantity, str(price)))
        start = rng.randint(0, 120)
        customer = Customer(
            key=f"c{n:05d}",
            name=name,
            country=country,
            entity=entity,
            currency=currency,
            tax_id=(f"{country}{rng.randint(10**8, 10**9 - 1)}" if entity != "US" else None),
            parent=parent,
            card=rng.choices([c for c, _ in CARDS], weights=[w for _, w in CARDS])[0],
            start_days_ago=start,
            term_months=rng.choice([12, 12, 24, 36]),
            lines=lines,
        )
        seat = next((ln for ln in lines if ln.code == "SEAT"), None)
        if seat is not None and start >= 10 and rng.random() < 0.4:
            customer.amendment = {
                "type": "QuantityChange",
                "code": "SEAT",
                "quantity": seat.quantity + rng.randint(-seat.quantity // 2, 50),
                "days_after_start": rng.randint(1, min(start, 28) - 1) if min(start, 28) > 1 else 1,
            }
        if any(ln.code == "API" for ln in lines):
            customer.usage = [rng.randint(100, 50_000) for _ in range(rng.randint(1, 4))]
        customer.renew = rng.random() < 0.15
        customer.cancel = not customer.renew and rng.random() < 0.05
        book.append(customer)
    return book


def card_outcome(card: str) -> str:
    """What paying with this test payment method does: "ok", or a "soft" or "hard" decline."""
    decline, kind = PAYMENT_METHODS.get(card, ("generic_decline", "soft"))
    return "ok" if decline is None else kind


def wave(customers: int, seed: int, offset: int = 0) -> list[Customer]:
    """Customers `offset` … `offset + customers - 1` of the seed's plan: waves of one book, whatever their size."""
    return plan(offset + customers, seed)[offset:]


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


class _Client:
    def __init__(self, app: FastAPI) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sandbox", headers={GENERATOR_HEADER: "1"}
        )

    async def call(self, method: str, url: str, json_body: Any = None) -> httpx.Response:
        response = await self.http.request(method, url, json=json_body)
        if response.status_code >= 400:
            raise SandboxError(
                502,
                "generation_failed",
                f"the generator's {method} {url} was refused: {response.status_code} {response.text[:300]}",
            )
        return response

    async def erp_upsert(self, kind: str, external_id: str, data: dict[str, Any]) -> str:
        base = f"/erp/services/rest/record/v1/{kind}"
        response = await self.call("PUT", f"{base}/eid:{external_id}", data)
        return response.headers["Location"].rsplit("/", 1)[1]


#: the chart every book shares (externalId acct-<number>); posting.ChartOfAccounts.default() names these
CHART = (
    ("1100", "Accounts Receivable", "AcctRec"),
    ("1000", "Bank", "Bank"),
    ("4000", "Subscription Revenue", "Income"),
    ("2200", "Sales Tax Payable", "OthCurrLiab"),
    ("2500", "Deferred Revenue", "DeferRevenue"),
    ("4900", "Refunds", "Income"),
    ("7990", "Currency Rounding", "Expense"),
)


async def _reference_data(client: _Client) -> dict[str, str]:
    """The ERP's subsidiaries (with their periods) and chart of accounts: shared by every book, upserted."""
    subsidiaries = {}
    for entity, (country, currency, _) in ENTITIES.items():
        subsidiaries[entity] = await client.erp_upsert(
            "subsidiary", entity, {"name": LEGAL_NAMES[entity], "country": country, "currency": currency}
        )
    for number, name, kind in CHART:
        await client.erp_upsert("account", f"acct-{number}", {"acctNumber": number, "acctName": name, "acctType": kind})
    return subsidiaries


async def _close_deal(
    client: _Client, c: Customer, ns: str, crm_ids: dict[str, str], today: date, *, payment_method: bool = False
) -> tuple[str, date, dict[str, Any]]:
    """What sales does in the CRM for one customer: the account, a won opportunity with its lines, and the
    activated contract. Returns (account id, contract start, contract). `payment_method`: the account carries the
    card the customer gave on the order form (the sales book; the full book puts it on the billing customer)."""
    crm = "/crm/services/data/v60.0/sobjects"
    account = {
        "Name": f"{ns} {c.name}",
        "BillingCountry": c.country,
        "CurrencyIsoCode": c.currency,
        "Legal_Entity__c": c.entity,
        "External_Id__c": f"{ns}-{c.key}",
    }
    if payment_method:
        account["Payment_Method__c"] = c.card
    if c.tax_id:
        account["Tax_Id__c"] = c.tax_id
    if c.parent:
        account["ParentId"] = crm_ids[c.parent]
    account_id = str((await client.call("POST", f"{crm}/Account", account)).json()["id"])
    crm_ids[c.key] = account_id
    start = today - timedelta(days=c.start_days_ago)
    opportunity = {
        "Name": f"{ns} {c.name} new business",
        "AccountId": account_id,
        "StageName": "Negotiation",
        "CloseDate": start.isoformat(),
        "CurrencyIsoCode": c.currency,
    }
    opp = (await client.call("POST", f"{crm}/Opportunity", opportunity)).json()["id"]
    for line in c.lines:
        item = {
            "OpportunityId": opp,
            "Product_Code__c": line.code,
            "Quantity": line.quantity,
            "UnitPrice": float(line.unit_price),
            "Billing_Frequency__c": line.frequency,
        }
        await client.call("POST", f"{crm}/OpportunityLineItem", item)
    await client.call("PATCH", f"{crm}/Opportunity/{opp}", {"StageName": "Closed Won"})
    terms = {"StartDate": start.isoformat(), "ContractTerm": c.term_months}
    contract: dict[str, Any] = (
        await client.call("POST", f"/crm/services/apexrest/opportunities/{opp}/contract", terms)
    ).json()
    return account_id, start, contract


async def run(app: FastAPI, *, customers: int, seed: int, namespace: str) -> dict[str, Any]:
    box: Sandbox = app.state.sandbox
    today = box.store.clock.now().date()
    book = plan(customers, seed)
    client = _Client(app)
    ns = namespace
    box.generating += 1
    digest_items: list[Any] = []
    stats = {"amendments": 0, "renewals": 0, "cancellations": 0, "usage_records": 0, "subscriptions": 0}
    try:
        subsidiaries = await _reference_data(client)
        crm_ids: dict[str, str] = {}
        apex = "/crm/services/apexrest"
        for c in book:
            account_id, start, contract = await _close_deal(client, c, ns, crm_ids, today)
            await client.erp_upsert(
                "customer",
                f"{ns}-{c.key}",
                {
                    "companyName": f"{ns} {c.name}",
                    "subsidiary": {"id": subsidiaries[c.entity]},
                    "currency": c.currency,
                },
            )
            customer = (
                await client.call(
                    "POST",
                    "/billing/v1/customers",
                    {
                        "name": f"{ns} {c.name}",
                        "currency": c.currency.lower(),
                        "address": {"country": c.country},
                        "tax_exempt": "reverse" if c.tax_id and c.country not in ("NL", "GB") else "none",
                        "invoice_settings": {"default_payment_method": c.card},
                        "metadata": {"crm_account_id": account_id, "legal_entity": c.entity},
                    },
                )
            ).json()
            subs: dict[str, dict[str, Any]] = {}
            for frequency, interval, usage in (
                ("Annual", "year", "licensed"),
                ("Monthly", "month", "licensed"),
                ("Usage", "month", "metered"),
            ):
                items = []
                for line in c.lines:
                    if line.frequency != frequency:
                        continue
                    unit = int(Decimal(line.unit_price) * 100)
                    item: dict[str, Any] = {
                        "price_data": {
                            "currency": c.currency.lower(),
                            "unit_amount": unit,
                            "product": line.code,
                            "recurring": {"interval": interval, "usage_type": usage},
                        }
                    }
                    if usage == "licensed":
                        item["quantity"] = line.quantity
                    items.append(item)
                if not items:
                    continue
                sub = (
                    await client.call(
                        "POST",
                        "/billing/v1/subscriptions",
                        {
                            "customer": customer["id"],
                            "items": items,
                            "backdate_start_date": _midnight(start),
                            "metadata": {
                                "crm_contract_id": contract["Id"],
                                "legal_entity": c.entity,
                                "frequency": frequency,
                            },
                        },
                    )
                ).json()
                subs[frequency] = sub
                stats["subscriptions"] += 1
            if c.amendment and "Monthly" in subs:
                effective = start + timedelta(days=c.amendment["days_after_start"])
                await client.call(
                    "POST",
                    f"{apex}/contracts/{contract['Id']}/amendments",
                    {
                        "Type__c": "QuantityChange",
                        "Product_Code__c": "SEAT",
                        "Quantity__c": c.amendment["quantity"],
                        "Effective_Date__c": effective.isoformat(),
                    },
                )
                sub = subs["Monthly"]
                seat = next(i for i in sub["items"]["data"] if i["price"]["product"] == "SEAT")
                if (
                    sub["status"] != "canceled"
                    and sub["current_period_start"] <= _midnight(effective) <= sub["current_period_end"]
                ):
                    await client.call(
                        "POST",
                        f"/billing/v1/subscriptions/{sub['id']}",
                        {
                            "items": [{"id": seat["id"], "quantity": c.amendment["quantity"]}],
                            "proration_date": _midnight(effective),
                        },
                    )
                stats["amendments"] += 1
            if c.usage and "Usage" in subs and subs["Usage"]["status"] != "canceled":
                sub = subs["Usage"]
                item = sub["items"]["data"][0]
                for i, quantity in enumerate(c.usage):
                    stamp = sub["current_period_start"] + 3600 * (i + 1)
                    await client.call(
                        "POST",
                        f"/billing/v1/subscription_items/{item['id']}/usage_records",
                        {"quantity": quantity, "timestamp": stamp, "action": "increment"},
                    )
                    stats["usage_records"] += 1
            if c.renew:
                await client.call("POST", f"{apex}/contracts/{contract['Id']}/renew", {"Uplift_Percent__c": 5})
                stats["renewals"] += 1
            if c.cancel:
                await client.call(
                    "POST",
                    f"{apex}/contracts/{contract['Id']}/cancel",
                    {
                        "Cancellation_Date__c": today.isoformat(),
                        "Cancellation_Reason__c": "Budget",
                    },
                )
                for sub in subs.values():
                    if sub["status"] not in ("canceled", "incomplete"):
                        await client.call(
                            "POST",
                            f"/billing/v1/subscriptions/{sub['id']}",
                            {"cancel_at": _midnight(today + timedelta(days=1)), "proration_behavior": "none"},
                        )
                stats["cancellations"] += 1
        await client.call("POST", "/admin/tick")
        invoices: dict[str, int] = {}
        failures = 0
        for c in book:
            name = f"{ns} {c.name}"
            cust_rows = await box.store.pool.fetch(
                "SELECT data FROM records WHERE system = 'billing' AND kind = 'customer' AND data->>'name' = $1", name
            )
            for row in cust_rows:
                cust = row["data"]
                for inv in (await client.call("GET", f"/billing/v1/invoices?customer={cust['id']}&limit=100")).json()[
                    "data"
                ]:
                    invoices[inv["status"]] = invoices.get(inv["status"], 0) + 1
                    failures += inv["attempt_count"] > 0 and inv["status"] != "paid"
                    digest_items.append(
                        [
                            c.key,
                            inv["status"],
                            inv["total"],
                            inv["tax"],
                            inv["billing_reason"],
                            sorted((ln["amount"], ln["proration"]) for ln in inv["lines"]["data"]),
                        ]
                    )
        digest_items.sort(key=lambda x: json.dumps(x))
        plan_json = [asdict(c) for c in book]
        digest = hashlib.sha256(json.dumps([plan_json, digest_items], sort_keys=True, default=str).encode()).hexdigest()
    finally:
        box.generating -= 1
        await client.http.aclose()
    return {
        "mode": "full",
        "customers": len(book),
        "seed": seed,
        "namespace": ns,
        "legal_entities": sorted({c.entity for c in book}),
        "currencies": sorted({c.currency for c in book}),
        "frequencies": sorted({ln.frequency for c in book for ln in c.lines}),
        **stats,
        "invoices": invoices,
        "payment_failures": failures,
        "digest": digest,
    }


async def _existing_accounts(box: Sandbox, external_ids: list[str]) -> dict[str, str]:
    """CRM accounts already holding these external ids: external id → account id."""
    rows = await box.store.pool.fetch(
        "SELECT external_id, id FROM records WHERE system = 'crm' AND kind = 'Account' AND NOT deleted "
        "AND external_id = ANY($1::text[])",
        external_ids,
    )
    return {r["external_id"]: r["id"] for r in rows}


async def run_sales(app: FastAPI, *, customers: int, seed: int, namespace: str, offset: int = 0) -> dict[str, Any]:
    """The sales side of the plan, written ONLY to the CRM through its own APIs; accord does the rest.

    Per customer, in the order a sales team works: the account (with the order form's payment method), a won
    opportunity with its lines, the activated contract, then the plan's amendment (after the contract exists:
    accord's orchestrator makes it wait for the subscription), renewal or cancellation. The ERP's shared
    reference data (subsidiaries, periods, chart of accounts) is upserted first: it is the finance team's setup,
    not the book, and accord needs it to place customers and journals.
    """
    box: Sandbox = app.state.sandbox
    today = box.store.clock.now().date()
    book = wave(customers, seed, offset)
    ns = namespace
    keys = {c.key for c in book}
    taken = await _existing_accounts(box, [f"{ns}-{c.key}" for c in book])
    if taken:
        first = sorted(taken)[0]
        raise SandboxError(
            409,
            "wave_already_generated",
            f"namespace {ns!r} already has {len(taken)} of this wave's accounts (first: External_Id__c {first}); "
            "use another namespace, or an offset past the customers already generated",
        )
    # parents generated by an earlier wave of this namespace are found by their external id
    earlier = sorted({c.parent for c in book if c.parent and c.parent not in keys})
    parents = await _existing_accounts(box, [f"{ns}-{key}" for key in earlier])
    missing = [key for key in earlier if f"{ns}-{key}" not in parents]
    if missing:
        raise SandboxError(
            409,
            "parent_not_generated",
            f"customers of this wave sit under {', '.join(missing)}, which namespace {ns!r} does not have yet: "
            f"generate the earlier customers first (offset 0 up to {offset})",
        )
    crm_ids = {key: parents[f"{ns}-{key}"] for key in earlier}
    client = _Client(app)
    apex = "/crm/services/apexrest"
    expected: dict[str, dict[str, Any]] = {}
    stats = {"contracts": 0, "amendments": 0, "renewals": 0, "cancellations": 0}
    cards = {"ok": 0, "soft": 0, "hard": 0}
    try:
        await _reference_data(client)
        for c in book:
            account_id, start, contract = await _close_deal(client, c, ns, crm_ids, today, payment_method=True)
            contracts = [contract["Id"]]
            stats["contracts"] += 1
            if c.amendment:
                effective = start + timedelta(days=c.amendment["days_after_start"])
                await client.call(
                    "POST",
                    f"{apex}/contracts/{contract['Id']}/amendments",
                    {
                        "Type__c": c.amendment["type"],
                        "Product_Code__c": c.amendment["code"],
                        "Quantity__c": c.amendment["quantity"],
                        "Effective_Date__c": effective.isoformat(),
                    },
                )
                stats["amendments"] += 1
            if c.renew:
                renewal = (
                    await client.call("POST", f"{apex}/contracts/{contract['Id']}/renew", {"Uplift_Percent__c": 5})
                ).json()
                contracts.append(renewal["Id"])
                stats["renewals"] += 1
                stats["contracts"] += 1
            if c.cancel:
                await client.call(
                    "POST",
                    f"{apex}/contracts/{contract['Id']}/cancel",
                    {"Cancellation_Date__c": today.isoformat(), "Cancellation_Reason__c": "Budget"},
                )
                stats["cancellations"] += 1
            outcome = card_outcome(c.card)
            cards[outcome] += 1
            expected[c.key] = {
                "account_id": account_id,
                "external_id": f"{ns}-{c.key}",
                "parent": c.parent,
                "legal_entity": c.entity,
                "currency": c.currency,
                "contract_id": contract["Id"],
                "contracts": contracts,
                "start_date": start.isoformat(),
                "frequencies": sorted({ln.frequency for ln in c.lines}),
                "payment_method": c.card,
                "card": outcome,
                "amendment": c.amendment is not None,
                "renewal": c.renew,
                "cancel": c.cancel,
            }
    finally:
        await client.http.aclose()
    plan_json = [asdict(c) for c in book]
    digest = hashlib.sha256(json.dumps([offset, plan_json], sort_keys=True, default=str).encode()).hexdigest()
    return {
        "mode": "sales",
        "customers": len(book),
        "offset": offset,
        "seed": seed,
        "namespace": ns,
        "legal_entities": sorted({c.entity for c in book}),
        "currencies": sorted({c.currency for c in book}),
        "frequencies": sorted({ln.frequency for c in book for ln in c.lines}),
        **stats,
        "cards": cards,
        "expected": expected,
        "digest": digest,
    }
