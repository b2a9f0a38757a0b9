"""Department bindings changed at run time: register, update, disable, enable, remove —
validated entirely before anything changes, applied without a restart, and kept with
their history in the store, which every replica follows.

A binding is the same table a department has in ``config/gateway.toml`` (adapter and
settings per endpoint, mapping version, timeouts, retry values). The file is the base; a
runtime binding replaces that department's until it is removed. Applying one builds and
opens the new adapters first, then swaps them in: calls already under way finish on the
old adapters, which are closed a call timeout later.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import MutableMapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from adapters.context import AdapterContext
from gateway.config import ConfigError, DepartmentConfig, GatewayConfig, department_config
from gateway.departments import DepartmentRuntime, close_adapters, open_department, verify_department
from gateway.domain.items import Department
from gateway.store.audit import AuditRecord
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.bindings")
_VERSION = re.compile(r"^v[0-9][0-9A-Za-z_.-]{0,15}$")
DEPARTMENT_CODES = frozenset(d.value for d in Department)  # those a binding may be given to
_FIELDS = {"name", "mapping_version", "endpoints", "query_timeout", "call_timeout", "poll_interval",
           "reconcile_after", "retry"}


class BindingError(ValueError):
    """A binding cannot be applied; the message says which setting and why."""


def binding_table(code: str, payload: Any) -> dict[str, Any]:
    """The admin API's JSON → a configuration table (what config/gateway.toml would hold)."""
    if code not in DEPARTMENT_CODES:
        raise BindingError(f"{code}: not a department this gateway routes items to")
    if not isinstance(payload, dict):
        raise BindingError("the binding must be a JSON object")
    unknown = set(payload) - _FIELDS
    if unknown:
        raise BindingError(f"unknown field(s): {', '.join(sorted(unknown))}")
    version = payload.get("mapping_version")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise BindingError("mapping_version: required, like v1 or v2 (the file mappings/<department>.<version>.toml)")
    table = {k: v for k, v in payload.items() if k != "mapping_version"}
    table["mapping"] = f"mappings/{code}.{version}.toml"
    return table


def _settings(c: DepartmentConfig) -> dict[str, Any]:
    """What a binding sets besides its mapping: name, endpoints, timeouts, retry values."""
    return {
        "name": c.name,
        "endpoints": {n: {"adapter": ep.adapter, **ep.settings} for n, ep in c.endpoints.items()},
        "query_timeout": c.query_timeout,
        "call_timeout": c.call_timeout,
        "poll_interval": c.poll_interval,
        "reconcile_after": c.reconcile_after,
        "retry": asdict(c.retry),
    }


def describe(runtime: DepartmentRuntime, source: str, version: int) -> dict[str, Any]:
    """A binding as operators read it (settings name environment variables, never secrets)."""
    c = runtime.config
    return {
        "department": c.code,
        "source": source,
        "version": version,
        "state": "disabled" if runtime.disabled else "active",
        "mapping": {"file": c.mapping.source.name, "version": c.mapping.version},
    } | _settings(c)


