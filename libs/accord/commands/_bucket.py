"""An asyncio token bucket: at most `burst` calls at once, `rate` per second on average, first come first served.

Time comes from an injectable clock, so tests drive it without waiting and assert on counts, not durations.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

_EPSILON = 1e-9
_MIN_WAIT = 1e-6  # a wait the clock can always show (a tinier one may not move a large float clock)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when someone sleeps on it (or calls `advance`): for tests."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)  # let others run, as a real sleep would


class TokenBucket:
    """`acquire()` waits for a token; waiters are served in arrival order (asyncio.Lock is FIFO).

    `hold(seconds)` empties the bucket and grants nothing for that long: what a system's HTTP 429
    Retry-After asks of every caller sharing its quota, not only of the request that got it.
    """

    def __init__(self, rate: float, burst: float = 1.0, *, clock: Clock | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"a token bucket's rate must be above 0 per second, not {rate}")
        if burst < 1:
            raise ValueError(f"a token bucket's burst must be at least 1, not {burst}")
        self.rate = rate
        self.burst = burst
        self.clock: Clock = clock or MonotonicClock()
        self._tokens = float(burst)
        self._since = self.clock.now()  # tokens accrue from here on (later than now while held)
        self._lock = asyncio.Lock()
        self.granted = 0

    def _refill(self, now: float) -> None:
        if now > self._since:
            self._tokens = min(self.burst, self._tokens + (now - self._since) * self.rate)
            self._since = now

    @property
    def tokens(self) -> float:
        self._refill(self.clock.now())
        return self._tokens

    async def acquire(self, tokens: float = 1.0) -> None:
        if tokens > self.burst:
            raise ValueError(f"cannot take {tokens} tokens at once from a bucket of burst {self.burst}")
        async with self._lock:
            while True:
                now = self.clock.now()
                self._refill(now)
                # The epsilon absorbs float rounding: a sleep of exactly the computed wait may refill to
                # 0.9999999999 tokens, and waiting for the rest would add less than the clock can show.
                if now >= self._since and self._tokens >= tokens - _EPSILON:
                    self._tokens = max(self._tokens - tokens, 0.0)
                    self.granted += 1
                    return
                wait = max(self._since - now, 0.0) + max(tokens - self._tokens, 0.0) / self.rate
                await self.clock.sleep(max(wait, _MIN_WAIT))

    def hold(self, seconds: float) -> None:
        """Grant nothing for `seconds` from now, then start again from an empty bucket."""
        now = self.clock.now()
        self._refill(now)
        self._tokens = 0.0
        self._since = max(self._since, now + max(seconds, 0.0))
