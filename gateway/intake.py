"""Department results coming back — by callback, by polling, by result file — all end here:
read through the department's mapping into a unified status, then applied to the item.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Any

import structlog

from gateway.departments import DepartmentRuntime
from gateway.mapping import ItemResult, ReplyError
from gateway.metrics import Metrics
from gateway.store.models import Transition
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.intake")


class IntakeOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the item had this or a later status already
    UNKNOWN_DELIVERY = "unknown_delivery"
    MALFORMED = "malformed"


def record_transitions(transitions: list[Transition], metrics: Metrics, departments: Mapping[str, str]) -> None:
    """One canonical log line per item state change, and the final-status counter."""
    for t in transitions:
        log.info("item_status_changed", application_no=t.application_no, item=t.item, old=t.old, new=t.new)
        if t.new in ("approved", "rejected", "failed", "cancelled", "skipped"):
            metrics.item_final.labels(departments.get(t.item, "unknown"), t.new).inc()


class Intake:
    def __init__(
        self, store: SqlStore, departments: Mapping[str, DepartmentRuntime], metrics: Metrics,
        item_departments: Mapping[str, str],
    ) -> None:
        self._store = store
        self._departments = departments
        self._metrics = metrics
        self._item_departments = item_departments

    async def apply(self, department: str, result: ItemResult, raw: Any, channel: str) -> IntakeOutcome:
        if not result.delivery_id:
            self._metrics.results.labels(department, channel, IntakeOutcome.MALFORMED).inc()
            return IntakeOutcome.MALFORMED
        found = await self._store.find_delivery(result.delivery_id)
        if found is None:
            log.warning("result_for_unknown_delivery", department=department, channel=channel)
            self._metrics.results.labels(department, channel, IntakeOutcome.UNKNOWN_DELIVERY).inc()
            return IntakeOutcome.UNKNOWN_DELIVERY
        if not result.known:
            log.warning("unknown_result_code", department=department, code=result.raw_code, delivery=result.delivery_id)
        raw_text = json.dumps(raw, ensure_ascii=False, default=str)
        transitions = await self._store.apply_result(found[0], found[1], result, raw_text)
        record_transitions(transitions, self._metrics, self._item_departments)
        outcome = IntakeOutcome.APPLIED if transitions else IntakeOutcome.DUPLICATE
        self._metrics.results.labels(department, channel, outcome).inc()
        return outcome

    async def accept(self, department: str, body: Any, channel: str, delivery_id: str | None = None) -> IntakeOutcome:
        runtime = self._departments.get(department)
        if runtime is None:
            return IntakeOutcome.UNKNOWN_DELIVERY
        try:
            result = runtime.mapping.read_result(body)
        except ReplyError as exc:
            log.warning("malformed_result", department=department, channel=channel, detail=str(exc))
            self._metrics.results.labels(department, channel, IntakeOutcome.MALFORMED).inc()
            return IntakeOutcome.MALFORMED
        if result.delivery_id is None and delivery_id:
            result = replace(result, delivery_id=delivery_id)
        return await self.apply(department, result, body, channel)

    async def collect_files(self, interval: float = 0.1) -> None:
        """Pick up result files forever; each is archived once applied (or set aside if bad)."""
        while True:
            try:
                await self._collect_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not stop result pickup for good
                log.exception("result_pickup_failed")
            await asyncio.sleep(interval)

    async def _collect_once(self) -> None:
        for code, runtime in self._departments.items():
            for source in runtime.result_sources():
                async for raw in source.results():
                    outcome = IntakeOutcome.MALFORMED
                    if raw.body is not None:
                        with contextlib.suppress(ReplyError):
                            outcome = await self.accept(code, raw.body, "file", raw.delivery_id)
                    else:
                        log.warning("result_file_unreadable", department=code, detail=raw.source)
                    await source.acknowledge(
                        raw, outcome in (IntakeOutcome.APPLIED, IntakeOutcome.DUPLICATE)
                    )
