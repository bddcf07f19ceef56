"""The ERP's REST record API (NetSuite-shaped) as an executor of `accord.commands.CommandWorker`.

    client = ErpClient(httpx.AsyncClient(base_url=url), client_id="accord", client_secret=secret)
    await client.adopt_published_limit()     # concurrency = GET /erp/limits
    worker = CommandWorker(pool, "erp_connector", executors={"erp/post_journal": JournalExecutor(client)}, ...)

The idempotency lever is the journal entry's externalId: `PUT …/journalEntry/eid:{externalId}` is an upsert,
so the same document posted twice is one entry. A write that may have been applied (a 5xx or a timeout after
sending) is `InDoubtError`; the worker then reads the entry back by its externalId before sending again.

How the ERP's answers map onto accord's errors:
- 2xx → done; 404 on a read → not there (None);
- 429 (CONCURRENCY_LIMIT_EXCEEDED) → TransientError with the Retry-After as `retry_after`;
- 401 INVALID_LOGIN → a new token (client credentials), then the request once more; again 401 → permanent;
- 4xx with `o:errorCode` (PERIOD_CLOSED, PERIOD_LOCKED, UNBALANCED_JOURNAL, NO_PERIOD, …) → `ErpRejected`,
  permanent, with the ERP's code as `.code` and at the front of the message (`[PERIOD_CLOSED] …`): the
  worker's outcome keeps only the message, and `rejection_code` reads the code back from it;
- 500/502/504 to a write, a read timeout, a dropped connection → InDoubtError; to a read → TransientError.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from accord import oauth
from accord.commands import Command, parse_retry_after
from accord.errors import InDoubtError, PermanentError, TransientError

RECORD = "/erp/services/rest/record/v1"
TOKEN_PATH = "/erp/services/rest/auth/oauth2/v1/token"
LIMITS_PATH = "/erp/limits"

_CODE = re.compile(r"^\[([A-Z0-9_]+)\]")
#: the ERP's refusals of a period (closed, or locked for receivables): the closed-period policy applies
PERIOD_REFUSALS = frozenset({"PERIOD_CLOSED", "PERIOD_LOCKED"})


class ErpRejected(PermanentError):
    """The ERP refused the request for good; `code` is its `o:errorCode` (PERIOD_CLOSED, …)."""

    def __init__(self, code: str, message: str, *, status: int) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.status = status


def rejection_code(error: str | None) -> str | None:
    """The ERP's code at the front of an error message written by this module (`ErpRejected: [CODE] …`)."""
    if error is None:
        return None
    text = error.split(": ", 1)[1] if error.startswith("ErpRejected: ") else error
    match = _CODE.match(text)
    return match.group(1) if match else None


def error_detail(response: httpx.Response) -> tuple[str, str]:
    """(o:errorCode, detail) of a NetSuite error body; the HTTP reason when the body is not one."""
    try:
        body: Any = response.json()
    except ValueError:
        return "HTTP_" + str(response.status_code), response.reason_phrase
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        return str(first.get("o:errorCode") or "UNKNOWN"), str(first.get("detail") or "")[:500]
    return "HTTP_" + str(response.status_code), response.reason_phrase


def ClientCredentials(client_id: str, client_secret: str) -> oauth.ClientCredentials:
    """OAuth client credentials at the ERP's token endpoint (`accord.oauth`), refusals as ErpRejected."""

    def refused(answer: httpx.Response) -> Exception:
        return ErpRejected(
            error_detail(answer)[0],
            f"the ERP refused client credentials of {client_id!r} (HTTP {answer.status_code}): "
            "check ACCORD_ERP_CLIENT_ID / ACCORD_ERP_CLIENT_SECRET",
            status=answer.status_code,
        )

    return oauth.ClientCredentials(client_id, client_secret, token_path=TOKEN_PATH, refused=refused)


