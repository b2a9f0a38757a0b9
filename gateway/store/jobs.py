"""The outbox: jobs claimed with a lease, every later change fenced by that lease.

A claim stamps each job with a fresh lease token (``lease_owner``). Finishing, releasing,
recording an attempt or dead-lettering a job succeeds only while that token is still the
job's: a worker whose lease lapsed (a stalled process) cannot finish or fail a job that
another worker has claimed since. ``LeaseLost`` tells it to stop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.mapping import ItemResult
from gateway.status import ItemStatus
from gateway.store.base import StoreBase
from gateway.store.connectors import Tx
from gateway.store.models import TECHNICAL_FAILURE, Job, JobKind, JobState, LeaseLost, Transition

_JOB_COLUMNS = (
    "id, application_no, item, kind, department, attempts, created_at, lease_owner, unknown_outcome, first_attempt_at"
)


def _job(row: Mapping[str, Any]) -> Job:
    return Job(
        int(row["id"]), str(row["application_no"]), str(row["item"]), JobKind(str(row["kind"])),
        str(row["department"]), int(row["attempts"]), float(row["created_at"]), str(row["lease_owner"] or ""),
        bool(row["unknown_outcome"]),
        None if row["first_attempt_at"] is None else float(row["first_attempt_at"]),
    )


async def insert_job(
    tx: Tx, application_no: str, item: str, kind: JobKind, department: str, state: JobState, at: float
) -> None:
    await tx.execute(
        "INSERT INTO jobs (application_no, item, kind, department, state, not_before, created_at)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        (application_no, item, kind.value, department, state.value, at, at),
    )


class JobQueue(StoreBase):
    """Outbox operations of the store (mixed into SqlStore)."""

    async def claim_jobs(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        skip: Sequence[tuple[str, str]] = (),
        kinds: Sequence[JobKind] = (),
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs. ``skip``: (department, kind) pairs whose endpoint
        takes no work now (open circuit breaker, disabled binding): they stay queued and
        burn no attempt. ``kinds``: only these kinds (all when empty)."""
        if limit <= 0:
            return []
        now = time.time()
        where = "".join(" AND NOT (department = ? AND kind = ?)" for _ in skip)
        params: list[object] = [now, now, *[v for pair in skip for v in pair]]
        if kinds:
            where += " AND kind IN (" + ",".join("?" for _ in kinds) + ")"
            params += [k.value for k in kinds]
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgres" else ""
        async with self.connector.write() as tx:
            rows = await tx.fetchall(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'pending' AND not_before <= ?"
                f" AND (lease_until IS NULL OR lease_until < ?){where} ORDER BY not_before, id LIMIT ?{lock}",
                (*params, limit),
            )
            jobs = []
            for r in rows:
                lease = f"{owner}.{uuid.uuid4().hex[:10]}"
                await tx.execute(
                    "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (lease, now + lease_seconds, r["id"]),
                )
                jobs.append(_job(dict(r) | {"lease_owner": lease}))
        return jobs

    async def heartbeat(self, jobs: Sequence[Job], lease_seconds: float) -> list[int]:
        """Extend the leases; the ids of jobs whose lease is no longer ours."""
        if not jobs:
            return []
        until = time.time() + lease_seconds
        lost = []
        async with self.connector.write() as tx:
            for job in jobs:
                n = await tx.execute(
                    "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND state = 'pending'",
                    (until, job.id, job.lease),
                )
                if n == 0:
                    lost.append(job.id)
        return lost

    async def record_attempt(self, job: Job, outcome: str, error: str | None) -> None:
        """A failed attempt, in the job's history. An ``UnknownOutcome`` marks the job in
        doubt (the department may have it); nothing but the job's end clears that."""
        now = time.time()
        async with self.connector.write() as tx:
            n = await tx.execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = ?,"
                " unknown_outcome = CASE WHEN ? = 1 THEN 1 ELSE unknown_outcome END,"
                " first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ? AND lease_owner = ?",
                (error, int(outcome == "UnknownOutcome"), now, job.id, job.lease),
            )
            if n == 0:
                raise LeaseLost(f"job {job.id}")
            await tx.execute(
                "INSERT INTO job_attempts (job_id, at, outcome, error) VALUES (?,?,?,?)", (job.id, now, outcome, error)
            )

    async def mark_dispatched(self, job: Job) -> list[Transition]:
        """About to send: the item shows ``dispatched`` and the job is in doubt from here on,
        so that whoever takes it after a crash asks the department before sending again."""
        now = time.time()
        async with self.connector.write() as tx:
            n = await tx.execute(
                "UPDATE jobs SET unknown_outcome = 1 WHERE id = ? AND lease_owner = ?", (job.id, job.lease)
            )
            if n == 0:
                raise LeaseLost(f"job {job.id}")
            result = ItemResult(ItemStatus.DISPATCHED, "", "")
            return await self._apply(tx, job.application_no, job.item, result, None, now)

    async def finish_job(self, job: Job) -> None:
        async with self.connector.write() as tx:
            await self._finish(tx, job)

    async def _finish(self, tx: Tx, job: Job) -> None:
        n = await tx.execute(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, unknown_outcome = 0"
            " WHERE id = ? AND lease_owner = ?",
            (job.id, job.lease),
        )
        if n == 0:
            raise LeaseLost(f"job {job.id}")

    async def release_job(
        self, job: Job, delay: float, error: str | None = None, *, restart_age: bool = False,
        new_round: bool = False,
    ) -> None:
        """Give a job back without finishing it (shutdown, open breaker, a long wait, poll
        again later). ``restart_age``: the retry policy's max_age counts again from the next
        attempt (the time an open breaker held the job back is not its age); ``new_round``
        also starts a fresh attempt budget (each round of status polling)."""
        now = time.time()
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, not_before = ?,"
                " last_error = COALESCE(?, last_error),"
                " first_attempt_at = CASE WHEN ? = 1 THEN NULL ELSE first_attempt_at END,"
                " attempts = CASE WHEN ? = 1 THEN 0 ELSE attempts END"
                " WHERE id = ? AND lease_owner = ? AND state = 'pending'",
                (now + delay, error, int(restart_age or new_round), int(new_round), job.id, job.lease),
            )

    async def dead_letter(self, job: Job, error: str) -> list[Transition]:
        """The job exhausted its policy (or failed for good): park it for an operator.

        A submission's item shows ``failed`` — unless the item already reached a final
        status another way (a callback that arrived meanwhile): then there is nothing to
        park and the job is simply finished. A failed status poll leaves the item as the
        department last reported it (the department has it)."""
        now = time.time()
        async with self.connector.write() as tx:
            if job.kind == JobKind.SUBMIT:
                row = await tx.fetchone(
                    "SELECT status FROM items WHERE application_no = ? AND item = ?", (job.application_no, job.item)
                )
                if row is not None and ItemStatus(row["status"]).final:
                    await self._finish(tx, job)
                    return []
            n = await tx.execute(
                "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, last_error = ?"
                " WHERE id = ? AND lease_owner = ?",
                (error, job.id, job.lease),
            )
            if n == 0:
                raise LeaseLost(f"job {job.id}")
            row = await tx.fetchone("SELECT attempts FROM jobs WHERE id = ?", (job.id,))
            attempts = int(row["attempts"]) if row else 0
            await tx.execute(
                "INSERT INTO dead_letters (job_id, application_no, item, kind, department, last_error, attempts,"
                " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (job_id) DO UPDATE SET last_error = ?,"
                " attempts = ?, created_at = ?, replayed_at = NULL, resolution = NULL",
                (job.id, job.application_no, job.item, job.kind.value, job.department, error, attempts, now,
                 error, attempts, now),
            )
            if job.kind != JobKind.SUBMIT:
                return []
            result = ItemResult(ItemStatus.FAILED, TECHNICAL_FAILURE, "未能送达部门系统，已转人工处理")
            return await self._apply(tx, job.application_no, job.item, result, None, now)

    async def complete_job(
        self,
        job: Job,
        *,
        result: ItemResult | None = None,
        raw: str | None = None,
        from_department: bool = True,
        then: tuple[JobKind, float] | None = None,
    ) -> list[Transition]:
        """The end of a job that succeeded, in one transaction: its successful attempt on
        record, the item moved on (a department's ``result``, or the gateway's own mark
        with ``from_department`` False), the job finished, and ``then`` (kind, delay) queued."""
        now = time.time()
        async with self.connector.write() as tx:
            n = await tx.execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = NULL, unknown_outcome = 0,"
                " first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ? AND lease_owner = ?",
                (now, job.id, job.lease),
            )
            if n == 0:
                raise LeaseLost(f"job {job.id}")
            await tx.execute(
                "INSERT INTO job_attempts (job_id, at, outcome, error) VALUES (?,?,?,?)", (job.id, now, "ok", None)
            )
            transitions = (
                await self._apply(tx, job.application_no, job.item, result, raw, now, from_department=from_department)
                if result is not None else []
            )
            await self._finish(tx, job)
            if then is not None:
                await insert_job(tx, job.application_no, job.item, then[0], job.department, JobState.PENDING,
                                 now + then[1])
        return transitions

    # --- platform notifications --------------------------------------------------------

    async def finish_notify(self, job: Job, sent_version: int) -> None:
        """The platform took the state at ``sent_version``. If the state moved on while it
        was being sent, the job goes round again at once with the newer state."""
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE applications SET notified_version = CASE WHEN notified_version < ? THEN ?"
                " ELSE notified_version END WHERE application_no = ?",
                (sent_version, sent_version, job.application_no),
            )
            row = await tx.fetchone(
                "SELECT notify_version FROM applications WHERE application_no = ?", (job.application_no,)
            )
            if row is not None and int(row["notify_version"]) > sent_version:
                n = await tx.execute(
                    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, not_before = ?, attempts = 0,"
                    " first_attempt_at = NULL WHERE id = ? AND lease_owner = ?",
                    (time.time(), job.id, job.lease),
                )
                if n == 0:
                    raise LeaseLost(f"job {job.id}")
                return
            await self._finish(tx, job)

    async def _bump_version(self, tx: Tx, application_no: str) -> None:
        """Any visible change is a new version of the state: a notification's version (and
        Idempotency-Key) always names one body."""
        await tx.execute(
            "UPDATE applications SET notify_version = notify_version + 1 WHERE application_no = ?"
            " AND callback_url IS NOT NULL AND callback_url <> ''",
            (application_no,),
        )

    async def _arm_notify(self, tx: Tx, application_no: str, now: float) -> None:
        """An item became final: the platform is to hear the (already bumped) latest version.
        One notify job per application carries the latest state whenever it runs."""
        row = await tx.fetchone(
            "SELECT callback_url FROM applications WHERE application_no = ?", (application_no,)
        )
        if row is None or not row["callback_url"]:
            return
        await insert_job(tx, application_no, "", JobKind.NOTIFY, "", JobState.PENDING, now)
        # A finished or dead notify job is re-armed: the platform must hear every final
        # status, so a new one is another try (its dead letter is superseded). One being
        # sent re-arms itself when it finishes (finish_notify).
        await tx.execute(
            "UPDATE dead_letters SET replayed_at = ?, resolution = 'superseded' WHERE replayed_at IS NULL"
            " AND job_id IN (SELECT id FROM jobs WHERE application_no = ? AND kind = 'notify' AND state = 'dead')",
            (now, application_no),
        )
        await tx.execute(
            "UPDATE jobs SET state = 'pending', not_before = ?, attempts = 0, first_attempt_at = NULL,"
            " lease_owner = NULL, lease_until = NULL"
            " WHERE application_no = ? AND kind = 'notify' AND state IN ('done', 'dead')",
            (now, application_no),
        )
