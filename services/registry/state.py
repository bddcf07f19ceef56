"""The registry's state in memory, built only by applying the records of the `_schemas` topic in order.

Applying is the single way state changes, at start-up (replay) and afterwards (the leader's own writes
come back through the topic too), so every instance that has read the same records holds the same state.
A record that cannot be applied raises `BadRecord`; the reader logs it with its offset and moves on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import records
from .records import BadRecord, Reference

DEFAULT_MODE = "READWRITE"


@dataclass
class StoredSchema:
    schema_id: int
    text: str
    schema_type: str
    references: tuple[Reference, ...]
    #: GET /schemas/ids/{id}, serialised once: the hot read path only copies bytes
    body: bytes = b""
    identity: tuple[str, str, tuple[Reference, ...]] = ("", "", ())

    def __post_init__(self) -> None:
        self.body = json.dumps(self.as_json(), separators=(",", ":"), ensure_ascii=False).encode()
        self.identity = identity(self.schema_type, self.text, self.references)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.text}
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [r.to_json() for r in self.references]
        return out


def identity(schema_type: str, text: str, references: tuple[Reference, ...]) -> tuple[str, str, tuple[Reference, ...]]:
    """Two schemas with the same identity get the same global id (formatting does not count)."""
    try:
        canonical = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        canonical = text
    return schema_type, canonical, references


@dataclass(frozen=True)
class SubjectVersion:
    subject: str
    version: int
    schema_id: int
    deleted: bool


@dataclass
class State:
    schemas: dict[int, StoredSchema] = field(default_factory=dict)
    subjects: dict[str, dict[int, SubjectVersion]] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    global_level: str | None = None
    modes: dict[str, str] = field(default_factory=dict)
    global_mode: str | None = None
    max_id: int = 0
    by_identity: dict[tuple[str, str, tuple[Reference, ...]], int] = field(default_factory=dict)

    # -- applying records ---------------------------------------------------------------------

    def apply(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        keytype = key["keytype"]
        try:
            if keytype == records.SCHEMA:
                if value is None:
                    self._hard_delete(str(key["subject"]), int(key["version"]))
                else:
                    self._schema(value)
            elif keytype == records.CONFIG:
                self._config(key.get("subject"), value)
            elif keytype == records.MODE:
                self._mode(key.get("subject"), value)
            elif keytype == records.DELETE_SUBJECT:
                if value is None:
                    raise BadRecord("DELETE_SUBJECT without a value")
                self._delete_subject(str(value["subject"]), int(value["version"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BadRecord):
                raise
            raise BadRecord(f"{keytype} record lacks or mistypes {exc}") from exc

    def _schema(self, value: dict[str, Any]) -> None:
        subject = value["subject"]
        version = int(value["version"])
        schema_id = int(value["id"])
        text = value["schema"]
        if not isinstance(subject, str) or not isinstance(text, str) or version < 1 or schema_id < 0:
            raise BadRecord(f"SCHEMA record with bad fields: subject={subject!r} version={version} id={schema_id}")
        refs = tuple(
            Reference(str(r["name"]), str(r["subject"]), int(r["version"])) for r in value.get("references") or ()
        )
        if schema_id not in self.schemas:
            stored = StoredSchema(schema_id, text, str(value.get("schemaType") or "AVRO"), refs)
            self.schemas[schema_id] = stored
            self.by_identity.setdefault(stored.identity, schema_id)
        self.max_id = max(self.max_id, schema_id)
        self.subjects.setdefault(subject, {})[version] = SubjectVersion(
            subject, version, schema_id, bool(value.get("deleted", False))
        )

    def _hard_delete(self, subject: str, version: int) -> None:
        versions = self.subjects.get(subject)
        if versions is None or version not in versions:
            return  # compaction or a replay may repeat a tombstone: nothing left to remove
        del versions[version]
        if not versions:
            del self.subjects[subject]

    def _delete_subject(self, subject: str, version: int) -> None:
        versions = self.subjects.get(subject, {})
        for v, sv in list(versions.items()):
            if v <= version and not sv.deleted:
                versions[v] = SubjectVersion(sv.subject, sv.version, sv.schema_id, True)

    def _config(self, subject: Any, value: dict[str, Any] | None) -> None:
        level = None if value is None else str(value["compatibilityLevel"]).upper()
        if subject is None:
            self.global_level = level
        elif level is None:
            self.configs.pop(str(subject), None)
        else:
            self.configs[str(subject)] = level

    def _mode(self, subject: Any, value: dict[str, Any] | None) -> None:
        mode = None if value is None else str(value["mode"]).upper()
        if subject is None:
            self.global_mode = mode
        elif mode is None:
            self.modes.pop(str(subject), None)
        else:
            self.modes[str(subject)] = mode

    # -- queries ------------------------------------------------------------------------------

    def versions(self, subject: str, *, include_deleted: bool = False) -> list[SubjectVersion]:
        """The subject's versions, oldest first."""
        found = self.subjects.get(subject, {})
        return [found[v] for v in sorted(found) if include_deleted or not found[v].deleted]

    def mode_of(self, subject: str | None) -> str:
        if subject is not None and subject in self.modes:
            return self.modes[subject]
        return self.global_mode or DEFAULT_MODE

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of schemas, still registered under some live version, that reference subject/version."""
        live_ids = {sv.schema_id for versions in self.subjects.values() for sv in versions.values() if not sv.deleted}
        return sorted(
            sid
            for sid, stored in self.schemas.items()
            if sid in live_ids and any(r.subject == subject and r.version == version for r in stored.references)
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything a client can observe, as plain data (restart tests compare two of these)."""
        return {
            "schemas": {
                i: (s.text, s.schema_type, [r.to_json() for r in s.references]) for i, s in self.schemas.items()
            },
            "subjects": {s: {v: (sv.schema_id, sv.deleted) for v, sv in vs.items()} for s, vs in self.subjects.items()},
            "configs": dict(self.configs),
            "global_level": self.global_level,
            "modes": dict(self.modes),
            "global_mode": self.global_mode,
        }
