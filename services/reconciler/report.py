"""The reconciler's report, from its tables: what `accord reconcile report` prints and what the metrics say.

report = await build(conn, schema="reconciler")
report["match_rate"], report["open"], report["at_risk"], report["time_to_detect"], report["repairs"]
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from .rules import minor_unit


async def build(conn: asyncpg.Connection, *, schema: str, now: datetime.datetime | None = None) -> dict[str, Any]:
    s = schema
    now = now or datetime.datetime.now(datetime.UTC)
    keys = await conn.fetchval(f"SELECT count(*) FROM {s}.match_states")
    pending = await conn.fetchval(f"SELECT count(*) FROM {s}.match_states WHERE next_deadline IS NOT NULL")
    divergent = await conn.fetchval(f"SELECT count(DISTINCT key) FROM {s}.findings WHERE status <> 'RESOLVED'")
    by_relation = {
        r["relation"]: {"keys": r["keys"], "divergent": r["divergent"]}
        for r in await conn.fetch(
            f"""SELECT m.relation, count(*) AS keys,
                       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {s}.findings f
                                                      WHERE f.key = m.key AND f.status <> 'RESOLVED')) AS divergent
                FROM {s}.match_states m GROUP BY 1 ORDER BY 1"""
        )
    }
    open_rows = await conn.fetch(
        f"""SELECT finding_class, coalesce(legal_entity, '-') AS legal_entity, status,
                   CASE WHEN first_seen > $1::timestamptz - interval '1 hour' THEN '<1h'
                        WHEN first_seen > $1::timestamptz - interval '1 day' THEN '1h-24h'
                        WHEN first_seen > $1::timestamptz - interval '7 days' THEN '1d-7d' ELSE '>7d' END AS age,
                   count(*) AS n
            FROM {s}.findings WHERE status <> 'RESOLVED' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
        now,
    )
    at_risk = await conn.fetch(
        f"""SELECT currency, finding_class, sum(amount_at_risk) AS amount, count(*) AS n FROM {s}.findings
            WHERE status <> 'RESOLVED' AND currency IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"""
    )
    detect = await conn.fetchrow(
        f"""SELECT count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM detected_at - first_seen)) AS p50,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM detected_at - first_seen)) AS p99,
                   max(extract(epoch FROM detected_at - first_seen)) AS worst
            FROM {s}.findings"""
    )
    repairs = await conn.fetch(f"SELECT repair, dry_run, count(*) AS n FROM {s}.repairs GROUP BY 1, 2 ORDER BY 1, 2")
    resolved = await conn.fetch(
        f"""SELECT record->>'resolution' AS resolution, count(*) AS n FROM {s}.findings
            WHERE status = 'RESOLVED' GROUP BY 1 ORDER BY 1"""
    )
    return {
        "generated_at": now.isoformat(),
        "keys": keys,
        "pending_deadlines": pending,
        "divergent_keys": divergent,
        "match_rate": 1.0 if not keys else (keys - divergent) / keys,
        "by_relation": by_relation,
        "open": [dict(r) for r in open_rows],
        "at_risk": [
            {
                "currency": r["currency"],
                "finding_class": r["finding_class"],
                "amount": str(_d(r["amount"]).quantize(minor_unit(r["currency"]))),
                "n": r["n"],
            }
            for r in at_risk
        ],
        "time_to_detect": {
            "findings": detect["n"],
            "p50_seconds": _f(detect["p50"]),
            "p99_seconds": _f(detect["p99"]),
            "max_seconds": _f(detect["worst"]),
        },
        "repairs": [dict(r) for r in repairs],
        "resolved": {r["resolution"] or "UNKNOWN": r["n"] for r in resolved},
    }


def _d(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
