"""CRM change-data-capture events → accord's canonical events. Pure: every read goes through `lookups`.

    result = map_change(cdc_event, lookups)      # list[Event] | Ignore(reason)

Decisions, written down because consumers rely on them:

- **Full state, re-fetched.** An UPDATE (and UNDELETE, and every GAP_* event, which carries no fields at all)
  names only what changed, but `CustomerAccountUpserted` carries the account's full state. The mapper reads the
  record through `lookups.record(...)` and emits what the CRM holds *now*; the entity version is that record's
  `LastModifiedDate` (epoch microseconds), so the state and its version always agree and a consumer applying
  last-writer-wins by version converges whatever order events arrive in. A CREATE carries every field and is
  mapped from the payload alone. A record already deleted again when read yields no event (its DELETE follows).
- **Versions** are the record's `LastModifiedDate` in epoch microseconds (the sandbox sets it to the commit
  time; SystemModstamp is the same instant); a DELETE, which has no fields, uses the header's commitTimestamp.
  The full re-sync by query (INVALID_REPLAY_ID) reads the same `LastModifiedDate`, so both paths share a scale.
  `commitNumber` would be a finer order but the query path has no such number.
- **Stable ids.** `event_id = uuid5(NAMESPACE, "CRM/<transactionKey>:<sequenceNumber>/<record id>/<event type>")`:
  the transaction key and sequence number are in every header, whether the event came by webhook or by replay,
  so a re-delivered or re-fetched change is the same canonical event. `meta.source_id` is
  `<transactionKey>:<sequenceNumber>`.
- **Ignored, with a reason** (never silently): changes whose changeOrigin carries `;client=<our id>` (our own
  write-backs), Account updates touching only the write-back fields, entities we do not map (Opportunity,
  Contract_Line__c — lines travel inside their contract or amendment event), contract updates that are no
  activation or cancellation, accounts without a billing country or currency (prospects: the update that sets
  them emits the upsert), plain deletes (the catalogue has no account-deleted event), GAP_OVERFLOW (the CDC
  tracker asks for a re-sync).
- **Merges.** The CRM deletes the losers and then updates the survivor in one transaction; the DELETE event does
  not say who survived, so the mapper finds the first Account UPDATE after it in the same transaction
  (`lookups.transaction(key)`) and emits one `CustomerAccountMerged` per loser. The lookups must therefore know
  the whole transaction: the replay driver (`sync.catch_up`) reads to the end of the stream; a webhook
  path must hold a DELETE until its transaction is complete.
- **Proration** is not a CRM field in this org: amendments and cancellations carry `DEFAULT_PRORATION`.
- **Line cadence.** Each `ContractLine` carries its `Billing_Frequency__c`: Annual → ANNUAL, Monthly → MONTHLY,
  Usage → MONTHLY with `usage_based` (metered, invoiced monthly in arrears); absent → null (the contract's).
- **Last writer wins per record** (`entity_of`): an upsert is versioned on its Account, an activation, renewal or
  cancellation on its Contract, an amendment on itself; the ingest drops an event not newer than one emitted.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from accord.errors import PermanentError
from accord.events import (
    AccountStatus,
    AmendmentType,
    BillingFrequency,
    CancellationReason,
    ContractActivated,
    ContractAmended,
    ContractCancelled,
    ContractLine,
    ContractRenewed,
    CustomerAccountMerged,
    CustomerAccountUpserted,
    Event,
    Money,
    ProrationPolicy,
    SourceSystem,
    new_meta,
)

#: namespace of canonical event ids derived from CRM changes (fixed forever: changing it re-identifies history)
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-3c1e-5d0b-9a57-0c3b1d7e2f41")
DEFAULT_PRORATION = ProrationPolicy.PRORATE_DAILY
DEFAULT_PAYMENT_TERMS_DAYS = 30
#: Account fields the integration writes back; a change of only these (plus stamps) is never a business change
WRITE_BACK_FIELDS = frozenset({"Invoice_Status__c", "Payment_Status__c", "Credit_Hold__c"})
STAMPS = frozenset({"LastModifiedDate", "SystemModstamp"})
CHANGE_TYPES = frozenset({"CREATE", "UPDATE", "DELETE", "UNDELETE"})
GAP_TYPES = frozenset({"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"})
FREQUENCIES = {"Monthly": BillingFrequency.MONTHLY, "Annual": BillingFrequency.ANNUAL}
_CLIENT = re.compile(r";client=([^;,\s]+)")


@dataclass(frozen=True, slots=True)
class Ignore:
    """The change is understood and deliberately maps to no canonical event; `reason` says why."""

    reason: str


MapResult = list[Event] | Ignore


class MappingError(PermanentError):
    """A change event the mapper cannot turn into canonical events; the message names the field to fix."""

    def __init__(self, message: str, *, source_id: str | None = None) -> None:
        super().__init__(message)
        self.source_id = source_id


class Lookups(Protocol):
    """What the mapper may read. Implementations: `Snapshot` (in memory), or one filled from the CRM API."""

    @property
    def own_client_id(self) -> str:
        """The client id accord sends in `Sforce-Call-Options`: changes carrying it are our own write-backs."""
        ...

    def record(self, entity: str, record_id: str) -> Mapping[str, Any] | None:
        """The record as the CRM holds it now; None when it does not exist (deleted)."""
        ...

    def contract_lines(self, contract_id: str) -> Sequence[Mapping[str, Any]]:
        """The contract's Contract_Line__c records."""
        ...

    def transaction(self, transaction_key: str) -> Sequence[Mapping[str, Any]]:
        """The CDC payloads of one transaction known so far (ChangeEventHeader + fields)."""
        ...


