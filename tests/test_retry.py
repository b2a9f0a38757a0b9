"""The one retry policy (gateway/retry.py), on its own: what is retried, how long it waits,
and that a job's budget is the job's, not the process's."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import PermanentError, TransientError, UnknownOutcome
from gateway.config import RetrySettings
from gateway.retry import WaitTooLong, call_with_retry, retrying


def settings(**kw: float) -> RetrySettings:
    return RetrySettings(**({"attempts": 5, "max_age": 60.0, "base": 0.001, "cap": 0.005} | kw))  # type: ignore[arg-type]


class Flaky:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def test_transient_errors_are_retried_until_success() -> None:
    fn = Flaky(TransientError("503"), UnknownOutcome("reset"), TransientError("503"))
    assert await call_with_retry(settings(), fn) == "ok"
    assert fn.calls == 4


async def test_permanent_errors_and_bugs_are_never_retried() -> None:
    for error in (PermanentError("400"), ValueError("bug")):
        fn = Flaky(error)
        with pytest.raises(type(error)):
            await call_with_retry(settings(), fn)
        assert fn.calls == 1


async def test_cancellation_is_never_retried() -> None:
    fn = Flaky(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await call_with_retry(settings(), fn)
    assert fn.calls == 1


async def test_attempts_already_made_count_against_the_budget() -> None:
    fn = Flaky(*[TransientError("503")] * 10)
    with pytest.raises(TransientError):
        await call_with_retry(settings(attempts=5), fn, attempts_before=3)
    assert fn.calls == 2
    fn = Flaky(*[TransientError("503")] * 10)
    with pytest.raises(TransientError):  # an exhausted budget still makes one attempt, never zero
        await call_with_retry(settings(attempts=5), fn, attempts_before=9)
    assert fn.calls == 1


async def test_max_age_stops_before_a_wait_that_would_end_past_it() -> None:
    fn = Flaky(TransientError("429", status=429, retry_after=2.0), TransientError("503"))
    with pytest.raises(TransientError):
        await call_with_retry(settings(max_age=1.0), fn)
    assert fn.calls == 1  # waiting 2 s would pass max_age: give up now, not in 2 s


async def test_age_already_spent_counts_against_max_age() -> None:
    fn = Flaky(TransientError("503"), TransientError("503"))
    with pytest.raises(TransientError):
        await call_with_retry(settings(max_age=10.0), fn, elapsed_before=10.5)
    assert fn.calls == 1


async def test_a_long_retry_after_hands_the_job_back_instead_of_sleeping() -> None:
    fn = Flaky(TransientError("429", status=429, retry_after=30.0))
    with pytest.raises(WaitTooLong) as info:
        await call_with_retry(settings(max_age=600.0), fn, max_inline_wait=5.0)
    assert info.value.delay >= 30.0 and fn.calls == 1


def test_retry_after_is_honoured_in_full_even_above_the_backoff_cap() -> None:
    controller = retrying(settings(cap=0.2, max_age=600.0))
    from tenacity import RetryCallState

    state = RetryCallState(controller, None, (), {})
    state.attempt_number = 1
    state.set_exception((TransientError, TransientError("429", retry_after=7.0), None))
    assert controller.wait(state) == 7.0


def test_backoff_is_full_jitter_within_the_exponential_bound_and_the_cap() -> None:
    from tenacity import RetryCallState

    s = settings(base=0.1, cap=1.0)
    controller = retrying(s, attempts_before=0)
    for attempt, bound in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0), (9, 1.0)):
        waits = []
        for _ in range(200):
            state = RetryCallState(controller, None, (), {})
            state.attempt_number = attempt
            state.set_exception((TransientError, TransientError("503"), None))
            waits.append(controller.wait(state))
        assert all(0 <= w <= bound + 1e-9 for w in waits)
        assert max(waits) > bound / 2  # spread over the range, not a fixed step
    # A resumed job continues its backoff where it left off.
    resumed = retrying(s, attempts_before=5)
    state = RetryCallState(resumed, None, (), {})
    state.attempt_number = 1
    state.set_exception((TransientError, TransientError("503"), None))
    assert max(resumed.wait(state) for _ in range(200)) > 0.5


async def test_each_attempt_is_reported_with_its_outcome() -> None:
    seen: list[tuple[int, str | None]] = []

    async def on_attempt(n: int, error: BaseException | None) -> None:
        seen.append((n, type(error).__name__ if error else None))

    await call_with_retry(settings(), Flaky(TransientError("503")), on_attempt)
    assert seen == [(1, "TransientError"), (2, None)]
