"""HTTP handlers: the platform's endpoints, department callbacks, policy and operations."""

from __future__ import annotations

import json
import re
from typing import Any

import structlog
from aiohttp import web

from gateway.api.admin import add_admin_routes
from gateway.api.body import read_json
from gateway.domain.retirement_age import Category, parse_birth_month, retirement_policy
from gateway.intake import IntakeOutcome
from gateway.keys import ACCEPTANCE, AUDIT, BREAKERS, CONFIG, DEPARTMENTS, DISPATCHER, INTAKE, METRICS, STORE
from gateway.problems import Problem
from gateway.views import application_view

log = structlog.get_logger("gateway.api")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


async def submit(request: web.Request) -> web.Response:
    body = await read_json(request)
    # Keys are the caller's own: with signed requests, scoped by the signing app key.
    caller = request.headers.get("X-App-Key", "") if request.app[CONFIG].auth.enabled else ""
    answer = await request.app[ACCEPTANCE].submit_with_key(body, request.headers.get("Idempotency-Key"), caller)
    response = json_response(answer.body, answer.status, answer.headers)
    response.content_type = answer.content_type
    return response


async def precheck(request: web.Request) -> web.Response:
    answer = await request.app[ACCEPTANCE].precheck(await read_json(request))
    return json_response(answer.body, answer.status)


_APPLICATION_NO = re.compile(r"[A-Za-z0-9-]{1,64}")  # the schema's pattern for application_no


async def get_application(request: web.Request) -> web.Response:
    number = request.match_info["application_no"]
    if not _APPLICATION_NO.fullmatch(number):
        raise Problem(400, "validation-error", "Invalid application number", "application_no: 1–64 of A-Z a-z 0-9 -",
                      errors=[{"pointer": "application_no", "detail": "1–64 of A-Z a-z 0-9 -"}])
    stored = await request.app[STORE].get_application(number, with_request=False)
    if stored is None:
        raise Problem(404, "application-not-found", "No such application", "没有该办件编号的申请")
    return json_response(application_view(stored))


async def department_callback(request: web.Request) -> web.Response:
    department = request.match_info["department"]
    if department not in request.app[DEPARTMENTS]:
        raise Problem(404, "unknown-department", "Unknown department", "no department with this code is configured",
                      errors=[{"pointer": "department", "detail": "is not a configured department"}])
    body = await read_json(request)
    outcome = await request.app[INTAKE].accept(department, body, "callback")
    if outcome == IntakeOutcome.MALFORMED:
        raise Problem(400, "malformed-result", "Result not understood", "the result lacks its delivery id or status")
    if outcome in (IntakeOutcome.UNKNOWN_DELIVERY, IntakeOutcome.WRONG_DEPARTMENT):
        # The same answer for both: a department learns nothing about other departments' items.
        raise Problem(404, "unknown-delivery", "Unknown delivery", "no item was sent to this department with this id")
    return json_response({"code": "0000", "outcome": str(outcome)})


async def retirement_age(request: web.Request) -> web.Response:
    errors = [
        {"pointer": name, "detail": "must be given once"} for name in ("birth", "category")
        if len(request.query.getall(name, [])) > 1
    ]
    birth = request.query.get("birth", "")
    category = request.query.get("category", "")
    try:
        ym = parse_birth_month(birth)
    except ValueError:
        errors.append({"pointer": "birth", "detail": "must be YYYY-MM with a year from 1900 to 2100"})
    try:
        cat = Category(category)
    except ValueError:
        errors.append({"pointer": "category", "detail": "must be one of: " + ", ".join(c.value for c in Category)})
    if errors:
        raise Problem(400, "validation-error", "Invalid query", errors[0]["pointer"] + ": " + errors[0]["detail"],
                      errors=errors)
    return json_response(retirement_policy(ym, cat).to_json())


async def healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Store reachable with its schema applied, adapters opened, breakers' state."""
    try:
        migrated = await request.app[STORE].ready()
    except Exception as exc:  # the store is down: not ready, say why without a stack trace
        raise Problem(503, "not-ready", "Not ready", f"store unreachable: {type(exc).__name__}") from exc
    if not migrated:
        raise Problem(503, "not-ready", "Not ready", "store schema is not at the version this gateway needs")
    if not request.app[AUDIT].healthy:
        raise Problem(503, "not-ready", "Not ready", "the audit trail cannot be written: applications are refused")
    dispatcher = request.app[DISPATCHER]
    if not dispatcher.alive:
        raise Problem(503, "not-ready", "Not ready", "the dispatcher is not running: accepted items would not be sent")
    breakers = request.app[BREAKERS].states()
    departments = request.app[DEPARTMENTS]
    return json_response(
        {
            "status": "ready",
            "store": "ok",
            "departments": sorted(departments),
            "circuit_breakers": breakers,
            "open_breakers": [k for k, v in breakers.items() if v == "open"],
        }
    )


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    store = request.app[STORE]
    try:
        m.observe_store(await store.counts(), await store.oldest_pending_age())
    except Exception:  # the store is down: still answer (readiness says why), with the last values
        log.warning("metrics_store_unreachable")
    m.set_breaker_states(request.app[BREAKERS].states())
    return web.Response(body=m.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/joint-applications", submit)
    app.router.add_get("/api/v1/joint-applications/{application_no}", get_application)
    app.router.add_post("/api/v1/prechecks", precheck)
    app.router.add_get("/api/v1/policy/retirement-age", retirement_age)
    app.router.add_post("/api/v1/callbacks/{department}", department_callback)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    add_admin_routes(app)
