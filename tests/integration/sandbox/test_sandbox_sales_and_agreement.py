"""The generator's sales mode (CRM only, in waves) and the agreement oracle, against the real sandbox process.

The oracle is exercised on a small book whose billing and ERP side this test builds by hand through the systems'
APIs, as accord would, with one defect planted per customer: each is reported by kind and key, and nothing else.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from accord.cli import app as cli
from accord_sandbox.generator import ENTITIES, Customer, card_outcome, wave

pytestmark = pytest.mark.postgres

S = "/crm/services/data/v60.0/sobjects"
Q = "/crm/services/data/v60.0/query"
ERP = "/erp/services/rest/record/v1"
B = "/billing/v1"


def namespace() -> str:
    return "t" + uuid.uuid4().hex[:10]


async def sales(sb: httpx.AsyncClient, ns: str, customers: int, seed: int, offset: int = 0) -> dict[str, Any]:
    body = {"customers": customers, "seed": seed, "namespace": ns, "mode": "sales", "offset": offset}
    response = await sb.post("/admin/generate", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def soql(sb: httpx.AsyncClient, sobject: str) -> list[dict[str, Any]]:
    response = await sb.get(Q, params={"q": f"SELECT FIELDS(ALL) FROM {sobject}"})
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


async def test_sales_mode_writes_only_the_crm_in_waves(sb: httpx.AsyncClient) -> None:
    ns, seed = namespace(), 50
    plan = wave(8, seed)
    # the seed's first eight customers: a child (c00004) whose parent (c00001) is in the earlier wave, a renewal,
    # a cancellation, an amendment, and every kind of card
    assert plan[4].parent == "c00001" and any(c.renew for c in plan) and any(c.cancel for c in plan)
    assert any(c.amendment for c in plan) and {card_outcome(c.card) for c in plan} == {"ok", "soft", "hard"}
    before = (await sb.get("/admin/status")).json()["records"]
    first = await sales(sb, ns, customers=4, seed=seed)
    second = await sales(sb, ns, customers=4, seed=seed, offset=4)
    after = (await sb.get("/admin/status")).json()["records"]

    for kind in ("billing.customer", "billing.subscription", "billing.invoice", "erp.customer", "erp.journalEntry"):
        assert after.get(kind, 0) == before.get(kind, 0), f"sales mode wrote {kind}"
    assert after["crm.Account"] == before.get("crm.Account", 0) + 8
    renewals = sum(c.renew for c in plan)
    assert after["crm.Contract"] == before.get("crm.Contract", 0) + 8 + renewals
    assert (first["mode"], first["offset"], second["offset"]) == ("sales", 0, 4)
    assert first["cards"] == {
        "ok": sum(card_outcome(c.card) == "ok" for c in plan[:4]),
        "soft": sum(card_outcome(c.card) == "soft" for c in plan[:4]),
        "hard": sum(card_outcome(c.card) == "hard" for c in plan[:4]),
    }

    expected = {**first["expected"], **second["expected"]}
    assert sorted(expected) == [c.key for c in plan]
    amendments = {a["Contract__c"] for a in await soql(sb, "Amendment__c")}
    for c in plan:
        e = expected[c.key]
        account = (await sb.get(f"{S}/Account/{e['account_id']}")).json()
        assert account["Payment_Method__c"] == c.card == e["payment_method"]
        assert (account["Legal_Entity__c"], account["CurrencyIsoCode"]) == (c.entity, c.currency)
        assert (e["legal_entity"], e["currency"], e["card"]) == (c.entity, c.currency, card_outcome(c.card))
        assert account["External_Id__c"] == f"{ns}-{c.key}" and account["Name"] == f"{ns} {c.name}"
        assert account.get("ParentId") == (expected[c.parent]["account_id"] if c.parent else None)
        contract = (await sb.get(f"{S}/Contract/{e['contract_id']}")).json()
        assert contract["AccountId"] == e["account_id"]
        assert contract["Status"] == ("Terminated" if c.cancel else "Activated")
        assert (e["cancel"], e["renewal"], e["amendment"]) == (c.cancel, c.renew, c.amendment is not None)
        assert (e["contract_id"] in amendments) == (c.amendment is not None)
        if c.renew:
            renewal = (await sb.get(f"{S}/Contract/{e['contracts'][1]}")).json()
            assert renewal["Renewal_Of__c"] == e["contract_id"] and renewal["Status"] == "Activated"
        else:
            assert e["contracts"] == [e["contract_id"]]

    # a wave already generated is refused with a diagnosis, and so is a wave whose parents are not there yet
    again = await sb.post("/admin/generate", json={"customers": 4, "seed": seed, "namespace": ns, "mode": "sales"})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "wave_already_generated" and f"{ns}-c00000" in again.json()["detail"]
    early = await sb.post(
        "/admin/generate", json={"customers": 4, "seed": seed, "namespace": namespace(), "mode": "sales", "offset": 4}
    )
    assert early.status_code == 409 and early.json()["code"] == "parent_not_generated"
    assert "c00001" in early.json()["detail"]
    full_offset = await sb.post("/admin/generate", json={"customers": 1, "namespace": namespace(), "offset": 3})
    assert full_offset.status_code == 400 and full_offset.json()["code"] == "offset_needs_sales_mode"


# -- the oracle ----------------------------------------------------------------------------------------

BASE_CURRENCY = {entity: currency for entity, (_, currency, _) in ENTITIES.items()}


class Books:
    """Builds the billing and ERP side of a sales-mode customer by hand, as accord would."""

    def __init__(self, sb: httpx.AsyncClient, ns: str) -> None:
        self.sb = sb
        self.ns = ns
        self.ids: dict[str, str] = {}

    async def erp_id(self, kind: str, external_id: str) -> str:
        key = f"{kind}/{external_id}"
        if key not in self.ids:
            response = await self.sb.get(f"{ERP}/{kind}/eid:{external_id}")
            assert response.status_code == 200, response.text
            self.ids[key] = str(response.json()["id"])
        return self.ids[key]

    async def provision(self, c: Customer, e: dict[str, Any], *, skip: str | None = None) -> list[dict[str, Any]]:
        """Billing customer, one subscription per cadence group (but `skip`), ERP customer; the invoices."""
        response = await self.sb.post(
            f"{B}/customers",
            json={
                "name": f"{self.ns} {c.name}",
                "currency": c.currency.lower(),
                "address": {"country": c.country},
                "invoice_settings": {"default_payment_method": e["payment_method"]},
                "metadata": {"crm_account_id": e["account_id"], "legal_entity": e["legal_entity"]},
            },
        )
        assert response.status_code == 200, response.text
        customer = response.json()
        for frequency, interval, usage in (
            ("Annual", "year", "licensed"),
            ("Monthly", "month", "licensed"),
            ("Usage", "month", "metered"),
        ):
            lines = [ln for ln in c.lines if ln.frequency == frequency]
            if not lines or frequency == skip:
                continue
            items = [
                {
                    "price_data": {
                        "currency": c.currency.lower(),
                        "unit_amount": int(Decimal(ln.unit_price) * 100),
                        "product": ln.code,
                        "recurring": {"interval": interval, "usage_type": usage},
                    },
                    **({"quantity": ln.quantity} if usage == "licensed" else {}),
                }
                for ln in lines
            ]
            metadata = {"crm_contract_id": e["contract_id"], "legal_entity": c.entity, "frequency": frequency}
            sub = await self.sb.post(
                f"{B}/subscriptions", json={"customer": customer["id"], "items": items, "metadata": metadata}
            )
            assert sub.status_code == 200, sub.text
        subsidiary = await self.erp_id("subsidiary", c.entity)
        response = await self.sb.put(
            f"{ERP}/customer/eid:{e['account_id']}",
            json={"companyName": f"{self.ns} {c.name}", "subsidiary": {"id": subsidiary}, "currency": c.currency},
        )
        assert response.status_code == 204, response.text
        invoices = await self.sb.get(f"{B}/invoices", params={"customer": customer["id"], "limit": 100})
        return list(invoices.json()["data"])

    async def post(
        self, invoice: dict[str, Any], entity: str, *, external_id: str | None = "", shift_days: int = 0
    ) -> None:
        """The invoice's journal entry, as the erp connector writes it (PUT on its external id; POST without one)."""
        day = datetime.fromtimestamp(invoice["status_transitions"]["finalized_at"], UTC).date()
        amount = str(Decimal(invoice["total"]) / 100)
        body = {
            "subsidiary": {"id": await self.erp_id("subsidiary", entity)},
            "tranDate": (day + timedelta(days=shift_days)).isoformat(),
            "currency": BASE_CURRENCY[entity],
            "memo": f"invoice {invoice['number']} ({invoice['id']}) of {day.isoformat()}",
            "line": {
                "items": [
                    {"account": {"id": await self.erp_id("account", "acct-1100")}, "debit": amount},
                    {"account": {"id": await self.erp_id("account", "acct-4000")}, "credit": amount},
                ]
            },
            "custbody_accord_documents": invoice["id"],
            "custbody_accord_source_currency": invoice["currency"].upper(),
        }
        if external_id is None:
            response = await self.sb.post(f"{ERP}/journalEntry", json=body)
        else:
            key = external_id or f"accord-{entity}-invoice-{invoice['id']}"
            response = await self.sb.put(f"{ERP}/journalEntry/eid:{key}", json=body)
        assert response.status_code == 204, response.text

    async def write_back(self, e: dict[str, Any], invoices: list[dict[str, Any]], *, hold: bool) -> None:
        paid = any(i["status"] == "paid" and i["charge"] for i in invoices)
        all_paid = all(i["status"] == "paid" for i in invoices if i["status"] != "draft")
        fields = {
            "Invoice_Status__c": "Paid" if all_paid else "Open",
            "Payment_Status__c": "Succeeded" if paid else "Failed",
            "Credit_Hold__c": hold,
        }
        response = await self.sb.patch(f"{S}/Account/{e['account_id']}", json=fields)
        assert response.status_code == 204, response.text


