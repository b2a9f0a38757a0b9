"""The circuit breaker's state machine, on a controlled clock."""

from __future__ import annotations

import pytest

from gateway.breaker import Breaker, BreakerOpen, Breakers, BreakerState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_transient_failures_and_refuses_calls() -> None:
    clock = Clock()
    b = Breaker("hrss.api", threshold=3, open_seconds=10, clock=clock)
    for _ in range(2):
        b.transient_failure()
    assert b.state == BreakerState.CLOSED
    b.transient_failure()
    assert b.state == BreakerState.OPEN and not b.allows_work()
    with pytest.raises(BreakerOpen):
        b.before_call()


def test_a_success_resets_the_failure_count() -> None:
    b = Breaker("x", threshold=2, clock=Clock())
    b.transient_failure()
    b.success()
    b.transient_failure()
    assert b.state == BreakerState.CLOSED


def test_half_open_lets_one_probe_through_and_success_closes() -> None:
    clock = Clock()
    b = Breaker("x", threshold=1, open_seconds=5, clock=clock)
    b.transient_failure()
    clock.now += 5
    assert b.state == BreakerState.HALF_OPEN and b.allows_work()
    b.before_call()
    with pytest.raises(BreakerOpen):
        b.before_call()  # a second caller waits for the probe
    b.success()
    assert b.state == BreakerState.CLOSED


def test_failed_probe_opens_again() -> None:
    clock = Clock()
    b = Breaker("x", threshold=3, open_seconds=5, clock=clock)
    for _ in range(3):
        b.transient_failure()
    clock.now += 6
    b.before_call()
    b.transient_failure()
    assert b.state == BreakerState.OPEN


def test_blocked_lists_only_the_endpoints_that_take_no_work() -> None:
    seen: list[tuple[str, BreakerState]] = []
    breakers = Breakers(1, 60, on_change=lambda k, s: seen.append((k, s)))
    breakers.get("hpf.files").transient_failure()
    breakers.get("hpf.api").success()
    breakers.get("hrss.api").success()
    assert breakers.blocked() == {"hpf.files"}  # hpf's query endpoint still takes work
    assert seen == [("hpf.files", BreakerState.OPEN)]


def test_a_job_held_back_by_a_probing_breaker_waits_for_the_probe_not_a_busy_loop() -> None:
    clock = Clock()
    b = Breaker("hrss.api", threshold=1, open_seconds=2, clock=clock)
    b.transient_failure()
    clock.now += 3
    b.before_call()  # the half-open probe
    with pytest.raises(BreakerOpen) as info:
        b.before_call()
    assert info.value.retry_in >= 0.5
