"""CRM (Salesforce-like) under /crm/services.

REST shaped like Salesforce's: `POST /data/v60.0/sobjects/{Type}` → 201 `{"id","success","errors"}`,
`PATCH`/`DELETE` → 204, `GET` with `attributes`; a composite `PATCH /data/v60.0/composite/sobjects`
updates several records in one transaction; a small SOQL subset (`SELECT … FROM T [WHERE LastModifiedDate
>= …]`) with `nextRecordsUrl` paging; `sobjects/{Type}/updated` and `/deleted` as in the REST API. Business
actions the real org does with CPQ/Apex are Apex REST endpoints under `/apexrest/…`: contract from a won
opportunity, amendments, renewal, cancellation, account merge.

Every transaction emits change-data-capture events: header with entityName, recordIds (records with the
same change in one transaction are merged into one event), changeType, changeOrigin, transactionKey,
sequenceNumber (counted over every change of the transaction, including objects that publish no events,
such as OpportunityLineItem, so a subscriber sees gaps), commitTimestamp and commitNumber; the replay id is
on the event. Events are kept 72 hours and can be re-fetched from a replay id.
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from .core import Sandbox, a_date, a_datetime, add_months, body, money, need, num, sandbox
from .errors import SandboxError
from .ids import sf_id
from .store import Tx, iso

API_ORIGIN = "com/salesforce/api/rest/60.0"
#: changeOrigin of the request being served: the REST API, with `;client=<id>` when the caller named itself
#: in `Sforce-Call-Options: client=<id>` (how an integration recognises, and skips, its own changes)
call_origin: contextvars.ContextVar[str] = contextvars.ContextVar("call_origin", default="")


async def _origin(request: Request) -> None:
    match = re.search(r"client=([^,;\s]+)", request.headers.get("Sforce-Call-Options", ""))
    call_origin.set(API_ORIGIN + (f";client={match.group(1)}" if match else ""))


router = APIRouter(prefix="/crm/services", dependencies=[Depends(_origin)])
V = "/data/v60.0"
RETENTION = timedelta(hours=72)
PUBLISHED = {"Account", "Opportunity", "Contract", "Contract_Line__c", "Amendment__c"}
SYSTEM_FIELDS = {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "attributes"}
FIELDS: dict[str, set[str]] = {
    "Account": {
        "Name",
        "ParentId",
        "BillingCountry",
        "CurrencyIsoCode",
        "Tax_Id__c",
        "Legal_Entity__c",
        "Invoice_Status__c",
        "Payment_Status__c",
        "Credit_Hold__c",
        "External_Id__c",
        "Type",
        # the billing payment-method token the customer gave on the order form (the sandbox's stand-in for
        # a hosted checkout): pm_card_visa, pm_card_chargeDeclinedLostCard, …
        "Payment_Method__c",
    },
    "Opportunity": {"Name", "AccountId", "StageName", "CloseDate", "Amount", "CurrencyIsoCode", "Type"},
    "OpportunityLineItem": {
        "OpportunityId",
        "Product_Code__c",
        "Quantity",
        "UnitPrice",
        "Billing_Frequency__c",
        "Contract_Line__c",
    },
    "Contract": {
        "AccountId",
        "Opportunity__c",
        "StartDate",
        "ContractTerm",
        "EndDate",
        "Status",
        "CurrencyIsoCode",
        "Parent_Contract__c",
        "Renewal_Of__c",
        "Cancellation_Date__c",
        "Cancellation_Reason__c",
    },
    "Contract_Line__c": {
        "Contract__c",
        "Product_Code__c",
        "Quantity__c",
        "Unit_Price__c",
        "Billing_Frequency__c",
        "Start_Date__c",
        "End_Date__c",
        "Status__c",
    },
    "Amendment__c": {
        "Contract__c",
        "Type__c",
        "Product_Code__c",
        "Quantity__c",
        "Unit_Price__c",
        "Effective_Date__c",
        "End_Date__c",
        "Previous_Quantity__c",
        "Previous_Unit_Price__c",
        "Contract_Line__c",
    },
}
REQUIRED = {
    "Account": ("Name",),
    "Opportunity": ("Name", "AccountId", "StageName", "CloseDate"),
    "OpportunityLineItem": ("OpportunityId", "Product_Code__c", "Quantity", "UnitPrice"),
    "Contract": ("AccountId", "StartDate", "ContractTerm"),
}
WRITABLE = ("Account", "Opportunity", "OpportunityLineItem", "Contract")
FREQUENCIES = ("Monthly", "Annual", "Usage")
STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost")
AMENDMENTS = ("AddProduct", "RemoveProduct", "QuantityChange", "PriceChange")
INVOICE_STATUSES = (None, "Draft", "Open", "Paid", "Void", "Uncollectible", "Partially Paid")
PAYMENT_STATUSES = (None, "Succeeded", "Failed", "Refunded", "Pending")


def sf_error(status: int, code: str, message: str, field: str | None = None) -> SandboxError:
    return SandboxError(status, code, message, param=field)


def _sobject(name: str) -> str:
    if name not in FIELDS:
        raise sf_error(
            404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}' is not supported."
        )
    return name


# -- changes and change events ---------------------------------------------------------------------------


def record_change(tx: Tx, entity: str, change: str, record_id: str, fields: dict[str, Any], nulled: list[str]) -> None:
    tx.changes.append({"entity": entity, "change": change, "id": record_id, "fields": fields, "nulled": nulled})


async def flush(tx: Tx, origin: str | None = None) -> None:
    """Turn the transaction's changes into CDC events (merged when the same change hit several records)."""
    if not tx.changes:
        return
    if origin is None:
        origin = call_origin.get() or API_ORIGIN
    commit = await tx.next_number("crm:commit")
    tx_key = f"{commit:08x}-{(commit * 2654435761) % 2**32:08x}-sandbox"
    groups: dict[str, dict[str, Any]] = {}
    for seq, change in enumerate(tx.changes, start=1):
        if change["entity"] not in PUBLISHED:
            continue  # consumes a sequence number all the same: subscribers see the gap
        comparable = {k: v for k, v in change["fields"].items() if k not in ("LastModifiedDate", "SystemModstamp")}
        key = json.dumps(
            [change["entity"], change["change"], comparable, sorted(change["nulled"])], sort_keys=True, default=str
        )
        if key in groups and change["change"] != "CREATE":
            groups[key]["ids"].append(change["id"])
            continue
        groups[key + (f"#{seq}" if key in groups else "")] = {**change, "ids": [change["id"]], "seq": seq}
    for group in groups.values():
        fields = group["fields"]
        header = {
            "entityName": group["entity"],
            "recordIds": group["ids"],
            "changeType": group["change"],
            "changeOrigin": origin,
            "transactionKey": tx_key,
            "sequenceNumber": group["seq"],
            "commitTimestamp": int(tx.now.timestamp() * 1000),
            "commitNumber": 10_000_000 + commit,
            "commitUser": "005000000000001AAA",
            "nulledFields": group["nulled"],
            "diffFields": [],
            "changedFields": sorted(fields) if group["change"] == "UPDATE" else [],
        }
        payload: dict[str, Any] = {"ChangeEventHeader": header}
        if group["change"] in ("CREATE", "UPDATE", "UNDELETE"):
            payload.update(fields)
        event_id = f"cdc-{commit}-{group['seq']}"
        seq_id = await tx.emit(f"{group['entity']}ChangeEvent", event_id, {})
        event = {
            "channel": f"/data/{group['entity'].replace('__c', '__')}ChangeEvent",
            "schema": f"sandbox-{group['entity']}-v1",
            "payload": payload,
            "event": {"replayId": seq_id},
        }
        await tx.conn.execute("UPDATE events SET payload = $2 WHERE seq = $1", seq_id, event)
    tx.changes.clear()