async def agreement(sb: httpx.AsyncClient, ns: str) -> dict[str, Any]:
    response = await sb.get("/admin/agreement", params={"namespace": ns})
    assert response.status_code == 200, response.text
    return dict(response.json())


def found(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(d["kind"], d["key"]) for d in report["disagreements"]}


async def test_the_oracle_names_each_disagreement_by_kind_and_key(sb: httpx.AsyncClient) -> None:
    ns, seed = namespace(), 1618
    plan = wave(5, seed)
    # c0 right; c1 lacks its Monthly subscription; c2 is posted twice; c3 is posted in the wrong period;
    # c4's card is hard-declined and nobody put it on credit hold
    assert [card_outcome(c.card) for c in plan] == ["ok", "ok", "ok", "ok", "hard"]
    assert not any(c.cancel for c in plan) and any(ln.frequency == "Monthly" for ln in plan[1].lines)
    expected = (await sales(sb, ns, customers=5, seed=seed))["expected"]

    untouched = await agreement(sb, ns)
    assert untouched["agree"] is False and untouched["counts"]["customers"] == 5
    assert {("billing_customer_missing", expected[c.key]["account_id"]) for c in plan} <= found(untouched)

    books = Books(sb, ns)
    invoices: dict[str, list[dict[str, Any]]] = {}
    for c in plan:
        e = expected[c.key]
        invoices[c.key] = await books.provision(c, e, skip="Monthly" if c.key == "c00001" else None)
        for inv in invoices[c.key]:
            if inv["status"] != "draft" and inv["total"] != 0:
                await books.post(inv, c.entity, shift_days=35 if c.key == "c00003" else 0)
        await books.write_back(e, invoices[c.key], hold=False)
    doubled = next(i for i in invoices["c00002"] if i["total"] != 0)
    await books.post(doubled, "UK", external_id=None)  # a second entry, found by its lineage
    misplaced = next(i for i in invoices["c00003"] if i["total"] != 0)
    hard = next(i for i in invoices["c00004"] if i["status"] == "open")
    assert hard["last_payment_error"]["decline_type"] == "hard"

    report = await agreement(sb, ns)
    assert found(report) == {
        ("subscription_missing", expected["c00001"]["contract_id"]),
        ("journal_duplicate", doubled["id"]),
        ("journal_wrong_period", misplaced["id"]),
        ("credit_hold_missing", expected["c00004"]["account_id"]),
    }
    assert report["agree"] is False
    missing = next(d for d in report["disagreements"] if d["kind"] == "subscription_missing")
    assert "Monthly" in missing["detail"]
    counts = report["counts"]
    posted = {c.entity: 0 for c in plan}
    for c in plan:
        posted[c.entity] += sum(1 for i in invoices[c.key] if i["status"] != "draft" and i["total"] != 0)
    posted["UK"] += 1
    assert counts["journal_entries"] == posted
    assert (counts["customers"], counts["contracts"], counts["credit_holds"]) == (5, 5, 0)
    assert counts["subscriptions"] == sum(len({ln.frequency for ln in c.lines}) for c in plan) - 1
    assert counts["invoices"] == {
        status: sum(1 for c in plan for i in invoices[c.key] if i["status"] == status)
        for status in {i["status"] for c in plan for i in invoices[c.key]}
    }

    # repairs clear exactly what they repair
    await books.post(misplaced, plan[3].entity)  # the same external id, now in the document-date period
    await books.write_back(expected["c00004"], invoices["c00004"], hold=True)
    assert found(await agreement(sb, ns)) == {
        ("subscription_missing", expected["c00001"]["contract_id"]),
        ("journal_duplicate", doubled["id"]),
    }


