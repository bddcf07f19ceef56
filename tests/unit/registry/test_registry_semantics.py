"""Registry semantics on the in-memory log: ids, versions, deletes, references, config, modes.

The same `Registry` runs over Kafka in production; here its log is `MemoryLog`, and every test also
replays the records it wrote into a fresh `State` to show the records alone carry the whole state.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from accord_registry import records
from accord_registry.errors import RegistryError
from accord_registry.registry import MemoryLog, Registry
from accord_registry.state import State

pytestmark = pytest.mark.unit


def schema(*fields: tuple[str, Any], name: str = "Invoice") -> dict[str, Any]:
    return {
        "schema": json.dumps(
            {
                "type": "record",
                "name": name,
                "namespace": "accord.t",
                "fields": [{"name": n, "type": t, **({"default": d} if d is not ... else {})} for n, t, d in fields],
            }
        )
    }


def field(name: str, type_: Any, default: Any = ...) -> tuple[str, Any, Any]:
    return (name, type_, default)


V1 = schema(field("id", "string"))
V2 = schema(field("id", "string"), field("tax", "long", 0))


@pytest.fixture
def registry() -> Registry:
    state = State()
    return Registry(state, MemoryLog(state))


def replayed(registry: Registry) -> State:
    log = registry.log
    assert isinstance(log, MemoryLog)
    fresh = State()
    for key, value in log.records:
        fresh.apply(*records.decode(key, value))
    return fresh


def code(exc: pytest.ExceptionInfo[RegistryError]) -> int:
    return exc.value.code


async def test_same_schema_twice_gives_same_id_and_no_new_version(registry: Registry) -> None:
    first = await registry.register("s", V1, normalize=False)
    again = await registry.register("s", {"schema": json.dumps(json.loads(V1["schema"]), indent=2)}, normalize=False)
    assert first == again == 1
    assert [sv.version for sv in registry.live_versions("s")] == [1]


async def test_ids_are_global_and_versions_per_subject(registry: Registry) -> None:
    assert await registry.register("a", V1, normalize=False) == 1
    assert await registry.register("b", V1, normalize=False) == 1  # same schema elsewhere: same id
    assert await registry.register("a", V2, normalize=False) == 2
    assert [sv.version for sv in registry.live_versions("b")] == [1]
    assert [sv.version for sv in registry.live_versions("a")] == [1, 2]


async def test_concurrent_identical_registrations_yield_one_id_and_one_version(registry: Registry) -> None:
    ids = await asyncio.gather(*(registry.register("s", V1, normalize=False) for _ in range(20)))
    assert set(ids) == {1}
    assert len(registry.state.versions("s", include_deleted=True)) == 1


async def test_incompatible_schema_is_409_with_the_rule(registry: Registry) -> None:
    await registry.register("s", V1, normalize=False)
    with pytest.raises(RegistryError) as exc:
        await registry.register("s", schema(field("id", "string"), field("tax", "long")), normalize=False)
    assert exc.value.status == 409 and "READER_FIELD_MISSING_DEFAULT_VALUE" in exc.value.message


async def test_soft_then_hard_delete_of_a_subject(registry: Registry) -> None:
    await registry.register("s", V1, normalize=False)
    await registry.register("s", V2, normalize=False)
    with pytest.raises(RegistryError) as exc:
        await registry.delete_subject("s", permanent=True)
    assert code(exc) == 40405
    assert await registry.delete_subject("s", permanent=False) == [1, 2]
    with pytest.raises(RegistryError) as exc:
        registry.get_version("s", "latest")
    assert code(exc) == 40401
    assert registry.get_version("s", "1", deleted=True).deleted
    with pytest.raises(RegistryError) as exc:
        await registry.delete_subject("s", permanent=False)
    assert code(exc) == 40404
    assert await registry.delete_subject("s", permanent=True) == [1, 2]
    assert "s" not in registry.state.subjects
    assert 1 in registry.state.schemas  # ids are never reused: the schema stays readable by id
    assert replayed(registry).snapshot() == registry.state.snapshot()


async def test_soft_then_hard_delete_of_a_version(registry: Registry) -> None:
    await registry.register("s", V1, normalize=False)
    await registry.register("s", V2, normalize=False)
    with pytest.raises(RegistryError) as exc:
        await registry.delete_version("s", "1", permanent=True)
    assert code(exc) == 40407
    assert await registry.delete_version("s", "1", permanent=False) == 1
    with pytest.raises(RegistryError) as exc:
        await registry.delete_version("s", "1", permanent=False)
    assert code(exc) == 40406
    assert await registry.delete_version("s", "1", permanent=True) == 1
    with pytest.raises(RegistryError) as exc:
        registry.get_version("s", "1", deleted=True)
    assert code(exc) == 40402
    assert registry.get_version("s", "latest").version == 2
    assert replayed(registry).snapshot() == registry.state.snapshot()


async def test_reregistering_a_soft_deleted_schema_makes_a_new_version_with_the_same_id(registry: Registry) -> None:
    await registry.register("s", V1, normalize=False)
    await registry.delete_version("s", "1", permanent=False)
    assert await registry.register("s", V1, normalize=False) == 1
    assert [sv.version for sv in registry.live_versions("s")] == [2]


async def test_bad_versions_are_42202(registry: Registry) -> None:
    await registry.register("s", V1, normalize=False)
    for bad in ("0", "-2", "abc", str(2**31)):
        with pytest.raises(RegistryError) as exc:
            registry.get_version("s", bad)
        assert code(exc) == 42202, bad
    assert registry.get_version("s", "-1").version == 1


async def test_references_resolve_and_block_deletion(registry: Registry) -> None:
    money = {
        "schema": json.dumps(
            {"type": "record", "name": "Money", "namespace": "accord.t", "fields": [{"name": "c", "type": "string"}]}
        )
    }
    money_id = await registry.register("money", money, normalize=False)
    invoice = {
        "schema": json.dumps(
            {
                "type": "record",
                "name": "Invoice",
                "namespace": "accord.t",
                "fields": [{"name": "total", "type": "accord.t.Money"}],
            }
        ),
        "references": [{"name": "accord.t.Money", "subject": "money", "version": 1}],
    }
    invoice_id = await registry.register("invoice", invoice, normalize=False)
    assert invoice_id != money_id
    assert registry.state.referenced_by("money", 1) == [invoice_id]
    with pytest.raises(RegistryError) as exc:
        await registry.delete_subject("money", permanent=False)
    assert code(exc) == 42206
    missing = {**invoice, "references": [{"name": "accord.t.Money", "subject": "money", "version": 7}]}
    with pytest.raises(RegistryError) as exc:
        await registry.register("other", missing, normalize=False)
    assert code(exc) == 42201


async def test_normalize_finds_an_equivalent_spelling(registry: Registry) -> None:
    sid = await registry.register("s", V1, normalize=True)
    respelled = {
        "schema": '{"name":"accord.t.Invoice","type":"record","fields":[{"type":{"type":"string"},"name":"id"}]}'
    }
    assert (await registry.register("s", respelled, normalize=True)) == sid
    assert registry.lookup("s", respelled, normalize=True, deleted=False)["version"] == 1
    with pytest.raises(RegistryError) as exc:
        registry.lookup("s", respelled, normalize=False, deleted=False)
    assert code(exc) == 40403


async def test_config_levels_global_and_per_subject(registry: Registry) -> None:
    assert registry.get_config(None, default_to_global=False) == "BACKWARD"
    with pytest.raises(RegistryError) as exc:
        registry.get_config("s", default_to_global=False)
    assert code(exc) == 40408
    assert await registry.set_config("s", {"compatibility": "none"}) == "NONE"
    await registry.register("s", V1, normalize=False)
    assert await registry.register("s", schema(field("id", "long")), normalize=False) == 2  # NONE allows it
    assert await registry.set_config(None, {"compatibility": "FULL"}) == "FULL"
    assert registry.get_config("other", default_to_global=True) == "FULL"
    assert await registry.delete_config("s") == "NONE"
    with pytest.raises(RegistryError) as exc:
        await registry.set_config(None, {"compatibility": "SIDEWAYS"})
    assert code(exc) == 42203
    assert await registry.delete_config(None) == "FULL"
    assert registry.get_config(None, default_to_global=False) == "BACKWARD"
    assert replayed(registry).snapshot() == registry.state.snapshot()


async def test_read_only_mode_refuses_writes_with_42205(registry: Registry) -> None:
    await registry.register("s", V1, normalize=False)
    assert await registry.set_mode("s", {"mode": "READONLY"}, force=False) == "READONLY"
    with pytest.raises(RegistryError) as exc:
        await registry.register("s", V2, normalize=False)
    assert code(exc) == 42205
    assert await registry.register("t", V2, normalize=False) == 2  # other subjects are not affected
    assert await registry.delete_mode("s") == "READONLY"
    assert await registry.register("s", V2, normalize=False) == 2
    with pytest.raises(RegistryError) as exc:
        await registry.set_mode(None, {"mode": "IMPORT"}, force=False)
    assert code(exc) == 42205
    with pytest.raises(RegistryError) as exc:
        await registry.set_mode(None, {"mode": "WHATEVER"}, force=False)
    assert code(exc) == 42204


async def test_import_mode_keeps_given_ids_and_versions(registry: Registry) -> None:
    await registry.set_mode(None, {"mode": "IMPORT"}, force=False)
    assert await registry.register("s", {**V1, "id": 42, "version": 3}, normalize=False) == 42
    assert registry.get_version("s", "3").schema_id == 42
    await registry.set_mode(None, {"mode": "READWRITE"}, force=False)
    assert await registry.register("s", V2, normalize=False) == 43
    with pytest.raises(RegistryError) as exc:
        await registry.register("t", {**V1, "id": 7}, normalize=False)
    assert code(exc) == 42205


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"schema": ""},
        {"schema": 5},
        {"schema": "{}"},
        {"schema": '"int"', "schemaType": "PROTOBUF"},
        {"schema": '"int"', "references": "x"},
        {"schema": '"int"', "references": [{"name": "a"}]},
    ],
    ids=["none", "list", "empty", "blank", "number", "no type", "protobuf", "refs not list", "ref incomplete"],
)
async def test_bad_bodies_are_422_never_a_crash(registry: Registry, body: Any) -> None:
    with pytest.raises(RegistryError) as exc:
        await registry.register("s", body, normalize=False)
    assert exc.value.status == 422 and exc.value.code == 42201


def test_records_use_confluent_key_order() -> None:
    assert records.schema_key("s", 1) == b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}'
    assert records.config_key(None) == b'{"keytype":"CONFIG","subject":null,"magic":0}'
    assert records.delete_subject_key("s") == b'{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}'
    assert records.mode_key("s") == b'{"keytype":"MODE","subject":"s","magic":0}'
    assert records.noop_key() == b'{"keytype":"NOOP","magic":0}'


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, b"{}"),
        (b"nope", None),
        (b'{"keytype":"WHAT"}', None),
        (b'{"keytype":"SCHEMA"}', b"[1]"),
        (b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}', b'{"subject":"s"}'),
    ],
    ids=["no key", "key not json", "unknown keytype", "value not object", "value lacks fields"],
)
def test_poison_records_raise_bad_record_and_leave_state_alone(key: bytes | None, value: bytes | None) -> None:
    state = State()
    with pytest.raises(records.BadRecord):
        state.apply(*records.decode(key, value))
    assert state.snapshot() == State().snapshot()


def test_karapace_style_key_order_is_read_too() -> None:
    state = State()
    key = b'{"subject":"s","version":1,"magic":1,"keytype":"SCHEMA"}'
    value = b'{"subject":"s","version":1,"id":3,"schema":"\\"int\\"","deleted":false}'
    state.apply(*records.decode(key, value))
    assert state.versions("s")[0].schema_id == 3
