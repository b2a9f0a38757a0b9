"""Inbound Idempotency-Key records (IETF httpapi draft) and signature nonces."""

from __future__ import annotations

import time
from typing import Any

from gateway.store.base import StoreBase, compact_json


class RequestKeys(StoreBase):
    """Idempotency keys and nonces (mixed into SqlStore)."""

    async def idempotency_begin(
        self, key: str, fingerprint: str, processing_timeout: float = 60.0
    ) -> dict[str, Any] | None:
        """Claim ``key`` for this request; None if claimed now, else the existing record.

        A record left ``processing`` longer than ``processing_timeout`` belonged to a
        process that died mid-request; it is taken over rather than answering 409 for days."""
        now = time.time()
        async with self.connector.write() as tx:
            claimed = await tx.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, state, created_at) VALUES (?,?,'processing',?)"
                " ON CONFLICT (key) DO NOTHING",
                (key, fingerprint, now),
            )
            if claimed:
                return None
            taken_over = await tx.execute(
                "UPDATE idempotency_keys SET fingerprint = ?, created_at = ? WHERE key = ? AND state = 'processing'"
                " AND created_at < ?",
                (fingerprint, now, key, now - processing_timeout),
            )
            if taken_over:
                return None
            row = await tx.fetchone("SELECT * FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else dict(row)

    async def idempotency_finish(self, key: str, status: int, body: Any) -> None:
        async with self.connector.write() as tx:
            await tx.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?, response_json = ? WHERE key = ?",
                (status, compact_json(body), key),
            )

    async def idempotency_abandon(self, key: str) -> None:
        """Forget a key whose request was invalid or failed: it may be retried as new."""
        async with self.connector.write() as tx:
            await tx.execute("DELETE FROM idempotency_keys WHERE key = ? AND state = 'processing'", (key,))

    async def idempotency_purge(self, older_than_seconds: float) -> int:
        async with self.connector.write() as tx:
            return await tx.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?", (time.time() - older_than_seconds,)
            )

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
