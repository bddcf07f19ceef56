"""Prometheus metrics of the reconciler: the same figures as `accord reconcile report`, served on /metrics.

Counters and the time-to-detect histogram move as findings are published; the gauges (open findings, amount at
risk, match rate, pending deadlines) are refreshed from the tables by `refresh` every few seconds, so they are
right after a restart and agree with the report.
"""

from __future__ import annotations

import datetime

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from .lifecycle import FindingRecord

DETECTED = Counter(
    "accord_recon_findings_detected", "Findings opened (or reopened), per class", ["finding_class", "relation"]
)
RESOLVED = Counter(
    "accord_recon_findings_resolved", "Findings resolved, per class and how", ["finding_class", "resolution"]
)
TIME_TO_DETECT = Histogram(
    "accord_recon_time_to_detect_seconds",
    "From the divergence being due (SLA passed, or the contradiction seen and settled) to its finding published",
    ["finding_class"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
OPEN = Gauge(
    "accord_recon_open_findings",
    "Active findings, per class, legal entity and status",
    ["finding_class", "legal_entity", "status"],
)
AT_RISK = Gauge("accord_recon_amount_at_risk", "Money at stake in active findings, per currency", ["currency"])
MATCH_RATE = Gauge("accord_recon_match_rate", "Share of match keys with no active finding")
KEYS = Gauge("accord_recon_match_keys", "Match keys tracked")
PENDING = Gauge("accord_recon_pending_deadlines", "Match keys waiting for a deadline")
REPAIRS = Counter("accord_recon_repairs", "Repairs decided, per repair", ["repair", "dry_run"])


def detected(record: FindingRecord, now: datetime.datetime) -> None:
    f = record.finding
    DETECTED.labels(f.finding_class.value, f.relation.value).inc()
    TIME_TO_DETECT.labels(f.finding_class.value).observe(max(0.0, (now - record.first_seen).total_seconds()))


def resolved(record: FindingRecord) -> None:
    resolution = record.resolution.value if record.resolution is not None else "UNKNOWN"
    RESOLVED.labels(record.finding.finding_class.value, resolution).inc()


async def refresh(conn: asyncpg.Connection, schema: str) -> None:
    """The gauges from the tables (one short query each)."""
    rows = await conn.fetch(
        f"""SELECT finding_class, coalesce(legal_entity, '') AS legal_entity, status, count(*) AS n
            FROM {schema}.findings WHERE status <> 'RESOLVED' GROUP BY 1, 2, 3"""
    )
    OPEN.clear()
    for r in rows:
        OPEN.labels(r["finding_class"], r["legal_entity"], r["status"]).set(r["n"])
    AT_RISK.clear()
    for r in await conn.fetch(
        f"""SELECT currency, sum(amount_at_risk) AS total FROM {schema}.findings
            WHERE status <> 'RESOLVED' AND currency IS NOT NULL GROUP BY 1"""
    ):
        AT_RISK.labels(r["currency"]).set(float(r["total"] or 0))
    keys, pending, divergent = await conn.fetchrow(
        f"""SELECT (SELECT count(*) FROM {schema}.match_states),
                   (SELECT count(*) FROM {schema}.match_states WHERE next_deadline IS NOT NULL),
                   (SELECT count(DISTINCT key) FROM {schema}.findings WHERE status <> 'RESOLVED')"""
    )
    KEYS.set(keys)
    PENDING.set(pending)
    MATCH_RATE.set(1.0 if not keys else (keys - divergent) / keys)
