"""The CRM's REST API (Salesforce-shaped) for the connector: change events, record reads, write-backs.

    client = CrmClient(httpx.AsyncClient(base_url=url), client_id="accord", client_secret=secret)
    page = await client.changes(since_replay_id)          # CDC replay; ReplayExpired when it is too old
    record = await client.record("Account", "001…")       # None when deleted / unknown
    await client.write_back("001…", invoice_status="Paid", credit_hold=False)

Every call carries `Sforce-Call-Options: client=<client_id>`, so the CRM stamps our own changes with
`changeOrigin …;client=<client_id>` and the mapper skips them when they come back as change events.

How the CRM's answers map onto accord's errors (one place, by type, never by message):
- 401 INVALID_SESSION_ID → a new token (client credentials), then the request once more; again 401 → permanent;
- 429, 5xx, 403 REQUEST_LIMIT_EXCEEDED (the daily allowance), a dropped connection → TransientError
  (a write-back PATCH sets absolute values, so sending it again is safe: no in-doubt state to resolve);
- 400 INVALID_REPLAY_ID → `ReplayExpired` (resync by query with `changed_since`);
- any other 4xx → `CrmRejected` (permanent) with the CRM's `errorCode` as `.code` and in the message.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from accord import oauth
from accord.errors import PermanentError, TransientError

DATA = "/crm/services/data/v60.0"
TOKEN_PATH = "/crm/services/oauth2/token"
CDC_PATH = "/crm/services/cdc/events"
CALL_OPTIONS = "Sforce-Call-Options"


class CrmRejected(PermanentError):
    """The CRM refused the request for good; `code` is its errorCode (INVALID_FIELD, NOT_FOUND, …)."""

    def __init__(self, code: str, message: str, *, status: int) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.status = status


class ReplayExpired(CrmRejected):
    """The replay id is outside the retention window: re-synchronise by query (`changed_since`)."""


def error_detail(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, message) of a Salesforce error body `[{"message","errorCode"}]`, else the HTTP reason."""
    try:
        body: Any = response.json()
    except ValueError:
        return f"HTTP_{response.status_code}", response.reason_phrase
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        code = first.get("errorCode") or first.get("error")
        message = first.get("message") or first.get("error_description") or ""
        if code:
            return str(code), str(message)[:500]
    return f"HTTP_{response.status_code}", response.reason_phrase


def ClientCredentials(client_id: str, client_secret: str) -> oauth.ClientCredentials:
    """OAuth client credentials at the CRM's token endpoint (`accord.oauth`), refusals as CrmRejected."""

    def refused(answer: httpx.Response) -> Exception:
        code, detail = error_detail(answer)
        return CrmRejected(
            code,
            f"the CRM refused client credentials of {client_id!r} (HTTP {answer.status_code}: {detail}): "
            "check ACCORD_CRM_CLIENT_ID / ACCORD_CRM_CLIENT_SECRET",
            status=answer.status_code,
        )

    return oauth.ClientCredentials(client_id, client_secret, token_path=TOKEN_PATH, refused=refused)


@dataclass(frozen=True, slots=True)
class CdcPage:
    events: list[dict[str, Any]]
    has_more: bool
    latest_replay_id: int

    @property
    def last_replay_id(self) -> int | None:
        return int(self.events[-1]["event"]["replayId"]) if self.events else None


def _stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