@dataclass
class Snapshot:
    """Lookups over dictionaries (what an adapter read from the CRM, or a test's fixture).

    A read of something not loaded raises `NeedRecord`, so an async driver can fetch it and map again.
    """

    own_client_id: str
    records: dict[tuple[str, str], Mapping[str, Any] | None]
    lines: dict[str, Sequence[Mapping[str, Any]]]
    transactions: dict[str, list[Mapping[str, Any]]]

    def record(self, entity: str, record_id: str) -> Mapping[str, Any] | None:
        try:
            return self.records[(entity, record_id)]
        except KeyError:
            raise NeedRecord(entity, record_id) from None

    def contract_lines(self, contract_id: str) -> Sequence[Mapping[str, Any]]:
        try:
            return self.lines[contract_id]
        except KeyError:
            raise NeedRecord("Contract_Line__c", contract_id) from None

    def transaction(self, transaction_key: str) -> Sequence[Mapping[str, Any]]:
        return self.transactions.get(transaction_key, [])


class NeedRecord(LookupError):
    """`Snapshot` was asked for a record (or, with entity Contract_Line__c, a contract's lines) it lacks."""

    def __init__(self, entity: str, record_id: str) -> None:
        super().__init__(f"{entity} {record_id} is not loaded")
        self.entity = entity
        self.record_id = record_id


def canonical_account_id(crm_account_id: str) -> str:
    """accord's customer account id for a CRM account: the CRM is the account's system of record, so its id."""
    return crm_account_id


def stable_event_id(change_key: str, record_id: str, event_type: type[Event]) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{SourceSystem.CRM}/{change_key}/{record_id}/{event_type.AVRO_NAME}")


def entity_of(event: Event) -> tuple[str, str] | None:
    """The CRM record a canonical event is a snapshot of, for last-writer-wins on `meta.entity_version`.

    Activations, renewals and cancellations of one contract share its version scale (LastModifiedDate), so a
    late activation never follows its cancellation; a merge is a one-off fact, never superseded (None).
    """
    if isinstance(event, CustomerAccountUpserted):
        return ("Account", event.crm_account_id)
    if isinstance(event, ContractActivated | ContractCancelled):
        return ("Contract", event.contract_id)
    if isinstance(event, ContractRenewed):
        return ("Contract", event.renewal_contract_id)
    if isinstance(event, ContractAmended):
        return ("Amendment__c", event.amendment_id)
    return None


