"""What the registry does: register, look up, delete, configure, check compatibility.

Reads answer from `State`. A write (1) takes the write lock, (2) waits until the state has applied
every record already in the log, so it decides on the newest state, (3) decides, and (4) appends its
record and waits until the state has applied that record too. Only then is it answered, so what a client
was told is always what the topic says. `Log` is the topic (`KafkaLog`) or its in-memory twin (`MemoryLog`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from accord.avro import AvroSchema, AvroSchemaError, Level, Result, check, parse_avro

from . import errors, records
from .errors import RegistryError
from .records import Reference
from .state import State, SubjectVersion, identity

MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT")
MAX_VERSION = 2**31 - 1


class Log(Protocol):
    async def append(self, key: bytes, value: bytes | None) -> None:
        """Write one record; return once the state has applied it."""
        ...

    async def sync(self) -> None:
        """Return once the state has applied every record the log held when this was called."""
        ...


class MemoryLog:
    """The in-memory twin of `KafkaLog`, for unit tests: records apply at once, in order."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.records: list[tuple[bytes, bytes | None]] = []

    async def append(self, key: bytes, value: bytes | None) -> None:
        self.records.append((key, value))
        self.state.apply(*records.decode(key, value))

    async def sync(self) -> None:
        return None


def parse_version(text: str | int) -> int | None:
    """A version from a URL: a number in [1, 2^31-1], or None for the latest ('latest' or -1)."""
    raw = str(text)
    if raw == "latest" or raw == "-1":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_version(raw) from None
    if not 1 <= value <= MAX_VERSION:
        raise errors.invalid_version(raw)
    return value


