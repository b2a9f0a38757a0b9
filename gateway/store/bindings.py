"""Department bindings registered at run time, and every change to them (store side)."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.store.audit import AuditRecord
from gateway.store.base import StoreBase


class Bindings(StoreBase):
    """Runtime department bindings (mixed into SqlStore)."""

    async def binding_rows(self) -> list[dict[str, Any]]:
        """Every runtime binding: department, version, state, binding (a configuration table)."""
        async with self.connector.read() as tx:
            rows = await tx.fetchall("SELECT * FROM department_bindings ORDER BY department")
        return [dict(r) | {"binding": json.loads(r["binding_json"])} for r in rows]

    async def save_binding(
        self, department: str, action: str, state: str, binding: dict[str, Any] | None, actor: str,
        audit: AuditRecord | None = None,
    ) -> int:
        """Record a change and its history in one transaction; the new version. ``binding``
        None removes the runtime binding (the configuration file's applies again)."""
        now = time.time()
        text = json.dumps(binding or {}, ensure_ascii=False, sort_keys=True)
        async with self.connector.write() as tx:
            if self.dialect == "postgres":  # versions are one sequence across replicas
                await tx.execute("LOCK TABLE department_binding_history IN EXCLUSIVE MODE")
            row = await tx.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM department_binding_history")
            version = int(row["v"] if row else 0) + 1
            if binding is None:
                await tx.execute("DELETE FROM department_bindings WHERE department = ?", (department,))
            else:
                await tx.execute(
                    "INSERT INTO department_bindings (department, version, state, binding_json, updated_at, actor)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT (department) DO UPDATE SET version = ?, state = ?,"
                    " binding_json = ?, updated_at = ?, actor = ?",
                    (department, version, state, text, now, actor, version, state, text, now, actor),
                )
            await tx.execute(
                "INSERT INTO department_binding_history (department, version, action, state, binding_json,"
                " changed_at, actor) VALUES (?,?,?,?,?,?,?)",
                (department, version, action, state, text, now, actor),
            )
            if audit is not None:  # the operator's action on record in its own transaction
                await self._append_audit(tx, [audit])
        return version

    async def binding_history(self, department: str) -> list[dict[str, Any]]:
        async with self.connector.read() as tx:
            rows = await tx.fetchall(
                "SELECT version, action, state, binding_json, changed_at, actor FROM department_binding_history"
                " WHERE department = ? ORDER BY id",
                (department,),
            )
        return [
            {k: v for k, v in dict(r).items() if k != "binding_json"} | {"binding": json.loads(r["binding_json"])}
            for r in rows
        ]
