"""Rows the store hands out and takes in (frozen values; payloads stay plain dicts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.store.audit import AuditRecord


TECHNICAL_FAILURE = "DELIVERY_FAILED"  # the reason code of a dead-lettered submission
PREREQUISITE_NOT_APPROVED = "PREREQUISITE_NOT_APPROVED"  # a dependant cancelled with its initiating item


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


class LeaseLost(RuntimeError):
    """This worker's lease on a job has lapsed and another worker may hold it now: stop,
    and change nothing more about the job."""


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
    # The inbound Idempotency-Key record finished in the same transaction (None: no key).
    idempotency_key: str | None = None
    # The audit record of the acceptance, written in the same transaction.
    audit: AuditRecord | None = None
    request_id: str = ""  # the platform request it came in with (X-Request-Id)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    application_no: str
    item: str
    kind: JobKind
    department: str
    attempts: int
    created_at: float
    lease: str = ""  # this claim's token: every change to the job is fenced by it
    unknown_outcome: bool = False  # a send may have reached the department: ask before sending again
    first_attempt_at: float | None = None  # the retry policy's max_age counts from here


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
    notify_version: int = 0
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a delivery id was sent for."""

    application_no: str
    item: str
    department: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    application_no: str
    item: str
    old: str
    new: str
