"""The command worker: executes recorded commands against SaaS systems, and records each result as an event.

Per command, in this order:
1. claim it (`FOR UPDATE SKIP LOCKED`, status running, attempts + 1, a lease) and commit the claim;
2. wait for a token of its system's bucket, then renew the lease (a lost claim stops here, nothing sent);
3. if an earlier call may have been applied (in doubt, or its worker died mid-call), `read_back` first:
   found → that is the result, and nothing is sent again;
4. `execute` it, under `call_timeout` (a timeout there is in doubt: the request may have been sent);
5. in ONE transaction: the command's new status, and, when it is final, the service's result event
   through `on_result(conn, command, outcome)` (typically a row in the outbox).

Failures are classified by the exception's `retryable` attribute (accord.errors): permanent → failed at
once; retryable → again after exponential backoff with full jitter, no sooner than a `retry_after` hint;
`InDoubtError` → the next attempt reads back first. An exception without the attribute is taken as
retryable AND in doubt: we cannot know what it did. When retries are spent a command ends failed, or
in doubt (for a person to check) if its last call may have been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from prometheus_client import Counter

from accord.errors import InDoubtError
from accord.runtime._store import outbox_channel

from ._bucket import TokenBucket
from ._store import Command, Status, checked_schema, claim, commands_channel, finish, renew

log = logging.getLogger("accord.commands")

#: One series per service schema and system; outcome: succeeded, read_back, retried, failed, in_doubt.
COMMANDS = Counter("accord_commands", "Command attempts by outcome", ["service", "system", "outcome"])

_CONNECTION_ERRORS = (
    OSError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


class Executor(Protocol):
    """Performs one kind of command on one system. Raise accord.errors' TransientError (with `retry_after`
    for a 429), PermanentError or InDoubtError; return the system's answer as a JSON object."""

    async def execute(self, command: Command) -> Mapping[str, Any]: ...

    async def read_back(self, command: Command) -> Mapping[str, Any] | None:
        """The result of an earlier call under `command.key`, or None if the system has no trace of it."""


@dataclass(frozen=True)
class Outcome:
    status: Status  # SUCCEEDED, FAILED, or IN_DOUBT (retries spent while the last call may have applied)
    result: Mapping[str, Any] | None = None
    error: str | None = None
    read_back: bool = False  # the result was found by reading back, not by this call


OnResult = Callable[[asyncpg.Connection, Command, Outcome], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: float = 1.0  # seconds before the 2nd attempt, at most (full jitter draws from [0, ceiling])
    cap: float = 300.0

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(attempts - 1, 0))
        jittered = rng.uniform(0.0, ceiling)
        return max(jittered, retry_after or 0.0)


def describe(exc: BaseException) -> str:
    text = str(exc) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:1000]


class CommandWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        *,
        executors: Mapping[str, Executor],
        rate_limits: Mapping[str, TokenBucket] | None = None,
        on_result: OnResult | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        call_timeout: float = 30.0,
        lease: float | None = None,
        poll_interval: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        """`executors` by "system/kind", or by "system" for every kind of that system."""
        self.pool = pool
        self.schema = checked_schema(schema)
        self.executors = dict(executors)
        self.rate_limits = dict(rate_limits or {})
        self.on_result = on_result
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.call_timeout = call_timeout
        # The claim must outlive the call it covers, or a second worker would read back mid-call.
        self.lease = lease if lease is not None else call_timeout * 2 + 10
        if self.lease <= call_timeout + 1.0:
            raise ValueError(f"lease ({self.lease} s) must be over call_timeout ({call_timeout} s) + 1 s")
        self.poll_interval = poll_interval
        self.rng = rng or random.Random()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    # -- running -------------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`), execute it, record the outcomes; return how many."""
        async with self.pool.acquire() as conn:
            commands = await claim(conn, self.schema, limit=self.concurrency, lease=self.lease)
        if commands:
            async with asyncio.TaskGroup() as group:
                for command in commands:
                    group.create_task(self.process(command))
        return len(commands)

    async def run(self) -> None:
        """Work until `stop()`: calls in flight finish, nothing new is claimed. Cancelling it is a crash:
        the commands in flight stay claimed until their lease lapses, then are read back.

        `enqueue` notifies the worker at commit (LISTEN/NOTIFY on a connection of the pool, held while it
        runs); it also polls every `poll_interval`, so a lost notification only delays a command.
        """
        inflight: set[asyncio.Task[None]] = set()
        async with self.pool.acquire() as listener:
            channel = commands_channel(self.schema)
            await listener.add_listener(channel, self._notified)
            try:
                async with asyncio.TaskGroup() as group:
                    while not self._stop.is_set():
                        self._wake.clear()
                        free = self.concurrency - len(inflight)
                        for command in await self._claim(free) if free > 0 else []:
                            task = group.create_task(self._guarded(command))
                            inflight.add(task)
                            task.add_done_callback(self._done(inflight))
                        # Woken by a notification, a finished call (a free slot) or stop(); else poll.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self.poll_interval):
                                await self._wake.wait()
            finally:
                with contextlib.suppress(asyncpg.InterfaceError, OSError):
                    await listener.remove_listener(channel, self._notified)

    async def _claim(self, limit: int) -> list[Command]:
        try:
            async with self.pool.acquire() as conn:
                return await claim(conn, self.schema, limit=limit, lease=self.lease)
        except _CONNECTION_ERRORS as exc:
            # The database is away: keep the calls in flight, try again at the next poll.
            log.warning("claiming commands in %s failed (%s); trying again", self.schema, describe(exc))
            return []

    async def _guarded(self, command: Command) -> None:
        try:
            await self.process(command)
        except Exception:
            # Its outcome could not be recorded (the database went away mid-way). The row stays claimed;
            # when the lease lapses it is taken again as in doubt and read back: never lost, never doubled.
            log.exception(
                "command %s (%s): outcome not recorded; it is read back after its lease", command.id, command.key
            )

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    def _done(self, inflight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            inflight.discard(task)
            self._wake.set()

        return done

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # -- one command ---------------------------------------------------------------------------------------

    def executor_for(self, command: Command) -> Executor | None:
        return self.executors.get(f"{command.system}/{command.kind}") or self.executors.get(command.system)

    async def process(self, command: Command) -> None:
        executor = self.executor_for(command)
        if executor is None:
            await self._final(
                command,
                Outcome(Status.FAILED, error=f"no executor for {command.system}/{command.kind}: register one"),
            )
            return
        bucket = self.rate_limits.get(command.system)
        # 2. A token, then enough lease left for the whole call: renewed (one more commit) only when the wait
        # for a token took so long that the claim could lapse mid-call. A claim lost meanwhile stops here.
        if bucket is not None:
            await bucket.acquire()
        if time.monotonic() - command.claimed_at > self.lease - self.call_timeout - 1.0:
            async with self.pool.acquire() as conn:
                if not await renew(conn, self.schema, command, lease=self.lease):
                    log.warning(
                        "command %s (%s) was taken over by another worker; not calling", command.id, command.key
                    )
                    return
        phase = "read_back" if command.in_doubt else "execute"
        found: Mapping[str, Any] | None = None
        result: Mapping[str, Any] | None = None
        try:
            async with asyncio.timeout(self.call_timeout):
                # 3. Read back before any retry of a call that may have been applied.
                if phase == "read_back":
                    found = await executor.read_back(command)
                    if found is None:
                        phase = "execute"  # the system has no trace of it: sending is safe
                        if bucket is not None:
                            await bucket.acquire()
                # 4. The call.
                if found is None:
                    result = await executor.execute(command)
        except Exception as exc:  # classified below, never swallowed
            await self._failed(command, exc, phase=phase, bucket=bucket)
            return
        if found is not None:
            log.info("command %s (%s): read back, the earlier call was applied", command.id, command.key)
            await self._final(command, Outcome(Status.SUCCEEDED, result=found, read_back=True))
        else:
            await self._final(command, Outcome(Status.SUCCEEDED, result=result))

    async def _failed(self, command: Command, exc: Exception, *, phase: str, bucket: TokenBucket | None) -> None:
        retryable: bool | None = getattr(exc, "retryable", None)
        if phase == "read_back":
            maybe_applied = True  # the earlier call is still unresolved
        elif isinstance(exc, InDoubtError | TimeoutError) or retryable is None:
            # Sent but unanswered, or an exception its executor did not classify: we cannot know.
            maybe_applied = True
        else:
            maybe_applied = False  # the system answered: a 429, a 503, a 4xx are not applied
        if isinstance(exc, TimeoutError) or retryable is None:
            retryable = True
        retry_after = getattr(exc, "retry_after", None)
        error = describe(exc) if phase == "execute" else f"reading back: {describe(exc)}"
        if not retryable:
            log.warning("command %s (%s) failed permanently: %s", command.id, command.key, error)
            await self._final(command, Outcome(Status.IN_DOUBT if maybe_applied else Status.FAILED, error=error))
            return
        if retry_after is not None and bucket is not None:
            bucket.hold(float(retry_after))  # the whole system's quota is spent, not only this call's
        if command.attempts >= self.retry.max_attempts:
            spent = f"retries spent after {command.attempts} attempt(s); last: {error}"
            log.error("command %s (%s): %s", command.id, command.key, spent)
            await self._final(command, Outcome(Status.IN_DOUBT if maybe_applied else Status.FAILED, error=spent))
            return
        delay = self.retry.delay(command.attempts, self.rng, None if retry_after is None else float(retry_after))
        status = Status.IN_DOUBT if maybe_applied else Status.PENDING
        log.info(
            "command %s (%s) attempt %d: %s; %s in %.1f s",
            command.id,
            command.key,
            command.attempts,
            error,
            "read back and retry" if maybe_applied else "retry",
            delay,
        )
        async with self.pool.acquire() as conn:
            if not await finish(conn, self.schema, command, status=status, error=error, delay=delay):
                log.warning("command %s (%s) was taken over by another worker", command.id, command.key)
                return
        self._count(command, "retried")

    def _count(self, command: Command, outcome: str) -> None:
        COMMANDS.labels(service=self.schema, system=command.system, outcome=outcome).inc()

    async def _final(self, command: Command, outcome: Outcome) -> None:
        # 5. The command's final status and the service's result event commit together, or neither does.
        async with self.pool.acquire() as conn, conn.transaction():
            owned = await finish(
                conn, self.schema, command, status=outcome.status, result=outcome.result, error=outcome.error
            )
            if not owned:
                log.warning("command %s (%s) was taken over by another worker", command.id, command.key)
                return
            if self.on_result is not None:
                await self.on_result(conn, command, outcome)
                # The result event is (typically) an outbox row: wake the relay at commit, as the runtime does.
                await conn.execute("SELECT pg_notify($1, '')", outbox_channel(self.schema))
        self._count(command, "read_back" if outcome.read_back else outcome.status.value)