# -- validation and writes -------------------------------------------------------------------------------


async def _check_fields(tx: Tx, sobject: str, data: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    unknown = [k for k in data if k not in FIELDS[sobject] and k not in SYSTEM_FIELDS]
    if unknown:
        raise sf_error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}", unknown[0])
    clean = {k: v for k, v in data.items() if k not in SYSTEM_FIELDS}
    merged = {**(old or {}), **clean}
    for name in REQUIRED.get(sobject, ()):
        if merged.get(name) in (None, ""):
            raise sf_error(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", name)
    if sobject == "Account":
        if merged.get("CurrencyIsoCode") is not None and not re.fullmatch(r"[A-Z]{3}", str(merged["CurrencyIsoCode"])):
            raise sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "CurrencyIsoCode: bad value for restricted picklist field",
                "CurrencyIsoCode",
            )
        if merged.get("Payment_Method__c") is not None and not isinstance(merged["Payment_Method__c"], str):
            raise sf_error(
                400, "INVALID_FIELD_FOR_INSERT_UPDATE", "Payment_Method__c must be text", "Payment_Method__c"
            )
        if merged.get("Credit_Hold__c") is not None and not isinstance(merged["Credit_Hold__c"], bool):
            raise sf_error(
                400, "INVALID_FIELD_FOR_INSERT_UPDATE", "Credit_Hold__c must be true or false", "Credit_Hold__c"
            )
        if merged.get("Invoice_Status__c") not in INVOICE_STATUSES:
            raise sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Invoice_Status__c: bad value for restricted picklist field: {merged['Invoice_Status__c']}",
                "Invoice_Status__c",
            )
        if merged.get("Payment_Status__c") not in PAYMENT_STATUSES:
            raise sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Payment_Status__c: bad value for restricted picklist field: {merged['Payment_Status__c']}",
                "Payment_Status__c",
            )
        parent = merged.get("ParentId")
        if parent:
            seen = {old["Id"]} if old else set()
            cursor: str | None = parent
            while cursor:
                if cursor in seen:
                    raise sf_error(400, "CIRCULAR_DEPENDENCY", "The account hierarchy would contain a loop", "ParentId")
                seen.add(cursor)
                found = await tx.get("Account", cursor)
                if found is None:
                    raise sf_error(
                        400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id {cursor}", "ParentId"
                    )
                cursor = found.get("ParentId")
    if sobject == "Opportunity":
        if await tx.get("Account", merged["AccountId"]) is None:
            raise sf_error(
                400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id {merged['AccountId']}", "AccountId"
            )
        if merged["StageName"] not in STAGES:
            raise sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"StageName: bad value {merged['StageName']}",
                "StageName",
            )
        a_date(merged, "CloseDate", "crm")
        if (
            old
            and old.get("StageName") in ("Closed Won", "Closed Lost")
            and clean.get("StageName") not in (None, old["StageName"])
        ):
            raise sf_error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "A closed opportunity cannot change stage")
        merged["IsWon"] = merged["StageName"] == "Closed Won"
        merged["IsClosed"] = merged["StageName"] in ("Closed Won", "Closed Lost")
    if sobject == "OpportunityLineItem":
        opp = await tx.get("Opportunity", merged["OpportunityId"])
        if opp is None:
            raise sf_error(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                f"invalid cross reference id {merged['OpportunityId']}",
                "OpportunityId",
            )
        if opp.get("IsClosed"):
            raise sf_error(400, "FIELD_INTEGRITY_EXCEPTION", "Line items of a closed opportunity cannot change")
        if merged.get("Billing_Frequency__c", "Monthly") not in FREQUENCIES:
            raise sf_error(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"Billing_Frequency__c must be one of {FREQUENCIES}",
                "Billing_Frequency__c",
            )
        merged.setdefault("Billing_Frequency__c", "Monthly")
        unit = money(merged, "UnitPrice", "crm")
        assert unit is not None
        merged["UnitPrice"] = num(unit)
        merged["TotalPrice"] = num(unit * Decimal(str(merged["Quantity"])))
    if sobject == "Contract":
        account = await tx.get("Account", merged["AccountId"])
        if account is None:
            raise sf_error(
                400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id {merged['AccountId']}", "AccountId"
            )
        start = a_date(merged, "StartDate", "crm")
        assert start is not None
        term = merged["ContractTerm"]
        if not isinstance(term, int) or isinstance(term, bool) or term <= 0:
            raise sf_error(
                400, "NUMBER_OUTSIDE_VALID_RANGE", "ContractTerm must be a positive number of months", "ContractTerm"
            )
        merged["EndDate"] = (add_months(start, term) - timedelta(days=1)).isoformat()
        if merged.get("Parent_Contract__c"):
            parent = await tx.get("Contract", merged["Parent_Contract__c"])
            if parent is None:
                raise sf_error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid Parent_Contract__c", "Parent_Contract__c")
            # co-terming: an add-on contract ends with its parent
            merged["EndDate"] = parent["EndDate"]
        merged.setdefault("Status", "Draft")
        merged.setdefault("CurrencyIsoCode", account.get("CurrencyIsoCode") or "USD")
    return merged


