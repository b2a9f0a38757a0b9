"""The embedded store: SQLite in WAL mode with synchronous=FULL, one writer at a time.

aiosqlite runs the connection on its own thread; writes are serialised by an asyncio lock
and each is one ``BEGIN IMMEDIATE`` transaction, so a crash leaves either all of a change
or none of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.mapping import ItemResult
from gateway.status import ApplicationStatus, ItemStatus
from gateway.store.models import (
    Job,
    JobKind,
    JobState,
    NewApplication,
    StoredApplication,
    Transition,
)

SCHEMA = (Path(__file__).with_name("schema.sql")).read_text(encoding="utf-8")
_RANK = {ItemStatus.PLANNED: 0, ItemStatus.DISPATCHED: 1, ItemStatus.ACCEPTED: 2}


class StoreError(RuntimeError):
    pass


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class SqliteStore:
    """The ``Store`` protocol over one SQLite file (``sqlite:///path``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        import asyncio

        self._write_lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db.row_factory = aiosqlite.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.executescript(SCHEMA)
        await self.check_durability()

    async def check_durability(self) -> None:
        """Refuse to run unless a commit really is on disk when it returns."""
        async with self.db.execute("PRAGMA journal_mode") as cur:
            mode = (await cur.fetchone())[0]
        async with self.db.execute("PRAGMA synchronous") as cur:
            sync = (await cur.fetchone())[0]
        if str(mode).lower() != "wal" or int(sync) != 2:
            raise StoreError(f"SQLite must run with WAL and synchronous=FULL (got {mode}, {sync})")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _write(self, fn: Any) -> Any:
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                result = await fn(self.db)
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")
            return result

    # --- applications -------------------------------------------------------------

    async def create_application(self, app: NewApplication) -> bool:
        now = time.time()

        async def tx(db: aiosqlite.Connection) -> bool:
            cur = await db.execute(
                "INSERT INTO applications (application_no, fingerprint, initiating_item, status, request_json,"
                " response_json, callback_url, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(application_no) DO NOTHING",
                (
                    app.application_no,
                    app.fingerprint,
                    app.initiating_item,
                    ApplicationStatus.IN_PROGRESS,
                    _dumps(app.request),
                    _dumps(app.response),
                    app.callback_url,
                    now,
                    now,
                ),
            )
            if cur.rowcount == 0:
                return False
            for pos, it in enumerate(app.items):
                await db.execute(
                    "INSERT INTO items (application_no, item, department, mode, position, after_initiating, status,"
                    " reason_code, message, delivery_id, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        app.application_no, it.item, it.department, it.mode, pos, int(it.after_initiating),
                        it.status, it.reason_code, it.message, it.delivery_id, now,
                    ),
                )
                if it.status == ItemStatus.PLANNED:
                    state = JobState.WAITING if it.after_initiating else JobState.PENDING
                    await db.execute(
                        "INSERT INTO jobs (application_no, item, kind, department, state, not_before, created_at)"
                        " VALUES (?,?,?,?,?,?,?)",
                        (app.application_no, it.item, JobKind.SUBMIT, it.department, state, now, now),
                    )
            await self._complete_if_final(db, app.application_no, now)
            return True

        result: bool = await self._write(tx)
        return result

    async def get_application(self, application_no: str) -> StoredApplication | None:
        async with self.db.execute("SELECT * FROM applications WHERE application_no = ?", (application_no,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        async with self.db.execute(
            "SELECT item, department, mode, status, reason_code, message, delivery_id, updated_at"
            " FROM items WHERE application_no = ? ORDER BY position",
            (application_no,),
        ) as cur:
            items = [dict(r) for r in await cur.fetchall()]
        return StoredApplication(
            application_no=row["application_no"],
            fingerprint=row["fingerprint"],
            initiating_item=row["initiating_item"],
            status=row["status"],
            request=json.loads(row["request_json"]),
            response=json.loads(row["response_json"]),
            callback_url=row["callback_url"],
            items=items,
        )

    async def find_delivery(self, delivery_id: str) -> tuple[str, str] | None:
        async with self.db.execute(
            "SELECT application_no, item FROM items WHERE delivery_id = ?", (delivery_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else (row[0], row[1])

    # --- jobs -----------------------------------------------------------------------

    async def claim_jobs(self, owner: str, limit: int, lease_seconds: float) -> list[Job]:
        now = time.time()

        async def tx(db: aiosqlite.Connection) -> list[Job]:
            async with db.execute(
                "SELECT id, application_no, item, kind, department, attempts, created_at FROM jobs"
                " WHERE state = 'pending' AND not_before <= ? AND (lease_until IS NULL OR lease_until < ?)"
                " ORDER BY not_before, id LIMIT ?",
                (now, now, limit),
            ) as cur:
                rows = await cur.fetchall()
            jobs = [
                Job(r[0], r[1], r[2], JobKind(r[3]), r[4], r[5], r[6]) for r in rows
            ]
            for job in jobs:
                await db.execute(
                    "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (owner, now + lease_seconds, job.id),
                )
            return jobs

        if limit <= 0:
            return []
        jobs: list[Job] = await self._write(tx)
        return jobs

    async def heartbeat(self, owner: str, job_ids: Sequence[int], lease_seconds: float) -> None:
        if not job_ids:
            return
        until = time.time() + lease_seconds

        async def tx(db: aiosqlite.Connection) -> None:
            await db.executemany(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                [(until, i, owner) for i in job_ids],
            )

        await self._write(tx)

    async def record_attempt(self, job_id: int, outcome: str, error: str | None) -> None:
        async def tx(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO job_attempts (job_id, at, outcome, error) VALUES (?,?,?,?)",
                (job_id, time.time(), outcome, error),
            )
            await db.execute("UPDATE jobs SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, job_id))

        await self._write(tx)

    async def finish_job(self, job: Job, owner: str) -> None:
        async def tx(db: aiosqlite.Connection) -> None:
            await db.execute(
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL WHERE id = ?", (job.id,)
            )

        await self._write(tx)

    async def release_job(self, job: Job, owner: str, delay: float, error: str | None = None) -> None:
        async def tx(db: aiosqlite.Connection) -> None:
            await db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, not_before = ?,"
                " last_error = COALESCE(?, last_error) WHERE id = ? AND state = 'pending'",
                (time.time() + delay, error, job.id),
            )

        await self._write(tx)

    async def dead_letter(self, job: Job, owner: str, error: str) -> list[Transition]:
        now = time.time()

        async def tx(db: aiosqlite.Connection) -> list[Transition]:
            await db.execute(
                "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, last_error = ? WHERE id = ?",
                (error, job.id),
            )
            async with db.execute("SELECT attempts FROM jobs WHERE id = ?", (job.id,)) as cur:
                attempts = (await cur.fetchone())[0]
            await db.execute(
                "INSERT OR REPLACE INTO dead_letters (job_id, application_no, item, kind, department, last_error,"
                " attempts, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (job.id, job.application_no, job.item, job.kind, job.department, error, attempts, now),
            )
            if job.kind == JobKind.NOTIFY:
                return []
            result = ItemResult(ItemStatus.FAILED, "DELIVERY_FAILED", "未能送达部门系统，已转人工处理")
            return await self._apply(db, job.application_no, job.item, result, None, now)

        transitions: list[Transition] = await self._write(tx)
        return transitions

    async def schedule(self, application_no: str, item: str, kind: JobKind, department: str, delay: float) -> None:
        now = time.time()

        async def tx(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO jobs (application_no, item, kind, department, state, not_before, created_at)"
                " VALUES (?,?,?,?,'pending',?,?)",
                (application_no, item, kind, department, now + delay, now),
            )

        await self._write(tx)

    async def reschedule_poll(self, job: Job, delay: float) -> None:
        """Poll again later: a "still processing" answer is not a failed attempt."""
        await self.release_job(job, "", delay)

    # --- item status ------------------------------------------------------------------

    async def mark_item(self, application_no: str, item: str, status: str) -> list[Transition]:
        now = time.time()

        async def tx(db: aiosqlite.Connection) -> list[Transition]:
            return await self._apply(db, application_no, item, ItemResult(ItemStatus(status), "", ""), None, now)

        transitions: list[Transition] = await self._write(tx)
        return transitions

    async def apply_result(
        self, application_no: str, item: str, result: ItemResult, raw: str | None
    ) -> list[Transition]:
        now = time.time()

        async def tx(db: aiosqlite.Connection) -> list[Transition]:
            return await self._apply(db, application_no, item, result, raw, now)

        transitions: list[Transition] = await self._write(tx)
        return transitions

    async def _apply(
        self, db: aiosqlite.Connection, application_no: str, item: str, result: ItemResult, raw: str | None,
        now: float,
    ) -> list[Transition]:
        """Move one item forward (never back, never out of a final status) and follow on."""
        async with db.execute(
            "SELECT status, mode FROM items WHERE application_no = ? AND item = ?", (application_no, item)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return []
        old = ItemStatus(row[0])
        new = result.status
        if old.final or (not new.final and _RANK.get(new, 0) <= _RANK.get(old, 0)):
            return []
        await db.execute(
            "UPDATE items SET status = ?, reason_code = CASE WHEN ? = '' THEN reason_code ELSE ? END,"
            "message = CASE WHEN ? = '' THEN message ELSE ? END, raw_result = COALESCE(?, raw_result),"
            " document = COALESCE(?, document), updated_at = ? WHERE application_no = ? AND item = ?",
            (new, result.reason_code, result.reason_code, result.message, result.message, raw, result.document, now,
             application_no, item),
        )
        transitions = [Transition(application_no, item, old, new)]
        if new.final and row[1] == "initiating":
            transitions += await self._follow_initiating(db, application_no, new, result, now)
        if new.final:
            await self._notify(db, application_no, now)
            await self._complete_if_final(db, application_no, now)
        return transitions

    async def _follow_initiating(
        self, db: aiosqlite.Connection, application_no: str, status: ItemStatus, result: ItemResult, now: float
    ) -> list[Transition]:
        """domain.md §4: approval releases the dependent items; anything else cancels them."""
        if status == ItemStatus.APPROVED:
            await db.execute(
                "UPDATE jobs SET state = 'pending', not_before = ? WHERE application_no = ? AND state = 'waiting'",
                (now, application_no),
            )
            return []
        async with db.execute(
            "SELECT item, status FROM items WHERE application_no = ? AND after_initiating = 1 AND status = 'planned'",
            (application_no,),
        ) as cur:
            rows = await cur.fetchall()
        why = "发起事项未通过，本事项随之撤销" + (f"：{result.message}" if result.message else "")
        for r in rows:
            await db.execute(
                "UPDATE items SET status = 'cancelled', reason_code = 'PREREQUISITE_NOT_APPROVED', message = ?,"
                " updated_at = ? WHERE application_no = ? AND item = ?",
                (why, now, application_no, r[0]),
            )
        await db.execute(
            "UPDATE jobs SET state = 'cancelled' WHERE application_no = ? AND state = 'waiting'", (application_no,)
        )
        return [Transition(application_no, r[0], r[1], ItemStatus.CANCELLED) for r in rows]

    async def _notify(self, db: aiosqlite.Connection, application_no: str, now: float) -> None:
        async with db.execute(
            "SELECT callback_url FROM applications WHERE application_no = ?", (application_no,)
        ) as cur:
            row = await cur.fetchone()
        if row is None or not row[0]:
            return
        # One pending notification carries the latest state: coalesce bursts of changes.
        async with db.execute(
            "SELECT 1 FROM jobs WHERE application_no = ? AND kind = 'notify' AND state = 'pending'"
            " AND lease_owner IS NULL",
            (application_no,),
        ) as cur:
            if await cur.fetchone():
                return
        await db.execute(
            "INSERT INTO jobs (application_no, item, kind, department, state, not_before, created_at)"
            " VALUES (?, '', 'notify', '', 'pending', ?, ?)",
            (application_no, now, now),
        )

    async def _complete_if_final(self, db: aiosqlite.Connection, application_no: str, now: float) -> None:
        async with db.execute(
            "SELECT COUNT(*) FROM items WHERE application_no = ? AND status NOT IN"
            " ('approved','rejected','failed','cancelled','skipped')",
            (application_no,),
        ) as cur:
            open_items = (await cur.fetchone())[0]
        if open_items == 0:
            await db.execute(
                "UPDATE applications SET status = ?, updated_at = ? WHERE application_no = ?",
                (ApplicationStatus.COMPLETED, now, application_no),
            )

    # --- operations -------------------------------------------------------------------

    async def initiating_document(self, application_no: str) -> str | None:
        async with self.db.execute(
            "SELECT document FROM items WHERE application_no = ? AND mode = 'initiating'", (application_no,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else row[0]

    async def counts(self) -> dict[str, int]:
        async with self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state") as cur:
            jobs = {f"jobs_{r[0]}": r[1] for r in await cur.fetchall()}
        async with self.db.execute("SELECT status, COUNT(*) FROM applications GROUP BY status") as cur:
            apps = {f"applications_{r[0]}": r[1] for r in await cur.fetchall()}
        return jobs | apps

    async def dead_letters(self) -> list[dict[str, Any]]:
        async with self.db.execute("SELECT * FROM dead_letters ORDER BY created_at") as cur:
            return [dict(r) for r in await cur.fetchall()]


def open_store(url: str, base_dir: Path) -> SqliteStore:
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        return SqliteStore(path if path.is_absolute() else base_dir / path)
    raise StoreError(f"unsupported store URL {url.split(':', 1)[0]}: (sqlite:///path is supported)")
