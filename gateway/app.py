"""Composition root: builds the aiohttp application; every resource is opened and closed
in ``cleanup_ctx`` (cleanup runs only for what started)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import structlog
from aiohttp import web

from adapters.context import REQUEST_ID, AdapterContext, new_client_session
from gateway.acceptance import Acceptance
from gateway.api.admin import OPERATOR
from gateway.api.routes import add_routes
from gateway.audit import AuditTrail, AuditUnavailable, request_detail
from gateway.auth import auth_middleware
from gateway.bindings import DepartmentBindings
from gateway.breaker import Breakers, BreakerState
from gateway.config import GatewayConfig
from gateway.departments import DepartmentRuntime, close_departments, open_departments
from gateway.dispatcher import Dispatcher
from gateway.eligibility import Eligibility
from gateway.intake import Intake
from gateway.keys import (
    ACCEPTANCE,
    AUDIT,
    BINDINGS,
    BREAKERS,
    CONFIG,
    DEPARTMENTS,
    DISPATCHER,
    INTAKE,
    METRICS,
    SESSION,
    STORE,
)
from gateway.metrics import Metrics
from gateway.problems import Problem, problem_response
from gateway.store.connectors import is_store_error
from gateway.store.sql import store_for

log = structlog.get_logger("gateway.http")
# Problem types for aiohttp's own refusals, the same names the handlers use.
_HTTP_KINDS = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_AUDITED = ("/api/", "/admin/")  # operations endpoints (health, metrics) are not audited


def _actor(request: web.Request, status: int) -> str:
    """Who made the request, as far as the gateway knows (never a secret, never what an
    unauthenticated caller claims to be)."""
    if request.path.startswith("/admin/"):
        return "admin:" + str(request.get(OPERATOR, "unauthenticated"))
    key = request.headers.get("X-App-Key", "")[:64]
    if status == 401 or not key:
        return "unauthenticated" if status == 401 else "anonymous"
    return ("department:" if request.path.startswith("/api/v1/callbacks/") else "platform:") + key


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id bound once; problem+json for every refusal; metrics by route template."""
    given = request.headers.get("X-Request-Id", "")
    # Kept only when it is a plain token: it is echoed in a header and written to logs.
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    REQUEST_ID.set(request_id)  # to every department call made for this request
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except Problem as problem:
            response = problem_response(problem, request.path)
        except AuditUnavailable:
            response = problem_response(
                Problem(503, "audit-unavailable", "Not now", "the audit trail cannot be written; try again later",
                        headers={"Retry-After": "5"}), request.path,
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}  # 405 says what is allowed
            response = problem_response(
                Problem(exc.status, _HTTP_KINDS.get(exc.status, f"http-{exc.status}"), exc.reason,
                        exc.text or exc.reason, headers=kept),
                request.path,
            )
        except Exception as exc:
            if is_store_error(exc):  # the store is down: a 503 the platform retries, not a 500
                log.error("store_unavailable", route=route, error=type(exc).__name__)
                response = problem_response(
                    Problem(503, "store-unavailable", "Not now", "the store cannot be reached; nothing was"
                            " changed: send it again later", headers={"Retry-After": "5"}), request.path,
                )
                status = response.status
                response.headers["X-Request-Id"] = request_id
                return response
            log.exception("unhandled_error", route=route)
            response = problem_response(
                Problem(500, "internal-error", "Internal error", "内部错误，已记录；请稍后重试"), request.path
            )
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        if request.path.startswith(_AUDITED) and AUDIT in request.app:
            request.app[AUDIT].record(
                _actor(request, status), "inbound_request", str(status),
                application_no=request.match_info.get("application_no", ""),
                **request_detail(route, request.method, status, request_id),
            )
        metrics = request.app[METRICS]
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


async def _purge_idempotency_keys(app: web.Application) -> None:
    while True:
        try:
            removed = await app[STORE].idempotency_purge(app[CONFIG].idempotency_key_ttl)
            if removed:
                log.info("idempotency_keys_purged", count=removed)
        except Exception:  # the store is down: try again next round
            log.exception("idempotency_purge_failed")
        await asyncio.sleep(min(3600.0, app[CONFIG].idempotency_key_ttl / 4))


def build_app(config: GatewayConfig, *, clock: Callable[[], datetime] | None = None) -> web.Application:
    async def remember_nonce(nonce: str, window: float) -> bool:
        return await app[STORE].remember_nonce(nonce, window)

    metrics = Metrics()
    metrics.prime(config.departments)
    authenticate = auth_middleware(
        config.auth, remember_nonce, lambda realm, reason: metrics.auth_failures.labels(realm, reason).inc(),
        body_limit=config.max_body_bytes,
    )
    app = web.Application(middlewares=[observe, authenticate], client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[METRICS] = metrics
    def breaker_changed(key: str, state: BreakerState) -> None:
        department, _, endpoint = key.partition(".")
        app[METRICS].set_breaker(key, state.value)
        log.warning("circuit_breaker_changed", department=department, endpoint=endpoint, state=state.value)

    app[BREAKERS] = Breakers(config.breaker_threshold, config.breaker_open_seconds, breaker_changed)
    now = clock or (lambda: datetime.now(UTC))

    async def resources(app: web.Application) -> AsyncIterator[None]:
        session = new_client_session()
        app[SESSION] = session
        try:
            store = store_for(config)
            await store.open()
            app[STORE] = store
            try:
                context = AdapterContext(session, config.base_dir)
                departments = await open_departments(config, context)
                app[DEPARTMENTS] = departments
                bindings = DepartmentBindings(config, store, departments, context)
                app[BINDINGS] = bindings
                try:
                    await bindings.load()  # runtime bindings from the store replace the file's
                    metrics = app[METRICS]
                    trail = app[AUDIT] = AuditTrail(store)
                    eligibility = Eligibility(departments, metrics, trail, config.early_retirement)
                    app[ACCEPTANCE] = Acceptance(config, store, eligibility, metrics, now, trail)
                    app[INTAKE] = Intake(store, departments, metrics, trail)
                    yield
                finally:
                    await bindings.close()
                    await close_departments(departments)
            finally:
                await store.close()
        finally:
            await session.close()

    async def background(app: web.Application) -> AsyncIterator[None]:
        departments: dict[str, DepartmentRuntime] = app[DEPARTMENTS]
        dispatcher = Dispatcher(
            config, app[STORE], departments, app[INTAKE], app[METRICS], app[SESSION], app[BREAKERS], app[AUDIT]
        )
        app[DISPATCHER] = dispatcher
        dispatcher.start()
        audit = asyncio.create_task(app[AUDIT].run(), name="audit-trail")
        tasks = [
            asyncio.create_task(app[INTAKE].collect_files(), name="result-files"),
            asyncio.create_task(_purge_idempotency_keys(app), name="idempotency-purge"),
            asyncio.create_task(app[BINDINGS].watch(config.bindings_poll_seconds), name="bindings-watch"),
        ]
        log.info("gateway_started", owner=dispatcher.owner, departments=sorted(departments))
        yield
        await dispatcher.stop(deadline=config.shutdown_deadline)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        audit.cancel()  # last: it writes what the others recorded on their way out
        with contextlib.suppress(asyncio.CancelledError):
            await audit
        log.info("gateway_stopped")

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(background)
    add_routes(app)
    return app