async def write(tx: Tx, sobject: str, data: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    merged = await _check_fields(tx, sobject, data, old)
    stamp = iso(tx.now)
    merged["LastModifiedDate"] = merged["SystemModstamp"] = stamp
    external = merged.get("External_Id__c")
    if external is not None and (old is None or old.get("External_Id__c") != external):
        holder = await tx.by_external_id(sobject, str(external))
        if holder is not None:
            raise sf_error(
                400,
                "DUPLICATE_VALUE",
                f"duplicate value found: External_Id__c duplicates value on record with id: {holder['Id']}",
                "External_Id__c",
            )
    if old is None:
        merged["Id"] = await sf_id(tx, sobject)
        merged["CreatedDate"] = stamp
        merged["IsDeleted"] = False
        await tx.insert(sobject, merged["Id"], merged, external_id=merged.get("External_Id__c"))
        fields = {k: v for k, v in merged.items() if v is not None and k not in ("Id", "IsDeleted")}
        record_change(tx, sobject, "CREATE", merged["Id"], fields, [])
    else:
        changed = {k: v for k, v in merged.items() if old.get(k) != v and k != "SystemModstamp"}
        nulled = [k for k, v in changed.items() if v is None]
        await tx.update(sobject, merged["Id"], merged, external_id=external)
        record_change(tx, sobject, "UPDATE", merged["Id"], {k: v for k, v in changed.items() if v is not None}, nulled)
    return merged


async def remove(tx: Tx, sobject: str, record: dict[str, Any]) -> None:
    await tx.delete(sobject, record["Id"])
    record_change(tx, sobject, "DELETE", record["Id"], {}, [])


def _shape(sobject: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"attributes": {"type": sobject, "url": f"/crm/services{V}/sobjects/{sobject}/{record['Id']}"}, **record}


async def _must(tx: Tx, sobject: str, record_id: str) -> dict[str, Any]:
    record = await tx.get(sobject, record_id)
    if record is None:
        raise sf_error(404, "NOT_FOUND", f"The requested resource does not exist: {sobject} {record_id}")
    return record


# -- sObject REST ----------------------------------------------------------------------------------------


@router.post(V + "/sobjects/{sobject}")
async def create(sobject: str, request: Request) -> JSONResponse:
    kind = _sobject(sobject)
    if kind not in WRITABLE:
        raise sf_error(400, "INVALID_TYPE_FOR_OPERATION", f"{kind} records are created through the Apex REST actions")
    data = await body(request, "crm")
    async with sandbox(request).store.tx("crm") as tx:
        record = await write(tx, kind, data, None)
        await flush(tx)
    return JSONResponse({"id": record["Id"], "success": True, "errors": []}, status_code=201)


@router.get(V + "/sobjects/{sobject}/updated")
async def updated(sobject: str, request: Request, start: str, end: str) -> dict[str, Any]:
    """Salesforce's getUpdated: ids changed in [start, end] (deleted ones come from /deleted)."""
    kind = _sobject(sobject)
    since, until = a_datetime(start, "start", "crm"), a_datetime(end, "end", "crm")
    rows = await sandbox(request).store.pool.fetch(
        "SELECT id FROM records WHERE system = 'crm' AND kind = $1 AND NOT deleted AND updated_at BETWEEN $2 AND $3 "
        "ORDER BY updated_at, id",
        kind,
        since,
        until,
    )
    return {"ids": [r["id"] for r in rows], "latestDateCovered": iso(until)}


@router.get(V + "/sobjects/{sobject}/deleted")
async def deleted(sobject: str, request: Request, start: str, end: str) -> dict[str, Any]:
    kind = _sobject(sobject)
    since, until = a_datetime(start, "start", "crm"), a_datetime(end, "end", "crm")
    rows = await sandbox(request).store.pool.fetch(
        "SELECT id, updated_at FROM records WHERE system = 'crm' AND kind = $1 AND deleted "
        "AND updated_at BETWEEN $2 AND $3 ORDER BY updated_at, id",
        kind,
        since,
        until,
    )
    return {
        "deletedRecords": [{"id": r["id"], "deletedDate": iso(r["updated_at"])} for r in rows],
        "earliestDateAvailable": iso(since),
        "latestDateCovered": iso(until),
    }


@router.get(V + "/sobjects/{sobject}/{record_id}")
async def get(sobject: str, record_id: str, request: Request) -> dict[str, Any]:
    kind = _sobject(sobject)
    async with sandbox(request).store.tx("crm") as tx:
        record = await _must(tx, kind, record_id)
    return _shape(kind, record)


@router.patch(V + "/sobjects/{sobject}/{record_id}")
async def update(sobject: str, record_id: str, request: Request) -> Response:
    kind = _sobject(sobject)
    data = await body(request, "crm")
    async with sandbox(request).store.tx("crm") as tx:
        old = await _must(tx, kind, record_id)
        await write(tx, kind, data, old)
        await flush(tx)
    return Response(status_code=204)


def _external_field(kind: str, field: str) -> None:
    if field != "External_Id__c" or field not in FIELDS[kind]:
        raise sf_error(
            404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field} on {kind}"
        )


