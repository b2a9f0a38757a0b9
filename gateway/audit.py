"""The tamper-evident audit trail: who did what, when, with what outcome.

Recorded: every platform and admin request, every department call and query, every
department result, every platform notification and every admin action — with time,
actor, event, outcome, the application number and the delivery id, and never personal
data. Each record is chained to the one before it (gateway/store/audit.py), so
``gateway audit verify`` detects any record changed, deleted or moved.

Durability: an accepted application's record is written in the same transaction as the
application, and admin actions are written before they are answered. Everything else
is buffered and written in batches every few milliseconds; if the store refuses them,
the trail turns unhealthy and new applications get 503 until it has caught up — the
gateway does not accept what it could not record.

Tail truncation (deleting the newest records) leaves a valid shorter chain: export the
head (``gateway audit head``; it is also logged as ``audit_head`` every few minutes) and
check against it with ``gateway audit verify --expect-head SEQ:HASH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.store.audit import GENESIS, AuditRecord, chain_hash
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.audit")


class AuditUnavailable(RuntimeError):
    """The trail cannot be written: refuse what would go unrecorded."""


class AuditTrail:
    def __init__(self, store: SqlStore, flush_interval: float = 0.05, max_buffer: int = 50_000,
                 head_every: float = 300.0) -> None:
        self._store = store
        self._buffer: list[AuditRecord] = []
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._head_every = head_every
        self._lock = asyncio.Lock()
        self.healthy = True
        self.dropped = 0

    def record(self, actor: str, event: str, outcome: str, application_no: str = "", delivery_id: str = "",
               **detail: Any) -> None:
        """Queue one record (never blocks the caller)."""
        if len(self._buffer) >= self._max_buffer:  # the store has been refusing for a long time
            self.dropped += 1
            self.healthy = False
            return
        self._buffer.append(AuditRecord(time.time(), actor, event, outcome, application_no, delivery_id, detail))

    def make(self, actor: str, event: str, outcome: str, application_no: str = "", delivery_id: str = "",
             **detail: Any) -> AuditRecord:
        """A record for the caller to write in its own transaction."""
        return AuditRecord(time.time(), actor, event, outcome, application_no, delivery_id, detail)

    async def write_now(self, actor: str, event: str, outcome: str, **fields: Any) -> None:
        """Write the queue and this record before returning (admin actions)."""
        self.record(actor, event, outcome, **fields)
        if not await self.flush():
            raise AuditUnavailable("the audit trail cannot be written")

    def check_writable(self) -> None:
        if not self.healthy:
            raise AuditUnavailable("the audit trail cannot be written")

    async def flush(self) -> bool:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return True
            try:
                await self._store.audit_append(batch)
            except Exception:
                self._buffer = batch + self._buffer  # kept in order, written on the next try
                if self.healthy:
                    log.exception("audit_write_failed", pending=len(self._buffer))
                self.healthy = False
                return False
            if not self.healthy:
                log.warning("audit_write_recovered", written=len(batch), dropped=self.dropped)
            self.healthy = True
            return True

    async def run(self) -> None:
        """Write queued records in batches; log the chain's head now and then."""
        last_head = time.monotonic()
        try:
            while True:
                await asyncio.sleep(self._flush_interval if self.healthy else 1.0)
                await self.flush()
                if time.monotonic() - last_head > self._head_every:
                    last_head = time.monotonic()
                    with contextlib.suppress(Exception):
                        head = await self._store.audit_records_tail()
                        if head:
                            log.info("audit_head", seq=head["seq"], hash=head["hash"])
        finally:
            await self.flush()


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "head": f"{self.head_seq}:{self.head_hash}",
                "problem": self.problem or None}


async def verify(store: SqlStore, key: bytes | None, expect_head: str | None = None) -> Verification:
    """Walk the whole chain in order; the first record that does not fit, and why."""
    expected_seq, prev, count = 1, GENESIS, 0

    def broken(why: str) -> Verification:
        return Verification(False, count, expected_seq - 1, prev, why)

    after = 0
    while batch := await store.audit_records(after, 2000):
        for r in batch:
            seq = int(r["seq"])
            if seq != expected_seq:
                return broken(f"record {expected_seq} is missing (deleted): the next is {seq}")
            if r["prev_hash"] != prev:
                return broken(f"record {seq} does not follow record {seq - 1}: records were changed or reordered")
            digest = chain_hash(prev, seq, float(r["at"]), r["actor"], r["event"], r["outcome"],
                                r["application_no"], r["delivery_id"], r["detail"], key)
            if digest != r["hash"]:
                return broken(f"record {seq} was altered after it was written")
            prev, expected_seq, count = digest, seq + 1, count + 1
        after = int(batch[-1]["seq"])
    if expect_head:
        seq_text, _, digest = expect_head.partition(":")
        if not seq_text.isdigit() or int(seq_text) > count:
            return broken(f"the chain ends at record {count}, before the expected head {seq_text}: records deleted")
        row = next(iter(await store.audit_records(int(seq_text) - 1, 1)), None)
        if row is None or row["hash"] != digest:
            return broken(f"record {seq_text} is not the expected head")
    return Verification(True, count, expected_seq - 1, prev)


def request_detail(route: str, method: str, status: int, request_id: str) -> Mapping[str, Any]:
    return {"route": route, "method": method, "status": status, "request_id": request_id}
