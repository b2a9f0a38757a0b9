"""Running departments: each configured department with its opened adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import Adapter, OutboundMessage, Reply, ResultSource, Verifiable
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


async def open_department(dept: DepartmentConfig, context: AdapterContext) -> DepartmentRuntime:
    """Create and open one department's adapters; if one fails to open, close the others."""
    adapters = {
        name: create_adapter(ep.adapter, f"{dept.code}.{name}", ep.settings, context)
        for name, ep in dept.endpoints.items()
    }
    results = await asyncio.gather(*(a.open() for a in adapters.values()), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await close_adapters(adapters.values())
        raise failed[0]
    return DepartmentRuntime(dept, adapters)


async def open_departments(config: GatewayConfig, context: AdapterContext) -> dict[str, DepartmentRuntime]:
    """Every configured department, opened (a SOAP adapter loads its WSDL here, once)."""
    codes = list(config.departments)
    opened = await asyncio.gather(
        *(open_department(config.departments[c], context) for c in codes), return_exceptions=True
    )
    failed = [r for r in opened if isinstance(r, BaseException)]
    if failed:
        await close_departments({c: r for c, r in zip(codes, opened, strict=True) if isinstance(r, DepartmentRuntime)})
        raise failed[0]
    return {c: r for c, r in zip(codes, opened, strict=True) if isinstance(r, DepartmentRuntime)}


async def verify_department(runtime: DepartmentRuntime) -> None:
    """Ask every adapter that can prove its endpoint works to do so (adapters.base.Verifiable)."""
    for adapter in runtime.adapters.values():
        if isinstance(adapter, Verifiable):
            await adapter.verify()


async def close_adapters(adapters: Iterable[Adapter]) -> None:
    await asyncio.gather(*(a.close() for a in adapters), return_exceptions=True)


async def close_departments(runtimes: Mapping[str, DepartmentRuntime]) -> None:
    await close_adapters([a for r in runtimes.values() for a in r.adapters.values()])