@router.get(V + "/sobjects/{sobject}/{field}/{value}")
async def get_by_external_id(sobject: str, field: str, value: str, request: Request) -> dict[str, Any]:
    kind = _sobject(sobject)
    _external_field(kind, field)
    async with sandbox(request).store.tx("crm") as tx:
        record = await tx.by_external_id(kind, value)
    if record is None:
        raise sf_error(404, "NOT_FOUND", f"The requested resource does not exist: {kind} {field}={value}")
    return _shape(kind, record)


@router.patch(V + "/sobjects/{sobject}/{field}/{value}")
async def upsert(sobject: str, field: str, value: str, request: Request) -> JSONResponse:
    """Upsert on the external id: 201 and created=true for a new record, 200 and created=false for an update.

    This is Salesforce's idempotency lever: the same upsert sent twice leaves one record.
    """
    kind = _sobject(sobject)
    _external_field(kind, field)
    data = await body(request, "crm")
    if field in data and data[field] != value:
        raise sf_error(400, "INVALID_FIELD", f"{field} in the body must match the URL or be left out", field)
    data[field] = value
    async with sandbox(request).store.tx("crm") as tx:
        old = await tx.by_external_id(kind, value)
        record = await write(tx, kind, data, old)
        await flush(tx)
    created = old is None
    return JSONResponse(
        {"id": record["Id"], "success": True, "errors": [], "created": created}, status_code=201 if created else 200
    )


