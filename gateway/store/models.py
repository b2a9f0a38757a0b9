"""Rows the store hands out, and the Store protocol both implementations follow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from gateway.mapping import ItemResult


class JobKind(StrEnum):
    SUBMIT = "submit"  # send the item to its department
    POLL = "poll"  # ask the department for the item's result
    NOTIFY = "notify"  # POST the application's state to the platform's callback_url


class JobState(StrEnum):
    WAITING = "waiting"  # blocked until the initiating item is approved
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class NewItem:
    item: str
    department: str
    mode: str
    status: str
    after_initiating: bool
    delivery_id: str | None
    reason_code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class NewApplication:
    application_no: str
    fingerprint: str
    initiating_item: str
    request: dict[str, Any]
    response: dict[str, Any]
    callback_url: str | None
    items: Sequence[NewItem]


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    application_no: str
    item: str
    kind: JobKind
    department: str
    attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class StoredApplication:
    application_no: str
    fingerprint: str
    initiating_item: str
    status: str
    request: dict[str, Any]
    response: dict[str, Any]
    callback_url: str | None
    items: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Transition:
    application_no: str
    item: str
    old: str
    new: str


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_application(self, app: NewApplication) -> bool:
        """Write application, items and jobs in one transaction. False if the number exists."""
        ...

    async def get_application(self, application_no: str) -> StoredApplication | None: ...

    async def find_delivery(self, delivery_id: str) -> tuple[str, str] | None:
        """(application_no, item) for a delivery id."""
        ...

    async def claim_jobs(self, owner: str, limit: int, lease_seconds: float) -> list[Job]: ...

    async def heartbeat(self, owner: str, job_ids: Sequence[int], lease_seconds: float) -> None: ...

    async def record_attempt(self, job_id: int, outcome: str, error: str | None) -> None: ...

    async def finish_job(self, job: Job, owner: str) -> None: ...

    async def release_job(self, job: Job, owner: str, delay: float, error: str | None = None) -> None: ...

    async def dead_letter(self, job: Job, owner: str, error: str) -> list[Transition]: ...

    async def schedule(self, application_no: str, item: str, kind: JobKind, department: str, delay: float) -> None:
        ...

    async def mark_item(self, application_no: str, item: str, status: str) -> list[Transition]: ...

    async def apply_result(
        self, application_no: str, item: str, result: ItemResult, raw: str | None
    ) -> list[Transition]: ...

    async def counts(self) -> dict[str, int]: ...
