"""The background dispatcher: claims outbox jobs with a lease and carries them out.

Jobs: ``submit`` (send an item to its department), ``poll`` (ask for its result),
``notify`` (POST the application's state to the platform). Dependency order is kept by
the store: a dependent item's job is ``waiting`` until the initiating item is approved.
A crashed process's leases expire and another worker takes the jobs, re-sending with the
same delivery id, which the departments de-duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace

import aiohttp
import structlog

from adapters.base import AdapterError, OutboundMessage, PermanentError, Reply, TransientError, UnknownOutcome
from gateway.acceptance import application_view
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
from gateway.store.models import Job, JobKind
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.dispatcher")


class Dispatcher:
    def __init__(
        self,
        config: GatewayConfig,
        store: SqlStore,
        departments: Mapping[str, DepartmentRuntime],
        intake: Intake,
        metrics: Metrics,
        session: aiohttp.ClientSession,
        item_departments: Mapping[str, str],
        breakers: Breakers,
    ) -> None:
        self._breakers = breakers
        self._config = config
        self._store = store
        self._departments = departments
        self._intake = intake
        self._metrics = metrics
        self._session = session
        self._item_departments = item_departments
        self.owner = f"gw-{uuid.uuid4().hex[:12]}"
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while not self._stopping.is_set():
                free = self._config.workers - len(self._in_flight)
                jobs = await self._store.claim_jobs(
                    self.owner, free, self._config.lease_seconds, self._breakers.blocked_departments()
                )
                for job in jobs:
                    task = asyncio.create_task(self._run_job(job))
                    self._in_flight[job.id] = task
                    task.add_done_callback(lambda _, i=job.id: self._in_flight.pop(i, None))
                if not jobs:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self._config.dispatch_interval)
        finally:
            heartbeat.cancel()

    async def stop(self, deadline: float = 10.0) -> None:
        """Stop claiming; let in-flight jobs finish until the deadline, then cancel them
        (their leases lapse and another worker, or this one after a restart, resumes)."""
        self._stopping.set()
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=deadline)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._config.lease_seconds / 3)
            with contextlib.suppress(Exception):
                await self._store.heartbeat(self.owner, list(self._in_flight), self._config.lease_seconds)

    async def _run_job(self, job: Job) -> None:
        structlog.contextvars.bind_contextvars(application_no=job.application_no, item=job.item, job=job.id)
        try:
            if job.kind == JobKind.SUBMIT:
                await self._submit(job)
            elif job.kind == JobKind.POLL:
                await self._poll(job)
            else:
                await self._notify(job)
        except asyncio.CancelledError:
            # Shutting down: hand the job back now rather than waiting for the lease to lapse.
            await asyncio.shield(self._store.release_job(job, self.owner, 0))
            raise
        except BreakerOpen as exc:
            await self._store.release_job(job, self.owner, exc.retry_in, str(exc))
        except AdapterError as exc:
            await self._give_up(job, exc.detail)
        except Exception as exc:  # a bug must not kill the dispatcher; the job is parked for a person
            log.exception("job_crashed", kind=job.kind)
            await self._give_up(job, f"internal error: {type(exc).__name__}")
        finally:
            structlog.contextvars.unbind_contextvars("application_no", "item", "job")

    async def _give_up(self, job: Job, error: str) -> None:
        log.error("job_dead_lettered", kind=job.kind, department=job.department, error=error)
        self._metrics.dead_letters.labels(job.department or "platform", job.kind).inc()
        transitions = await self._store.dead_letter(job, self.owner, error)
        record_transitions(transitions, self._metrics, self._item_departments)

    async def _call(self, job: Job, runtime: DepartmentRuntime, operation: str, message: OutboundMessage) -> Reply:
        breaker = self._breakers.get(f"{runtime.code}.{message.operation.endpoint}")

        async def attempt() -> Reply:
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
            except asyncio.CancelledError:
                breaker.release_probe()
                raise
            finally:
                self._metrics.department_call(runtime.code, operation, outcome, time.perf_counter() - started)

        async def on_attempt(n: int, error: BaseException | None) -> None:
            if n > 1:
                self._metrics.retries.labels(runtime.code, operation).inc()
            detail = getattr(error, "detail", None) if error else None
            await self._store.record_attempt(job.id, "ok" if error is None else type(error).__name__, detail)
            if error is not None:
                log.warning("department_call_failed", department=runtime.code, operation=operation, attempt=n,
                            error=type(error).__name__, detail=detail)

        return await call_with_retry(
            runtime.config.retry, attempt, on_attempt, elapsed_before=max(time.time() - job.created_at, 0)
        )

    def _context(self, job: Job, request: dict[str, object], document: str | None) -> dict[str, object]:
        return build_context(
            request,
            item=job.item,
            delivery_id=delivery_id_for(job.application_no, job.item),
            callback_url=f"{self._config.public_base_url}/api/v1/callbacks/{job.department}",
            retirement_approval=document,
        )

    async def _submit(self, job: Job) -> None:
        stored = await self._store.get_application(job.application_no)
        runtime = self._departments.get(job.department)
        if stored is None or runtime is None or not runtime.mapping.has("submit"):
            raise PermanentError(f"department {job.department} takes no submissions in this configuration")
        document = (
            await self._store.initiating_document(job.application_no) if depends_on_initiating(Item(job.item)) else None
        )
        delivery_id = delivery_id_for(job.application_no, job.item)
        message = runtime.build("submit", self._context(job, stored.request, document), delivery_id)
        record_transitions(
            await self._store.mark_item(job.application_no, job.item, ItemStatus.DISPATCHED),
            self._metrics, self._item_departments,
        )
        reply = await self._call(job, runtime, "submit", message)
        mode = runtime.mapping.operations["submit"].result
        if mode == "sync":
            try:
                result = runtime.mapping.read_result(reply.body, "submit")
            except ReplyError as exc:
                raise PermanentError(f"{job.department}: submission reply not understood: {exc}") from exc
            await self._intake.apply(job.department, _with_delivery(result, delivery_id), reply.body, "sync")
        else:
            record_transitions(
                await self._store.mark_item(job.application_no, job.item, ItemStatus.ACCEPTED),
                self._metrics, self._item_departments,
            )
            if mode == "poll":
                await self._store.schedule(
                    job.application_no, job.item, JobKind.POLL, job.department, runtime.config.poll_interval
                )
        await self._store.finish_job(job, self.owner)

    async def _poll(self, job: Job) -> None:
        runtime = self._departments[job.department]
        stored = await self._store.get_application(job.application_no)
        if stored is None:
            raise PermanentError("application vanished")
        current = next((i for i in stored.items if i["item"] == job.item), None)
        if current is None or ItemStatus(current["status"]).final:
            await self._store.finish_job(job, self.owner)
            return
        delivery_id = delivery_id_for(job.application_no, job.item)
        message = runtime.build("status", self._context(job, stored.request, None), delivery_id)
        reply = await self._call(job, runtime, "status", message)
        try:
            result = runtime.mapping.read_result(reply.body, "status")
        except ReplyError as exc:
            raise TransientError(f"{job.department}: status reply not understood: {exc}") from exc
        await self._intake.apply(job.department, _with_delivery(result, delivery_id), reply.body, "poll")
        if result.status.final:
            await self._store.finish_job(job, self.owner)
        else:
            await self._store.release_job(job, self.owner, runtime.config.poll_interval)

    async def _notify(self, job: Job) -> None:
        stored = await self._store.get_application(job.application_no)
        if stored is None or not stored.callback_url:
            await self._store.finish_job(job, self.owner)
            return
        body = json.dumps(application_view(stored), ensure_ascii=False).encode("utf-8")
        url = stored.callback_url

        async def post() -> None:
            try:
                async with self._session.post(
                    url, data=body, headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    if resp.status >= 500 or resp.status == 429:
                        raise TransientError(f"platform callback: HTTP {resp.status}")
                    if resp.status >= 400:
                        raise PermanentError(f"platform callback: HTTP {resp.status}")
            except aiohttp.ClientError as exc:
                raise TransientError(f"platform callback: {type(exc).__name__}") from exc
            except TimeoutError as exc:
                raise UnknownOutcome("platform callback: no answer") from exc

        async def on_attempt(n: int, error: BaseException | None) -> None:
            await self._store.record_attempt(job.id, "ok" if error is None else type(error).__name__,
                                             getattr(error, "detail", None))

        await call_with_retry(self._config.notify_retry, post, on_attempt)
        await self._store.finish_job(job, self.owner)


def _with_delivery(result: ItemResult, delivery_id: str) -> ItemResult:
    """A reply to our own call is about our delivery, whether or not it echoes the id."""
    return result if result.delivery_id else replace(result, delivery_id=delivery_id)