@router.delete(V + "/sobjects/{sobject}/{record_id}")
async def delete(sobject: str, record_id: str, request: Request) -> Response:
    kind = _sobject(sobject)
    async with sandbox(request).store.tx("crm") as tx:
        record = await _must(tx, kind, record_id)
        if kind == "Contract" and record.get("Status") == "Activated":
            raise sf_error(400, "ENTITY_IS_LOCKED", "An activated contract cannot be deleted")
        await remove(tx, kind, record)
        await flush(tx)
    return Response(status_code=204)


@router.patch(V + "/composite/sobjects")
async def composite_update(request: Request) -> list[dict[str, Any]]:
    """Several updates in one transaction (allOrNone): one change event per identical change."""
    data = await body(request, "crm")
    records = data.get("records")
    if not isinstance(records, list) or not records or len(records) > 200:
        raise sf_error(400, "INVALID_FIELD", "records must be a list of 1 to 200 records", "records")
    async with sandbox(request).store.tx("crm") as tx:
        results = []
        for i, item in enumerate(records):
            if not isinstance(item, dict) or not isinstance(item.get("attributes"), dict) or not item.get("id"):
                raise sf_error(400, "INVALID_FIELD", f"records[{i}] needs attributes.type and id", "records")
            kind = _sobject(item["attributes"].get("type", ""))
            old = await _must(tx, kind, item["id"])
            fields = {k: v for k, v in item.items() if k not in ("attributes", "id")}
            await write(tx, kind, fields, old)
            results.append({"id": item["id"], "success": True, "errors": []})
        await flush(tx)
    return results


@router.get(V + "/limits")
async def limits(request: Request) -> dict[str, Any]:
    """The org's limits, as Salesforce's /limits resource (the daily API allowance)."""
    box = sandbox(request)
    used = int(box.crm_api_usage.get("used", 0))
    return {"DailyApiRequests": {"Max": box.crm_daily_limit, "Remaining": max(box.crm_daily_limit - used, 0)}}


# -- SOQL subset -----------------------------------------------------------------------------------------

_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<field>LastModifiedDate|SystemModstamp)\s*(?P<op>>=|>)\s*(?P<ts>\S+))?"
    r"(?:\s+ORDER\s+BY\s+\w+(?:\s+(?:ASC|DESC))?)?\s*$",
    re.IGNORECASE,
)


@router.get(V + "/query")
async def query(request: Request, q: str) -> dict[str, Any]:
    """SELECT f1, f2 | FIELDS(ALL) FROM T [WHERE LastModifiedDate >= ts]: records in LastModifiedDate order."""
    match = _SOQL.match(q)
    if match is None:
        raise sf_error(
            400,
            "MALFORMED_QUERY",
            "The sandbox supports: SELECT <fields>|FIELDS(ALL) FROM <Object> "
            "[WHERE LastModifiedDate >= <ISO timestamp>]",
        )
    return await _run_query(request, q, 0)


@router.get(V + "/query/{locator}")
async def query_more(locator: str, request: Request) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(locator.encode()))
        return await _run_query(request, state["q"], int(state["offset"]))
    except (ValueError, KeyError):
        raise sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None