class Registry:
    def __init__(self, state: State, log: Log, *, default_level: str = "BACKWARD") -> None:
        self.state = state
        self.log = log
        self.default_level = Level(default_level)
        self._lock = asyncio.Lock()
        self._parsed: dict[tuple[int, bool], AvroSchema] = {}

    # -- levels and modes ---------------------------------------------------------------------

    def level_of(self, subject: str | None) -> Level:
        if subject is not None and subject in self.state.configs:
            return Level.parse(self.state.configs[subject]) or self.default_level
        return Level.parse(self.state.global_level) or self.default_level

    def _require_writable(self, subject: str) -> None:
        mode = self.state.mode_of(subject)
        if mode in ("READONLY", "READONLY_OVERRIDE"):
            raise RegistryError(422, 42205, f"Subject {subject} is in read-only mode")

    # -- parsing ------------------------------------------------------------------------------

    def _references(self, raw: Any) -> tuple[Reference, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise errors.invalid_schema("'references' must be a list of {name, subject, version}")
        refs = []
        for item in raw:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("name", "subject")):
                raise errors.invalid_schema(f"reference {item!r} needs 'name', 'subject' and 'version'")
            version = item.get("version")
            if not isinstance(version, int) or isinstance(version, bool):
                raise errors.invalid_schema(f"reference {item['name']!r} needs an integer 'version'")
            if version == -1:
                latest = self.state.versions(item["subject"])
                if not latest:
                    raise errors.invalid_schema(f"reference {item['name']!r}: subject {item['subject']!r} not found")
                version = latest[-1].version
            refs.append(Reference(item["name"], item["subject"], version))
        return tuple(refs)

    def _resolve(self, refs: tuple[Reference, ...], chain: tuple[int, ...] = ()) -> list[AvroSchema]:
        resolved = []
        for ref in refs:
            sv = self.state.subjects.get(ref.subject, {}).get(ref.version)
            if sv is None:
                raise errors.invalid_schema(
                    f"reference {ref.name!r} names subject {ref.subject!r} version {ref.version}, which does not exist"
                )
            if sv.schema_id in chain:
                raise errors.invalid_schema(f"references form a cycle through schema id {sv.schema_id}")
            resolved.append(self.parsed(sv.schema_id, (*chain, sv.schema_id)))
        return resolved

    def parsed(self, schema_id: int, chain: tuple[int, ...] = ()) -> AvroSchema:
        """A stored schema, parsed once and kept."""
        cached = self._parsed.get((schema_id, False))
        if cached is not None:
            return cached
        stored = self.state.schemas.get(schema_id)
        if stored is None:
            raise errors.schema_not_found(f"Schema {schema_id} not found")
        if stored.schema_type != "AVRO":
            raise errors.invalid_schema(f"schema id {schema_id} is {stored.schema_type}; only AVRO is supported")
        try:
            schema = parse_avro(stored.text, self._resolve(stored.references, chain or (schema_id,)))
        except AvroSchemaError as exc:
            raise errors.invalid_schema(f"stored schema id {schema_id} does not parse: {exc}") from exc
        self._parsed[(schema_id, False)] = schema
        return schema

    def parse_request(self, body: Any, *, normalize: bool) -> tuple[AvroSchema, tuple[Reference, ...]]:
        if not isinstance(body, Mapping):
            raise errors.invalid_schema("the request body must be a JSON object with a 'schema'")
        text = body.get("schema")
        if not isinstance(text, str) or not text.strip():
            raise RegistryError(422, 42201, "Empty schema: the body needs 'schema', the schema as a JSON string")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type != "AVRO":
            raise errors.invalid_schema(
                f"schemaType {schema_type!r} is not supported: this registry supports AVRO only (see /schemas/types)"
            )
        refs = self._references(body.get("references"))
        try:
            return parse_avro(text, self._resolve(refs), normalize=normalize), refs
        except AvroSchemaError as exc:
            raise errors.invalid_schema(str(exc)) from exc

    # -- subjects and versions ----------------------------------------------------------------

    def live_versions(self, subject: str) -> list[SubjectVersion]:
        return self.state.versions(subject)

    def get_version(self, subject: str, version: str, *, deleted: bool = False) -> SubjectVersion:
        number = parse_version(version)
        every = self.state.versions(subject, include_deleted=True)
        if not every or (not deleted and not any(not sv.deleted for sv in every)):
            raise errors.subject_not_found(subject)
        if number is None:
            live = [sv for sv in every if deleted or not sv.deleted]
            return live[-1]
        for sv in every:
            if sv.version == number and (deleted or not sv.deleted):
                return sv
        raise errors.version_not_found(subject, number)

    def version_json(self, sv: SubjectVersion) -> dict[str, Any]:
        stored = self.state.schemas[sv.schema_id]
        out: dict[str, Any] = {"subject": sv.subject, "version": sv.version, "id": sv.schema_id}
        if stored.schema_type != "AVRO":
            out["schemaType"] = stored.schema_type
        if stored.references:
            out["references"] = [r.to_json() for r in stored.references]
        out["schema"] = stored.text
        return out

    def _matching(
        self, subject: str, schema: AvroSchema, refs: tuple[Reference, ...], *, normalize: bool, deleted: bool
    ) -> SubjectVersion | None:
        wanted = identity("AVRO", schema.text, refs)
        for sv in reversed(self.state.versions(subject, include_deleted=deleted)):
            stored = self.state.schemas[sv.schema_id]
            if stored.identity == wanted:
                return sv
            if normalize and stored.references == refs and self.parsed(sv.schema_id).normalized == schema.normalized:
                return sv
        return None

    def lookup(self, subject: str, body: Any, *, normalize: bool, deleted: bool) -> dict[str, Any]:
        schema, refs = self.parse_request(body, normalize=normalize)
        if not self.state.versions(subject, include_deleted=deleted):
            raise errors.subject_not_found(subject)
        found = self._matching(subject, schema, refs, normalize=normalize, deleted=deleted)
        if found is None:
            raise errors.schema_not_found("Schema not found")
        return self.version_json(found)

    async def register(self, subject: str, body: Any, *, normalize: bool) -> int:
        if not subject or any(ord(c) < 32 for c in subject):
            raise RegistryError(422, 42208, f"Invalid subject {subject!r}: it must be non-empty printable text")
        schema, refs = self.parse_request(body, normalize=normalize)
        wanted_id = body.get("id") if isinstance(body, Mapping) else None
        wanted_version = body.get("version") if isinstance(body, Mapping) else None
        if wanted_id is None and wanted_version is None and self.state.mode_of(subject) == "READWRITE":
            # already registered here: the answer needs no write, so no lock and no round trip to Kafka
            known = self._matching(subject, schema, refs, normalize=normalize, deleted=False)
            if known is not None:
                return known.schema_id
        async with self._lock:
            await self.log.sync()
            self._require_writable(subject)
            importing = self.state.mode_of(subject) == "IMPORT"
            if not importing and (wanted_id not in (None, -1) or wanted_version not in (None, -1)):
                raise RegistryError(
                    422, 42205, f"Subject {subject} is not in import mode: 'id' and 'version' cannot be given"
                )
            existing = self._matching(subject, schema, refs, normalize=normalize, deleted=False)
            if existing is not None and wanted_id in (None, -1, existing.schema_id):
                return existing.schema_id
            if not importing:
                result = self.check_new(subject, schema, self.level_of(subject))
                if not result.compatible:
                    raise RegistryError(
                        409,
                        409,
                        f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
                        f"details: [{', '.join(result.messages)}]",
                    )
            ident = identity("AVRO", schema.text, refs)
            schema_id = self._choose_id(ident, wanted_id)
            every = self.state.versions(subject, include_deleted=True)
            version = (every[-1].version + 1) if every else 1
            if importing and isinstance(wanted_version, int) and wanted_version > 0:
                if any(sv.version == wanted_version for sv in every):
                    raise RegistryError(422, 42205, f"Subject {subject} already has version {wanted_version}")
                version = wanted_version
            await self.log.append(
                records.schema_key(subject, version),
                records.schema_value(
                    subject=subject,
                    version=version,
                    schema_id=schema_id,
                    schema=schema.text,
                    deleted=False,
                    references=refs,
                ),
            )
            return schema_id

    def _choose_id(self, ident: tuple[str, str, tuple[Reference, ...]], wanted: Any) -> int:
        known = self.state.by_identity.get(ident)
        if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0:
            other = self.state.schemas.get(wanted)
            if other is not None and other.identity != ident:
                raise RegistryError(
                    422, 42205, f"Overwrite new schema with id {wanted} is not permitted: it holds another schema"
                )
            return wanted
        return known if known is not None else self.state.max_id + 1

    def check_new(self, subject: str, schema: AvroSchema, level: Level) -> Result:
        previous = [(sv.version, self.parsed(sv.schema_id)) for sv in self.state.versions(subject)]
        return check(level, schema, previous)

    def test_compatibility(self, subject: str, version: str | None, body: Any, *, normalize: bool) -> Result:
        schema, _ = self.parse_request(body, normalize=normalize)
        level = self.level_of(subject)
        if version is None:
            return self.check_new(subject, schema, level)
        if not self.state.versions(subject):
            if parse_version(version) is None:
                return Result((), ())  # Confluent: nothing registered yet, so anything is compatible
            raise errors.subject_not_found(subject)
        sv = self.get_version(subject, version)
        single = Level(level.value.replace("_TRANSITIVE", ""))
        return check(single, schema, [(sv.version, self.parsed(sv.schema_id))])

    # -- deletes ------------------------------------------------------------------------------

    def _refuse_if_referenced(self, subject: str, versions: list[SubjectVersion]) -> None:
        for sv in versions:
            users = self.state.referenced_by(subject, sv.version)
            if users:
                raise RegistryError(
                    422,
                    42206,
                    f"One or more references exist to the schema {{subject={subject}, version={sv.version}}}: "
                    f"schema ids {users} reference it; delete those first",
                )

    async def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        async with self._lock:
            await self.log.sync()
            self._require_writable(subject)
            every = self.state.versions(subject, include_deleted=True)
            if not every:
                raise errors.subject_not_found(subject)
            live = [sv for sv in every if not sv.deleted]
            if not permanent:
                if not live:
                    raise RegistryError(
                        404, 40404, f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
                    )
                self._refuse_if_referenced(subject, live)
                await self.log.append(
                    records.delete_subject_key(subject), records.delete_subject_value(subject, live[-1].version)
                )
                return [sv.version for sv in live]
            if live:
                raise RegistryError(
                    404,
                    40405,
                    f"Subject '{subject}' was not deleted first before being permanently deleted",
                )
            self._refuse_if_referenced(subject, every)
            for sv in every:
                await self.log.append(records.schema_key(subject, sv.version), None)
            if subject in self.state.configs:
                await self.log.append(records.config_key(subject), None)
            if subject in self.state.modes:
                await self.log.append(records.mode_key(subject), None)
            return [sv.version for sv in every]

    async def delete_version(self, subject: str, version: str, *, permanent: bool) -> int:
        number = parse_version(version)
        async with self._lock:
            await self.log.sync()
            self._require_writable(subject)
            every = self.state.versions(subject, include_deleted=True)
            if not every:
                raise errors.subject_not_found(subject)
            if number is None:
                pool = every if permanent else [sv for sv in every if not sv.deleted]
                if not pool:
                    raise errors.version_not_found(subject, version)
                sv = pool[-1]
            else:
                match = [sv for sv in every if sv.version == number]
                if not match:
                    raise errors.version_not_found(subject, number)
                sv = match[0]
            if not permanent:
                if sv.deleted:
                    raise RegistryError(
                        404,
                        40406,
                        f"Subject '{subject}' Version {sv.version} was soft deleted. "
                        "Set permanent=true to delete permanently",
                    )
                self._refuse_if_referenced(subject, [sv])
                stored = self.state.schemas[sv.schema_id]
                await self.log.append(
                    records.schema_key(subject, sv.version),
                    records.schema_value(
                        subject=subject,
                        version=sv.version,
                        schema_id=sv.schema_id,
                        schema=stored.text,
                        deleted=True,
                        schema_type=stored.schema_type,
                        references=stored.references,
                    ),
                )
                return sv.version
            if not sv.deleted:
                raise RegistryError(
                    404,
                    40407,
                    f"Subject '{subject}' Version {sv.version} was not deleted first before being permanently deleted",
                )
            self._refuse_if_referenced(subject, [sv])
            await self.log.append(records.schema_key(subject, sv.version), None)
            return sv.version

    # -- config and mode ----------------------------------------------------------------------

    def get_config(self, subject: str | None, *, default_to_global: bool) -> str:
        if subject is None:
            return self.level_of(None).value
        if subject in self.state.configs:
            return self.level_of(subject).value
        if default_to_global:
            return self.level_of(None).value
        raise RegistryError(404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured")

    async def set_config(self, subject: str | None, body: Any) -> str:
        raw = None
        if isinstance(body, Mapping):
            raw = body.get("compatibility", body.get("compatibilityLevel"))
        level = Level.parse(raw)
        if level is None:
            raise errors.invalid_compatibility(raw)
        async with self._lock:
            await self.log.sync()
            await self.log.append(records.config_key(subject), records.config_value(level.value))
        return level.value

    async def delete_config(self, subject: str | None) -> str:
        async with self._lock:
            await self.log.sync()
            if subject is None:
                previous = self.level_of(None).value
                await self.log.append(records.config_key(None), None)
                return previous
            if subject not in self.state.configs:
                if subject not in self.state.subjects:
                    raise errors.subject_not_found(subject)
                raise RegistryError(
                    404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
                )
            previous = self.state.configs[subject]
            await self.log.append(records.config_key(subject), None)
            return previous

    def get_mode(self, subject: str | None, *, default_to_global: bool) -> str:
        if subject is None or subject in self.state.modes or default_to_global:
            return self.state.mode_of(subject)
        raise RegistryError(404, 40409, f"Subject '{subject}' does not have subject-level mode configured")

    async def set_mode(self, subject: str | None, body: Any, *, force: bool) -> str:
        raw = body.get("mode") if isinstance(body, Mapping) else None
        mode = raw.upper() if isinstance(raw, str) else None
        if mode not in MODES:
            raise RegistryError(
                422, 42204, f"Invalid mode {raw!r}. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT"
            )
        async with self._lock:
            await self.log.sync()
            if mode == "IMPORT" and not force:
                has_schemas = (
                    bool(self.state.versions(subject, include_deleted=True))
                    if subject is not None
                    else bool(self.state.subjects)
                )
                if has_schemas:
                    raise RegistryError(
                        422,
                        42205,
                        "Cannot import since found existing subjects; set force=true to switch to IMPORT anyway",
                    )
            await self.log.append(records.mode_key(subject), records.mode_value(mode))
        return mode

    async def delete_mode(self, subject: str) -> str:
        async with self._lock:
            await self.log.sync()
            if subject not in self.state.modes:
                raise RegistryError(404, 40409, f"Subject '{subject}' does not have subject-level mode configured")
            previous = self.state.modes[subject]
            await self.log.append(records.mode_key(subject), None)
            return previous
