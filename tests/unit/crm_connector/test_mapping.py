"""The CRM change-event mapper: tables of named cases over CDC events shaped as the sandbox sends them."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from accord.events import (
    AccountStatus,
    AmendmentType,
    BillingFrequency,
    CancellationReason,
    ContractActivated,
    ContractAmended,
    ContractCancelled,
    ContractRenewed,
    CustomerAccountMerged,
    CustomerAccountUpserted,
    Event,
)
from accord_crm_connector.mapping import (
    Ignore,
    MappingError,
    NeedRecord,
    Snapshot,
    map_change,
    stable_event_id,
)

pytestmark = pytest.mark.unit

OURS = "accord-crm"
API = "com/salesforce/api/rest/60.0"
STAMP = "2026-11-28T10:00:00.123456Z"
STAMP_US = int(datetime.datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=datetime.UTC).timestamp() * 1_000_000)
LATER = "2026-11-28T11:00:00Z"


def cdc(
    entity: str,
    change: str,
    ids: list[str],
    fields: Mapping[str, Any] | None = None,
    *,
    origin: str = API,
    tx: str = "tx-1",
    seq: int = 1,
    replay: int = 100,
    changed: list[str] | None = None,
) -> dict[str, Any]:
    header = {
        "entityName": entity,
        "recordIds": ids,
        "changeType": change,
        "changeOrigin": origin,
        "transactionKey": tx,
        "sequenceNumber": seq,
        "commitTimestamp": 1_764_324_000_000,
        "commitNumber": 10_000_001,
        "commitUser": "005000000000001AAA",
        "nulledFields": [],
        "diffFields": [],
        "changedFields": changed if changed is not None else (sorted(fields or {}) if change == "UPDATE" else []),
    }
    return {
        "channel": f"/data/{entity}ChangeEvent",
        "payload": {"ChangeEventHeader": header, **(fields or {})},
        "event": {"replayId": replay},
    }


ACCOUNT = {
    "Name": "Acme GmbH",
    "BillingCountry": "DE",
    "CurrencyIsoCode": "EUR",
    "Tax_Id__c": "DE123456789",
    "Legal_Entity__c": "EU",
    "Payment_Method__c": "pm_card_visa",
    "ParentId": "001P",
    "LastModifiedDate": STAMP,
    "SystemModstamp": STAMP,
}
CONTRACT = {
    "Id": "800C",
    "AccountId": "001A",
    "StartDate": "2026-01-01",
    "ContractTerm": 12,
    "EndDate": "2026-12-31",
    "Status": "Activated",
    "CurrencyIsoCode": "EUR",
    "CreatedDate": STAMP,
    "LastModifiedDate": STAMP,
}
LINES = [
    {
        "Id": "a0L1",
        "Contract__c": "800C",
        "Product_Code__c": "SEAT",
        "Quantity__c": 10,
        "Unit_Price__c": 25.5,
        "Billing_Frequency__c": "Monthly",
        "Start_Date__c": "2026-01-01",
        "End_Date__c": "2026-12-31",
        "Status__c": "Active",
    },
    {
        "Id": "a0L2",
        "Contract__c": "800C",
        "Product_Code__c": "OLD",
        "Quantity__c": 1,
        "Unit_Price__c": 9,
        "Billing_Frequency__c": "Monthly",
        "Start_Date__c": "2026-01-01",
        "End_Date__c": "2026-03-31",
        "Status__c": "Removed",
    },
]


def world() -> Snapshot:
    snap = Snapshot(own_client_id=OURS, records={}, lines={"800C": LINES}, transactions={})
    snap.records[("Account", "001A")] = {**ACCOUNT, "Id": "001A", "LastModifiedDate": LATER}
    snap.records[("Account", "001B")] = {**ACCOUNT, "Id": "001B", "Name": "Acme Ltd", "BillingCountry": "GB"}
    snap.records[("Account", "001GONE")] = None
    snap.records[("Account", "001PROS")] = {"Id": "001PROS", "Name": "Lead Co", "LastModifiedDate": STAMP}
    snap.records[("Contract", "800C")] = CONTRACT
    snap.records[("Contract", "800R")] = {**CONTRACT, "Id": "800R", "Renewal_Of__c": "800C", "StartDate": "2027-01-01"}
    snap.records[("Contract", "800X")] = {
        **CONTRACT,
        "Id": "800X",
        "Status": "Terminated",
        "Cancellation_Date__c": "2026-06-30",
        "Cancellation_Reason__c": "Non-payment",
    }
    snap.records[("Contract_Line__c", "a0L1")] = LINES[0]
    snap.lines["800R"] = [{**LINES[0], "Id": "a0L9", "Start_Date__c": "2027-01-01", "End_Date__c": "2027-12-31"}]
    return snap


def of(result: Any) -> list[Event]:
    assert isinstance(result, list), result
    return result


# -- ignored changes ----------------------------------------------------------------------------------


IGNORED = {
    "own write-back": (
        cdc("Account", "UPDATE", ["001A"], {"Credit_Hold__c": True}, origin=f"{API};client={OURS}"),
        "own write-back",
    ),
    "own change of any entity": (
        cdc("Contract", "UPDATE", ["800C"], {"Status": "Activated"}, origin=f"{API};client={OURS}"),
        "own write-back",
    ),
    "write-back fields by another client": (
        cdc("Account", "UPDATE", ["001A"], {"Invoice_Status__c": "Paid", "LastModifiedDate": STAMP}),
        "only write-back fields",
    ),
    "opportunity": (cdc("Opportunity", "CREATE", ["006O"], {"Name": "Deal"}), "not mapped"),
    "contract line": (cdc("Contract_Line__c", "CREATE", ["a0L1"], LINES[0]), "travel inside"),
    "prospect without country": (cdc("Account", "UPDATE", ["001PROS"], {"Name": "Lead Co"}), "prospects"),
    "account deleted since": (cdc("Account", "UPDATE", ["001GONE"], {"Name": "x"}), "deleted since"),
    "plain account delete": (cdc("Account", "DELETE", ["001B"]), "without a merge"),
    "gap overflow": (cdc("Account", "GAP_OVERFLOW", ["000000000000000AAA"]), "GAP_OVERFLOW"),
    "contract re-parented in a merge": (
        cdc("Contract", "UPDATE", ["800C"], {"AccountId": "001A", "LastModifiedDate": STAMP}),
        "no activation or cancellation",
    ),
    "amendment update": (cdc("Amendment__c", "UPDATE", ["a0A1"], {"Type__c": "PriceChange"}), "fact once created"),
}


@pytest.mark.parametrize("event, reason", IGNORED.values(), ids=IGNORED.keys())
def test_ignored_changes_say_why(event: dict[str, Any], reason: str) -> None:
    result = map_change(event, world())
    assert isinstance(result, Ignore)
    assert reason in result.reason


def test_another_clients_change_is_not_ours() -> None:
    event = cdc("Account", "UPDATE", ["001A"], {"Name": "Acme"}, origin=f"{API};client=someone-else")
    (upsert,) = of(map_change(event, world()))
    assert isinstance(upsert, CustomerAccountUpserted)


# -- accounts -----------------------------------------------------------------------------------------


def test_create_maps_every_field_from_the_payload_alone() -> None:
    empty = Snapshot(own_client_id=OURS, records={}, lines={}, transactions={})
    (event,) = of(map_change(cdc("Account", "CREATE", ["001N"], ACCOUNT), empty))
    assert isinstance(event, CustomerAccountUpserted)
    assert (event.account_id, event.crm_account_id, event.name) == ("001N", "001N", "Acme GmbH")
    assert (event.country_code, event.currency, event.tax_id) == ("DE", "EUR", "DE123456789")
    assert event.parent_account_id == "001P"
    assert event.status is AccountStatus.ACTIVE
    assert event.meta.legal_entity == event.legal_entity == "EU"
    assert event.payment_method == "pm_card_visa"
    assert event.meta.entity_version == STAMP_US
    assert event.meta.source_id == "tx-1:1"


UPDATES = {
    "update": "UPDATE",
    "undelete": "UNDELETE",
    "gap update": "GAP_UPDATE",
    "gap create": "GAP_CREATE",
}


@pytest.mark.parametrize("change", UPDATES.values(), ids=UPDATES.keys())
def test_partial_changes_emit_the_full_record_re_fetched(change: str) -> None:
    (event,) = of(map_change(cdc("Account", change, ["001A"], {"Name": "renamed only"}), world()))
    assert isinstance(event, CustomerAccountUpserted)
    assert event.name == "Acme GmbH"  # the CRM's current state, not the event's partial fields
    assert event.tax_id == "DE123456789"
    later = datetime.datetime.fromisoformat(LATER.replace("Z", "+00:00"))
    assert event.meta.entity_version == int(later.timestamp() * 1_000_000)  # the re-fetched record's version


def test_one_event_for_several_records_gives_one_upsert_each() -> None:
    events = of(map_change(cdc("Account", "UPDATE", ["001A", "001B", "001GONE"], {"Type": "Customer"}), world()))
    assert [e.crm_account_id for e in events if isinstance(e, CustomerAccountUpserted)] == ["001A", "001B"]
    assert len({e.meta.event_id for e in events}) == 2


def test_update_asks_the_lookups_for_what_it_lacks() -> None:
    with pytest.raises(NeedRecord) as info:
        map_change(cdc("Account", "UPDATE", ["001Z"], {"Name": "x"}), world())
    assert (info.value.entity, info.value.record_id) == ("Account", "001Z")


def test_merge_names_the_survivor_for_each_loser() -> None:
    snap = world()
    delete = cdc("Account", "DELETE", ["001B", "001C"], tx="tx-m", seq=3)
    child = cdc("Account", "UPDATE", ["001K"], {"ParentId": "001A"}, tx="tx-m", seq=1)
    survivor = cdc("Account", "UPDATE", ["001A"], {"LastModifiedDate": STAMP}, tx="tx-m", seq=5)
    snap.transactions["tx-m"] = [child["payload"], delete["payload"], survivor["payload"]]
    events = of(map_change(delete, snap))
    assert [(e.account_id, e.merged_account_id) for e in events if isinstance(e, CustomerAccountMerged)] == [
        ("001A", "001B"),
        ("001A", "001C"),
    ]
    (upsert,) = of(map_change(survivor, snap))  # the survivor's update is its full upsert
    assert isinstance(upsert, CustomerAccountUpserted) and upsert.crm_account_id == "001A"


# -- contracts ----------------------------------------------------------------------------------------


def test_activation_carries_the_active_lines_and_value() -> None:
    (event,) = of(map_change(cdc("Contract", "CREATE", ["800C"], CONTRACT), world()))
    assert isinstance(event, ContractActivated)
    assert (event.account_id, event.contract_id, event.term_months) == ("001A", "800C", 12)
    assert (event.start_date, event.end_date) == (datetime.date(2026, 1, 1), datetime.date(2026, 12, 31))
    assert [line.line_id for line in event.lines] == ["a0L1"]  # the removed line is not provisioned
    assert event.lines[0].unit_price.amount == Decimal("25.5")
    assert event.total_contract_value.amount == Decimal("10") * Decimal("25.5") * 12
    assert event.total_contract_value.currency == "EUR"
    assert event.billing_frequency is BillingFrequency.MONTHLY


def test_a_draft_contract_activated_later_is_an_activation() -> None:
    (event,) = of(map_change(cdc("Contract", "UPDATE", ["800C"], {"Status": "Activated"}), world()))
    assert isinstance(event, ContractActivated)


def test_renewal_contract_is_a_renewal_of_the_old_one() -> None:
    (event,) = of(map_change(cdc("Contract", "CREATE", ["800R"], {"Status": "Activated"}), world()))
    assert isinstance(event, ContractRenewed)
    assert (event.contract_id, event.renewal_contract_id, event.automatic) == ("800C", "800R", False)


def test_cancellation() -> None:
    update = cdc("Contract", "UPDATE", ["800X"], {"Status": "Terminated", "Cancellation_Date__c": "2026-06-30"})
    (event,) = of(map_change(update, world()))
    assert isinstance(event, ContractCancelled)
    assert event.effective_date == datetime.date(2026, 6, 30)
    assert event.reason is CancellationReason.NON_PAYMENT
    assert event.note == "Non-payment"


AMENDMENTS = {
    "quantity up": ("QuantityChange", 15, 25.5, 10, AmendmentType.UPSELL, Decimal("5") * Decimal("25.5") * 6),
    "quantity down": ("QuantityChange", 4, 25.5, 10, AmendmentType.DOWNSELL, Decimal("-6") * Decimal("25.5") * 6),
    "price change": ("PriceChange", 10, 30, 10, AmendmentType.PRICE_CHANGE, Decimal("10") * Decimal("4.5") * 6),
    "add product": ("AddProduct", 2, 100, None, AmendmentType.ADD_PRODUCT, Decimal("200") * 6),
    "remove product": ("RemoveProduct", 0, 25.5, 10, AmendmentType.REMOVE_PRODUCT, Decimal("-255") * 6),
}


@pytest.mark.parametrize("kind, qty, price, previous, expected, delta", AMENDMENTS.values(), ids=AMENDMENTS.keys())
def test_amendments(
    kind: str, qty: int, price: float, previous: int | None, expected: AmendmentType, delta: Decimal
) -> None:
    fields: dict[str, Any] = {
        "Contract__c": "800C",
        "Type__c": kind,
        "Product_Code__c": "SEAT",
        "Quantity__c": qty,
        "Unit_Price__c": price,
        "Effective_Date__c": "2026-07-01",
        "End_Date__c": "2026-12-31",
        "Contract_Line__c": "a0L1",
        "LastModifiedDate": STAMP,
    }
    if previous is not None:
        fields.update(Previous_Quantity__c=previous, Previous_Unit_Price__c=25.5)
    (event,) = of(map_change(cdc("Amendment__c", "CREATE", ["a0A1"], fields), world()))
    assert isinstance(event, ContractAmended)
    assert (event.account_id, event.contract_id, event.amendment_id) == ("001A", "800C", "a0A1")
    assert event.amendment_type is expected
    assert (event.effective_date, event.co_term_end_date) == (datetime.date(2026, 7, 1), datetime.date(2026, 12, 31))
    assert event.changed_lines[0].quantity == Decimal(qty)
    assert event.delta_contract_value.amount == delta


# -- identity and bad input ---------------------------------------------------------------------------


def test_a_redelivered_change_is_the_same_event() -> None:
    first = of(map_change(cdc("Account", "UPDATE", ["001A"], {"Name": "x"}, replay=100), world()))
    again = of(map_change(cdc("Account", "UPDATE", ["001A"], {"Name": "x"}, replay=100), world()))
    assert [e.meta.event_id for e in first] == [e.meta.event_id for e in again]
    assert first[0].meta.event_id == stable_event_id("tx-1:1", "001A", CustomerAccountUpserted)


def test_different_changes_are_different_events() -> None:
    one = of(map_change(cdc("Account", "UPDATE", ["001A"], {"Name": "x"}, seq=1), world()))
    two = of(map_change(cdc("Account", "UPDATE", ["001A"], {"Name": "x"}, seq=2), world()))
    other_tx = of(map_change(cdc("Account", "UPDATE", ["001A"], {"Name": "x"}, tx="tx-2"), world()))
    assert len({one[0].meta.event_id, two[0].meta.event_id, other_tx[0].meta.event_id}) == 3


BAD = {
    "no header": ({"payload": {"Name": "x"}}, "no ChangeEventHeader"),
    "no record ids": (cdc("Account", "UPDATE", []), "recordIds"),
    "unknown change type": (cdc("Account", "MERGE", ["001A"]), "changeType 'MERGE'"),
    "country not a code": (
        cdc("Account", "CREATE", ["001N"], {**ACCOUNT, "BillingCountry": "Germany"}),
        "BillingCountry 'Germany'",
    ),
    "amendment of an unknown contract": (
        cdc("Amendment__c", "CREATE", ["a0A1"], {"Contract__c": "800NONE", "Type__c": "PriceChange"}),
        "800NONE",
    ),
}


@pytest.mark.parametrize("event, message", BAD.values(), ids=BAD.keys())
def test_bad_input_says_what_to_fix(event: dict[str, Any], message: str) -> None:
    snap = world()
    snap.records[("Contract", "800NONE")] = None
    with pytest.raises(MappingError, match=message):
        map_change(event, snap)
