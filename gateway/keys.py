"""Typed keys for everything the aiohttp application holds (no module-level state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from gateway.acceptance import Acceptance
    from gateway.audit import AuditTrail
    from gateway.bindings import DepartmentBindings
    from gateway.breaker import Breakers
    from gateway.config import GatewayConfig
    from gateway.departments import DepartmentRuntime
    from gateway.dispatcher import Dispatcher
    from gateway.intake import Intake
    from gateway.metrics import Metrics
    from gateway.store.sql import SqlStore

CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session")
STORE: web.AppKey[SqlStore] = web.AppKey("store")
DEPARTMENTS: web.AppKey[dict[str, DepartmentRuntime]] = web.AppKey("departments")
ACCEPTANCE: web.AppKey[Acceptance] = web.AppKey("acceptance")
INTAKE: web.AppKey[Intake] = web.AppKey("intake")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
BREAKERS: web.AppKey[Breakers] = web.AppKey("breakers")
BINDINGS: web.AppKey[DepartmentBindings] = web.AppKey("bindings")
AUDIT: web.AppKey[AuditTrail] = web.AppKey("audit")
