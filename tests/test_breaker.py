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


def test_blocked_departments_lists_departments_with_an_open_endpoint() -> None:
    seen: list[tuple[str, BreakerState]] = []
    breakers = Breakers(1, 60, on_change=lambda k, s: seen.append((k, s)))
    breakers.get("hpf.files").transient_failure()
    breakers.get("hrss.api").success()
    assert breakers.blocked_departments() == ["hpf"]
    assert seen == [("hpf.files", BreakerState.OPEN)]
