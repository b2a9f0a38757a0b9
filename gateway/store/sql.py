"""The gateway's store: applications, items, outbox jobs with leases, dead letters and
idempotency keys — one implementation over a connector (SQLite or PostgreSQL).

Concurrency is decided by the database, not by check-then-act in Python: a unique
application number, ``INSERT … ON CONFLICT DO NOTHING``, leases on jobs, and on
PostgreSQL ``FOR UPDATE SKIP LOCKED`` when claiming.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.mapping import ItemResult
from gateway.status import FINAL_STATUSES, ApplicationStatus, ItemStatus
from gateway.store.connectors import (
    SCHEMA_VERSION,
    Connector,
    PostgresConnector,
    SqliteConnector,
    StoreError,
    Tx,
)
from gateway.store.models import Job, JobKind, JobState, NewApplication, StoredApplication, Transition

_RANK = {ItemStatus.PLANNED: 0, ItemStatus.DISPATCHED: 1, ItemStatus.ACCEPTED: 2}
_FINAL_SQL = "(" + ",".join(f"'{s}'" for s in sorted(FINAL_STATUSES)) + ")"


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class SqlStore:
    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    @property
    def dialect(self) -> str:
        return self.connector.dialect

    async def open(self) -> None:
        await self.connector.open()
        async with self.connector.write() as tx:
            await tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?) ON CONFLICT (version) DO NOTHING",
                (SCHEMA_VERSION, time.time()),
            )

    async def close(self) -> None:
        await self.connector.close()

    async def ready(self) -> bool:
        """Reachable, and the schema this code expects has been applied."""
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT MAX(version) AS v FROM schema_version")
        return row is not None and row["v"] == SCHEMA_VERSION

    # --- applications -------------------------------------------------------------------

    async def create_application(self, app: NewApplication) -> bool:
        """Application, items and jobs in one transaction; False if the number exists."""
        now = time.time()
        async with self.connector.write() as tx:
            created = await tx.execute(
                "INSERT INTO applications (application_no, fingerprint, initiating_item, status, request_json,"
                " response_json, callback_url, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (application_no) DO NOTHING",
                (app.application_no, app.fingerprint, app.initiating_item, ApplicationStatus.IN_PROGRESS.value,
                 _dumps(app.request), _dumps(app.response), app.callback_url, now, now),
            )
            if created == 0:
                return False
            for pos, it in enumerate(app.items):
                await tx.execute(
                    "INSERT INTO items (application_no, item, department, mode, position, after_initiating, status,"
                    " reason_code, message, delivery_id, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (app.application_no, it.item, it.department, it.mode, pos, int(it.after_initiating),
                     it.status, it.reason_code, it.message, it.delivery_id, now),
                )
                if it.status == ItemStatus.PLANNED:
                    state = JobState.WAITING if it.after_initiating else JobState.PENDING
                    await self._insert_job(tx, app.application_no, it.item, JobKind.SUBMIT, it.department, state, now)
            await self._complete_if_final(tx, app.application_no, now)
        return True

    async def get_application(self, application_no: str) -> StoredApplication | None:
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT * FROM applications WHERE application_no = ?", (application_no,))
            if row is None:
                return None
            items = await tx.fetchall(
                "SELECT item, department, mode, status, reason_code, message, delivery_id, updated_at"
                " FROM items WHERE application_no = ? ORDER BY position",
                (application_no,),
            )
        return StoredApplication(
            application_no=row["application_no"],
            fingerprint=row["fingerprint"],
            initiating_item=row["initiating_item"],
            status=row["status"],
            request=json.loads(row["request_json"]),
            response=json.loads(row["response_json"]),
            callback_url=row["callback_url"],
            items=[dict(i) for i in items],
        )

    async def find_delivery(self, delivery_id: str) -> tuple[str, str] | None:
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT application_no, item FROM items WHERE delivery_id = ?", (delivery_id,))
        return None if row is None else (row["application_no"], row["item"])

    async def initiating_document(self, application_no: str) -> str | None:
        async with self.connector.read() as tx:
            row = await tx.fetchone(
                "SELECT document FROM items WHERE application_no = ? AND mode = 'initiating'", (application_no,)
            )
        return None if row is None else row["document"]

    # --- jobs ---------------------------------------------------------------------------

    async def _insert_job(
        self, tx: Tx, application_no: str, item: str, kind: JobKind, department: str, state: JobState, at: float
    ) -> None:
        await tx.execute(
            "INSERT INTO jobs (application_no, item, kind, department, state, not_before, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (application_no, item, kind.value, department, state.value, at, at),
        )

    async def claim_jobs(
        self, owner: str, limit: int, lease_seconds: float, skip_departments: Sequence[str] = ()
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs. Jobs of departments in ``skip_departments``
        (an open circuit breaker) stay where they are and burn no attempt."""
        if limit <= 0:
            return []
        now = time.time()
        skip = "".join(" AND department <> ?" for _ in skip_departments)
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgres" else ""
        async with self.connector.write() as tx:
            rows = await tx.fetchall(
                "SELECT id, application_no, item, kind, department, attempts, created_at FROM jobs"
                " WHERE state = 'pending' AND not_before <= ? AND (lease_until IS NULL OR lease_until < ?)"
                f"{skip} ORDER BY not_before, id LIMIT ?{lock}",
                (now, now, *skip_departments, limit),
            )
            for r in rows:
                await tx.execute(
                    "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ?",
                    (owner, now + lease_seconds, r["id"]),
                )
        return [
            Job(r["id"], r["application_no"], r["item"], JobKind(r["kind"]), r["department"], r["attempts"],
                r["created_at"])
            for r in rows
        ]

    async def heartbeat(self, owner: str, job_ids: Sequence[int], lease_seconds: float) -> None:
        if not job_ids:
            return
        until = time.time() + lease_seconds
        async with self.connector.write() as tx:
            for i in job_ids:
                await tx.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ?", (until, i, owner))

    async def record_attempt(self, job_id: int, outcome: str, error: str | None) -> None:
        async with self.connector.write() as tx:
            await tx.execute(
                "INSERT INTO job_attempts (job_id, at, outcome, error) VALUES (?,?,?,?)",
                (job_id, time.time(), outcome, error),
            )
            await tx.execute("UPDATE jobs SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, job_id))

    async def finish_job(self, job: Job, owner: str) -> None:
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL WHERE id = ?", (job.id,)
            )

    async def release_job(self, job: Job, owner: str, delay: float, error: str | None = None) -> None:
        """Give a job back without finishing it (shutdown, open breaker, poll again later)."""
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, not_before = ?,"
                " last_error = COALESCE(?, last_error) WHERE id = ? AND state = 'pending'",
                (time.time() + delay, error, job.id),
            )

    async def dead_letter(self, job: Job, owner: str, error: str) -> list[Transition]:
        now = time.time()
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, last_error = ? WHERE id = ?",
                (error, job.id),
            )
            row = await tx.fetchone("SELECT attempts FROM jobs WHERE id = ?", (job.id,))
            await tx.execute(
                "INSERT INTO dead_letters (job_id, application_no, item, kind, department, last_error, attempts,"
                " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (job_id) DO UPDATE SET last_error = ?,"
                " attempts = ?, created_at = ?, replayed_at = NULL",
                (job.id, job.application_no, job.item, job.kind.value, job.department, error,
                 row["attempts"] if row else 0, now, error, row["attempts"] if row else 0, now),
            )
            if job.kind == JobKind.NOTIFY:
                return []
            result = ItemResult(ItemStatus.FAILED, "DELIVERY_FAILED", "未能送达部门系统，已转人工处理")
            return await self._apply(tx, job.application_no, job.item, result, None, now)

    async def schedule(self, application_no: str, item: str, kind: JobKind, department: str, delay: float) -> None:
        async with self.connector.write() as tx:
            await self._insert_job(tx, application_no, item, kind, department, JobState.PENDING, time.time() + delay)

    # --- dead letters -------------------------------------------------------------------

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

    async def replay_dead_letter(self, job_id: int) -> bool:
        """Queue a dead job again. Its delivery id is derived from (application, item), so
        the department sees the same id as before and can drop a duplicate."""
        now = time.time()
        async with self.connector.write() as tx:
            dl = await tx.fetchone("SELECT * FROM dead_letters WHERE job_id = ? AND replayed_at IS NULL", (job_id,))
            if dl is None:
                return False
            await self._lock_application(tx, dl["application_no"])
            await tx.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, not_before = ?, created_at = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ? AND state = 'dead'",
                (now, now, job_id),
            )
            await tx.execute("UPDATE dead_letters SET replayed_at = ? WHERE job_id = ?", (now, job_id))
            if dl["kind"] != JobKind.NOTIFY.value:
                await tx.execute(
                    "UPDATE items SET status = 'planned', reason_code = '', message = '', updated_at = ?"
                    " WHERE application_no = ? AND item = ? AND status = 'failed'",
                    (now, dl["application_no"], dl["item"]),
                )
                # Items cancelled only because this one failed go back to waiting for it.
                mode = await tx.fetchone(
                    "SELECT mode FROM items WHERE application_no = ? AND item = ?", (dl["application_no"], dl["item"])
                )
                if mode is not None and mode["mode"] == "initiating":
                    await tx.execute(
                        "UPDATE items SET status = 'planned', reason_code = '', message = '', updated_at = ?"
                        " WHERE application_no = ? AND status = 'cancelled'"
                        " AND reason_code = 'PREREQUISITE_NOT_APPROVED'",
                        (now, dl["application_no"]),
                    )
                    await tx.execute(
                        "UPDATE jobs SET state = 'waiting' WHERE application_no = ? AND state = 'cancelled'",
                        (dl["application_no"],),
                    )
                await tx.execute(
                    "UPDATE applications SET status = ?, updated_at = ? WHERE application_no = ?",
                    (ApplicationStatus.IN_PROGRESS.value, now, dl["application_no"]),
                )
        return True

    # --- item status --------------------------------------------------------------------

    async def mark_item(self, application_no: str, item: str, status: str) -> list[Transition]:
        async with self.connector.write() as tx:
            return await self._apply(
                tx, application_no, item, ItemResult(ItemStatus(status), "", ""), None, time.time()
            )

    async def apply_result(
        self, application_no: str, item: str, result: ItemResult, raw: str | None
    ) -> list[Transition]:
        async with self.connector.write() as tx:
            return await self._apply(tx, application_no, item, result, raw, time.time())

    async def _apply(
        self, tx: Tx, application_no: str, item: str, result: ItemResult, raw: str | None, now: float
    ) -> list[Transition]:
        """Move one item forward (never back, never out of a final status) and follow on."""
        await self._lock_application(tx, application_no)
        row = await tx.fetchone(
            "SELECT status, mode FROM items WHERE application_no = ? AND item = ?", (application_no, item)
        )
        if row is None:
            return []
        old, new = ItemStatus(row["status"]), result.status
        if old.final or (not new.final and _RANK.get(new, 0) <= _RANK.get(old, 0)):
            return []
        await tx.execute(
            "UPDATE items SET status = ?, reason_code = CASE WHEN ? = '' THEN reason_code ELSE ? END,"
            " message = CASE WHEN ? = '' THEN message ELSE ? END, raw_result = COALESCE(?, raw_result),"
            " document = COALESCE(?, document), updated_at = ? WHERE application_no = ? AND item = ?",
            (new.value, result.reason_code, result.reason_code, result.message, result.message, raw,
             result.document, now, application_no, item),
        )
        transitions = [Transition(application_no, item, old, new)]
        if new.final and row["mode"] == "initiating":
            transitions += await self._follow_initiating(tx, application_no, new, result, now)
        if new.final:
            await self._notify(tx, application_no, now)
            await self._complete_if_final(tx, application_no, now)
        return transitions

    async def _lock_application(self, tx: Tx, application_no: str) -> None:
        """Serialise every change to one application's items (PostgreSQL row lock; SQLite
        writers are serial already). Without it two concurrent results could each see the
        other item still open — the application would never complete — or a late
        "accepted" could overwrite an "approved" that committed meanwhile."""
        if self.dialect == "postgres":
            await tx.fetchone("SELECT 1 AS x FROM applications WHERE application_no = ? FOR UPDATE", (application_no,))

    async def _follow_initiating(
        self, tx: Tx, application_no: str, status: ItemStatus, result: ItemResult, now: float
    ) -> list[Transition]:
        """domain.md §4: approval releases the dependent items; anything else cancels them."""
        if status == ItemStatus.APPROVED:
            await tx.execute(
                # created_at restarts: a retry policy's max_age counts from when a job became due.
                "UPDATE jobs SET state = 'pending', not_before = ?, created_at = ?"
                " WHERE application_no = ? AND state = 'waiting'",
                (now, now, application_no),
            )
            return []
        rows = await tx.fetchall(
            "SELECT item, status FROM items WHERE application_no = ? AND after_initiating = 1 AND status = 'planned'",
            (application_no,),
        )
        why = "发起事项未通过，本事项随之撤销" + (f"：{result.message}" if result.message else "")
        for r in rows:
            await tx.execute(
                "UPDATE items SET status = 'cancelled', reason_code = 'PREREQUISITE_NOT_APPROVED', message = ?,"
                " updated_at = ? WHERE application_no = ? AND item = ?",
                (why, now, application_no, r["item"]),
            )
        await tx.execute(
            "UPDATE jobs SET state = 'cancelled' WHERE application_no = ? AND state = 'waiting'", (application_no,)
        )
        return [Transition(application_no, r["item"], r["status"], ItemStatus.CANCELLED) for r in rows]

    async def _notify(self, tx: Tx, application_no: str, now: float) -> None:
        row = await tx.fetchone("SELECT callback_url FROM applications WHERE application_no = ?", (application_no,))
        if row is None or not row["callback_url"]:
            return
        # One queued notification carries the latest state: bursts of changes coalesce.
        queued = await tx.fetchone(
            "SELECT 1 AS x FROM jobs WHERE application_no = ? AND kind = 'notify' AND state = 'pending'"
            " AND lease_owner IS NULL",
            (application_no,),
        )
        if queued is None:
            await self._insert_job(tx, application_no, "", JobKind.NOTIFY, "", JobState.PENDING, now)

    async def _complete_if_final(self, tx: Tx, application_no: str, now: float) -> None:
        row = await tx.fetchone(
            f"SELECT COUNT(*) AS n FROM items WHERE application_no = ? AND status NOT IN {_FINAL_SQL}",
            (application_no,),
        )
        if row is not None and row["n"] == 0:
            await tx.execute(
                "UPDATE applications SET status = ?, updated_at = ? WHERE application_no = ?",
                (ApplicationStatus.COMPLETED.value, now, application_no),
            )

    # --- inbound idempotency keys ---------------------------------------------------------

    async def idempotency_begin(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """Claim ``key`` for this request; None if claimed now, else the existing record."""
        async with self.connector.write() as tx:
            claimed = await tx.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, state, created_at) VALUES (?,?,'processing',?)"
                " ON CONFLICT (key) DO NOTHING",
                (key, fingerprint, time.time()),
            )
            if claimed:
                return None
            row = await tx.fetchone("SELECT * FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else dict(row)

    async def idempotency_finish(self, key: str, status: int, body: Any) -> None:
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?, response_json = ? WHERE key = ?",
                (status, _dumps(body), key),
            )

    async def idempotency_abandon(self, key: str) -> None:
        """Forget a key whose request was invalid or failed: it may be retried as new."""
        async with self.connector.write() as tx:
            await tx.execute("DELETE FROM idempotency_keys WHERE key = ?", (key,))

    async def idempotency_purge(self, older_than_seconds: float) -> int:
        async with self.connector.write() as tx:
            return await tx.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?", (time.time() - older_than_seconds,)
            )

    # --- request nonces ---------------------------------------------------------------------

    async def remember_nonce(self, nonce: str, window_seconds: float) -> bool:
        """True the first time a nonce is seen; False for a replay. Old nonces are dropped."""
        now = time.time()
        async with self.connector.write() as tx:
            await tx.execute("DELETE FROM nonces WHERE seen_at < ?", (now - 2 * window_seconds,))
            return bool(
                await tx.execute(
                    "INSERT INTO nonces (nonce, seen_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING", (nonce, now)
                )
            )

    # --- operations ---------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        async with self.connector.read() as tx:
            jobs = await tx.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            apps = await tx.fetchall("SELECT status, COUNT(*) AS n FROM applications GROUP BY status")
        return {f"jobs_{r['state']}": int(r["n"]) for r in jobs} | {
            f"applications_{r['status']}": int(r["n"]) for r in apps
        }

    async def oldest_pending_age(self) -> float:
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT MIN(created_at) AS t FROM jobs WHERE state = 'pending'")
        return 0.0 if row is None or row["t"] is None else max(time.time() - float(row["t"]), 0.0)


def open_store(url: str, base_dir: Path) -> SqlStore:
    """``sqlite:///relative/or/absolute/path`` or ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        return SqlStore(SqliteConnector(path if path.is_absolute() else base_dir / path))
    if url.startswith(("postgresql://", "postgres://")):
        # An optional ?schema=NAME keeps several deployments (or test runs) in one database.
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        schema = query.pop("schema", None)
        dsn = urlunsplit(parts._replace(query=urlencode(query)))
        return SqlStore(PostgresConnector(dsn, schema=schema))
    raise StoreError(f"unsupported store URL scheme {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql://")