class DepartmentBindings:
    def __init__(
        self,
        config: GatewayConfig,
        store: SqlStore,
        departments: MutableMapping[str, DepartmentRuntime],
        context: AdapterContext,
    ) -> None:
        self._config = config
        self._store = store
        self._departments = departments
        self._context = context
        self._applied: dict[str, int] = {}  # department → runtime binding version in use
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    # --- what operators do ------------------------------------------------------------

    def views(self) -> list[dict[str, Any]]:
        return [self.view(code) for code in sorted(self._departments)]

    def view(self, code: str) -> dict[str, Any]:
        version = self._applied.get(code, 0)
        return describe(self._departments[code], "runtime" if version else "file", version)

    async def register(self, code: str, payload: Any, actor: str, audit: AuditRecord | None = None) -> dict[str, Any]:
        """Register or update: validate and open first; only then store and swap in."""
        table = binding_table(code, payload)
        async with self._lock:
            runtime = await self._open(code, table)
            action = "update" if code in self._applied else "register"
            try:
                version = await self._store.save_binding(code, action, "active", table, actor, audit)
            except BaseException:
                await close_adapters(runtime.adapters.values())
                raise
            self._swap(code, runtime, version)
        log.info("department_binding_changed", department=code, action=action, version=version, actor=actor)
        return self.view(code)

    async def set_disabled(
        self, code: str, disabled: bool, actor: str, audit: AuditRecord | None = None
    ) -> dict[str, Any]:
        """Disable: the department's jobs wait and its pre-check data is 'could not verify'.
        Recorded as a runtime binding, so every replica follows."""
        async with self._lock:
            runtime = self._departments[code]
            table = _table_of(runtime.config, self._config.base_dir)
            state, action = ("disabled", "disable") if disabled else ("active", "enable")
            version = await self._store.save_binding(code, action, state, table, actor, audit)
            runtime.disabled = disabled
            self._applied[code] = version
        log.info("department_binding_changed", department=code, action=action, version=version, actor=actor)
        return self.view(code)

    async def remove(self, code: str, actor: str, audit: AuditRecord | None = None) -> dict[str, Any]:
        """Back to the configuration file's binding."""
        base = self._config.departments.get(code)
        if base is None:
            raise BindingError(f"{code}: the configuration file has no binding to return to")
        async with self._lock:
            runtime = await open_department(base, self._context)
            version = await self._store.save_binding(code, "remove", "active", None, actor, audit)
            self._swap(code, runtime, 0)
        log.info("department_binding_changed", department=code, action="remove", version=version, actor=actor)
        return self.view(code)

    async def history(self, code: str) -> list[dict[str, Any]]:
        return await self._store.binding_history(code)

    # --- following the store (start-up and every replica) --------------------------------

    async def load(self) -> None:
        """At start: apply every stored binding. One that no longer validates (a mapping
        file removed since) stops start-up with its department named, like a bad file."""
        try:
            await self.refresh(strict=True)
        except (BindingError, ConfigError) as exc:
            raise ConfigError(
                f"runtime binding: {exc} (fix it, or `gateway departments reset <code>` to use the file's)"
            ) from exc

    async def refresh(self, strict: bool = False) -> None:
        """Apply what other replicas (or operators) changed since the last look. Rows are
        read under the same lock this replica's own changes take, and only a newer version
        is applied, so a look that overlaps a change can never undo it. One department's
        failure does not hold back the others (``strict``: raise it afterwards)."""
        failed: list[Exception] = []
        async with self._lock:
            rows = {r["department"]: r for r in await self._store.binding_rows()}
            for code, row in rows.items():
                if code not in DEPARTMENT_CODES or int(row["version"]) <= self._applied.get(code, 0):
                    continue
                try:
                    await self._follow(code, row)
                except (BindingError, ConfigError) as exc:
                    log.error("department_binding_not_applied", department=code, version=row["version"],
                              detail=str(exc))
                    failed.append(exc)
            for code in [c for c in self._applied if c not in rows]:
                base = self._config.departments.get(code)
                if base is not None:
                    self._swap(code, await open_department(base, self._context), 0)
                    log.info("department_binding_applied", department=code, version=0)
        if strict and failed:
            raise failed[0]

    async def _follow(self, code: str, row: dict[str, Any]) -> None:
        disabled = row["state"] == "disabled"
        current = self._departments.get(code)
        if current is not None and row["binding"] == _table_of(current.config, self._config.base_dir):
            current.disabled = disabled  # only the state changed: nothing to reopen
            self._applied[code] = int(row["version"])
        else:
            # A disabled binding is applied without proving its endpoints work: its server
            # being down is usually why it was disabled.
            runtime = await self._open(code, row["binding"], verify=not disabled)
            runtime.disabled = disabled
            self._swap(code, runtime, int(row["version"]))
        log.info("department_binding_applied", department=code, version=row["version"])

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a bad row or the store down: keep what runs, try again later
                log.exception("department_bindings_refresh_failed")

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)

    # --- mechanics ----------------------------------------------------------------------

    async def _open(self, code: str, table: dict[str, Any], verify: bool = True) -> DepartmentRuntime:
        dept = department_config(code, table, self._config.base_dir, f"binding for {code}")
        try:
            runtime = await open_department(dept, self._context)
        except Exception as exc:  # the adapter could not start: say why, change nothing
            detail = getattr(exc, "detail", None) or str(exc)
            raise BindingError(f"{code}: an endpoint could not be opened: {detail}") from exc
        try:
            if verify:
                await verify_department(runtime)
        except Exception as exc:
            await close_adapters(runtime.adapters.values())
            detail = getattr(exc, "detail", None) or str(exc)
            raise BindingError(f"{code}: an endpoint does not work: {detail}") from exc
        return runtime

    def _swap(self, code: str, runtime: DepartmentRuntime, version: int) -> None:
        old = self._departments.get(code)
        self._departments[code] = runtime
        if version:
            self._applied[code] = version
        else:
            self._applied.pop(code, None)
        if old is not None:
            task = asyncio.create_task(self._close_later(old))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_later(self, old: DepartmentRuntime) -> None:
        """Calls already under way on the old adapters get a call timeout to finish."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(old.config.call_timeout + 1)
        await close_adapters(old.adapters.values())


def _table_of(c: DepartmentConfig, base_dir: Path) -> dict[str, Any]:
    """A running binding back as a configuration table (for disable/enable records)."""
    source = c.mapping.source.resolve()
    mapping = source.relative_to(base_dir) if source.is_relative_to(base_dir) else source
    return {"mapping": str(mapping)} | _settings(c)