def client_of(change_origin: str) -> str | None:
    """The `client=<id>` a change was made under (`Sforce-Call-Options`), if any."""
    match = _CLIENT.search(change_origin or "")
    return match.group(1) if match else None


# -- the header ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    entity: str
    record_ids: tuple[str, ...]
    change_type: str
    change_origin: str
    transaction_key: str
    sequence: int
    commit_timestamp_ms: int
    changed_fields: frozenset[str]
    nulled_fields: frozenset[str]
    replay_id: int | None

    @property
    def change_key(self) -> str:
        return f"{self.transaction_key}:{self.sequence}"


def payload_of(change: Mapping[str, Any]) -> Mapping[str, Any]:
    """The CDC payload of an event as delivered (`{"channel","payload","event"}`) or the payload itself."""
    inner = change.get("payload")
    return inner if isinstance(inner, Mapping) else change


def parse_header(change: Mapping[str, Any]) -> Header:
    payload = payload_of(change)
    raw = payload.get("ChangeEventHeader")
    if not isinstance(raw, Mapping):
        raise MappingError("change event has no ChangeEventHeader object: is this a CDC event of the CRM?")
    missing = [k for k in ("entityName", "recordIds", "changeType", "transactionKey", "sequenceNumber") if k not in raw]
    if missing:
        raise MappingError(f"ChangeEventHeader lacks {', '.join(missing)}")
    ids = raw["recordIds"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise MappingError(f"ChangeEventHeader.recordIds must be a non-empty list of ids, got {ids!r}")
    change_type = str(raw["changeType"])
    if change_type not in CHANGE_TYPES | GAP_TYPES:
        raise MappingError(
            f"ChangeEventHeader.changeType {change_type!r} is none of {sorted(CHANGE_TYPES | GAP_TYPES)}"
        )
    event = change.get("event")
    replay = event.get("replayId") if isinstance(event, Mapping) else None
    return Header(
        entity=str(raw["entityName"]),
        record_ids=tuple(ids),
        change_type=change_type,
        change_origin=str(raw.get("changeOrigin") or ""),
        transaction_key=str(raw["transactionKey"]),
        sequence=int(raw["sequenceNumber"]),
        commit_timestamp_ms=int(raw.get("commitTimestamp") or 0),
        changed_fields=frozenset(raw.get("changedFields") or ()),
        nulled_fields=frozenset(raw.get("nulledFields") or ()),
        replay_id=int(replay) if isinstance(replay, int) else None,
    )


# -- the mapper ------------------------------------------------------------------------------------------


def map_change(change: Mapping[str, Any], lookups: Lookups) -> MapResult:
    """One CDC event (several record ids possible) → its canonical events, or Ignore(reason)."""
    header = parse_header(change)
    fields = {k: v for k, v in payload_of(change).items() if k != "ChangeEventHeader"}
    client = client_of(header.change_origin)
    if client is not None and client == lookups.own_client_id:
        return Ignore(f"our own write-back (changeOrigin {header.change_origin!r})")
    if header.change_type == "GAP_OVERFLOW":
        return Ignore("GAP_OVERFLOW carries no records: the CDC tracker re-syncs by query")
    kind = header.change_type.removeprefix("GAP_")
    try:
        if header.entity == "Account":
            events = _account(header, kind, fields, lookups)
        elif header.entity == "Contract":
            events = _contract(header, kind, fields, lookups)
        elif header.entity == "Amendment__c":
            events = _amendment(header, kind, fields, lookups)
        elif header.entity == "Contract_Line__c":
            return Ignore("contract lines travel inside their contract or amendment event")
        else:
            return Ignore(f"{header.entity} changes are not mapped to canonical events")
    except MappingError as exc:
        exc.source_id = exc.source_id or header.change_key
        raise
    return events


def _meta(header: Header, record_id: str, event_type: type[Event], version: int, legal_entity: str | None) -> Any:
    return new_meta(
        event_type,
        source_system=SourceSystem.CRM,
        source_id=header.change_key,
        correlation_id=f"crm:{record_id}",
        entity_version=version,
        legal_entity=legal_entity or None,
        occurred_at=datetime.datetime.fromtimestamp(header.commit_timestamp_ms / 1000, datetime.UTC),
        event_id=stable_event_id(header.change_key, record_id, event_type),
    )


def version_of(record: Mapping[str, Any], header: Header) -> int:
    """The record's LastModifiedDate (else SystemModstamp, else the commit) in epoch microseconds."""
    stamp = record.get("LastModifiedDate") or record.get("SystemModstamp")
    if isinstance(stamp, str) and stamp:
        try:
            moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise MappingError(f"LastModifiedDate {stamp!r} is not an ISO 8601 timestamp") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return int(moment.timestamp() * 1_000_000)
    return header.commit_timestamp_ms * 1000


def _account(header: Header, kind: str, fields: Mapping[str, Any], lookups: Lookups) -> MapResult:
    if kind == "DELETE":
        return _merge(header, lookups)
    only_write_back = header.changed_fields <= WRITE_BACK_FIELDS | STAMPS and bool(header.changed_fields - STAMPS)
    if kind == "UPDATE" and only_write_back:
        return Ignore("only write-back fields changed (invoice/payment status, credit hold)")
    events: list[Event] = []
    skipped: list[str] = []
    for record_id in header.record_ids:
        record: Mapping[str, Any] | None
        if kind == "CREATE" and not header.change_type.startswith("GAP_"):
            record = {**fields, "Id": record_id}
        else:
            record = lookups.record("Account", record_id)
        if record is None:
            continue  # deleted since: its DELETE event follows
        country, currency = record.get("BillingCountry"), record.get("CurrencyIsoCode")
        if not country or not currency:
            skipped.append(record_id)
            continue
        if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
            raise MappingError(f"Account {record_id}: BillingCountry {country!r} is not an ISO 3166-1 alpha-2 code")
        parent = record.get("ParentId")
        events.append(
            CustomerAccountUpserted(
                meta=_meta(
                    header,
                    record_id,
                    CustomerAccountUpserted,
                    version_of(record, header),
                    record.get("Legal_Entity__c"),
                ),
                account_id=canonical_account_id(record_id),
                crm_account_id=record_id,
                name=str(record.get("Name") or ""),
                status=AccountStatus.PROSPECT if record.get("Type") == "Prospect" else AccountStatus.ACTIVE,
                country_code=country,
                currency=str(currency),
                tax_id=record.get("Tax_Id__c") or None,
                parent_account_id=canonical_account_id(parent) if parent else None,
                # the order form's payment-method token (a billing id, not card data) and the CRM's entity
                payment_method=record.get("Payment_Method__c") or None,
                legal_entity=record.get("Legal_Entity__c") or None,
            )
        )
    if not events:
        if skipped:
            return Ignore(f"accounts without BillingCountry/CurrencyIsoCode are prospects: {', '.join(skipped)}")
        return Ignore("every account of the event was deleted since")
    return events


def _merge(header: Header, lookups: Lookups) -> MapResult:
    """Losers deleted, then the survivor updated, in one transaction: the first later Account UPDATE."""
    later = sorted(
        (payload_of(c) for c in lookups.transaction(header.transaction_key)),
        key=lambda p: int(p["ChangeEventHeader"]["sequenceNumber"]),
    )
    survivor: str | None = None
    for payload in later:
        h = payload["ChangeEventHeader"]
        if int(h["sequenceNumber"]) > header.sequence and h["entityName"] == "Account" and h["changeType"] == "UPDATE":
            survivor = next((i for i in h["recordIds"] if i not in header.record_ids), None)
            if survivor:
                break
    if survivor is None:
        return Ignore("account deleted without a merge: the catalogue has no account-deleted event")
    events: list[Event] = []
    for loser in header.record_ids:
        events.append(
            CustomerAccountMerged(
                meta=_meta(header, loser, CustomerAccountMerged, header.commit_timestamp_ms * 1000, None),
                account_id=canonical_account_id(survivor),
                merged_account_id=canonical_account_id(loser),
                crm_account_id=survivor,
                merged_crm_account_id=loser,
            )
        )
    return events


# -- contracts -------------------------------------------------------------------------------------------


def _date(record: Mapping[str, Any], name: str, what: str) -> datetime.date:
    value = record.get(name)
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise MappingError(f"{what}: {name} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _decimal(value: Any, name: str, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise MappingError(f"{what}: {name} {value!r} is not a number")
    return Decimal(str(value))


def _months(start: datetime.date, end: datetime.date) -> int:
    """Whole months from start to the day after end (a 12-month term from 2026-01-01 ends 2026-12-31)."""
    after = end + datetime.timedelta(days=1)
    return max((after.year - start.year) * 12 + after.month - start.month, 0)


def _periods(frequency: str, start: datetime.date, end: datetime.date) -> int:
    months = _months(start, end)
    if frequency == "Annual":
        return -(-months // 12)
    if frequency == "Usage":
        return 0  # usage is billed on what is used: no committed value
    return months


def line_cadence(frequency: Any, what: str) -> tuple[BillingFrequency | None, bool]:
    """(billing_frequency, usage_based) of a line's Billing_Frequency__c: Annual → ANNUAL, Monthly → MONTHLY,
    Usage → MONTHLY and usage based (metered, invoiced monthly in arrears); absent → None (the contract's)."""
    if frequency in (None, ""):
        return None, False
    if frequency == "Usage":
        return BillingFrequency.MONTHLY, True
    if frequency in FREQUENCIES:
        return FREQUENCIES[str(frequency)], False
    raise MappingError(f"{what}: Billing_Frequency__c {frequency!r} is none of Annual, Monthly, Usage")


def _line(record: Mapping[str, Any], currency: str) -> ContractLine:
    what = f"Contract_Line__c {record.get('Id')}"
    frequency, usage_based = line_cadence(record.get("Billing_Frequency__c"), what)
    return ContractLine(
        line_id=str(record["Id"]),
        product_code=str(record.get("Product_Code__c") or ""),
        quantity=_decimal(record.get("Quantity__c"), "Quantity__c", what),
        unit_price=Money(amount=_decimal(record.get("Unit_Price__c"), "Unit_Price__c", what), currency=currency),
        start_date=_date(record, "Start_Date__c", what),
        end_date=_date(record, "End_Date__c", what),
        billing_frequency=frequency,
        usage_based=usage_based,
    )


def _line_value(line: ContractLine, frequency: str) -> Decimal:
    return line.quantity * line.unit_price.amount * _periods(frequency, line.start_date, line.end_date)


def _contract_terms(
    contract: Mapping[str, Any], lookups: Lookups
) -> tuple[list[ContractLine], BillingFrequency, Money]:
    currency = str(contract.get("CurrencyIsoCode") or "")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise MappingError(
            f"Contract {contract.get('Id')}: CurrencyIsoCode {contract.get('CurrencyIsoCode')!r} is not an ISO 4217 "
            "code; set the contract's (or its opportunity's) currency in the CRM"
        )
    records = [r for r in lookups.contract_lines(str(contract["Id"])) if r.get("Status__c", "Active") == "Active"]
    records.sort(key=lambda r: str(r.get("Id")))
    lines = [_line(r, currency) for r in records]
    total = sum(
        (
            _line_value(line, str(r.get("Billing_Frequency__c") or "Monthly"))
            for line, r in zip(lines, records, strict=True)
        ),
        Decimal(0),
    )
    # the contract's cadence: annual only when every committed line is annual
    kinds = {str(r.get("Billing_Frequency__c") or "Monthly") for r in records} - {"Usage"}
    frequency = BillingFrequency.ANNUAL if kinds == {"Annual"} else BillingFrequency.MONTHLY
    return lines, frequency, Money(amount=total, currency=currency)


def _contract(header: Header, kind: str, fields: Mapping[str, Any], lookups: Lookups) -> MapResult:
    if kind not in ("CREATE", "UPDATE", "UNDELETE"):
        return Ignore(f"Contract {kind} has no canonical event")
    events: list[Event] = []
    reasons: list[str] = []
    for record_id in header.record_ids:
        contract = lookups.record("Contract", record_id)
        if contract is None:
            reasons.append(f"{record_id} deleted since")
            continue
        contract = {**contract, "Id": record_id}
        status = contract.get("Status")
        activated_now = kind == "CREATE" or "Status" in header.changed_fields or header.change_type.startswith("GAP_")
        if status == "Terminated" and ("Status" in header.changed_fields or header.change_type.startswith("GAP_")):
            events.append(_cancelled(header, contract))
        elif status == "Activated" and activated_now:
            events.append(_activated(header, contract, lookups))
        else:
            reasons.append(f"{record_id}: no activation or cancellation (status {status})")
    return events or Ignore("contract change with no canonical event: " + "; ".join(reasons))


def _activated(header: Header, contract: Mapping[str, Any], lookups: Lookups) -> Event:
    what = f"Contract {contract['Id']}"
    lines, frequency, total = _contract_terms(contract, lookups)
    start, end = _date(contract, "StartDate", what), _date(contract, "EndDate", what)
    account = str(contract.get("AccountId") or "")
    version = version_of(contract, header)
    renewal_of = contract.get("Renewal_Of__c")
    if renewal_of:
        return ContractRenewed(
            meta=_meta(header, str(contract["Id"]), ContractRenewed, version, None),
            account_id=canonical_account_id(account),
            contract_id=str(renewal_of),
            renewal_contract_id=str(contract["Id"]),
            start_date=start,
            end_date=end,
            term_months=int(contract.get("ContractTerm") or _months(start, end)),
            automatic=False,
            total_contract_value=total,
        )
    return ContractActivated(
        meta=_meta(header, str(contract["Id"]), ContractActivated, version, None),
        account_id=canonical_account_id(account),
        contract_id=str(contract["Id"]),
        contract_number=str(contract.get("ContractNumber") or contract["Id"]),
        start_date=start,
        end_date=end,
        term_months=int(contract.get("ContractTerm") or _months(start, end)),
        billing_frequency=frequency,
        payment_terms_days=DEFAULT_PAYMENT_TERMS_DAYS,
        total_contract_value=total,
        lines=lines,
    )


def _reason(text: str | None) -> CancellationReason:
    lowered = (text or "").lower()
    for needle, reason in (
        ("pay", CancellationReason.NON_PAYMENT),
        ("merge", CancellationReason.ACCOUNT_MERGED),
        ("replace", CancellationReason.REPLACED),
    ):
        if needle in lowered:
            return reason
    return CancellationReason.CUSTOMER_REQUEST


def _cancelled(header: Header, contract: Mapping[str, Any]) -> Event:
    what = f"Contract {contract['Id']}"
    note = contract.get("Cancellation_Reason__c")
    return ContractCancelled(
        meta=_meta(header, str(contract["Id"]), ContractCancelled, version_of(contract, header), None),
        account_id=canonical_account_id(str(contract.get("AccountId") or "")),
        contract_id=str(contract["Id"]),
        effective_date=_date(contract, "Cancellation_Date__c", what),
        reason=_reason(note if isinstance(note, str) else None),
        proration_policy=DEFAULT_PRORATION,
        note=note if isinstance(note, str) and note else None,
    )


_AMENDMENT_TYPES = {
    "AddProduct": AmendmentType.ADD_PRODUCT,
    "RemoveProduct": AmendmentType.REMOVE_PRODUCT,
    "PriceChange": AmendmentType.PRICE_CHANGE,
}


def _amendment(header: Header, kind: str, fields: Mapping[str, Any], lookups: Lookups) -> MapResult:
    if kind != "CREATE":
        return Ignore(f"Amendment__c {kind}: an amendment is a fact once created")
    events: list[Event] = []
    for record_id in header.record_ids:
        amendment: Mapping[str, Any] | None = None
        if not header.change_type.startswith("GAP_"):
            amendment = {**fields, "Id": record_id}
        if amendment is None:
            amendment = lookups.record("Amendment__c", record_id)
            if amendment is None:
                continue
        what = f"Amendment__c {record_id}"
        contract_id = str(amendment.get("Contract__c") or "")
        contract = lookups.record("Contract", contract_id) if contract_id else None
        if contract is None:
            raise MappingError(f"{what}: its contract {contract_id!r} does not exist in the CRM")
        currency = str(contract.get("CurrencyIsoCode") or "")
        type_name = str(amendment.get("Type__c"))
        qty = _decimal(amendment.get("Quantity__c"), "Quantity__c", what)
        price = _decimal(amendment.get("Unit_Price__c"), "Unit_Price__c", what)
        prev_qty = _decimal(amendment.get("Previous_Quantity__c") or 0, "Previous_Quantity__c", what)
        prev_price = _decimal(amendment.get("Previous_Unit_Price__c") or 0, "Previous_Unit_Price__c", what)
        if type_name == "QuantityChange":
            amendment_type = AmendmentType.UPSELL if qty >= prev_qty else AmendmentType.DOWNSELL
        elif type_name in _AMENDMENT_TYPES:
            amendment_type = _AMENDMENT_TYPES[type_name]
        else:
            raise MappingError(
                f"{what}: Type__c {type_name!r} is none of QuantityChange, {', '.join(_AMENDMENT_TYPES)}"
            )
        effective = _date(amendment, "Effective_Date__c", what)
        co_term_end = _date(amendment, "End_Date__c", what)
        line_id = str(amendment.get("Contract_Line__c") or "")
        line_record = lookups.record("Contract_Line__c", line_id) if line_id else None
        frequency = str((line_record or {}).get("Billing_Frequency__c") or "Monthly")
        line_frequency, usage_based = line_cadence((line_record or {}).get("Billing_Frequency__c"), what)
        periods = _periods(frequency, effective, co_term_end)
        delta = (qty * price - prev_qty * prev_price) * periods
        line = ContractLine(
            line_id=line_id,
            product_code=str(amendment.get("Product_Code__c") or ""),
            quantity=qty,
            unit_price=Money(amount=price, currency=currency),
            start_date=effective,
            end_date=co_term_end,
            billing_frequency=line_frequency,
            usage_based=usage_based,
        )
        events.append(
            ContractAmended(
                meta=_meta(header, record_id, ContractAmended, version_of(amendment, header), None),
                account_id=canonical_account_id(str(contract.get("AccountId") or "")),
                contract_id=contract_id,
                amendment_id=record_id,
                amendment_type=amendment_type,
                effective_date=effective,
                co_term_end_date=co_term_end,
                proration_policy=DEFAULT_PRORATION,
                changed_lines=[line],
                delta_contract_value=Money(amount=delta, currency=currency),
            )
        )
    return events or Ignore("every amendment of the event was deleted since")
