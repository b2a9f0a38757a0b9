"""The one retry policy: which failures are retried, how long to wait, when to give up.

Only errors an adapter marked transient are retried (adapters/base.py). Waits are
exponential with full jitter; a department's ``Retry-After`` is honoured in full when it
asks for longer. The budget (attempts, max_age) belongs to the job, not to this process:
a job resumed after a crash or a long wait continues its budget rather than starting a
new one. ``asyncio.CancelledError`` is a BaseException and is never retried.

A wait longer than a worker should hold a job (``max_inline_wait``) is not slept here:
``WaitTooLong`` hands the job back to the outbox, due when the wait is over.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from adapters.base import AdapterError
from gateway.config import RetrySettings

T = TypeVar("T")


class WaitTooLong(Exception):
    """The next attempt is due in ``delay`` seconds: release the job until then."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"next attempt in {delay:.1f} s")
        self.delay = delay


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, AdapterError) and exc.transient


class _WaitHonouringRetryAfter:
    def __init__(self, settings: RetrySettings, attempts_before: int) -> None:
        self._jitter = wait_random_exponential(multiplier=settings.base, max=settings.cap)
        self._attempts_before = attempts_before

    def __call__(self, state: RetryCallState) -> float:
        # The backoff grows with the job's attempts, not just this run's.
        shifted = RetryCallState(state.retry_object, state.fn, state.args, state.kwargs)
        shifted.attempt_number = state.attempt_number + self._attempts_before
        delay = float(self._jitter(shifted))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AdapterError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        return delay


def retrying(
    settings: RetrySettings,
    *,
    elapsed_before: float = 0.0,
    attempts_before: int = 0,
    max_inline_wait: float = math.inf,
) -> AsyncRetrying:
    """A tenacity controller for one job's department calls.

    ``elapsed_before``: seconds since the job became due; ``attempts_before``: attempts it
    has made already. ``max_age`` stops before a wait that would end past it."""

    async def sleep(delay: float) -> None:
        if delay > max_inline_wait:
            raise WaitTooLong(delay)
        await asyncio.sleep(delay)

    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max(settings.attempts - attempts_before, 1))
        | stop_before_delay(max(settings.max_age - elapsed_before, 0)),
        wait=_WaitHonouringRetryAfter(settings, attempts_before),
        sleep=sleep,
        reraise=True,
    )


async def call_with_retry(
    settings: RetrySettings,
    fn: Callable[[], Awaitable[T]],
    on_attempt: Callable[[int, BaseException | None], Awaitable[None]] | None = None,
    *,
    elapsed_before: float = 0.0,
    attempts_before: int = 0,
    max_inline_wait: float = math.inf,
) -> T:
    """Run ``fn`` under the policy; ``on_attempt(n, error)`` records each attempt's outcome."""
    controller = retrying(
        settings, elapsed_before=elapsed_before, attempts_before=attempts_before, max_inline_wait=max_inline_wait
    )
    async for attempt in controller:
        with attempt:
            try:
                result = await fn()
            except Exception as exc:
                if on_attempt:
                    await on_attempt(attempt.retry_state.attempt_number, exc)
                raise
            if on_attempt:
                await on_attempt(attempt.retry_state.attempt_number, None)
            return result
    raise AssertionError("unreachable: tenacity reraises the last error")