async def _run_query(request: Request, q: str, offset: int) -> dict[str, Any]:
    match = _SOQL.match(q)
    assert match is not None
    kind = _sobject(match["obj"])
    since = a_datetime(match["ts"], "LastModifiedDate", "crm") if match["ts"] else None
    options = request.headers.get("Sforce-Query-Options", "")
    batch = 2000
    if m := re.search(r"batchSize=(\d+)", options):
        batch = max(200, min(2000, int(m.group(1))))
    if m := re.search(r"sandboxBatchSize=(\d+)", options):  # tests page with small batches
        batch = max(1, int(m.group(1)))
    items, has_more, total = await sandbox(request).store.page(
        "crm", kind, modified_since=since, offset=offset, limit=batch
    )
    if match["op"] == ">" and since is not None:
        items = [i for i in items if a_datetime(i["LastModifiedDate"], "x", "crm") > since]
    fields = [f.strip() for f in match["fields"].split(",")]
    if not (len(fields) == 1 and fields[0].upper() in ("FIELDS(ALL)", "FIELDS(STANDARD)", "FIELDS(CUSTOM)")):
        known = FIELDS[kind] | SYSTEM_FIELDS | {"IsWon", "IsClosed", "TotalPrice"}
        unknown = [f for f in fields if f not in known]
        if unknown:
            raise sf_error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{kind}'.", unknown[0])
        items = [{k: i.get(k) for k in ["Id", *[f for f in fields if f != "Id"]]} for i in items]
    out: dict[str, Any] = {
        "totalSize": total,
        "done": not has_more,
        "records": [_shape(kind, i) for i in items],
    }
    if has_more:
        locator = base64.urlsafe_b64encode(json.dumps({"q": q, "offset": offset + batch}).encode()).decode()
        out["nextRecordsUrl"] = f"/crm/services{V}/query/{locator}"
    return out


# -- change events: replay ---------------------------------------------------------------------------------


@router.get("/cdc/events")
async def replay(request: Request, replayId: int = -2, limit: int = 100) -> dict[str, Any]:
    """Change events after `replayId` (-2: the earliest retained, -1: only new ones), kept 72 hours."""
    if not 1 <= limit <= 1000:
        raise sf_error(400, "INVALID_FIELD", "limit must be 1..1000", "limit")
    box: Sandbox = sandbox(request)
    pool = box.store.pool
    horizon = box.store.clock.now() - RETENTION
    if replayId == -1:
        latest = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM events WHERE system = 'crm'")
        return {"events": [], "latestReplayId": latest}
    if replayId >= 0:
        expired = await pool.fetchval(
            "SELECT count(*) FROM events WHERE system = 'crm' AND seq > $1 AND created_at < $2", replayId, horizon
        )
        if expired:
            raise sf_error(
                400,
                "INVALID_REPLAY_ID",
                f"The replay ID {replayId} is outside the retention window (72 hours): events after it have expired. "
                "Resubscribe with -2 (earliest) and resynchronise by query.",
            )
    rows = await pool.fetch(
        "SELECT seq, payload FROM events WHERE system = 'crm' AND seq > $1 AND created_at >= $2 ORDER BY seq LIMIT $3",
        max(replayId, 0),
        horizon,
        limit + 1,
    )
    events = [r["payload"] for r in rows[:limit]]
    latest = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM events WHERE system = 'crm'")
    return {"events": events, "hasMore": len(rows) > limit, "latestReplayId": latest}


# -- Apex REST: contracts, amendments, renewals, cancellations, merges ------------------------------------


async def _lines(tx: Tx, contract_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in await tx.find("Contract_Line__c", {"Contract__c": contract_id})
        if line["Status__c"] == "Active"
    ]


async def _new_line(
    tx: Tx, contract: dict[str, Any], code: str, qty: Any, price: Any, freq: str, start: str
) -> dict[str, Any]:
    stamp = iso(tx.now)
    line = {
        "Id": await sf_id(tx, "Contract_Line__c"),
        "Contract__c": contract["Id"],
        "Product_Code__c": code,
        "Quantity__c": qty,
        "Unit_Price__c": price,
        "Billing_Frequency__c": freq,
        "Start_Date__c": start,
        "End_Date__c": contract["EndDate"],
        "Status__c": "Active",
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
        "IsDeleted": False,
    }
    await tx.insert("Contract_Line__c", line["Id"], line)
    record_change(tx, "Contract_Line__c", "CREATE", line["Id"], {k: v for k, v in line.items() if k != "Id"}, [])
    return line


