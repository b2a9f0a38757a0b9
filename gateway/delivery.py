"""Carrying one item to its department and its result back: the ``submit`` and ``poll`` jobs.

Every call goes through the endpoint's circuit breaker and the one retry policy. A call
whose answer was lost after sending (``UnknownOutcome``) is never simply sent again
blind: where the department has a status operation, the next attempt asks it first and
re-sends (with the same delivery id) only if the department has no such case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from adapters.base import OutboundMessage, PermanentError, Reply, TransientError, UnknownOutcome
from gateway.audit import AuditTrail
from gateway.breaker import BreakerOpen, Breakers
from gateway.config import GatewayConfig
from gateway.departments import DepartmentRuntime
from gateway.domain.items import Item, depends_on_initiating
from gateway.intake import Intake, record_transitions
from gateway.mapping import ItemResult, ReplyError
from gateway.messages import build_context, delivery_id_for
from gateway.metrics import Metrics
from gateway.retry import call_with_retry
from gateway.status import ItemStatus
from gateway.store.models import Job, JobKind, Transition
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.delivery")


def job_age(job: Job) -> float:
    """Seconds since the job's first real attempt (0 before it): what max_age bounds."""
    return 0.0 if job.first_attempt_at is None else max(time.time() - job.first_attempt_at, 0.0)


class ShuttingDown(Exception):
    """The gateway is stopping: hand the job back before the next attempt."""


class DepartmentUnavailable(Exception):
    """The department's binding is disabled or gone: the job waits."""


@dataclass(frozen=True, slots=True)
class _Known:
    """The department already has this delivery: its status answered instead of a re-send."""

    result: ItemResult
    body: Any


