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

from gateway.audit import AuditTrail
from gateway.departments import DepartmentRuntime
from gateway.domain.items import Item, department_of
from gateway.mapping import ItemResult, ReplyError
from gateway.metrics import Metrics
from gateway.status import ItemStatus
from gateway.store.models import Transition
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.intake")


class IntakeOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the item had this or a later status already
    UNKNOWN_DELIVERY = "unknown_delivery"
    WRONG_DEPARTMENT = "wrong_department"  # the delivery belongs to another department's item
    MALFORMED = "malformed"


def record_transitions(transitions: list[Transition], metrics: Metrics) -> None:
    """One canonical log line per item state change, and the final-status counter."""
    for t in transitions:
        if not t.item:  # the application itself
            log.info("application_status_changed", application_no=t.application_no, old=t.old, new=t.new)
            continue
        log.info("item_status_changed", application_no=t.application_no, item=t.item, old=t.old, new=t.new)
        if ItemStatus(t.new).final:
            metrics.item_final.labels(department_of(Item(t.item)).value, t.new).inc()


class Intake:
    def __init__(
        self, store: SqlStore, departments: Mapping[str, DepartmentRuntime], metrics: Metrics, trail: AuditTrail
    ) -> None:
        self._store = store
        self._departments = departments
        self._metrics = metrics
        self._trail = trail

    async def apply(self, department: str, result: ItemResult, raw: Any, channel: str) -> IntakeOutcome:
        """Apply one department's result to the item it names, if that item is the
        department's own: one department can never decide another's item."""
        if not result.delivery_id:
            return self._count(department, channel, IntakeOutcome.MALFORMED, result)
        found = await self._store.find_delivery(result.delivery_id)
        if found is None:
            log.warning("result_for_unknown_delivery", department=department, channel=channel)
            return self._count(department, channel, IntakeOutcome.UNKNOWN_DELIVERY, result)
        application_no, item = found.application_no, found.item
        if found.department != department:
            log.warning("result_for_another_department", department=department, channel=channel,
                        owner=found.department)
            return self._count(department, channel, IntakeOutcome.WRONG_DEPARTMENT, result)
        if not result.known:
            log.warning("unknown_result_code", department=department, code=result.raw_code, delivery=result.delivery_id)
        raw_text = None if raw is None else json.dumps(raw, ensure_ascii=False, default=str)
        transitions = await self._store.apply_result(application_no, item, result, raw_text)
        # The result's log lines carry the platform request the application came with.
        with structlog.contextvars.bound_contextvars(request_id=found.request_id):
            return self.settled(department, result, transitions, channel, application_no)

    def settled(
        self, department: str, result: ItemResult, transitions: list[Transition], channel: str, application_no: str
    ) -> IntakeOutcome:
        """After a result was applied: the status lines, the counters and the audit record."""
        record_transitions(transitions, self._metrics)
        outcome = IntakeOutcome.APPLIED if transitions else IntakeOutcome.DUPLICATE
        return self._count(department, channel, outcome, result, application_no)

    def _count(
        self, department: str, channel: str, outcome: IntakeOutcome, result: ItemResult, application_no: str = ""
    ) -> IntakeOutcome:
        self._metrics.results.labels(department, channel, outcome).inc()
        self._trail.record(f"department:{department}", "department_result", outcome, application_no,
                           result.delivery_id or "", channel=channel, status=result.status.value,
                           code=result.raw_code or "")
        return outcome

    async def accept(self, department: str, body: Any, channel: str, delivery_id: str | None = None) -> IntakeOutcome:
        """A result the department sent by itself (callback, result file)."""
        runtime = self._departments[department]
        try:
            result = runtime.mapping.read_result(body)
        except ReplyError as exc:
            log.warning("malformed_result", department=department, channel=channel, detail=str(exc))
            self._metrics.results.labels(department, channel, IntakeOutcome.MALFORMED).inc()
            self._trail.record(f"department:{department}", "department_result", IntakeOutcome.MALFORMED,
                               delivery_id=delivery_id or "", channel=channel)
            return IntakeOutcome.MALFORMED
        if result.delivery_id is None and delivery_id:
            result = replace(result, delivery_id=delivery_id)
        return await self.apply(department, result, body, channel)

    async def collect_files(self, interval: float = 0.1, longest_wait: float = 30.0) -> None:
        """Pick up result files forever; each is archived once applied (or set aside if bad).

        A pass that fails (the department's SFTP server is down) is retried with a growing
        pause, and logged once when it starts failing and once when it recovers — not
        ten times a second."""
        failures = 0
        while True:
            try:
                await self.collect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad pass must not stop result pickup for good
                failures += 1
                if failures == 1:
                    log.exception("result_pickup_failed")
                elif failures % 100 == 0:
                    log.warning("result_pickup_still_failing", passes=failures, error=type(exc).__name__)
            else:
                if failures:
                    log.info("result_pickup_recovered", failed_passes=failures)
                failures = 0
            await asyncio.sleep(min(interval * 2 ** min(failures, 10), longest_wait) if failures else interval)

    async def collect_once(self) -> None:
        """One pickup pass over every result source."""
        for code, runtime in list(self._departments.items()):
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
