"""The billing connector's own table: billing customers, the lookup from a billing customer to its account."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg

from accord.ingest import Delivery, migrate_ingest
from accord.migrations import migrate
from accord.runtime._store import MIGRATIONS as RUNTIME_MIGRATIONS

from .mapping import Customer, customer_of, entity_version

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "billing_connector"


async def migrate_all(conn: asyncpg.Connection, *, schema: str = SCHEMA) -> None:
    """The runtime's tables (outbox), accord.ingest's, then the connector's own, in `schema`."""
    await migrate(conn, RUNTIME_MIGRATIONS, schema=schema)
    await migrate_ingest(conn, schema=schema)
    await migrate(conn, MIGRATIONS, schema=schema)


async def record_customer(conn: asyncpg.Connection, schema: str, customer: Mapping[str, Any], version: int) -> None:
    metadata = customer.get("metadata") or {}
    await conn.execute(
        f"""INSERT INTO {schema}.billing_customers
                (customer_id, account_id, legal_entity, country, tax_exempt, version)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (customer_id) DO UPDATE SET account_id = excluded.account_id,
                legal_entity = excluded.legal_entity, country = excluded.country,
                tax_exempt = excluded.tax_exempt, version = excluded.version, updated_at = now()
            WHERE billing_customers.version < excluded.version""",
        str(customer["id"]),
        metadata.get("crm_account_id"),
        metadata.get("legal_entity"),
        ((customer.get("address") or {}).get("country") or None),
        customer.get("tax_exempt"),
        version,
    )


def context_loader(schema: str) -> Any:
    """The ingest context of a billing delivery: records customer.* events, then reads the customer."""

    async def load(conn: asyncpg.Connection, delivery: Delivery) -> Customer | None:
        data = delivery.payload.get("data")
        obj = data.get("object") if isinstance(data, Mapping) else None
        if isinstance(obj, Mapping) and obj.get("object") == "customer" and obj.get("id"):
            await record_customer(conn, schema, obj, entity_version(delivery.payload))
        customer_id = customer_of(delivery.payload)
        if customer_id is None:
            return None
        row = await conn.fetchrow(
            f"""SELECT customer_id, account_id, legal_entity, country, tax_exempt
                FROM {schema}.billing_customers WHERE customer_id = $1""",
            customer_id,
        )
        return None if row is None else Customer(**dict(row))

    return load