@router.post("/apexrest/opportunities/{opp_id}/contract")
async def contract_from_opportunity(opp_id: str, request: Request) -> JSONResponse:
    """Closed-won opportunity → an activated contract with one line per opportunity product."""
    data = await body(request, "crm")
    async with sandbox(request).store.tx("crm") as tx:
        opp = await _must(tx, "Opportunity", opp_id)
        if not opp.get("IsWon"):
            raise sf_error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Only a Closed Won opportunity can be contracted")
        items = await tx.find("OpportunityLineItem", {"OpportunityId": opp_id})
        if not items:
            raise sf_error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "The opportunity has no products to contract")
        fields = {
            "AccountId": opp["AccountId"],
            "Opportunity__c": opp_id,
            "StartDate": data.get("StartDate") or opp["CloseDate"],
            "ContractTerm": data.get("ContractTerm", 12),
            "Status": "Activated",
            "CurrencyIsoCode": opp.get("CurrencyIsoCode"),
        }
        if data.get("Parent_Contract__c"):
            fields["Parent_Contract__c"] = data["Parent_Contract__c"]
        contract = await write(tx, "Contract", fields, None)
        for item in items:
            line = await _new_line(
                tx,
                contract,
                item["Product_Code__c"],
                item["Quantity"],
                item["UnitPrice"],
                item["Billing_Frequency__c"],
                contract["StartDate"],
            )
            # the product is linked to its contract line: a change of an object that publishes no events,
            # so subscribers see a gap in this transaction's sequence numbers
            stamp = iso(tx.now)
            linked = {**item, "Contract_Line__c": line["Id"], "LastModifiedDate": stamp, "SystemModstamp": stamp}
            await tx.update("OpportunityLineItem", item["Id"], linked)
            record_change(tx, "OpportunityLineItem", "UPDATE", item["Id"], {"Contract_Line__c": line["Id"]}, [])
        await flush(tx)
    return JSONResponse(_shape("Contract", contract), status_code=201)


@router.post("/apexrest/contracts/{contract_id}/amendments")
async def amend(contract_id: str, request: Request) -> JSONResponse:
    """AddProduct | RemoveProduct | QuantityChange | PriceChange, effective on a date, co-termed to the end."""
    data = await body(request, "crm")
    kind = need(data, "Type__c", "crm")
    if kind not in AMENDMENTS:
        raise sf_error(
            400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"Type__c must be one of {AMENDMENTS}", "Type__c"
        )
    code = need(data, "Product_Code__c", "crm")
    effective = a_date(data, "Effective_Date__c", "crm")
    assert effective is not None
    async with sandbox(request).store.tx("crm") as tx:
        contract = await _must(tx, "Contract", contract_id)
        if contract["Status"] != "Activated":
            raise sf_error(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"Only an activated contract can be amended; this one is {contract['Status']}",
            )
        if not contract["StartDate"] <= effective.isoformat() <= contract["EndDate"]:
            raise sf_error(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"Effective_Date__c must fall within the contract ({contract['StartDate']} to {contract['EndDate']})",
                "Effective_Date__c",
            )
        lines = [ln for ln in await _lines(tx, contract_id) if ln["Product_Code__c"] == code]
        line = lines[0] if lines else None
        amendment: dict[str, Any] = {
            "Contract__c": contract_id,
            "Type__c": kind,
            "Product_Code__c": code,
            "Effective_Date__c": effective.isoformat(),
            "End_Date__c": contract["EndDate"],
        }
        if kind == "AddProduct":
            if line is not None:
                raise sf_error(
                    400, "DUPLICATE_VALUE", f"The contract already has {code}; use QuantityChange", "Product_Code__c"
                )
            qty = need(data, "Quantity__c", "crm", (int, float))
            price = money(data, "Unit_Price__c", "crm")
            assert price is not None
            freq = data.get("Billing_Frequency__c", "Monthly")
            if freq not in FREQUENCIES:
                raise sf_error(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Billing_Frequency__c must be one of {FREQUENCIES}",
                    "Billing_Frequency__c",
                )
            line = await _new_line(tx, contract, code, qty, num(price), freq, effective.isoformat())
            amendment.update(Quantity__c=qty, Unit_Price__c=num(price))
        else:
            if line is None:
                raise sf_error(
                    400, "INVALID_CROSS_REFERENCE_KEY", f"The contract has no active line for {code}", "Product_Code__c"
                )
            new = dict(line)
            amendment.update(Previous_Quantity__c=line["Quantity__c"], Previous_Unit_Price__c=line["Unit_Price__c"])
            if kind == "RemoveProduct":
                new.update(Status__c="Removed", End_Date__c=(effective - timedelta(days=1)).isoformat())
                amendment.update(Quantity__c=0, Unit_Price__c=line["Unit_Price__c"])
            elif kind == "QuantityChange":
                new["Quantity__c"] = need(data, "Quantity__c", "crm", (int, float))
                amendment.update(Quantity__c=new["Quantity__c"], Unit_Price__c=line["Unit_Price__c"])
            else:
                price = money(data, "Unit_Price__c", "crm")
                assert price is not None
                new["Unit_Price__c"] = num(price)
                amendment.update(Quantity__c=line["Quantity__c"], Unit_Price__c=num(price))
            new["LastModifiedDate"] = new["SystemModstamp"] = iso(tx.now)
            changed = {k: v for k, v in new.items() if line.get(k) != v}
            await tx.update("Contract_Line__c", line["Id"], new)
            record_change(tx, "Contract_Line__c", "UPDATE", line["Id"], changed, [])
        amendment["Contract_Line__c"] = line["Id"]
        stamp = iso(tx.now)
        amendment.update(
            Id=await sf_id(tx, "Amendment__c"),
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
            IsDeleted=False,
        )
        await tx.insert("Amendment__c", amendment["Id"], amendment)
        record_change(
            tx, "Amendment__c", "CREATE", amendment["Id"], {k: v for k, v in amendment.items() if k != "Id"}, []
        )
        await flush(tx)
    return JSONResponse(_shape("Amendment__c", amendment), status_code=201)