async def test_a_namespace_is_not_a_prefix_of_another(sb: httpx.AsyncClient) -> None:
    ns = namespace()
    await sales(sb, ns, customers=1, seed=2)
    await sales(sb, f"{ns}-2", customers=2, seed=2)
    assert (await agreement(sb, ns))["counts"]["customers"] == 1
    assert (await agreement(sb, f"{ns}-2"))["counts"]["customers"] == 2


async def test_a_bad_namespace_is_a_clear_error(sb: httpx.AsyncClient) -> None:
    response = await sb.get("/admin/agreement", params={"namespace": "Not A Namespace!"})
    assert response.status_code == 400 and response.json()["code"] == "bad_namespace"
    assert (await sb.get("/admin/agreement")).status_code == 400


def test_cli_generates_sales_waves_and_reports_agreement(sandbox_url: str) -> None:
    ns = namespace()
    runner = CliRunner()
    generate = ["sandbox", "generate", "--mode", "sales", "--customers", "2", "--seed", "4", "--namespace", ns]
    result = runner.invoke(cli, [*generate, "--url", sandbox_url])
    assert result.exit_code == 0, result.output
    assert "CRM only" in result.output and "2 customers (from #0)" in result.output
    result = runner.invoke(cli, ["sandbox", "agreement", "--namespace", ns, "--json", "--url", sandbox_url])
    assert result.exit_code == 1, result.output  # nothing provisioned yet: the systems disagree
    report = json.loads(result.output)
    assert report["namespace"] == ns and report["agree"] is False
    assert {d["kind"] for d in report["disagreements"]} >= {"billing_customer_missing", "erp_customer_missing"}
    result = runner.invoke(cli, ["sandbox", "agreement", "--namespace", ns, "--url", sandbox_url])
    assert result.exit_code == 1 and "DISAGREE" in result.output
