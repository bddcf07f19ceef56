from __future__ import annotations

import pytest

from accord.runtime import Outcome
from accord.runtime.testing import HandlerHarness
from tests.support import ledger

pytestmark = pytest.mark.unit


async def test_the_harness_runs_handlers_like_the_runtime() -> None:
    ledger.FLAKY_BROKEN["value"] = True
    harness = HandlerHarness(ledger.make_service("ledger", "billing.usage", "billing.rated"))
    first = ledger.usage("acc-1", 0, quantity="2.5")
    outcomes = await harness.deliver(first, ledger.usage("acc-1", 1, meter=ledger.FLAKY), ledger.usage("acc-2", 0))
    assert outcomes == [Outcome.PROCESSED, Outcome.PARKED, Outcome.PROCESSED]
    assert await harness.deliver(first) == [Outcome.DUPLICATE]
    assert harness.state("acc-1")["total"] == "2.500000"
    published = harness.published("billing.rated")
    assert [e.account_id for e in published] == ["acc-1", "acc-2"]
    assert published[0].meta.causation_id == str(first.meta.event_id)
    assert harness.parked() == ["acc-1"]
