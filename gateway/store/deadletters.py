"""Dead letters: jobs parked for an operator — list, inspect, replay (with the same delivery id)."""

from __future__ import annotations

import time
from typing import Any

from gateway.status import ApplicationStatus
from gateway.store.audit import AuditRecord
from gateway.store.base import StoreBase
from gateway.store.models import JobKind


class DeadLetters(StoreBase):
    """Dead-letter operations of the store (mixed into SqlStore)."""

    async def dead_letters(self, include_replayed: bool = False) -> list[dict[str, Any]]:
        where = "" if include_replayed else " WHERE replayed_at IS NULL"
        async with self.connector.read() as tx:
            return [dict(r) for r in await tx.fetchall(f"SELECT * FROM dead_letters{where} ORDER BY created_at")]

    async def dead_letter_detail(self, job_id: int) -> dict[str, Any] | None:
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT * FROM dead_letters WHERE job_id = ?", (job_id,))
            if row is None:
                return None
            attempts = await tx.fetchall(
                "SELECT at, outcome, error FROM job_attempts WHERE job_id = ? ORDER BY at", (job_id,)
            )
        return dict(row) | {"history": [dict(a) for a in attempts]}

    async def replay_dead_letter(self, job_id: int, audit: AuditRecord | None = None) -> bool:
        """Queue a dead job again. Its delivery id is derived from (application, item), so
        the department sees the same id as before and can drop a duplicate."""
        now = time.time()
        async with self.connector.write() as tx:
            dl = await tx.fetchone("SELECT * FROM dead_letters WHERE job_id = ? AND replayed_at IS NULL", (job_id,))
            if dl is None:
                return False
            if audit is not None:  # the operator's action on record in its own transaction
                await self._append_audit(tx, [audit])
            application_no, item = dl["application_no"], dl["item"]
            await self._lock_application(tx, application_no)
            await tx.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, not_before = ?, created_at = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = 'dead'",
                (now, now, job_id),
            )
            await tx.execute(
                "UPDATE dead_letters SET replayed_at = ?, resolution = 'replayed' WHERE job_id = ?", (now, job_id)
            )
            if dl["kind"] == JobKind.SUBMIT.value:
                reopened = await tx.execute(
                    "UPDATE items SET status = 'planned', reason_code = '', message = '', updated_at = ?"
                    " WHERE application_no = ? AND item = ? AND status = 'failed'",
                    (now, application_no, item),
                )
                mode = await tx.fetchone(
                    "SELECT mode FROM items WHERE application_no = ? AND item = ?", (application_no, item)
                )
                if reopened and mode is not None and mode["mode"] == "initiating":
                    await self._reopen_dependents(tx, application_no, now)
                await tx.execute(
                    "UPDATE applications SET status = ?, updated_at = ? WHERE application_no = ?",
                    (ApplicationStatus.IN_PROGRESS.value, now, application_no),
                )
        return True