class Delivery:
    def __init__(
        self,
        config: GatewayConfig,
        store: SqlStore,
        departments: Mapping[str, DepartmentRuntime],
        intake: Intake,
        metrics: Metrics,
        breakers: Breakers,
        trail: AuditTrail,
        stopping: Callable[[], bool],
    ) -> None:
        self._trail = trail
        self._config = config
        self._store = store
        self._departments = departments
        self._intake = intake
        self._metrics = metrics
        self._breakers = breakers
        self._stopping = stopping

    def runtime(self, department: str) -> DepartmentRuntime:
        runtime = self._departments.get(department)
        if runtime is None or runtime.disabled:
            raise DepartmentUnavailable(f"department {department} is not available in this configuration")
        return runtime

    # --- submit ---------------------------------------------------------------------------

    async def submit(self, job: Job) -> None:
        stored = await self._store.get_application(job.application_no)
        runtime = self.runtime(job.department)
        if stored is None or not runtime.mapping.has("submit"):
            raise PermanentError(f"department {job.department} takes no submissions in this configuration")
        current = next((i for i in stored.items if i["item"] == job.item), None)
        if current is None or ItemStatus(current["status"]).final:
            await self._store.finish_job(job)  # decided meanwhile (a callback, a replayed copy)
            return
        document = (
            await self._store.initiating_document(job.application_no) if depends_on_initiating(Item(job.item)) else None
        )
        delivery_id = delivery_id_for(job.application_no, job.item)
        context = self._context(job, stored.request, document)
        message = runtime.build("submit", context, delivery_id)
        status_message = runtime.build("status", context, delivery_id) if runtime.mapping.has("status") else None
        self._record(await self._store.mark_dispatched(job))
        answer = await self._call_resolving_unknown(job, runtime, message, status_message)
        mode = runtime.mapping.operations["submit"].result
        if isinstance(answer, _Known):
            log.info("delivery_already_at_department", department=job.department, delivery=delivery_id)
            await self._settle(job, runtime, _with_delivery(answer.result, delivery_id), answer.body, "poll")
            return
        if mode == "sync":
            try:
                result = runtime.mapping.read_result(answer.body, "submit")
            except ReplyError as exc:
                raise PermanentError(f"{job.department}: submission reply not understood: {exc}") from exc
            await self._settle(job, runtime, _with_delivery(result, delivery_id), answer.body, "sync")
            return
        try:  # a department may refuse inside an HTTP 200: that is a refusal, not an acceptance
            runtime.mapping.check_reply("submit", answer.body)
        except ReplyError as exc:
            raise PermanentError(f"{job.department}: submission reply not understood: {exc}") from exc
        accepted = ItemResult(ItemStatus.ACCEPTED, "", "", delivery_id)
        transitions = await self._store.complete_job(
            job, result=accepted, from_department=False, then=self._follow_up(runtime, ItemStatus.ACCEPTED)
        )
        self._record(transitions)

    async def _settle(self, job: Job, runtime: DepartmentRuntime, result: ItemResult, raw: Any, channel: str) -> None:
        """The department's answer to our own call: applied, the job finished and what
        brings the final result queued — one transaction."""
        transitions = await self._store.complete_job(
            job, result=result, raw=json.dumps(raw, ensure_ascii=False, default=str),
            then=self._follow_up(runtime, result.status),
        )
        self._intake.settled(job.department, result, transitions, channel, job.application_no)

    def _follow_up(self, runtime: DepartmentRuntime, status: ItemStatus) -> tuple[JobKind, float] | None:
        """What brings the result back after an acceptance: a status poll where the
        department is polled, or a reconciliation poll in case its callback is lost."""
        mode = runtime.mapping.operations["submit"].result
        if status.final:
            return None
        if mode == "poll":
            return JobKind.POLL, runtime.config.poll_interval
        if mode == "callback" and runtime.mapping.has("status") and runtime.config.reconcile_after > 0:
            return JobKind.POLL, runtime.config.reconcile_after
        return None

    async def _call_resolving_unknown(
        self, job: Job, runtime: DepartmentRuntime, message: OutboundMessage, status_message: OutboundMessage | None
    ) -> Reply | _Known:
        unknown = job.unknown_outcome

        async def send() -> Reply | _Known:
            nonlocal unknown
            if unknown and status_message is not None:
                # The last attempt may have arrived: ask before sending it again.
                reply = await self._attempt(runtime, "status", status_message)
                try:
                    result = runtime.mapping.read_status(reply.body)
                except ReplyError as exc:
                    raise TransientError(f"{runtime.code}: status reply not understood: {exc}") from exc
                if result is not None:
                    return _Known(result, reply.body)
            try:
                return await self._attempt(runtime, "submit", message)
            except UnknownOutcome:
                unknown = True
                raise

        answer: Reply | _Known = await self._retry(job, runtime, "submit", send)
        return answer

    # --- poll -----------------------------------------------------------------------------

    async def poll(self, job: Job) -> None:
        stored = await self._store.get_application(job.application_no)
        runtime = self.runtime(job.department)
        if stored is None:
            raise PermanentError("application vanished")
        current = next((i for i in stored.items if i["item"] == job.item), None)
        if current is None or ItemStatus(current["status"]).final:
            await self._store.finish_job(job)
            return
        delivery_id = delivery_id_for(job.application_no, job.item)
        message = runtime.build("status", self._context(job, stored.request, None), delivery_id)
        reply = await self._retry(job, runtime, "status", lambda: self._attempt(runtime, "status", message))
        try:
            result = runtime.mapping.read_status(reply.body)
        except ReplyError as exc:
            raise TransientError(f"{job.department}: status reply not understood: {exc}") from exc
        if result is not None and result.status.final:
            await self._settle(job, runtime, _with_delivery(result, delivery_id), reply.body, "poll")
            return
        if result is not None:
            await self._intake.apply(job.department, _with_delivery(result, delivery_id), reply.body, "poll")
        else:
            log.warning("status_no_such_case", department=job.department, delivery=delivery_id)
        mode = runtime.mapping.operations["submit"].result if runtime.mapping.has("submit") else "poll"
        every = runtime.config.poll_interval if mode == "poll" else runtime.config.reconcile_after
        # Each round is a new series for the retry policy: a long-running case is not "old".
        await self._store.release_job(job, max(every, runtime.config.poll_interval), new_round=True)

    # --- calls ----------------------------------------------------------------------------

    async def _attempt(self, runtime: DepartmentRuntime, operation: str, message: OutboundMessage) -> Reply:
        """One call through the endpoint's breaker, measured."""
        if self._stopping():
            raise ShuttingDown()
        breaker = self._breakers.get(f"{runtime.code}.{message.operation.endpoint}")
        breaker.before_call()
        started = time.perf_counter()
        outcome = "ok"
        try:
            reply = await runtime.call(message)
            breaker.success()
            return reply
        except UnknownOutcome:
            outcome = "unknown"
            breaker.transient_failure()
            raise
        except TransientError:
            outcome = "transient"
            breaker.transient_failure()
            raise
        except PermanentError:
            outcome = "permanent"
            breaker.success()  # the department answered: the line is up
            raise
        except BaseException:
            breaker.release_probe()
            raise
        finally:
            self._metrics.department_call(runtime.code, operation, outcome, time.perf_counter() - started)

    async def _retry(
        self, job: Job, runtime: DepartmentRuntime, operation: str, fn: Callable[[], Awaitable[Any]]
    ) -> Any:
        async def on_attempt(n: int, error: BaseException | None) -> None:
            if isinstance(error, BreakerOpen | ShuttingDown):
                return  # no call was made: no attempt spent
            if job.attempts + n > 1:
                self._metrics.retries.labels(runtime.code, operation).inc()
            detail = getattr(error, "detail", None) if error else None
            outcome = "ok" if error is None else type(error).__name__
            self._trail.record("gateway", "department_call", outcome, job.application_no,
                               delivery_id_for(job.application_no, job.item), department=runtime.code,
                               operation=operation, attempt=job.attempts + n)
            if error is not None:  # a success is recorded with the job's completion, in its transaction
                await self._store.record_attempt(job, outcome, detail)
                log.warning("department_call_failed", department=runtime.code, operation=operation,
                            attempt=job.attempts + n, error=type(error).__name__, detail=detail)

        return await call_with_retry(
            runtime.config.retry, fn, on_attempt,
            elapsed_before=job_age(job),
            attempts_before=job.attempts,
            max_inline_wait=self._config.max_inline_wait,
        )

    def _context(self, job: Job, request: dict[str, Any], document: str | None) -> dict[str, Any]:
        return build_context(
            request,
            item=job.item,
            delivery_id=delivery_id_for(job.application_no, job.item),
            callback_url=f"{self._config.public_base_url}/api/v1/callbacks/{job.department}",
            retirement_approval=document,
        )

    def _record(self, transitions: list[Transition]) -> None:
        record_transitions(transitions, self._metrics)


def _with_delivery(result: ItemResult, delivery_id: str) -> ItemResult:
    """A reply to our own call is about our delivery, whether or not it echoes the id."""
    return result if result.delivery_id else replace(result, delivery_id=delivery_id)
