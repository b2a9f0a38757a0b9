"""Circuit breakers, one per department endpoint.

Closed → (``threshold`` consecutive transient failures) → open for ``open_seconds`` →
half-open: one probe call is let through; success closes, failure opens again. While a
breaker is open, the jobs that need that endpoint stay queued and burn no attempts.

Breakers are per process: with several replicas each learns an outage by itself (each
pays ``threshold`` failures and sends its own probe), which keeps them independent of the
store. ``/readyz`` shows the breakers of the replica that answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(Exception):
    """Raised instead of calling a department whose breaker is open."""

    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"{key}: circuit open")
        self.retry_in = retry_in


@dataclass
class Breaker:
    key: str
    threshold: int = 5
    open_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    on_change: Callable[[str, BreakerState], None] | None = field(default=None, repr=False)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def retry_in(self) -> float:
        """When a job held back by this breaker should be looked at again."""
        if self.opened_at is None:
            return 0.0
        remaining = self.open_seconds - (self.clock() - self.opened_at)
        # Half-open with the probe under way: wait for the probe, not a busy loop.
        return remaining if remaining > 0 else min(max(self.open_seconds / 4, 0.1), 1.0)

    def allows_work(self) -> bool:
        """May jobs for this endpoint be claimed? (Half-open: yes, but only for one probe.)"""
        state = self.state
        return state == BreakerState.CLOSED or (state == BreakerState.HALF_OPEN and not self.probing)

    def before_call(self) -> None:
        state = self.state
        if state == BreakerState.OPEN or (state == BreakerState.HALF_OPEN and self.probing):
            raise BreakerOpen(self.key, self.retry_in())
        if state == BreakerState.HALF_OPEN:
            self.probing = True

    def success(self) -> None:
        was = self.state
        self.failures, self.opened_at, self.probing = 0, None, False
        if was != BreakerState.CLOSED:
            self._changed()

    def transient_failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = self.clock(), False
            self._changed()

    def release_probe(self) -> None:
        """The probe ended without an answer either way (cancelled): let another try."""
        self.probing = False

    def _changed(self) -> None:
        if self.on_change:
            self.on_change(self.key, self.state)


class Breakers:
    def __init__(self, threshold: int, open_seconds: float,
                 on_change: Callable[[str, BreakerState], None] | None = None) -> None:
        self._threshold, self._open_seconds, self._on_change = threshold, open_seconds, on_change
        self._by_key: dict[str, Breaker] = {}

    def get(self, key: str) -> Breaker:
        b = self._by_key.get(key)
        if b is None:
            b = self._by_key[key] = Breaker(key, self._threshold, self._open_seconds, on_change=self._on_change)
        return b

    def blocked(self) -> set[str]:
        """Keys (``department.endpoint``) of endpoints that take no work now."""
        return {k for k, b in self._by_key.items() if not b.allows_work()}

    def states(self) -> dict[str, str]:
        return {k: b.state.value for k, b in sorted(self._by_key.items())}
