"""What the store's parts share: the connector, the keys, and the item-status core that
the outbox, dead letters and audit trail call into (SqlStore implements it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.store.connectors import Connector, Tx
from gateway.store.models import Job, Transition
from gateway.store.sealing import Sealer

if TYPE_CHECKING:
    from gateway.mapping import ItemResult
    from gateway.store.audit import AuditRecord


def compact_json(data: Any) -> str:
    """How the store writes JSON columns: compact, Chinese text kept as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class StoreBase:
    connector: Connector
    sealer: Sealer
    audit_key: bytes | None = None  # HMAC-SM3 for the audit chain; plain SM3 without it

    @property
    def dialect(self) -> str:
        return self.connector.dialect

    # Implemented by SqlStore (items), JobQueue (jobs) and AuditLog (audit trail).
    async def _apply(
        self, tx: Tx, application_no: str, item: str, result: ItemResult, raw: str | None, now: float,
        *, from_department: bool = False,
    ) -> list[Transition]:
        raise NotImplementedError

    async def _lock_application(self, tx: Tx, application_no: str) -> None:
        raise NotImplementedError

    async def _reopen_dependents(self, tx: Tx, application_no: str, now: float) -> list[Transition]:
        raise NotImplementedError

    async def _finish(self, tx: Tx, job: Job) -> None:
        raise NotImplementedError

    async def _arm_notify(self, tx: Tx, application_no: str, now: float) -> None:
        raise NotImplementedError

    async def _bump_version(self, tx: Tx, application_no: str) -> None:
        raise NotImplementedError

    async def _append_audit(self, tx: Tx, records: Sequence[AuditRecord]) -> None:
        raise NotImplementedError
