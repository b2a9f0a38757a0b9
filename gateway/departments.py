"""Running departments: each configured department with its opened adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Adapter, OutboundMessage, Reply, ResultSource
from adapters.context import AdapterContext
from adapters.registry import create_adapter
from gateway.config import DepartmentConfig, GatewayConfig
from gateway.mapping import DepartmentMapping


@dataclass
class DepartmentRuntime:
    config: DepartmentConfig
    adapters: dict[str, Adapter]
    disabled: bool = False  # an operator switched the binding off: its jobs wait, its checks are unverifiable

    @property
    def code(self) -> str:
        return self.config.code

    @property
    def mapping(self) -> DepartmentMapping:
        return self.config.mapping

    def build(self, operation: str, context: Mapping[str, Any], delivery_id: str) -> OutboundMessage:
        return self.mapping.build(operation, context, delivery_id)

    async def call(self, message: OutboundMessage, timeout: float | None = None) -> Reply:
        adapter = self.adapters[message.operation.endpoint]
        return await adapter.call(message, timeout or self.config.call_timeout)

    def result_sources(self) -> list[ResultSource]:
        return [a for a in self.adapters.values() if isinstance(a, ResultSource)]


async def open_departments(config: GatewayConfig, context: AdapterContext) -> dict[str, DepartmentRuntime]:
    """Create and open every endpoint's adapter (a SOAP adapter loads its WSDL here, once)."""
    runtimes: dict[str, DepartmentRuntime] = {}
    for code, dept in config.departments.items():
        adapters = {
            name: create_adapter(ep.adapter, f"{code}.{name}", ep.settings, context)
            for name, ep in dept.endpoints.items()
        }
        runtimes[code] = DepartmentRuntime(dept, adapters)
    await asyncio.gather(*(a.open() for r in runtimes.values() for a in r.adapters.values()))
    return runtimes


async def close_departments(runtimes: Mapping[str, DepartmentRuntime]) -> None:
    await asyncio.gather(
        *(a.close() for r in runtimes.values() for a in r.adapters.values()), return_exceptions=True
    )
