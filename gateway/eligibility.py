"""Pre-check: ask the departments in parallel, then judge with the domain rules.

One query per department, each bounded by that department's timeout: a slow or broken
department makes its checks ``unverifiable``, it never delays the answer past its timeout
and never turns into a ``fail``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import date
from typing import Any

import structlog

from adapters.base import AdapterError
from gateway.audit import AuditTrail
from gateway.departments import DepartmentRuntime
from gateway.domain import prechecks
from gateway.domain.items import Department, EarlyReason, Item
from gateway.domain.retirement_age import EarlyRetirementAges, YearMonth
from gateway.mapping import ReplyError
from gateway.messages import build_context, query_id
from gateway.metrics import Metrics

log = structlog.get_logger("gateway.eligibility")


def precheck_request(body: Mapping[str, Any], today: date) -> prechecks.Request:
    a = body["applicant"]
    month = body.get("requested_retirement_month")
    card = body.get("bank_card") or {}
    return prechecks.Request(
        initiating=Item(body["initiating_item"]),
        early_reason=EarlyReason(body["early_retirement_reason"]) if body.get("early_retirement_reason") else None,
        optional_items=tuple(Item(i) for i in body.get("optional_items", [])),
        all_or_nothing=bool(body.get("all_or_nothing", False)),
        applicant=prechecks.Applicant(
            gender=a["gender"],
            birth_date=date.fromisoformat(a["birth_date"]),
            position=a.get("position"),
            household=a["household"],
            provident_fund_center=a.get("provident_fund_center"),
        ),
        today=today,
        requested_retirement_month=YearMonth.parse(month) if month else None,
        bank_card_number=card.get("number"),
        bank_card_edited=bool(card.get("edited", False)),
    )


class Eligibility:
    def __init__(
        self, departments: Mapping[str, DepartmentRuntime], metrics: Metrics, trail: AuditTrail,
        early_ages: EarlyRetirementAges | None = None,
    ) -> None:
        self._departments = departments
        self._metrics = metrics
        self._trail = trail
        self._early_ages = early_ages or EarlyRetirementAges()

    async def evaluate(self, body: Mapping[str, Any], today: date) -> prechecks.Evaluation:
        req = precheck_request(body, today)
        needed = sorted(prechecks.departments_needed(req))
        started = time.perf_counter()
        try:
            answers = await asyncio.gather(*(self._ask(Department(d), body) for d in needed))
        finally:
            self._metrics.precheck_seconds.observe(time.perf_counter() - started)
        return prechecks.evaluate(req, dict(zip(needed, answers, strict=True)), self._early_ages)

    async def _ask(self, department: Department, body: Mapping[str, Any]) -> Any:
        runtime = self._departments.get(department.value)
        if runtime is None or not runtime.mapping.has("query"):
            log.error("precheck_department_not_configured", department=department.value)
            return prechecks.UNAVAILABLE
        if runtime.disabled:  # an operator switched the binding off: its data cannot be verified now
            return prechecks.UNAVAILABLE
        qid = query_id()
        started = time.perf_counter()
        outcome = "error"
        try:
            message = runtime.build("query", build_context(body, item=None, delivery_id=qid), qid)
            timeout = runtime.config.query_timeout
            async with asyncio.timeout(timeout):
                reply = await runtime.call(message, timeout)
            record = runtime.mapping.read_record(reply.body)
            outcome = "found" if record is not None else "no_record"
            return record
        except (AdapterError, ReplyError, TimeoutError) as exc:
            outcome = "timeout" if isinstance(exc, TimeoutError) else "error"
            log.warning(
                "precheck_query_failed", department=department.value, error=type(exc).__name__,
                detail=getattr(exc, "detail", str(exc)),
            )
            return prechecks.UNAVAILABLE
        except Exception:  # a plug-in adapter's own bug: that department cannot be asked, nothing more
            log.exception("precheck_query_crashed", department=department.value)
            return prechecks.UNAVAILABLE
        finally:
            seconds = time.perf_counter() - started
            self._metrics.department_call(department.value, "query", outcome, seconds)
            self._trail.record("gateway", "department_query", outcome, str(body.get("application_no", "")),
                               qid, department=department.value, seconds=round(seconds, 4))
