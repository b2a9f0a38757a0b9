"""The gateway's store: applications, items and their status — one implementation over a
connector (SQLite or PostgreSQL), with the outbox, dead letters and request keys mixed in
from their own modules.

Concurrency is decided by the database, not by check-then-act in Python: a unique
application number, ``INSERT … ON CONFLICT DO NOTHING``, leases on jobs, and on
PostgreSQL ``FOR UPDATE SKIP LOCKED`` when claiming and a row lock per application when
its items change.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.mapping import ItemResult
from gateway.status import FINAL_STATUSES, ApplicationStatus, ItemStatus
from gateway.store.audit import AuditLog, append_audit_sync
from gateway.store.base import compact_json
from gateway.store.bindings import Bindings
from gateway.store.connectors import SCHEMA_VERSION, Connector, PostgresConnector, StoreError, Tx
from gateway.store.deadletters import DeadLetters
from gateway.store.jobs import JobQueue
from gateway.store.keys import RequestKeys
from gateway.store.models import (
    PREREQUISITE_NOT_APPROVED,
    TECHNICAL_FAILURE,
    Delivered,
    JobKind,
    JobState,
    NewApplication,
    StoredApplication,
    Transition,
)
from gateway.store.sealing import Sealer
from gateway.store.sqlite import SqliteConnector

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

_OFF_LOOP_BYTES = 256 * 1024  # larger requests are encoded, sealed and parsed on a thread
_RANK = {ItemStatus.PLANNED: 0, ItemStatus.DISPATCHED: 1, ItemStatus.ACCEPTED: 2}
_FINAL_SQL = "(" + ",".join(f"'{s}'" for s in sorted(FINAL_STATUSES)) + ")"


_INSERT_APPLICATION = (
    "INSERT INTO applications (application_no, fingerprint, initiating_item, status, request_json, response_json,"
    " callback_url, created_at, updated_at, request_id) VALUES (?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (application_no) DO NOTHING"
)
_INSERT_ITEM = (
    "INSERT INTO items (application_no, item, department, mode, position, after_initiating, status, reason_code,"
    " message, delivery_id, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_JOB = (
    "INSERT INTO jobs (application_no, item, kind, department, state, not_before, created_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
)
_FINISH_KEY = "UPDATE idempotency_keys SET state = 'done', status = 202, response_json = ? WHERE key = ?"


@dataclass(frozen=True, slots=True)
class _ApplicationRows:
    """The rows one accepted application writes, computed before the transaction."""

    application: tuple[Any, ...]
    items: list[tuple[Any, ...]]
    jobs: list[tuple[Any, ...]]
    response: str
    complete: bool  # nothing to send: every item was skipped at planning

    @classmethod
    def of(cls, app: NewApplication, request: str, now: float) -> _ApplicationRows:
        response = compact_json(app.response)
        planned = [it for it in app.items if it.status == ItemStatus.PLANNED]
        return cls(
            application=(app.application_no, app.fingerprint, app.initiating_item,
                         ApplicationStatus.IN_PROGRESS.value, request, response, app.callback_url, now, now,
                         app.request_id),
            items=[(app.application_no, it.item, it.department, it.mode, pos, int(it.after_initiating), it.status,
                    it.reason_code, it.message, it.delivery_id, now) for pos, it in enumerate(app.items)],
            jobs=[(app.application_no, it.item, JobKind.SUBMIT.value, it.department,
                   (JobState.WAITING if it.after_initiating else JobState.PENDING).value, now, now)
                  for it in planned],
            response=response,
            complete=not planned and all(ItemStatus(it.status).final for it in app.items),
        )

    def write_sync(self, conn: sqlite3.Connection, app: NewApplication, audit_key: bytes | None) -> bool:
        if conn.execute(_INSERT_APPLICATION, self.application).rowcount == 0:
            return False
        conn.executemany(_INSERT_ITEM, self.items)
        conn.executemany(_INSERT_JOB, self.jobs)
        if app.audit is not None:
            append_audit_sync(conn, [app.audit], audit_key)
        if app.idempotency_key is not None:
            conn.execute(_FINISH_KEY, (self.response, app.idempotency_key))
        if self.complete:
            conn.execute("UPDATE applications SET status = ? WHERE application_no = ?",
                         (ApplicationStatus.COMPLETED.value, app.application_no))
        return True


class SqlStore(JobQueue, DeadLetters, RequestKeys, Bindings, AuditLog):
    def __init__(self, connector: Connector, sealer: Sealer | None = None, audit_key: bytes | None = None) -> None:
        self.connector = connector
        self.sealer = sealer or Sealer()
        self.audit_key = audit_key

    async def open(self, migrate: bool = True) -> None:
        """Connect and apply any migrations this code needs (one replica at a time);
        ``migrate`` False only connects (to report on a store without changing it)."""
        await self.connector.open(migrate)

    async def schema_version(self) -> int:
        """The version the store is at (0: no schema yet)."""
        try:
            async with self.connector.read() as tx:
                row = await tx.fetchone("SELECT MAX(version) AS v FROM schema_version")
        except Exception as exc:  # no schema_version table: nothing applied yet
            if "schema_version" not in str(exc):
                raise
            return 0
        return int(row["v"]) if row and row["v"] is not None else 0

    async def close(self) -> None:
        await self.connector.close()

    async def ready(self) -> bool:
        """Reachable, and the schema this code expects has been applied."""
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT MAX(version) AS v FROM schema_version")
        return row is not None and row["v"] == SCHEMA_VERSION

    # --- applications -------------------------------------------------------------------

    async def create_application(self, app: NewApplication) -> bool:
        """Application, items, jobs, the Idempotency-Key record and the audit record in one
        transaction; False if the number exists. On SQLite the whole write runs in one hop
        on the writer's thread and shares its commit with others arriving meanwhile."""
        now = time.time()

        def seal() -> str:
            return self.sealer.seal(compact_json(app.request), app.application_no)

        # A request with attachments is megabytes: encoded and sealed off the event loop.
        large = sum(len(str(m.get("content_base64", ""))) for m in app.request.get("materials", [])
                    if isinstance(m, dict)) > _OFF_LOOP_BYTES
        rows = _ApplicationRows.of(app, await asyncio.to_thread(seal) if large else seal(), now)
        if isinstance(self.connector, SqliteConnector):
            key = self.audit_key
            return bool(await self.connector.write_grouped(lambda conn: rows.write_sync(conn, app, key)))
        async with self.connector.write() as tx:
            if await tx.execute(_INSERT_APPLICATION, rows.application) == 0:
                return False
            for item in rows.items:
                await tx.execute(_INSERT_ITEM, item)
            for job in rows.jobs:
                await tx.execute(_INSERT_JOB, job)
            if app.audit is not None:  # recorded with the acceptance, or not accepted at all
                await self._append_audit(tx, [app.audit])
            if app.idempotency_key is not None:
                await tx.execute(_FINISH_KEY, (rows.response, app.idempotency_key))
            await self._complete_if_final(tx, app.application_no, now)
        return True

    async def get_application(self, application_no: str, with_request: bool = True) -> StoredApplication | None:
        """The application and its items; ``with_request`` False leaves the request (the
        large, sealed part) unread, for views that show only statuses."""
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
            request=await self._open_request(row["request_json"], row["application_no"]) if with_request else {},
            response=json.loads(row["response_json"]),
            callback_url=row["callback_url"],
            items=[dict(i) for i in items],
            notify_version=int(row["notify_version"]),
            request_id=str(row["request_id"]),
        )

    async def _open_request(self, sealed: str, application_no: str) -> dict[str, Any]:
        """Unseal and parse a request; a large one (attachments) off the event loop."""
        def work() -> dict[str, Any]:
            parsed: dict[str, Any] = json.loads(self.sealer.open(sealed, application_no))
            return parsed

        return work() if len(sealed) < _OFF_LOOP_BYTES else await asyncio.to_thread(work)

    async def find_delivery(self, delivery_id: str) -> Delivered | None:
        """The item a delivery id was sent for."""
        async with self.connector.read() as tx:
            row = await tx.fetchone(
                "SELECT i.application_no, i.item, i.department, a.request_id FROM items i"
                " JOIN applications a ON a.application_no = i.application_no WHERE i.delivery_id = ?",
                (delivery_id,),
            )
        return None if row is None else Delivered(row["application_no"], row["item"], row["department"],
                                                  row["request_id"])

    async def application_request_id(self, application_no: str) -> str:
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT request_id FROM applications WHERE application_no = ?", (application_no,))
        return "" if row is None else str(row["request_id"])

    async def initiating_document(self, application_no: str) -> str | None:
        async with self.connector.read() as tx:
            row = await tx.fetchone(
                "SELECT document FROM items WHERE application_no = ? AND mode = 'initiating'", (application_no,)
            )
        return None if row is None else row["document"]

    # --- item status --------------------------------------------------------------------

    async def mark_item(self, application_no: str, item: str, status: str) -> list[Transition]:
        """The gateway's own progress (dispatched, accepted by the department)."""
        async with self.connector.write() as tx:
            return await self._apply(
                tx, application_no, item, ItemResult(ItemStatus(status), "", ""), None, time.time()
            )

    async def apply_result(
        self, application_no: str, item: str, result: ItemResult, raw: str | None
    ) -> list[Transition]:
        """A department's own answer about the item (reply, callback, poll, result file)."""
        async with self.connector.write() as tx:
            return await self._apply(tx, application_no, item, result, raw, time.time(), from_department=True)

    async def _apply(
        self, tx: Tx, application_no: str, item: str, result: ItemResult, raw: str | None, now: float,
        *, from_department: bool = False,
    ) -> list[Transition]:
        """Move one item forward (never back, never out of a final status) and follow on.

        One exception: a department's own answer overrides ``failed`` for a technical
        reason — the delivery was given up on, but the department had it after all."""
        await self._lock_application(tx, application_no)
        row = await tx.fetchone(
            "SELECT status, mode, reason_code FROM items WHERE application_no = ? AND item = ?", (application_no, item)
        )
        if row is None:
            return []
        old, new = ItemStatus(row["status"]), result.status
        recovered = from_department and old == ItemStatus.FAILED and row["reason_code"] == TECHNICAL_FAILURE
        if recovered and new != ItemStatus.FAILED:
            await self._resolve_dead_letters(tx, application_no, item, now)
            await tx.execute(  # open again until every item is final once more
                "UPDATE applications SET status = ?, updated_at = ? WHERE application_no = ?",
                (ApplicationStatus.IN_PROGRESS.value, now, application_no),
            )
        elif old.final or (not new.final and _RANK.get(new, 0) <= _RANK.get(old, 0)):
            return []
        sealed_raw = None if raw is None else self.sealer.seal(raw, f"{application_no}/{item}")
        await tx.execute(
            "UPDATE items SET status = ?, reason_code = CASE WHEN ? = '' THEN reason_code ELSE ? END,"
            " message = CASE WHEN ? = '' THEN message ELSE ? END, raw_result = COALESCE(?, raw_result),"
            " document = COALESCE(?, document), updated_at = ? WHERE application_no = ? AND item = ?",
            (new.value, result.reason_code, result.reason_code, result.message, result.message, sealed_raw,
             result.document, now, application_no, item),
        )
        transitions = [Transition(application_no, item, old, new)]
        if recovered and row["mode"] == "initiating":
            transitions += await self._reopen_dependents(tx, application_no, now)
        if new.final and row["mode"] == "initiating":
            transitions += await self._follow_initiating(tx, application_no, new, result, now)
        await self._bump_version(tx, application_no)
        if new.final:
            # A status poll still scheduled for this item has nothing left to ask.
            await tx.execute(
                "UPDATE jobs SET state = 'done' WHERE application_no = ? AND item = ? AND kind = 'poll'"
                " AND state = 'pending' AND lease_owner IS NULL",
                (application_no, item),
            )
            await self._arm_notify(tx, application_no, now)
            transitions += await self._complete_if_final(tx, application_no, now)
        return transitions

    async def _lock_application(self, tx: Tx, application_no: str) -> None:
        """Serialise every change to one application's items (PostgreSQL row lock; SQLite
        writers are serial already). Without it two concurrent results could each see the
        other item still open — the application would never complete — or a late
        "accepted" could overwrite an "approved" that committed meanwhile."""
        if self.dialect == "postgres":
            await tx.fetchone("SELECT 1 AS x FROM applications WHERE application_no = ? FOR UPDATE", (application_no,))

    async def _resolve_dead_letters(self, tx: Tx, application_no: str, item: str, now: float) -> None:
        await tx.execute(
            "UPDATE dead_letters SET replayed_at = ?, resolution = 'department_result'"
            " WHERE application_no = ? AND item = ? AND kind = 'submit' AND replayed_at IS NULL",
            (now, application_no, item),
        )
        await tx.execute(
            "UPDATE jobs SET state = 'done'"
            " WHERE application_no = ? AND item = ? AND kind = 'submit' AND state = 'dead'",
            (application_no, item),
        )

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
                "UPDATE items SET status = 'cancelled', reason_code = ?, message = ?,"
                " updated_at = ? WHERE application_no = ? AND item = ?",
                (PREREQUISITE_NOT_APPROVED, why, now, application_no, r["item"]),
            )
        await tx.execute(
            "UPDATE jobs SET state = 'cancelled' WHERE application_no = ? AND state = 'waiting'", (application_no,)
        )
        return [Transition(application_no, r["item"], r["status"], ItemStatus.CANCELLED) for r in rows]

    async def _reopen_dependents(self, tx: Tx, application_no: str, now: float) -> list[Transition]:
        """Items cancelled only because the initiating item failed go back to waiting for it."""
        rows = await tx.fetchall(
            "SELECT item FROM items WHERE application_no = ? AND status = 'cancelled' AND reason_code = ?",
            (application_no, PREREQUISITE_NOT_APPROVED),
        )
        for r in rows:  # exactly the items reopened, and their submissions only
            await tx.execute(
                "UPDATE items SET status = 'planned', reason_code = '', message = '', updated_at = ?"
                " WHERE application_no = ? AND item = ?",
                (now, application_no, r["item"]),
            )
            await tx.execute(
                "UPDATE jobs SET state = 'waiting' WHERE application_no = ? AND item = ? AND kind = 'submit'"
                " AND state = 'cancelled'",
                (application_no, r["item"]),
            )
        return [Transition(application_no, r["item"], ItemStatus.CANCELLED, ItemStatus.PLANNED) for r in rows]

    async def _complete_if_final(self, tx: Tx, application_no: str, now: float) -> list[Transition]:
        """Every item final: the application is completed (a Transition with no item)."""
        row = await tx.fetchone(
            f"SELECT COUNT(*) AS n FROM items WHERE application_no = ? AND status NOT IN {_FINAL_SQL}",
            (application_no,),
        )
        if row is None or row["n"] != 0:
            return []
        changed = await tx.execute(
            "UPDATE applications SET status = ?, updated_at = ? WHERE application_no = ? AND status <> ?",
            (ApplicationStatus.COMPLETED.value, now, application_no, ApplicationStatus.COMPLETED.value),
        )
        old = ApplicationStatus.IN_PROGRESS.value
        return [Transition(application_no, "", old, ApplicationStatus.COMPLETED.value)] if changed else []

    # --- key rotation -------------------------------------------------------------------

    async def reseal(self, batch: int = 200) -> dict[str, int]:
        """Rewrite every sealed column under the active key: values sealed with an older key
        and values written before encryption was switched on. Safe to rerun or interrupt."""
        counts = {"applications": 0, "items": 0}
        last = ""
        while True:
            async with self.connector.write() as tx:
                rows = await tx.fetchall(
                    "SELECT application_no AS a, request_json AS v FROM applications WHERE application_no > ?"
                    " ORDER BY application_no LIMIT ?", (last, batch),
                )
                for r in rows:
                    if not self.sealer.is_current(r["v"]):
                        fresh = self.sealer.seal(self.sealer.open(r["v"], r["a"]), r["a"])
                        # Compare-and-set: a value changed meanwhile is left for the next run.
                        counts["applications"] += await tx.execute(
                            "UPDATE applications SET request_json = ? WHERE application_no = ? AND request_json = ?",
                            (fresh, r["a"], r["v"]),
                        )
            if len(rows) < batch:
                break
            last = rows[-1]["a"]
        last_item = ("", "")
        while True:
            async with self.connector.write() as tx:
                rows = await tx.fetchall(
                    "SELECT application_no AS a, item AS i, raw_result AS v FROM items WHERE raw_result IS NOT NULL"
                    " AND (application_no > ? OR (application_no = ? AND item > ?)) ORDER BY application_no, item"
                    " LIMIT ?", (last_item[0], last_item[0], last_item[1], batch),
                )
                for r in rows:
                    if not self.sealer.is_current(r["v"]):
                        context = f"{r['a']}/{r['i']}"
                        fresh = self.sealer.seal(self.sealer.open(r["v"], context), context)
                        counts["items"] += await tx.execute(
                            "UPDATE items SET raw_result = ? WHERE application_no = ? AND item = ? AND raw_result = ?",
                            (fresh, r["a"], r["i"], r["v"]),
                        )
            if len(rows) < batch:
                return counts
            last_item = (rows[-1]["a"], rows[-1]["i"])

    # --- operations ---------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        async with self.connector.read() as tx:
            jobs = await tx.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            apps = await tx.fetchall("SELECT status, COUNT(*) AS n FROM applications GROUP BY status")
        return {f"jobs_{r['state']}": int(r["n"]) for r in jobs} | {
            f"applications_{r['status']}": int(r["n"]) for r in apps
        }

    async def oldest_pending_age(self) -> float:
        """How long the longest-waiting job has been due and unclaimed: the backlog. A status
        poll scheduled for later (a department deciding over days) is not waiting on us."""
        now = time.time()
        async with self.connector.read() as tx:
            row = await tx.fetchone(
                "SELECT MIN(not_before) AS t FROM jobs WHERE state = 'pending' AND not_before <= ?"
                " AND (lease_until IS NULL OR lease_until < ?)",
                (now, now),
            )
        return 0.0 if row is None or row["t"] is None else max(now - float(row["t"]), 0.0)


def store_for(config: GatewayConfig) -> SqlStore:
    """The store a gateway configuration names, with its sealing and audit keys."""
    return open_store(config.database_url, config.base_dir, config.sealer, config.audit_key)


def open_store(url: str, base_dir: Path, sealer: Sealer | None = None, audit_key: bytes | None = None) -> SqlStore:
    """``sqlite:///relative/or/absolute/path`` or ``postgresql://…``."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        return SqlStore(SqliteConnector(path if path.is_absolute() else base_dir / path), sealer, audit_key)
    if url.startswith(("postgresql://", "postgres://")):
        # An optional ?schema=NAME keeps several deployments (or test runs) in one database.
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        schema = query.pop("schema", None)
        dsn = urlunsplit(parts._replace(query=urlencode(query)))
        return SqlStore(PostgresConnector(dsn, schema=schema), sealer, audit_key)
    raise StoreError(f"unsupported store URL scheme {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql://")
