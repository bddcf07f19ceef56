"""A small service for testing the runtime: it sums usage per account and emits one event per usage.

Its effects are easy to count: the state holds the sum and the number of events applied per account, and
each applied event produces exactly one outgoing event whose causation_id names it.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

from accord.errors import PermanentError, TransientError
from accord.events import SourceSystem, UsageRecorded, new_meta
from accord.runtime import Decision, Envelope, Outgoing, Service

#: meter codes that make the handler fail, to exercise the failure paths
POISON = "poison"  # a permanent error while POISON_REJECTED is set: the event is invalid for this service
POISON_REJECTED = {"value": True}
FLAKY = "flaky"  # a transient error while FLAKY_BROKEN is set: retries are spent and the event is parked
FLAKY_BROKEN = {"value": True}


def usage(account: str, n: int, *, meter: str = "api_calls", quantity: str = "1") -> UsageRecorded:
    start = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
    return UsageRecorded(
        meta=new_meta(
            UsageRecorded,
            source_system=SourceSystem.BILLING,
            source_id=f"usage-{account}-{n}",
            correlation_id=f"corr-{account}",
            entity_version=n,
        ),
        account_id=account,
        usage_id=f"u-{account}-{n}",
        subscription_id=f"sub-{account}",
        meter_code=meter,
        quantity=Decimal(quantity),
        unit="call",
        usage_start_at=start,
        usage_end_at=start + datetime.timedelta(hours=1),
    )


def make_service(name: str, topic: str, out_topic: str) -> Service:
    def on_usage(state: dict[str, Any] | None, env: Envelope) -> Decision[dict[str, Any]]:
        event: UsageRecorded = env.event
        if event.meter_code == POISON and POISON_REJECTED["value"]:
            raise PermanentError(f"meter {POISON!r} is not billable")
        if event.meter_code == FLAKY and FLAKY_BROKEN["value"]:
            raise TransientError("the rating service is unavailable")
        state = dict(state or {"count": 0, "total": "0", "seen": []})
        state["count"] += 1
        state["total"] = str(Decimal(state["total"]) + event.quantity)
        state["seen"] = [*state["seen"], event.usage_id]
        rated = event.model_copy(
            update={
                "meta": new_meta(
                    UsageRecorded,
                    source_system=SourceSystem.ACCORD,
                    source_id=event.usage_id,
                    correlation_id=event.meta.correlation_id,
                    causation_id=str(event.meta.event_id),
                    entity_version=state["count"],
                    event_id=uuid.uuid5(event.meta.event_id, "rated"),
                )
            }
        )
        return Decision(state=state, outputs=[Outgoing(out_topic, event.account_id, rated)])

    return Service(name=name, topics=[topic], handlers={UsageRecorded.AVRO_NAME: on_usage}, aggregate="usage")