class CrmClient:
    """The calls the connector makes. `client_id` names accord in `Sforce-Call-Options` (and in OAuth)."""

    def __init__(self, http: httpx.AsyncClient, *, client_id: str, client_secret: str) -> None:
        self.http = http
        self.client_id = client_id
        self.auth = ClientCredentials(client_id, client_secret)

    async def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        headers = {CALL_OPTIONS: f"client={self.client_id}"}
        request = self.http.build_request(method, path, params=params, json=json, headers=headers)
        try:
            return await self.http.send(request, auth=self.auth)
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {path}: no answer from the CRM ({type(exc).__name__})") from exc

    @staticmethod
    def _raise_for(method: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        code, detail = error_detail(response)
        where = f"{method} {path}"
        if status == 429 or status >= 500 or code == "REQUEST_LIMIT_EXCEEDED":
            retry_after = response.headers.get("Retry-After")
            raise TransientError(
                f"HTTP {status} {code} from {where}: {detail}",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if code == "INVALID_REPLAY_ID":
            raise ReplayExpired(code, f"{where}: {detail}", status=status)
        raise CrmRejected(code, f"HTTP {status} from {where}: {detail}", status=status)

    async def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        response = await self._send(method, path, params=params, json=json)
        self._raise_for(method, path, response)
        return response.json() if response.content else None

    # -- change data capture ---------------------------------------------------------------------------

    async def changes(self, since_replay_id: int = -2, *, limit: int = 100) -> CdcPage:
        """One page of change events after `since_replay_id` (-2: the earliest retained)."""
        body = await self._call("GET", CDC_PATH, params={"replayId": since_replay_id, "limit": limit})
        return CdcPage(list(body["events"]), bool(body.get("hasMore")), int(body["latestReplayId"]))

    async def all_changes(self, since_replay_id: int = -2, *, limit: int = 100) -> list[dict[str, Any]]:
        """Every change event after `since_replay_id`, page after page."""
        out: list[dict[str, Any]] = []
        cursor = since_replay_id
        while True:
            page = await self.changes(cursor, limit=limit)
            out += page.events
            if not page.has_more or page.last_replay_id is None:
                return out
            cursor = page.last_replay_id

    async def latest_replay_id(self) -> int:
        body = await self._call("GET", CDC_PATH, params={"replayId": -1})
        return int(body["latestReplayId"])

    # -- records ---------------------------------------------------------------------------------------

    async def record(self, entity: str, record_id: str) -> dict[str, Any] | None:
        """The record as the CRM holds it now; None when it does not exist (deleted or never was)."""
        path = f"{DATA}/sobjects/{entity}/{record_id}"
        response = await self._send("GET", path)
        if response.status_code == 404:
            return None
        self._raise_for("GET", path, response)
        body = response.json()
        return {k: v for k, v in body.items() if k != "attributes"} if isinstance(body, dict) else None

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record a SOQL query returns, following `nextRecordsUrl`."""
        body = await self._call("GET", f"{DATA}/query", params={"q": soql})
        records = list(body["records"])
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = await self._call("GET", str(body["nextRecordsUrl"]))
            records += body["records"]
        return [{k: v for k, v in r.items() if k != "attributes"} for r in records]

    async def changed_since(self, entity: str, since: datetime.datetime) -> list[dict[str, Any]]:
        """The re-sync after an expired replay id: every record of `entity` modified at or after `since`."""
        return await self.query(f"SELECT FIELDS(ALL) FROM {entity} WHERE LastModifiedDate >= {_stamp(since)}")

    async def deleted_since(self, entity: str, since: datetime.datetime, until: datetime.datetime) -> list[str]:
        """Ids of records of `entity` deleted in [since, until] (the re-sync's other half)."""
        body = await self._call(
            "GET", f"{DATA}/sobjects/{entity}/deleted", params={"start": _stamp(since), "end": _stamp(until)}
        )
        return [str(r["id"]) for r in body["deletedRecords"]]

    async def contract_lines(self, contract_id: str, *, created_since: datetime.datetime) -> list[dict[str, Any]]:
        """The lines of a contract (the query subset has no WHERE on lookups: filtered by contract here;
        lines are created with their contract, so `created_since` = the contract's CreatedDate bounds the read)."""
        lines = await self.changed_since("Contract_Line__c", created_since)
        return [line for line in lines if line.get("Contract__c") == contract_id]

    # -- write-back ------------------------------------------------------------------------------------

    async def write_back(
        self,
        account_id: str,
        *,
        invoice_status: str | None = None,
        payment_status: str | None = None,
        credit_hold: bool | None = None,
    ) -> None:
        """Invoice/payment status and credit hold onto the Account, marked as ours (`Sforce-Call-Options`)."""
        fields: dict[str, Any] = {}
        if invoice_status is not None:
            fields["Invoice_Status__c"] = invoice_status
        if payment_status is not None:
            fields["Payment_Status__c"] = payment_status
        if credit_hold is not None:
            fields["Credit_Hold__c"] = credit_hold
        if not fields:
            raise ValueError("write_back needs at least one of invoice_status, payment_status, credit_hold")
        await self._call("PATCH", f"{DATA}/sobjects/Account/{account_id}", json=fields)
