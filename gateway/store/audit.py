"""The audit trail's store side: append records to the hash chain, read them back in order.

Appends are serialised (SQLite's single writer; on PostgreSQL an advisory lock), so the
chain is one line across replicas: each record names the hash of the one before it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

from gateway.store.base import StoreBase
from gateway.store.connectors import Tx
from gateway.store.sqlite import SqliteConnector

GENESIS = "0" * 64
_APPEND_LOCK = 4301060002


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: float
    actor: str
    event: str
    outcome: str
    application_no: str = ""
    delivery_id: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def detail_json(self) -> str:
        return json.dumps(dict(self.detail), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def chain_hash(prev_hash: str, seq: int, at: float, actor: str, event: str, outcome: str, application_no: str,
               delivery_id: str, detail_json: str, key: bytes | None) -> str:
    """SM3 (or HMAC-SM3 with the audit key) over the previous hash and every field, as a
    JSON array: no text can move across a field boundary and keep the hash."""
    message = json.dumps(
        [prev_hash, seq, repr(float(at)), actor, event, outcome, application_no, delivery_id, detail_json],
        ensure_ascii=False, separators=(",", ":"),
    ).encode("utf-8")
    if key:
        mac = hmac.HMAC(key, hashes.SM3())
        mac.update(message)
        return mac.finalize().hex()
    digest = hashes.Hash(hashes.SM3())
    digest.update(message)
    return digest.finalize().hex()


_INSERT = (
    "INSERT INTO audit_log (seq, at, actor, event, outcome, application_no, delivery_id, detail, prev_hash, hash)"
    " VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def chained(records: Sequence[AuditRecord], last: Mapping[str, Any] | None, key: bytes | None) -> list[tuple[Any, ...]]:
    """The rows for ``records``, each chained to the one before, after ``last`` (or genesis)."""
    seq, prev = (int(last["seq"]), str(last["hash"])) if last else (0, GENESIS)
    rows = []
    for r in records:
        seq += 1
        detail = r.detail_json()
        digest = chain_hash(prev, seq, r.at, r.actor, r.event, r.outcome, r.application_no, r.delivery_id, detail, key)
        rows.append((seq, r.at, r.actor, r.event, r.outcome, r.application_no, r.delivery_id, detail, prev, digest))
        prev = digest
    return rows


def append_audit_sync(conn: sqlite3.Connection, records: Sequence[AuditRecord], key: bytes | None) -> None:
    """The same append on SQLite's writer thread (inside a group commit)."""
    if records:
        last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        conn.executemany(_INSERT, chained(records, None if last is None else dict(last), key))


class AuditLog(StoreBase):
    """Audit trail operations (mixed into SqlStore)."""

    async def _append_audit(self, tx: Tx, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        if self.dialect == "postgres":
            await tx.execute(f"SELECT pg_advisory_xact_lock({_APPEND_LOCK})")
        last = await tx.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        for row in chained(records, last, self.audit_key):
            await tx.execute(_INSERT, row)

    async def audit_append(self, records: Sequence[AuditRecord]) -> None:
        if isinstance(self.connector, SqliteConnector):  # one hop, in the next group commit
            key = self.audit_key
            await self.connector.write_grouped(lambda conn: append_audit_sync(conn, records, key))
            return
        async with self.connector.write() as tx:
            await self._append_audit(tx, records)

    async def audit_records(self, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        async with self.connector.read() as tx:
            rows = await tx.fetchall(
                "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            )
        return [dict(r) for r in rows]

    async def audit_records_tail(self) -> dict[str, Any] | None:
        async with self.connector.read() as tx:
            row = await tx.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return None if row is None else dict(row)

    async def audit_for(self, application_no: str) -> list[dict[str, Any]]:
        async with self.connector.read() as tx:
            rows = await tx.fetchall(
                "SELECT * FROM audit_log WHERE application_no = ? ORDER BY seq", (application_no,)
            )
        return [dict(r) for r in rows]
