"""The one retry policy: which failures are retried, how long to wait, when to give up.

Only errors an adapter marked transient are retried (adapters/base.py). Waits are
exponential with full jitter, but a department's ``Retry-After`` is honoured when it asks
for longer. ``asyncio.CancelledError`` is a BaseException and is never retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from adapters.base import AdapterError
from gateway.config import RetrySettings

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, AdapterError) and exc.transient


class _WaitHonouringRetryAfter:
    def __init__(self, settings: RetrySettings) -> None:
        self._jitter = wait_random_exponential(multiplier=settings.base, max=settings.cap)
        self._cap = settings.cap

    def __call__(self, state: RetryCallState) -> float:
        delay = float(self._jitter(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AdapterError) and exc.retry_after:
            delay = max(delay, min(exc.retry_after, self._cap))
        return delay


def retrying(settings: RetrySettings, elapsed_before: float = 0.0) -> AsyncRetrying:
    """A tenacity controller for one department's calls.

    ``elapsed_before``: seconds since the job's first attempt (a job can be resumed after
    a restart), so ``max_age`` counts from the first attempt, not from this process.
    """
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(settings.attempts) | stop_after_delay(max(settings.max_age - elapsed_before, 0)),
        wait=_WaitHonouringRetryAfter(settings),
        reraise=True,
    )


async def call_with_retry(
    settings: RetrySettings,
    fn: Callable[[], Awaitable[T]],
    on_attempt: Callable[[int, BaseException | None], Awaitable[None]] | None = None,
    elapsed_before: float = 0.0,
) -> T:
    """Run ``fn`` under the policy; ``on_attempt(n, error)`` records each attempt's outcome."""
    async for attempt in retrying(settings, elapsed_before):
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
