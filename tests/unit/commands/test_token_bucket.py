"""TokenBucket on an injected clock: rate, burst, fairness, holds — asserted on counts and clock readings."""

from __future__ import annotations

import asyncio

import pytest

from accord.commands import ManualClock, TokenBucket

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("rate", "burst", "calls", "clock_after"),
    [
        pytest.param(2.0, 3, 3, 0.0, id="a-burst-is-free"),
        pytest.param(2.0, 3, 11, 4.0, id="then-rate-per-second"),
        pytest.param(0.5, 1, 4, 6.0, id="slower-than-one-per-second"),
        pytest.param(1000.0, 10, 2010, 2.0, id="fast-rates-do-not-drift"),
        pytest.param(3.0, 1, 10, 3.0, id="awkward-floats"),
    ],
)
async def test_calls_are_spaced_by_the_rate_after_the_burst(
    rate: float, burst: int, calls: int, clock_after: float
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate, burst, clock=clock)
    for _ in range(calls):
        await bucket.acquire()
    assert bucket.granted == calls
    assert clock.now() == pytest.approx(clock_after, abs=1e-5)


async def test_no_window_gets_more_than_burst_plus_rate_times_its_length() -> None:
    clock = ManualClock(start=1_000_000.0)  # a large clock reading, like time.monotonic() on a long-lived host
    bucket = TokenBucket(rate=5, burst=2, clock=clock)
    times = []
    for _ in range(50):
        await bucket.acquire()
        times.append(clock.now())
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t - start <= 1.0 + 1e-9)
        assert in_window <= 2 + 5


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    served: list[int] = []

    async def caller(n: int) -> None:
        await bucket.acquire()
        served.append(n)

    tasks = []
    for n in range(8):
        tasks.append(asyncio.create_task(caller(n)))
        await asyncio.sleep(0)  # arrive one after another
    await asyncio.gather(*tasks)
    assert served == list(range(8))
    assert clock.now() == pytest.approx(7.0)


async def test_hold_grants_nothing_until_it_ends_then_starts_from_empty() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    bucket.hold(30)
    assert bucket.tokens == 0
    await bucket.acquire()
    assert clock.now() == pytest.approx(30.1)  # 30 s held, then 1/rate for the first token
    bucket.hold(5)
    bucket.hold(1)  # a shorter hint never shortens a hold
    await bucket.acquire()
    assert clock.now() == pytest.approx(35.2)


async def test_a_cancelled_waiter_does_not_block_the_others() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    await bucket.acquire()
    blocked = asyncio.Event()

    class Gate(ManualClock):
        async def sleep(self, seconds: float) -> None:
            blocked.set()
            await asyncio.Event().wait()  # never wakes: only cancellation gets out

    bucket.clock = Gate()
    stuck = asyncio.create_task(bucket.acquire())
    await blocked.wait()
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    bucket.clock = clock
    await bucket.acquire()
    assert bucket.granted == 2


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_bad_settings_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)


async def test_more_tokens_than_the_burst_can_never_be_had() -> None:
    with pytest.raises(ValueError, match="burst"):
        await TokenBucket(1, 2, clock=ManualClock()).acquire(3)