@router.post("/apexrest/contracts/{contract_id}/renew")
async def renew(contract_id: str, request: Request) -> JSONResponse:
    data = await body(request, "crm")
    async with sandbox(request).store.tx("crm") as tx:
        old = await _must(tx, "Contract", contract_id)
        if old["Status"] != "Activated":
            raise sf_error(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"Only an activated contract can be renewed; this one is {old['Status']}",
            )
        if await tx.find("Contract", {"Renewal_Of__c": contract_id}):
            raise sf_error(400, "DUPLICATE_VALUE", f"Contract {contract_id} was already renewed")
        start = date.fromisoformat(old["EndDate"]) + timedelta(days=1)
        fields = {
            "AccountId": old["AccountId"],
            "StartDate": start.isoformat(),
            "ContractTerm": data.get("ContractTerm", old["ContractTerm"]),
            "Status": "Activated",
            "CurrencyIsoCode": old["CurrencyIsoCode"],
            "Renewal_Of__c": contract_id,
        }
        contract = await write(tx, "Contract", fields, None)
        uplift = Decimal(str(data.get("Uplift_Percent__c", 0))) / 100
        for line in await _lines(tx, contract_id):
            price = num(Decimal(str(line["Unit_Price__c"])) * (1 + uplift))
            await _new_line(
                tx,
                contract,
                line["Product_Code__c"],
                line["Quantity__c"],
                price,
                line["Billing_Frequency__c"],
                contract["StartDate"],
            )
        await flush(tx)
    return JSONResponse(_shape("Contract", contract), status_code=201)


@router.post("/apexrest/contracts/{contract_id}/cancel")
async def cancel(contract_id: str, request: Request) -> dict[str, Any]:
    data = await body(request, "crm")
    effective = a_date(data, "Cancellation_Date__c", "crm")
    assert effective is not None
    async with sandbox(request).store.tx("crm") as tx:
        old = await _must(tx, "Contract", contract_id)
        if old["Status"] != "Activated":
            raise sf_error(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"Only an activated contract can be cancelled; this one is {old['Status']}",
            )
        if not old["StartDate"] <= effective.isoformat() <= old["EndDate"]:
            raise sf_error(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Cancellation_Date__c must fall within the contract",
                "Cancellation_Date__c",
            )
        contract = await write(
            tx,
            "Contract",
            {
                "Status": "Terminated",
                "Cancellation_Date__c": effective.isoformat(),
                "Cancellation_Reason__c": data.get("Cancellation_Reason__c"),
            },
            old,
        )
        await flush(tx)
    return _shape("Contract", contract)


@router.post("/apexrest/accounts/merge")
async def merge(request: Request) -> dict[str, Any]:
    """Salesforce merge: up to two losers into a master; children re-parented, losers deleted."""
    data = await body(request, "crm")
    master_id = need(data, "masterRecordId", "crm")
    losers = data.get("recordToMergeIds")
    if not isinstance(losers, list) or not 1 <= len(losers) <= 2 or master_id in losers:
        raise sf_error(
            400,
            "INVALID_FIELD",
            "recordToMergeIds must list one or two accounts other than the master",
            "recordToMergeIds",
        )
    async with sandbox(request).store.tx("crm") as tx:
        master = await _must(tx, "Account", master_id)
        doomed = [await _must(tx, "Account", loser) for loser in losers]
        for loser in doomed:
            for kind, field in (("Account", "ParentId"), ("Opportunity", "AccountId"), ("Contract", "AccountId")):
                for child in await tx.find(kind, {field: loser["Id"]}):
                    if child["Id"] != master_id:
                        await write(tx, kind, {field: master_id}, child)
        survivor_fields = data.get("fields") or {}
        if master.get("ParentId") in losers:
            survivor_fields["ParentId"] = None
        for loser in doomed:
            await remove(tx, "Account", loser)
        master = await write(tx, "Account", survivor_fields, master)
        await flush(tx)
    return {"id": master_id, "mergedRecordIds": losers, "success": True, "errors": []}
