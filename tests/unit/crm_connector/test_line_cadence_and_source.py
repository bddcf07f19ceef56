"""Contract lines' billing frequency / usage flag, and the CRM source as accord.ingest sees it (ids, versions)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from accord.events import BillingFrequency, ContractActivated, CustomerAccountUpserted
from accord.ingest import Delivery, EntityVersion, Ignored, Mapped
from accord.ingest import MappingError as IngestMappingError
from accord_crm_connector.inbound import identify, map_delivery
from accord_crm_connector.mapping import MappingError, Snapshot, line_cadence, map_change
from tests.unit.crm_connector.test_mapping import ACCOUNT, CONTRACT, LINES, OURS, STAMP_US, cdc, world

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Annual", (BillingFrequency.ANNUAL, False)),
        ("Monthly", (BillingFrequency.MONTHLY, False)),
        ("Usage", (BillingFrequency.MONTHLY, True)),
        (None, (None, False)),
    ],
    ids=["annual", "monthly", "usage is metered, invoiced monthly", "absent: the contract's"],
)
def test_line_cadence(value: str | None, expected: tuple[BillingFrequency | None, bool]) -> None:
    assert line_cadence(value, "line") == expected


def test_an_unknown_frequency_is_a_mapping_error_naming_the_field() -> None:
    with pytest.raises(MappingError, match="Billing_Frequency__c 'Weekly'"):
        line_cadence("Weekly", "Contract_Line__c a0L1")


def test_activation_lines_carry_frequency_and_usage() -> None:
    lines = [
        {**LINES[0], "Id": "a0L1", "Billing_Frequency__c": "Annual"},
        {**LINES[0], "Id": "a0L3", "Product_Code__c": "API", "Billing_Frequency__c": "Usage"},
    ]
    snap = world()
    snap.lines["800C"] = lines
    result = map_change(cdc("Contract", "CREATE", ["800C"], CONTRACT), snap)
    assert isinstance(result, list)
    (event,) = result
    assert isinstance(event, ContractActivated)
    assert [(x.line_id, x.billing_frequency, x.usage_based) for x in event.lines] == [
        ("a0L1", BillingFrequency.ANNUAL, False),
        ("a0L3", BillingFrequency.MONTHLY, True),
    ]


def delivery(change: dict[str, Any]) -> Delivery:
    event_id, event_type = identify(change)
    return Delivery("crm", event_id, event_type, change, datetime.datetime.now(datetime.UTC))


def test_identify_is_the_change_and_its_first_record() -> None:
    change = cdc("Account", "UPDATE", ["001A", "001B"], {"Name": "x"}, tx="tx-9", seq=3)
    assert identify(change) == ("tx-9:3/001A", "Account/UPDATE")
    # the same change by replay (other replay id, same header) is the same delivery
    assert identify({**change, "event": {"replayId": 999}}) == identify(change)


def test_identify_refuses_what_is_no_change_event() -> None:
    with pytest.raises(IngestMappingError, match="ChangeEventHeader"):
        identify({"id": "evt_1", "type": "invoice.paid"})


def test_a_change_of_two_records_is_two_versioned_events_with_the_mappers_ids() -> None:
    change = cdc("Account", "UPDATE", ["001A", "001B"], {"Name": "x"})
    result = map_delivery(delivery(change), world())
    assert isinstance(result, Mapped)
    upserts = [e for e in result.events if isinstance(e, CustomerAccountUpserted)]
    assert [u.crm_account_id for u in upserts] == ["001A", "001B"]
    assert len({u.meta.event_id for u in upserts}) == 2
    assert [(e.entity_type, e.entity_id) for e in result.entities if e is not None] == [
        ("Account", "001A"),
        ("Account", "001B"),
    ]
    by_id = {e.entity_id: e for e in result.entities if isinstance(e, EntityVersion)}
    assert by_id["001B"].version == STAMP_US  # the record's LastModifiedDate, from meta.entity_version


def test_our_own_write_back_is_ignored_with_its_reason() -> None:
    change = cdc("Account", "UPDATE", ["001A"], {**ACCOUNT}, origin=f"com/salesforce/api/rest/60.0;client={OURS}")
    result = map_delivery(delivery(change), Snapshot(OURS, {}, {}, {}))
    assert isinstance(result, Ignored) and "our own write-back" in result.reason


def test_a_contract_without_currency_is_a_mapping_error_naming_the_field() -> None:
    snap = world()
    snap.records[("Contract", "800C")] = {**CONTRACT, "CurrencyIsoCode": None}
    with pytest.raises(MappingError, match="CurrencyIsoCode None is not an ISO 4217 code"):
        map_change(cdc("Contract", "CREATE", ["800C"], CONTRACT), snap)