class ErpClient:
    """The few calls the connector makes, each under a concurrency limit matching the ERP's governance."""

    def __init__(self, http: httpx.AsyncClient, *, client_id: str, client_secret: str, concurrency: int = 5) -> None:
        self.http = http
        self.auth = ClientCredentials(client_id, client_secret)
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._ids: dict[tuple[str, str], str] = {}  # (record type, externalId) → internal id
        self._periods: dict[str, str] = {}  # period internal id → YYYY-MM

    async def adopt_published_limit(self) -> int:
        """Size the concurrency limit to what `GET /erp/limits` publishes (shared with every other caller)."""
        limits = await self._call("GET", LIMITS_PATH)
        limit = int(limits["concurrencyLimit"])
        if limit < 1:
            raise ErpRejected("INVALID_LIMIT", f"/erp/limits published concurrencyLimit {limit}", status=200)
        self.concurrency = limit
        self._slots = asyncio.Semaphore(limit)
        return limit

    async def _send(self, method: str, path: str, *, json: Mapping[str, Any] | None = None) -> httpx.Response:
        request = self.http.build_request(method, path, json=json)
        where = f"{method} {path}"
        async with self._slots:
            try:
                return await self.http.send(request, auth=self.auth)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise TransientError(f"{where}: not sent ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                if method in ("GET", "HEAD"):
                    raise TransientError(f"{where}: no answer ({type(exc).__name__})") from exc
                raise InDoubtError(f"{where}: no answer ({type(exc).__name__}); it may have been applied") from exc

    def _raise_for(self, method: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        code, detail = error_detail(response)
        where = f"{method} {path}"
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(f"HTTP 429 {code} from {where}: {detail}", retry_after=retry_after)
        if status >= 500 or status == 408:
            if method not in ("GET", "HEAD") and status in (408, 500, 502, 504):
                raise InDoubtError(f"HTTP {status} {code} from {where}; the write may have been applied")
            raise TransientError(f"HTTP {status} {code} from {where}: {detail}")
        raise ErpRejected(code, f"HTTP {status} from {where}: {detail}", status=status)

    async def _call(self, method: str, path: str, *, json: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = await self._send(method, path, json=json)
        self._raise_for(method, path, response)
        if not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {}

    async def get(self, record_type: str, key: str) -> dict[str, Any] | None:
        """A record by internal id or `eid:{externalId}`; None when the ERP has none."""
        path = f"{RECORD}/{record_type}/{key}"
        response = await self._send("GET", path)
        if response.status_code == 404:
            return None
        self._raise_for("GET", path, response)
        body = response.json()
        return body if isinstance(body, dict) else None

    async def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> None:
        await self._call("PUT", f"{RECORD}/{record_type}/eid:{external_id}", json=body)

    async def internal_id(self, record_type: str, external_id: str) -> str:
        """The internal id of a subsidiary or account named by its externalId (cached: they do not move)."""
        key = (record_type, external_id)
        if key not in self._ids:
            record = await self.get(record_type, f"eid:{external_id}")
            if record is None:
                raise ErpRejected(
                    "MAPPING_MISSING",
                    f"the ERP has no {record_type} with externalId {external_id!r}: create it in the ERP or map "
                    "the legal entity / chart of accounts to one that exists",
                    status=404,
                )
            self._ids[key] = str(record["id"])
        return self._ids[key]

    async def records(self, record_type: str, *, q: str | None = None, page: int = 1000) -> list[dict[str, Any]]:
        """Every record of a type matching `q` (NetSuite's collection paging, in lastModifiedDate order)."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            params = f"limit={page}&offset={offset}" + ("" if q is None else "&q=" + quote(q))
            body = await self._call("GET", f"{RECORD}/{record_type}?{params}")
            items = body.get("items") or []
            found.extend(i for i in items if isinstance(i, dict))
            if not body.get("hasMore") or not items:
                return found
            offset += len(items)

    async def period_name(self, period_id: str) -> str:
        """YYYY-MM of an accounting period (its start date)."""
        if period_id not in self._periods:
            record = await self.get("accountingPeriod", period_id)
            if record is None:
                raise ErpRejected("NO_PERIOD", f"accounting period {period_id} does not exist", status=404)
            self._periods[period_id] = str(record["startDate"])[:7]
        return self._periods[period_id]


class JournalExecutor:
    """`erp/post_journal`: the command's payload is `posting.to_payload(entry)`; its key the externalId."""

    def __init__(self, client: ErpClient) -> None:
        self.client = client

    async def body(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The NetSuite journalEntry for a posting payload: references resolved, amounts as decimal strings."""
        subsidiary = await self.client.internal_id("subsidiary", str(payload["legal_entity"]))
        lines = []
        for ln in payload["lines"]:
            account = await self.client.internal_id("account", str(ln["account"]))
            amount = str(Decimal(str(ln["amount"])))
            side = "debit" if ln["side"] == "DEBIT" else "credit"
            lines.append({"account": {"id": account}, side: amount, "memo": ln.get("memo") or ""})
        return {
            "subsidiary": {"id": subsidiary},
            "tranDate": payload["tran_date"],
            "currency": payload["currency"],
            "memo": payload["memo"],
            "line": {"items": lines},
            # lineage and the document's own currency, as custom fields (NetSuite custbody_… fields)
            "custbody_accord_documents": ",".join(payload["document_ids"])[:3999],
            "custbody_accord_events": ",".join(payload["event_ids"])[:3999],
            "custbody_accord_source_currency": payload["source_currency"],
            "custbody_accord_rate": payload["rate"],
            "custbody_accord_original_date": payload.get("original_date"),
            # the billing document's version the entry reflects: the reconciler compares it with billing's
            "custbody_accord_version": payload.get("entity_version"),
        }

    async def _result(self, external_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        period = await self.client.period_name(str(record["postingPeriod"]["id"]))
        return {
            "erp_id": str(record["id"]),
            "external_id": external_id,
            "posting_period": period,
            "total": str(Decimal(str(record["total"])).quantize(Decimal("0.01"))),
            "currency": str(record.get("currency") or ""),
            "tran_id": str(record.get("tranId") or ""),
        }

    async def execute(self, command: Command) -> Mapping[str, Any]:
        external_id = str(command.payload["external_id"])
        try:
            await self.client.upsert("journalEntry", external_id, await self.body(command.payload))
        except ErpRejected as exc:
            # The upsert of an entry already posted in a period closed since (the document re-sent under a
            # new event) is refused, yet the entry is there: that is the result, not a refusal to act on.
            if exc.code not in PERIOD_REFUSALS:
                raise
            posted = await self.client.get("journalEntry", f"eid:{external_id}")
            if posted is None:
                raise
            return await self._result(external_id, posted)
        record = await self.client.get("journalEntry", f"eid:{external_id}")
        if record is None:  # written, yet not readable: let the worker read back later rather than guess
            raise InDoubtError(f"journalEntry eid:{external_id} was accepted but cannot be read back yet")
        return await self._result(external_id, record)

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        external_id = str(command.payload["external_id"])
        record = await self.client.get("journalEntry", f"eid:{external_id}")
        return None if record is None else await self._result(external_id, record)


class CustomerExecutor:
    """`erp/upsert_customer`: the customer master under `eid:{account_id}` in the legal entity's subsidiary.

    The result says whether the customer was there before the upsert (`created` False); on a read-back after a
    call that may have been applied it cannot know, and says False (found, not created by this call).
    """

    def __init__(self, client: ErpClient) -> None:
        self.client = client

    async def execute(self, command: Command) -> Mapping[str, Any]:
        p = command.payload
        external_id = str(p["account_id"])
        subsidiary = await self.client.internal_id("subsidiary", str(p["legal_entity"]))
        before = await self.client.get("customer", f"eid:{external_id}")
        body = {"companyName": str(p["name"]), "subsidiary": {"id": subsidiary}, "currency": str(p["currency"])}
        await self.client.upsert("customer", external_id, body)
        record = await self.client.get("customer", f"eid:{external_id}")
        if record is None:
            raise InDoubtError(f"customer eid:{external_id} was accepted but cannot be read back yet")
        return {"erp_id": str(record["id"]), "external_id": external_id, "created": before is None}

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        external_id = str(command.payload["account_id"])
        record = await self.client.get("customer", f"eid:{external_id}")
        return None if record is None else {"erp_id": str(record["id"]), "external_id": external_id, "created": False}


class LocalExecutor:
    """A command with no call to make (`accord/hold_journal`): its effect is written by the worker's `on_result`
    in the transaction that closes it, so recording it as a command makes it durable and exactly-once."""

    async def execute(self, command: Command) -> Mapping[str, Any]:
        return {"recorded": True}

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        return {"recorded": True}
