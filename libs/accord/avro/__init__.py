"""Avro schemas: parsing with validation, and the one schema compatibility checker.

`parse_avro` validates a schema (and the schemas it references) into an `AvroSchema`; `check` decides
whether a new schema is compatible with earlier versions under a `Level`, and `can_read` whether one
schema can read what another wrote, each reason an `Incompatibility` named by Avro's `Rule`.

The schema registry (accord_registry) answers its compatibility requests with this checker, and
`accord schemas check|diff` (accord.schema_review) judge offline with it, so a review and the
registry cannot disagree.
"""

from ._compatibility import Incompatibility, Level, Result, Rule, can_read, check
from ._schema import AvroSchema, AvroSchemaError, parse_avro

__all__ = [
    "AvroSchema",
    "AvroSchemaError",
    "Incompatibility",
    "Level",
    "Result",
    "Rule",
    "can_read",
    "check",
    "parse_avro",
]
