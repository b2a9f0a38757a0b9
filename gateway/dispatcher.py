"""The background dispatcher: claims outbox jobs with a lease and carries them out.

Jobs: ``submit`` (send an item to its department), ``poll`` (ask for its result),
``notify`` (POST the application's state to the platform). Dependency order is kept by
the store: a dependent item's job is ``waiting`` until the initiating item is approved.
A crashed process's leases expire and another worker takes the jobs, re-sending with the
same delivery id, which the departments de-duplicate.

What happens to a job that fails is decided here, once:

====================================  =================================================
failure                               the job
====================================  =================================================
circuit open, binding disabled,       handed back, due later; no attempt spent
shutting down, a long retry wait
the store or database failing         handed back (or its lease lapses); never failed
department error, policy exhausted    dead letter: the item shows ``failed`` (submit);
                                      a status poll keeps polling, slower
lease lost (another worker has it)    left alone
a bug                                 dead letter, logged with its stack
====================================  =================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from functools import partial

import aiohttp
import structlog

from adapters.base import AdapterError
from adapters.context import REQUEST_ID
from gateway.audit import AuditTrail
from gateway.breaker import BreakerOpen, Breakers
from gateway.config import GatewayConfig
from gateway.delivery import Delivery, DepartmentUnavailable, ShuttingDown
from gateway.departments import DepartmentRuntime
from gateway.intake import Intake, record_transitions
from gateway.metrics import Metrics
from gateway.notify import Notifier
from gateway.retry import WaitTooLong
from gateway.store.connectors import is_store_error
from gateway.store.models import Job, JobKind, LeaseLost
from gateway.store.sql import SqlStore

log = structlog.get_logger("gateway.dispatcher")
_DEPARTMENT_KINDS = (JobKind.SUBMIT, JobKind.POLL)


class Dispatcher:
    def __init__(
        self,
        config: GatewayConfig,
        store: SqlStore,
        departments: Mapping[str, DepartmentRuntime],
        intake: Intake,
        metrics: Metrics,
        session: aiohttp.ClientSession,
        breakers: Breakers,
        trail: AuditTrail,
    ) -> None:
        self._config = config
        self._store = store
        self._departments = departments
        self._metrics = metrics
        self._breakers = breakers
        self.owner = f"gw-{uuid.uuid4().hex[:12]}"
        self._in_flight: dict[int, tuple[Job, asyncio.Task[None]]] = {}
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.last_pass = time.monotonic()  # /readyz: the loop is alive
        self._delivery = Delivery(config, store, departments, intake, metrics, breakers, trail, self._stopping.is_set)
        self._notifier = Notifier(config, store, session, trail)

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="dispatcher")
        # Leases are renewed until the last in-flight job is done, shutdown included.
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="dispatcher-heartbeat")

    @property
    def alive(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self.last_pass = time.monotonic()
            try:
                claimed = await self._claim()
                failures = 0
            except Exception:  # the store is down: keep trying, never die
                failures += 1
                log.exception("claim_failed", consecutive=failures)
                await self._pause(min(0.5 * 2 ** min(failures, 5), 10.0))
                continue
            if not claimed:
                await self._pause(self._config.dispatch_interval)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _claim(self) -> int:
        running = [job for job, _ in self._in_flight.values()]
        notifying = sum(1 for j in running if j.kind == JobKind.NOTIFY)
        working = len(running) - notifying
        lease = self._config.lease_seconds
        jobs = await self._store.claim_jobs(
            self.owner, self._config.workers - working, lease, self._held_back(), _DEPARTMENT_KINDS
        )
        jobs += await self._store.claim_jobs(
            self.owner, self._config.notify_workers - notifying, lease, (), (JobKind.NOTIFY,)
        )
        for job in jobs:
            task = asyncio.create_task(self._run_job(job))
            self._in_flight[job.id] = (job, task)
            task.add_done_callback(partial(self._forget, job.id))
        return len(jobs)

    def _forget(self, job_id: int, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(job_id, None)

    def _held_back(self) -> list[tuple[str, str]]:
        """(department, kind) pairs not to claim now: the endpoint they need has an open
        breaker, or the department's binding is disabled."""
        blocked = self._breakers.blocked()
        out = []
        for code, runtime in self._departments.items():
            for kind, operation in ((JobKind.SUBMIT, "submit"), (JobKind.POLL, "status")):
                op = runtime.mapping.operations.get(operation)
                if runtime.disabled or (op is not None and f"{code}.{op.operation.endpoint}" in blocked):
                    out.append((code, kind.value))
        return out

    async def stop(self, deadline: float = 10.0) -> None:
        """Stop claiming; let in-flight jobs finish until the deadline, then cancel them
        (each hands its job back; another worker, or this one after a restart, resumes)."""
        self._stopping.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task  # no claim can be under way after this
        tasks = [task for _, task in self._in_flight.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=deadline)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        await self._notifier.close()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._config.lease_seconds / 3)
            try:
                lost = await self._store.heartbeat(
                    [job for job, _ in self._in_flight.values()], self._config.lease_seconds
                )
            except Exception:
                log.exception("heartbeat_failed")
                continue
            for job_id in lost:  # another worker holds it now: stop working on it
                entry = self._in_flight.get(job_id)
                if entry is not None:
                    log.warning("lease_lost", job=job_id, kind=entry[0].kind)
                    entry[1].cancel()

    async def _run_job(self, job: Job) -> None:
        structlog.contextvars.bind_contextvars(application_no=job.application_no, item=job.item, job=job.id)
        try:
            await self._bind_request_id(job)
            if job.kind == JobKind.SUBMIT:
                await self._delivery.submit(job)
            elif job.kind == JobKind.POLL:
                await self._delivery.poll(job)
            else:
                await self._notifier.run(job)
        except asyncio.CancelledError:
            # Shutting down (or the lease is gone): hand the job back now, not at lease expiry.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release_job(job, 0))
            raise
        except LeaseLost:
            log.warning("lease_lost", kind=job.kind)
        except (BreakerOpen, DepartmentUnavailable) as exc:  # held back: that time is not the job's age
            await self._hand_back(job, _delay_of(exc, self._config), str(exc), restart_age=True)
        except (ShuttingDown, WaitTooLong) as exc:
            await self._hand_back(job, _delay_of(exc, self._config), str(exc))
        except AdapterError as exc:
            await self._failed(job, exc)
        except Exception as exc:
            if is_store_error(exc):  # the store is in trouble, not the job
                log.warning("job_store_error", kind=job.kind, error=type(exc).__name__)
                await self._hand_back(job, 1.0, f"store error: {type(exc).__name__}")
            else:  # a bug must not kill the dispatcher; the job is parked for a person
                log.exception("job_crashed", kind=job.kind)
                await self._give_up(job, f"internal error: {type(exc).__name__}")
        finally:
            structlog.contextvars.unbind_contextvars("application_no", "item", "job", "request_id")

    async def _bind_request_id(self, job: Job) -> None:
        """The platform request the application came with: on this job's logs and calls."""
        request_id = await self._store.application_request_id(job.application_no)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        REQUEST_ID.set(request_id)

    async def _hand_back(self, job: Job, delay: float, why: str, *, restart_age: bool = False) -> None:
        with contextlib.suppress(Exception):  # if even this fails, the lease lapses
            await self._store.release_job(job, delay, why, restart_age=restart_age)

    async def _failed(self, job: Job, exc: AdapterError) -> None:
        if job.kind == JobKind.POLL and exc.transient:
            # The department has the item; not hearing from it now is no reason to fail it.
            runtime = self._departments.get(job.department)
            delay = max(runtime.config.retry.cap, runtime.config.poll_interval) if runtime else 60.0
            log.warning("status_poll_deferred", department=job.department, detail=exc.detail)
            await self._hand_back(job, delay, exc.detail)
            return
        await self._give_up(job, exc.detail)

    async def _give_up(self, job: Job, error: str) -> None:
        log.error("job_dead_lettered", kind=job.kind, department=job.department, error=error)
        try:
            transitions = await self._store.dead_letter(job, error)
        except LeaseLost:
            return
        except Exception:
            log.exception("dead_letter_failed")
            return
        self._metrics.dead_letters.labels(job.department or "platform", job.kind).inc()
        record_transitions(transitions, self._metrics)


def _delay_of(exc: Exception, config: GatewayConfig) -> float:
    if isinstance(exc, BreakerOpen):
        return exc.retry_in
    if isinstance(exc, WaitTooLong):
        return exc.delay
    if isinstance(exc, ShuttingDown):
        return 0.0
    return max(config.breaker_open_seconds, 1.0)  # a disabled department: look again later
