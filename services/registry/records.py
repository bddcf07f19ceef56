"""The records of the `_schemas` topic, in the format Confluent's registry and Karapace both read and write.

Keys are JSON objects with their properties in Confluent's canonical order (keytype, subject, version,
magic), compact; the SCHEMA key has magic 1, the others magic 0. Values are JSON objects; a hard delete is
a tombstone (no value) on the SCHEMA key, and removing a subject's config or mode is a tombstone on its key.

    SCHEMA          {"subject", "version", "id", "schema", "deleted"[, "schemaType", "references"]}
    CONFIG          {"compatibilityLevel": "BACKWARD"}       (subject null: the global level)
    MODE            {"mode": "READONLY"}                     (subject null: the global mode)
    DELETE_SUBJECT  {"subject", "version"}                   (soft-deletes every version up to `version`)
    NOOP            no value
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SCHEMA = "SCHEMA"
CONFIG = "CONFIG"
MODE = "MODE"
DELETE_SUBJECT = "DELETE_SUBJECT"
NOOP = "NOOP"
KEYTYPES = frozenset({SCHEMA, CONFIG, MODE, DELETE_SUBJECT, NOOP})


@dataclass(frozen=True)
class Reference:
    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def schema_key(subject: str, version: int) -> bytes:
    return _dump({"keytype": SCHEMA, "subject": subject, "version": version, "magic": 1})


def schema_value(
    *,
    subject: str,
    version: int,
    schema_id: int,
    schema: str,
    deleted: bool,
    schema_type: str = "AVRO",
    references: tuple[Reference, ...] = (),
) -> bytes:
    value: dict[str, Any] = {
        "subject": subject,
        "version": version,
        "id": schema_id,
        "schema": schema,
        "deleted": deleted,
    }
    if schema_type != "AVRO":
        value["schemaType"] = schema_type
    if references:
        value["references"] = [r.to_json() for r in references]
    return _dump(value)


def config_key(subject: str | None) -> bytes:
    return _dump({"keytype": CONFIG, "subject": subject, "magic": 0})


def config_value(level: str) -> bytes:
    return _dump({"compatibilityLevel": level})


def mode_key(subject: str | None) -> bytes:
    return _dump({"keytype": MODE, "subject": subject, "magic": 0})


def mode_value(mode: str) -> bytes:
    return _dump({"mode": mode})


def delete_subject_key(subject: str) -> bytes:
    return _dump({"keytype": DELETE_SUBJECT, "subject": subject, "magic": 0})


def delete_subject_value(subject: str, version: int) -> bytes:
    return _dump({"subject": subject, "version": version})


def noop_key() -> bytes:
    return _dump({"keytype": NOOP, "magic": 0})


class BadRecord(ValueError):
    """A record of the topic that is not in the format above; it is logged and skipped, never fatal."""


def decode(key: bytes | None, value: bytes | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The key and value of a record as JSON objects (value None for a tombstone)."""
    if not key:
        raise BadRecord("the record has no key")
    try:
        k = json.loads(key)
    except ValueError as exc:
        raise BadRecord(f"the key is not JSON: {exc}") from exc
    if not isinstance(k, dict) or k.get("keytype") not in KEYTYPES:
        raise BadRecord(f"the key has no known keytype: {key[:200]!r}")
    if not value:
        return k, None
    try:
        v = json.loads(value)
    except ValueError as exc:
        raise BadRecord(f"the value is not JSON: {exc}") from exc
    if v is None:
        return k, None
    if not isinstance(v, dict):
        raise BadRecord(f"the value is not a JSON object: {value[:200]!r}")
    return k, v
