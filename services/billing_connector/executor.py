"""The billing executor: carries out `provision_customer` and `provision_subscriptions` commands against the
billing API (Stripe's shape, the sandbox's /billing/v1), and reads back before it writes.

Every command is a small procedure that is safe to run again from the top: it first reads what billing holds
(the customer whose `metadata.crm_account_id` is the account; the contract's subscriptions, by customer and
`metadata.crm_contract_id`), then writes only what is missing, each POST under an `Idempotency-Key` of the
command's key plus a per-call suffix (Stripe replays the stored answer of a key). The worker's read-back
after an in-doubt call (or a worker that died mid-call) is the same procedure without the writes: it answers
the result when billing holds everything already, None when something is missing (the worker then executes,
which writes only what is missing). A redelivered or restarted command never creates anything twice.

Errors, per call: 429 → TransientError with Retry-After (and the whole system's bucket held for that long);
408/409/5xx and transport failures → accord.commands' classification (a 5xx or a timeout on a write is in
doubt); any other 4xx → `BillingRefused` (permanent), carrying billing's error code and a message without
values. Commands of one account run one at a time (a PostgreSQL advisory lock, across processes): two
requests for one account never both miss the read-back and both create.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from accord.commands import Command, TokenBucket, classify, parse_retry_after, send
from accord.errors import PermanentError, TransientError

from .provisioning import CUSTOMER_KIND, SUBSCRIPTIONS_KIND

API = "/billing/v1"
_GONE = frozenset({"canceled", "incomplete_expired"})
_TRANSIENT_4XX = frozenset({408, 409, 429})


#: refusals that another request may not meet later (the customer or the subscriptions are still being made):
#: the command ends at once, and its answer says retryable, so the hub asks again after its own delay
RETRY_LATER = frozenset({"customer-missing", "no-subscriptions"})


class BillingRefused(PermanentError):
    """Billing refused a call (a 4xx other than 408/409/429), or the request contradicts what billing holds.

    Its text is `[code] message`: the code is billing's (`resource_missing`, `parameter_invalid`, ...) or the
    connector's; the message names the call and the parameter, never a value (values may be personal data).
    Permanent for the command (it ends now); codes in RETRY_LATER are answered as retryable.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code


def _refusal(response: httpx.Response) -> BillingRefused:
    request = response.request
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or error.get("type") or f"http_{response.status_code}")
    param = error.get("param")
    where = f"{request.method} {request.url.path}"
    detail = f" (parameter {param})" if isinstance(param, str) else ""
    return BillingRefused(code, f"billing refused {where} with HTTP {response.status_code}{detail}")


class BillingApi:
    """The few billing calls the executor makes, each after a token of the system's bucket."""

    def __init__(self, client: httpx.AsyncClient, *, bucket: TokenBucket | None = None) -> None:
        self.client = client
        self.bucket = bucket

    async def _send(self, request: httpx.Request) -> tuple[Mapping[str, Any], httpx.Response]:
        if self.bucket is not None:
            await self.bucket.acquire()
        response = await send(self.client, request)
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if self.bucket is not None and retry_after is not None:
                self.bucket.hold(retry_after)  # the quota is the system's: every caller waits, not only this one
            raise TransientError(
                f"HTTP 429 from {request.method} {request.url.path}: rate limited", retry_after=retry_after
            )
        if 400 <= response.status_code < 500 and response.status_code not in _TRANSIENT_4XX:
            raise _refusal(response)
        return classify(response), response

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        body, _ = await self._send(self.client.build_request("GET", API + path, params=dict(params or {})))
        return body

    async def post(self, path: str, body: Mapping[str, Any], *, key: str) -> tuple[Mapping[str, Any], bool]:
        """(the object answered, whether billing replayed an earlier answer to this key)."""
        request = self.client.build_request("POST", API + path, json=dict(body), headers={"Idempotency-Key": key})
        answer, response = await self._send(request)
        return answer, response.headers.get("Idempotent-Replayed", "").lower() == "true"

    async def customer_of_account(self, account_id: str) -> Mapping[str, Any] | None:
        """The billing customer of an account (the oldest, if a human made two), by its metadata."""
        escaped = account_id.replace("\\", "\\\\").replace("'", "\\'")
        page = await self.get("/customers/search", {"query": f"metadata['crm_account_id']:'{escaped}'", "limit": 100})
        found = [c for c in page.get("data", []) if (c.get("metadata") or {}).get("crm_account_id") == account_id]
        return min(found, key=lambda c: (c.get("created") or 0, c["id"])) if found else None

    async def subscriptions(self, customer: str) -> AsyncIterator[Mapping[str, Any]]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"customer": customer, "limit": 100}
            if after is not None:
                params["starting_after"] = after
            page = await self.get("/subscriptions", params)
            data = page.get("data", [])
            for sub in data:
                yield sub
            if not page.get("has_more") or not data:
                return
            after = str(data[-1]["id"])

    async def contract_subscriptions(self, customer: str, contract_id: str) -> list[Mapping[str, Any]]:
        """The contract's subscriptions on the customer, oldest first, live ones and ended ones."""
        found = [
            s
            async for s in self.subscriptions(customer)
            if (s.get("metadata") or {}).get("crm_contract_id") == contract_id
        ]
        return sorted(found, key=lambda s: (s.get("created") or 0, s["id"]))


