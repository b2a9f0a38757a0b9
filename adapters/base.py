"""The adapter seam: one protocol binding of one department endpoint.

Error tree (every adapter maps its library's errors into this, once, ``from exc``)::

    AdapterError
    ├── TransientError          a later attempt can succeed (timeouts, 5xx, 429, refused)
    │   └── UnknownOutcome      the request may have reached the department (sent, then lost)
    └── PermanentError          retrying cannot help (4xx, validation fault, bad mapping)

Adapters never retry or sleep: the retry policy lives in ``gateway.retry``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class AdapterError(Exception):
    """A department call failed. ``detail`` never holds personal data."""

    transient: bool = False

    def __init__(self, detail: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class TransientError(AdapterError):
    transient = True


class UnknownOutcome(TransientError):
    """Sent, but no answer: re-send with the same delivery id, or ask the status."""


class PermanentError(AdapterError):
    transient = False


@dataclass(frozen=True, slots=True)
class Operation:
    """What the mapping file says about one department operation (query, submit, status)."""

    name: str
    endpoint: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A department message built by the mapping, ready for the wire."""

    operation: Operation
    delivery_id: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """A department's answer, decoded into plain data but not yet interpreted."""

    body: Any
    status: int | None = None


@dataclass(frozen=True, slots=True)
class RawResult:
    """A result that arrived on its own (a result file): interpreted by the mapping."""

    delivery_id: str
    body: Any
    source: str


@runtime_checkable
class Adapter(Protocol):
    """One configured department endpoint. Built by a factory, opened once, reused."""

    kind: str

    async def open(self) -> None: ...

    async def call(self, message: OutboundMessage, timeout: float) -> Reply: ...

    async def close(self) -> None: ...


@runtime_checkable
class Verifiable(Protocol):
    """An adapter whose open() tolerates an unreachable department (so start-up never
    waits on one) can prove on request that the endpoint works: ``verify()`` raises the
    classified error if not. Used before a runtime binding is applied and by
    ``gateway departments test``."""

    async def verify(self) -> None: ...


@runtime_checkable
class ResultSource(Protocol):
    """An adapter that also collects results by itself (file pickup)."""

    def results(self) -> AsyncIterator[RawResult]: ...

    async def acknowledge(self, result: RawResult, ok: bool) -> None: ...
