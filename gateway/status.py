"""The unified item status every department's codes map onto (architecture.md)."""

from __future__ import annotations

from enum import StrEnum


class ItemStatus(StrEnum):
    PLANNED = "planned"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"  # technical: dead-lettered
    CANCELLED = "cancelled"  # a prerequisite was rejected
    SKIPPED = "skipped"  # not applicable, not connected, or the person opted out

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {ItemStatus.APPROVED, ItemStatus.REJECTED, ItemStatus.FAILED, ItemStatus.CANCELLED, ItemStatus.SKIPPED}
)


class ApplicationStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # every item final