class _Missing(Exception):
    """Reading back found something still to write."""


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class ProvisioningExecutor:
    """`accord.commands` Executor for both kinds of provisioning command (see the module's docstring)."""

    def __init__(self, api: BillingApi, *, pool: asyncpg.Pool | None = None, lock_prefix: str = "billing") -> None:
        self.api = api
        self.pool = pool
        self.lock_prefix = lock_prefix

    async def execute(self, command: Command) -> Mapping[str, Any]:
        return await self._run(command, apply=True)

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        """The result, if billing holds everything the command asks already; None if anything is missing
        (the worker then executes it: the procedure writes only what is missing)."""
        try:
            return await self._run(command, apply=False)
        except _Missing:
            return None

    async def _run(self, command: Command, *, apply: bool) -> Mapping[str, Any]:
        account = str(command.payload["reply"]["account_id"])
        async with self._account_lock(account):
            if command.kind == CUSTOMER_KIND:
                return await self.provision_customer(command.key, command.payload, apply=apply)
            if command.kind == SUBSCRIPTIONS_KIND:
                return await self.provision_subscriptions(command.key, command.payload, apply=apply)
        raise BillingRefused("unknown-command", f"no procedure for command kind {command.kind}")

    async def _post(
        self, path: str, body: Mapping[str, Any], *, key: str, apply: bool
    ) -> tuple[Mapping[str, Any], bool]:
        if not apply:
            raise _Missing(path)
        return await self.api.post(path, body, key=key)

    @asynccontextmanager
    async def _account_lock(self, account: str) -> AsyncIterator[None]:
        if self.pool is None:
            yield
            return
        name = f"{self.lock_prefix}:{account}"
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", name):
                raise TransientError("another request of this account is being carried out; retrying later")
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", name)

    # -- customers -----------------------------------------------------------------------------------------

    async def provision_customer(
        self, key: str, payload: Mapping[str, Any], *, apply: bool = True
    ) -> Mapping[str, Any]:
        wanted: Mapping[str, Any] = payload["customer"]
        existing = await self.api.customer_of_account(str(payload["account_id"]))
        if existing is None:
            created, replayed = await self._post("/customers", wanted, key=f"{key}:customer", apply=apply)
            return {"system_ids": [str(created["id"])], "created": not replayed}
        customer_id = str(existing["id"])
        if existing.get("currency") and existing["currency"] != wanted["currency"]:
            raise BillingRefused(
                "currency-mismatch",
                f"the account's billing customer {customer_id} invoices in another currency than requested; "
                "billing cannot change a customer's currency: a person must decide",
            )
        update = _customer_update(existing, wanted)
        if update:
            await self._post(f"/customers/{customer_id}", update, key=f"{key}:customer:{_digest(update)}", apply=apply)
        return {"system_ids": [customer_id], "created": False}

    # -- subscriptions -------------------------------------------------------------------------------------

    async def provision_subscriptions(
        self, key: str, payload: Mapping[str, Any], *, apply: bool = True
    ) -> Mapping[str, Any]:
        payload = await self._resolve_customer(payload)
        subs = await self.api.contract_subscriptions(str(payload["customer"]), str(payload["contract_id"]))
        live = {str((s.get("metadata") or {}).get("frequency")): s for s in subs if s.get("status") not in _GONE}
        action = payload["action"]
        if action == "CREATE":
            # Any subscription of the cadence counts, even one that ended (expired unpaid, canceled): a CREATE
            # never books the contract's cadence twice; a contract booked again is a new contract.
            booked = {str((s.get("metadata") or {}).get("frequency")): s for s in subs}
            return await self._create(key, payload, booked, apply=apply)
        if action == "AMEND":
            if not live:
                raise BillingRefused(
                    "no-subscriptions", "the contract has no live subscription in billing (yet) to amend"
                )
            return await self._amend(key, payload, live, apply=apply)
        if action == "CANCEL":
            if not subs:
                raise BillingRefused("no-subscriptions", "the contract has no subscription in billing (yet) to cancel")
            return await self._cancel(key, payload, subs, apply=apply)
        raise BillingRefused("invalid-request", f"unknown action {action}")

    async def _resolve_customer(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """The payload with the billing customer (and legal entity) the hub left to the connector filled in."""
        if payload.get("customer") and payload.get("legal_entity"):
            return payload
        if payload.get("customer"):
            customer: Mapping[str, Any] | None = await self.api.get(f"/customers/{payload['customer']}")
        else:
            customer = await self.api.customer_of_account(str(payload["account_id"]))
        if customer is None:
            raise BillingRefused(
                "customer-missing", "billing has no customer for the account yet; ask again once it is provisioned"
            )
        entity = payload.get("legal_entity") or (customer.get("metadata") or {}).get("legal_entity")
        if not entity:
            raise BillingRefused(
                "legal-entity-missing", "neither the request nor the billing customer names the legal entity"
            )
        return {**payload, "customer": str(customer["id"]), "legal_entity": entity}

    def _new_subscription(self, payload: Mapping[str, Any], group: Mapping[str, Any], *, ends: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customer": payload["customer"],
            "items": group["items"],
            "backdate_start_date": payload["effective"],
            "metadata": {
                "crm_contract_id": payload["contract_id"],
                "legal_entity": payload["legal_entity"],
                "frequency": group["frequency"],
            },
        }
        if ends:
            body["cancel_at"] = payload["ends"]  # co-termed: a line added mid-term ends with the contract
        return body

    async def _create(
        self, key: str, payload: Mapping[str, Any], live: Mapping[str, Mapping[str, Any]], *, apply: bool
    ) -> Mapping[str, Any]:
        ids: list[str] = []
        created = True
        for group in payload["groups"]:
            found = live.get(group["frequency"])
            if found is not None:
                ids.append(str(found["id"]))
                created = False
                continue
            body = self._new_subscription(payload, group, ends=False)
            sub, replayed = await self._post(
                "/subscriptions", body, key=f"{key}:subscription:{group['frequency']}", apply=apply
            )
            ids.append(str(sub["id"]))
            created = created and not replayed
        return {"system_ids": ids, "created": created}

    async def _amend(
        self, key: str, payload: Mapping[str, Any], live: Mapping[str, Mapping[str, Any]], *, apply: bool
    ) -> Mapping[str, Any]:
        plan = amend_plan(live, payload["groups"])
        ids: list[str] = []
        for sub in live.values():
            if sub["id"] not in plan.touched:
                continue
            ids.append(str(sub["id"]))
            changes = plan.changes.get(sub["id"])
            if changes:
                when = sub["current_period_start"] if payload.get("prorate_from_period_start") else payload["effective"]
                body = {"items": changes, "proration_date": when, "proration_behavior": payload["proration_behavior"]}
                await self._post(f"/subscriptions/{sub['id']}", body, key=f"{key}:amend:{sub['id']}", apply=apply)
        created = False
        for group in plan.new_groups:
            # ADD of a cadence the contract had no subscription for: a new one, from the effective date.
            body = self._new_subscription(payload, group, ends=True)
            new, replayed = await self._post(
                "/subscriptions", body, key=f"{key}:subscription:{group['frequency']}", apply=apply
            )
            ids.append(str(new["id"]))
            created = created or not replayed
        return {"system_ids": ids, "created": created}

    async def _cancel(
        self, key: str, payload: Mapping[str, Any], subs: list[Mapping[str, Any]], *, apply: bool
    ) -> Mapping[str, Any]:
        ids: list[str] = []
        for sub in subs:
            ids.append(str(sub["id"]))
            if sub.get("status") in _GONE or sub.get("cancel_at") == payload["effective"]:
                continue  # ended already, or this cancellation was applied before (read back)
            body = {"cancel_at": payload["effective"], "proration_behavior": "none"}
            await self._post(f"/subscriptions/{sub['id']}", body, key=f"{key}:cancel:{sub['id']}", apply=apply)
        return {"system_ids": ids, "created": False}


def _customer_update(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields to send so the customer holds what was asked ({} when it does already)."""
    update: dict[str, Any] = {}
    for name in ("name", "tax_exempt"):
        if existing.get(name) != wanted[name]:
            update[name] = wanted[name]
    address = dict(existing.get("address") or {})
    if address.get("country") != wanted["address"]["country"]:
        update["address"] = {**address, **wanted["address"]}
    metadata = dict(existing.get("metadata") or {})
    if any(metadata.get(k) != v for k, v in wanted["metadata"].items()):
        update["metadata"] = {**metadata, **wanted["metadata"]}  # billing's other keys kept (Stripe merges)
    method = (wanted.get("invoice_settings") or {}).get("default_payment_method")
    if method and (existing.get("invoice_settings") or {}).get("default_payment_method") != method:
        update["invoice_settings"] = {"default_payment_method": method}
    return update


@dataclass
class AmendPlan:
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # subscription id → its item changes
    touched: set[str] = field(default_factory=set)  # subscriptions holding a changed line (changed or not)
    new_groups: list[dict[str, Any]] = field(default_factory=list)  # items no subscription of the contract can take


def amend_plan(live: Mapping[str, Mapping[str, Any]], groups: list[Mapping[str, Any]]) -> AmendPlan:
    """The subscription updates that bring the contract's live subscriptions (by cadence) to the changed lines;
    no changes when billing holds them already (a read-back).

    A changed line is the item of the same CRM line in any of the contract's subscriptions, else the item of the
    same product (its cadence's subscription first): a new quantity (licensed) or unit amount changes it in
    place, keeping the subscription's cadence; quantity 0 removes it. A line found nowhere is added to its
    cadence's subscription, or, when the contract has none of that cadence, to a new one.
    """
    plan = AmendPlan()
    new: dict[str, list[dict[str, Any]]] = {}
    for group in groups:
        frequency = str(group["frequency"])
        for wanted in group["items"]:
            found = _find_item(live, frequency, wanted)
            if found is not None:
                sub, item = found
                plan.touched.add(sub["id"])
                change = _item_change(item, wanted)
                if change is not None:
                    plan.changes.setdefault(sub["id"], []).append(change)
                continue
            if wanted.get("quantity") == 0:
                continue  # removed already (or never there)
            home = live.get(frequency)
            if home is None:
                new.setdefault(frequency, []).append(dict(wanted))
            else:
                plan.touched.add(home["id"])
                plan.changes.setdefault(home["id"], []).append(dict(wanted))
    plan.new_groups = [{"frequency": f, "items": items} for f, items in new.items()]
    return plan


def _items(sub: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((sub.get("items") or {}).get("data") or [])


def _find_item(
    live: Mapping[str, Mapping[str, Any]], frequency: str, wanted: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    ordered = ([live[frequency]] if frequency in live else []) + [s for f, s in live.items() if f != frequency]
    line = (wanted.get("metadata") or {}).get("crm_line_id")
    product = wanted["price_data"]["product"]
    by_line = [
        (s, i) for s in ordered for i in _items(s) if line and (i.get("metadata") or {}).get("crm_line_id") == line
    ]
    by_product = [(s, i) for s in ordered for i in _items(s) if i["price"].get("product") == product]
    found = by_line or by_product
    return found[0] if found else None


def _item_change(item: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    price = wanted["price_data"]
    recurring = item["price"].get("recurring") or price["recurring"]
    licensed = recurring.get("usage_type", "licensed") == "licensed"
    quantity = wanted.get("quantity") if licensed else None
    if licensed and quantity == 0:
        return {"id": item["id"], "deleted": True}
    if item["price"].get("unit_amount") != price["unit_amount"]:
        # the new price keeps the subscription's cadence: one subscription, one interval
        change: dict[str, Any] = {"id": item["id"], "price_data": {**price, "recurring": dict(recurring)}}
        if quantity is not None:
            change["quantity"] = quantity
        return change
    if quantity is not None and item.get("quantity") != quantity:
        return {"id": item["id"], "quantity": quantity}
    return None
