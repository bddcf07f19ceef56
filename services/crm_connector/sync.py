"""The async edge of the pure mapper: fill its lookups from the CRM, read the replay, re-sync by query.

    tracker = CdcTracker("crm", **saved_state)
    try:
        for event, result in await catch_up(client, tracker):
            store(result); tracker.processed(event)        # in the connector's transaction
    except ReplayExpired:
        events = await resync(client, ["Account", "Contract"], since=last_good_time)

`map_with_client` runs `map_change` against a `Snapshot`; each record the mapper asks for and the snapshot
lacks (`NeedRecord`) is read from the CRM and the pure mapper runs again, so the mapper never does I/O and
the adapter never needs to know what the mapper will read.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from accord.events import Event

from .cdc import CdcTracker
from .crm_client import CrmClient
from .mapping import Ignore, MappingError, MapResult, NeedRecord, Snapshot, map_change, payload_of

#: reads one mapping may need (account; contract, its lines, its line; amendment…): more means a loop
MAX_READS = 20


def snapshot_for(client_id: str, events: Iterable[Mapping[str, Any]]) -> Snapshot:
    """An empty snapshot that knows the transactions of `events` (for merges: delete, then survivor update)."""
    transactions: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        header = payload_of(event).get("ChangeEventHeader")
        if isinstance(header, Mapping) and "transactionKey" in header:
            transactions.setdefault(str(header["transactionKey"]), []).append(payload_of(event))
    return Snapshot(own_client_id=client_id, records={}, lines={}, transactions=transactions)


async def map_with_client(event: Mapping[str, Any], client: CrmClient, snapshot: Snapshot) -> MapResult:
    for _ in range(MAX_READS):
        try:
            return map_change(event, snapshot)
        except NeedRecord as need:
            await _load(client, snapshot, need)
    raise MappingError(f"mapping needed more than {MAX_READS} record reads: a lookup loop in the mapper")


async def _load(client: CrmClient, snapshot: Snapshot, need: NeedRecord) -> None:
    if need.entity == "Contract_Line__c" and ("Contract", need.record_id) in snapshot.records:
        contract = snapshot.records[("Contract", need.record_id)] or {}
        created = str(contract.get("CreatedDate") or "1970-01-01T00:00:00Z")
        since = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
        snapshot.lines[need.record_id] = await client.contract_lines(need.record_id, created_since=since)
    else:
        snapshot.records[(need.entity, need.record_id)] = await client.record(need.entity, need.record_id)


async def catch_up(
    client: CrmClient, tracker: CdcTracker, *, limit: int = 100
) -> list[tuple[dict[str, Any], MapResult]]:
    """Every change after the tracker's last processed replay id, mapped (duplicates left out).

    The read runs to the end of the stream, so every transaction in it is whole (a merge's survivor update is
    there). The caller stores each result, then calls `tracker.processed(event)`. ReplayExpired propagates.
    """
    since = tracker.last_replay_id if tracker.last_replay_id is not None else -2
    events = await client.all_changes(since, limit=limit)
    snapshot = snapshot_for(client.client_id, events)
    out: list[tuple[dict[str, Any], MapResult]] = []
    for event in events:
        if tracker.observe(event, pushed=False).duplicate:
            continue
        out.append((event, await map_with_client(event, client, snapshot)))
    return out


def gap_update(entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A record read by query, as the GAP change event of itself (the re-sync's unit of work): GAP_UPDATE, or
    GAP_CREATE for an amendment (a fact once created: found changed since a time means created since then).

    The transaction key is `resync:<record id>:<LastModifiedDate>`: the same record re-read unchanged is the same
    change (and the same canonical event ids); a record changed since is a new one.
    """
    stamp = str(record.get("LastModifiedDate") or "")
    try:
        moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"{entity} {record.get('Id')}: LastModifiedDate {stamp!r} is not a timestamp") from None
    return {
        "ChangeEventHeader": {
            "entityName": entity,
            "recordIds": [record["Id"]],
            "changeType": "GAP_CREATE" if entity == "Amendment__c" else "GAP_UPDATE",
            "changeOrigin": "",
            "transactionKey": f"resync:{record['Id']}:{stamp}",
            "sequenceNumber": 0,
            "commitTimestamp": int(moment.timestamp() * 1000),
        }
    }


async def resync_changes(
    client: CrmClient, entities: Sequence[str], *, since: datetime.datetime
) -> list[tuple[dict[str, Any], Snapshot]]:
    """After INVALID_REPLAY_ID or GAP_OVERFLOW: every record changed since `since`, as a GAP_UPDATE event with a
    snapshot that already holds the record (the mapper reads the rest through `map_with_client`)."""
    out: list[tuple[dict[str, Any], Snapshot]] = []
    for entity in entities:
        for record in await client.changed_since(entity, since):
            snapshot = snapshot_for(client.client_id, [])
            snapshot.records[(entity, str(record["Id"]))] = record
            out.append((gap_update(entity, record), snapshot))
    return out


async def resync(client: CrmClient, entities: Sequence[str], *, since: datetime.datetime) -> list[Event]:
    """After INVALID_REPLAY_ID: every record changed since `since`, mapped as a GAP_UPDATE of itself.

    Versions come from each record's LastModifiedDate (as on the stream), and ids from (record, version), so a
    record re-synced twice unchanged is the same canonical event. Deletions are not events in the catalogue.
    """
    out: list[Event] = []
    for event, snapshot in await resync_changes(client, entities, since=since):
        result = await map_with_client(event, client, snapshot)
        if not isinstance(result, Ignore):
            out += result
    return out
