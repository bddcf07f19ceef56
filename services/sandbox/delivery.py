"""The webhook dispatcher: reads due rows of the outbox table and POSTs them, signed, to subscribers.

Delivery is at least once: a row is marked delivered only after a 2xx; anything else is retried with
exponential backoff in sandbox time (1 min, 3 min, 9 min, ...: 9 attempts over about 2.3 days, within
the three days Stripe keeps trying), then marked failed. Webhook chaos knobs act on the first attempt of
a row: drop it (the subscriber must recover through the events / replay API), deliver it twice, delay
it, or hold it back a moment so later events overtake it. Signatures use the wall clock, as the
receiver checks against its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx

from accord.webhooks import BILLING_SIGNATURE_HEADER, CRM_SIGNATURE_HEADER, signature_header

from .faults import Faults
from .store import Store

log = logging.getLogger("accord_sandbox.delivery")

MAX_ATTEMPTS = 9
HEADERS = {"billing": BILLING_SIGNATURE_HEADER, "crm": CRM_SIGNATURE_HEADER}


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=60 * 3 ** (attempts - 1))


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()


class Dispatcher:
    def __init__(self, store: Store, faults: Faults, *, interval: float) -> None:
        self.store = store
        self.faults = faults
        self.interval = interval
        self.client = httpx.AsyncClient(timeout=5.0)

    async def run(self) -> None:
        while True:
            try:
                busy = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive a bad row or a database blip
                log.exception("webhook dispatch failed; retrying")
                busy = 0
            if not busy:
                await asyncio.sleep(self.interval)

    async def close(self) -> None:
        await self.client.aclose()

    async def tick(self) -> int:
        """Deliver the rows due now; return how many rows were handled."""
        now = self.store.clock.now()
        async with self.store.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT o.id, o.attempts, o.chaos_done, s.system, s.url, s.secrets, e.payload
                     FROM outbox o JOIN subscribers s ON s.id = o.subscriber_id JOIN events e ON e.seq = o.event_seq
                    WHERE o.status = 'pending' AND o.next_attempt_at <= $1
                    ORDER BY o.next_attempt_at, o.id LIMIT 20 FOR UPDATE OF o SKIP LOCKED""",
                now,
            )
            for row in rows:
                rule = self.faults.webhooks(row["system"])
                if rule is not None and not row["chaos_done"]:
                    knob = rule.knob
                    if rule.roll(knob.webhook_drop_rate):
                        await conn.execute(
                            "UPDATE outbox SET status = 'dropped', chaos_done = true WHERE id = $1", row["id"]
                        )
                        continue
                    held: float | None = None
                    if rule.roll(knob.webhook_delay_rate):
                        held = rule.uniform(0, knob.webhook_delay_seconds)
                    elif rule.roll(knob.webhook_reorder_rate):
                        held = rule.uniform(0.3, 1.5)
                    if held is not None:
                        await conn.execute(
                            "UPDATE outbox SET chaos_done = true, next_attempt_at = $2 WHERE id = $1",
                            row["id"],
                            now + timedelta(seconds=held),
                        )
                        continue
                    copies = 2 if rule.roll(knob.webhook_duplicate_rate) else 1
                else:
                    copies = 1
                status, error = await self._post(row["system"], row["url"], row["secrets"], row["payload"], copies)
                if status is not None and 200 <= status < 300:
                    await conn.execute(
                        "UPDATE outbox SET status = 'delivered', chaos_done = true, attempts = attempts + 1, "
                        "last_status = $2, delivered_at = $3 WHERE id = $1",
                        row["id"],
                        status,
                        now,
                    )
                else:
                    attempts = row["attempts"] + 1
                    await conn.execute(
                        "UPDATE outbox SET attempts = $2, chaos_done = true, last_status = $3, last_error = $4, "
                        "status = $5, next_attempt_at = $6 WHERE id = $1",
                        row["id"],
                        attempts,
                        status,
                        error,
                        "failed" if attempts >= MAX_ATTEMPTS else "pending",
                        now + backoff(attempts),
                    )
        return len(rows)

    async def _post(
        self, system: str, url: str, secrets: list[str], payload: dict[str, Any], copies: int
    ) -> tuple[int | None, str | None]:
        body = encode(payload)
        status: int | None = None
        error: str | None = None
        for _ in range(copies):
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                HEADERS[system]: signature_header(body, secrets, int(time.time())),
                "User-Agent": f"accord-sandbox-{system}/1.0",
            }
            try:
                response = await self.client.post(url, content=body, headers=headers)
                status, error = response.status_code, None if response.is_success else response.text[:200]
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"[:200]
        return status, error
