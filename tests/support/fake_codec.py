"""A stand-in codec for pure unit tests of the runtime's logic: JSON behind a zero byte, no registry.

Integration tests use the real Confluent-format codec against the real registry instead.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from accord.events import event_class
from accord.runtime import DecodeError


class Decoded(NamedTuple):
    event: Any
    schema_id: int


class FakeCodec:
    def encode(self, topic: str, event: Any) -> bytes:
        return b"\x00" + json.dumps({"type": event.AVRO_NAME, "event": event.model_dump(mode="json")}).encode()

    def decode(self, topic: str, data: bytes) -> Decoded:
        if not data.startswith(b"\x00"):
            raise DecodeError(f"unknown magic byte {data[:1]!r}")
        try:
            body = json.loads(data[1:])
            return Decoded(event_class(body["type"]).model_validate(body["event"]), 0)
        except (ValueError, KeyError) as exc:
            raise DecodeError(f"undecodable body: {type(exc).__name__}") from None
