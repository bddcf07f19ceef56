"""SUMMARIZED mode: documents' entries staged, then one summary entry per legal entity x period x currency posted
when the period's batch closes, with the lineage of every document in it.

1. the decider records a `stage_entry` command per document entry (instead of posting it); its closing transaction
   stages the entry (`stage`), once per entry externalId, whatever delivers or re-sends the document;
2. the period job (`close_batches`), in ONE transaction: takes the staged entries of every period whose batch has
   closed (the period ended `grace_days` ago), builds their summary (`posting.summarize`: one line per account,
   netted), records one `post_journal` command under the summary's externalId (a digest of its documents), and
   marks the entries with it. A crash before the commit leaves them staged; after it, the command posts once.

An entry staged after its period's batch closed (a late document) waits for the next run and makes a new batch:
posted once per closed batch, never merged into a summary already sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import asyncpg

from accord.commands import enqueue

from .handlers import KIND, SYSTEM
from .posting import PeriodId, from_payload, period_end, summarize, to_payload

log = logging.getLogger("accord.erp_connector")


async def stage(conn: asyncpg.Connection, schema: str, payload: Mapping[str, Any]) -> bool:
    """Stage one document's entry for its period's summary; False if it was staged before."""
    done = await conn.execute(
        f"""INSERT INTO {schema}.summary_entries (external_id, legal_entity, period, currency, payload)
            VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (external_id) DO NOTHING""",
        str(payload["external_id"]),
        str(payload["legal_entity"]),
        str(payload["period"]),
        str(payload["currency"]),
        json.dumps(dict(payload), sort_keys=True, default=str),
    )
    return bool(done == "INSERT 0 1")


def batch_closed(period: str, *, today: date, grace_days: int) -> bool:
    """A period's batch closes once the period has ended and `grace_days` more have passed."""
    return period_end(PeriodId(period)) + timedelta(days=grace_days) < today


async def close_batches(
    conn: asyncpg.Connection, schema: str, *, today: date, grace_days: int, prefix: str
) -> list[str]:
    """Post a summary for every closed batch (in the caller's transaction); returns their externalIds."""
    groups = await conn.fetch(
        f"""SELECT DISTINCT legal_entity, period, currency FROM {schema}.summary_entries WHERE batch IS NULL
            ORDER BY period, legal_entity, currency"""
    )
    posted: list[str] = []
    for group in groups:
        if not batch_closed(group["period"], today=today, grace_days=grace_days):
            continue
        rows = await conn.fetch(
            f"""SELECT external_id, payload::text AS payload FROM {schema}.summary_entries
                WHERE batch IS NULL AND legal_entity = $1 AND period = $2 AND currency = $3
                ORDER BY external_id FOR UPDATE SKIP LOCKED""",
            group["legal_entity"],
            group["period"],
            group["currency"],
        )
        if not rows:
            continue
        payloads = [json.loads(r["payload"]) for r in rows]
        summaries = summarize([from_payload(p) for p in payloads], prefix=prefix)
        members = [r["external_id"] for r in rows]
        if not summaries:  # everything nets to zero (an invoice and its void): nothing to post, still batched
            await _mark(conn, schema, members, "netted-to-zero")
            continue
        (summary,) = summaries  # one group in, one summary out
        payload = {
            **to_payload(summary),
            "source_document_id": summary.external_id,
            "causation_id": str(payloads[0].get("causation_id") or summary.external_id),
            "correlation_id": summary.external_id,
            "entity_version": 1,
            "account_id": None,
            "source_document_type": "INVOICE",
            "summarized_entries": members,
        }
        await enqueue(conn, schema=schema, system=SYSTEM, kind=KIND, key=summary.external_id, payload=payload)
        await _mark(conn, schema, members, summary.external_id)
        posted.append(summary.external_id)
        log.info("summary %s of %d entries recorded for posting", summary.external_id, len(members))
    return posted


async def _mark(conn: asyncpg.Connection, schema: str, members: list[str], batch: str) -> None:
    await conn.execute(
        f"UPDATE {schema}.summary_entries SET batch = $2 WHERE external_id = ANY($1::text[])", members, batch
    )
