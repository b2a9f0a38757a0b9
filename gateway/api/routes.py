"""HTTP handlers: the platform's endpoints, department callbacks, policy and operations."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.acceptance import application_view
from gateway.api.admin import add_admin_routes
from gateway.api.body import read_json
from gateway.domain.retirement_age import Category, YearMonth, retirement_policy
from gateway.intake import IntakeOutcome
from gateway.keys import ACCEPTANCE, BREAKERS, DEPARTMENTS, INTAKE, METRICS, STORE
from gateway.problems import Problem


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
    answer = await request.app[ACCEPTANCE].submit_with_key(body, request.headers.get("Idempotency-Key"))
    response = json_response(answer.body, answer.status, answer.headers)
    response.content_type = answer.content_type
    return response


async def precheck(request: web.Request) -> web.Response:
    answer = await request.app[ACCEPTANCE].precheck(await read_json(request))
    return json_response(answer.body, answer.status)


async def get_application(request: web.Request) -> web.Response:
    number = request.match_info["application_no"]
    stored = await request.app[STORE].get_application(number)
    if stored is None:
        raise Problem(404, "application-not-found", "No such application", "没有该办件编号的申请")
    return json_response(application_view(stored))


async def department_callback(request: web.Request) -> web.Response:
    department = request.match_info["department"]
    body = await read_json(request)
    outcome = await request.app[INTAKE].accept(department, body, "callback")
    if outcome == IntakeOutcome.MALFORMED:
        raise Problem(400, "malformed-result", "Result not understood", "the result lacks its delivery id or status")
    if outcome == IntakeOutcome.UNKNOWN_DELIVERY:
        raise Problem(404, "unknown-delivery", "Unknown delivery", "no item was sent with this delivery id")
    return json_response({"code": "0000", "outcome": str(outcome)})


async def retirement_age(request: web.Request) -> web.Response:
    errors = []
    birth = request.query.get("birth", "")
    category = request.query.get("category", "")
    try:
        ym = YearMonth.parse(birth)
        if not 1900 <= ym.year <= 2100:
            raise ValueError(birth)
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
    breakers = request.app[BREAKERS].states()
    return json_response(
        {
            "status": "ready",
            "store": "ok",
            "departments": sorted(request.app[DEPARTMENTS]),
            "circuit_breakers": breakers,
            "open_breakers": [k for k, v in breakers.items() if v == "open"],
        }
    )


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    store = request.app[STORE]
    for state, n in (await store.counts()).items():
        if state.startswith("jobs_"):
            m.outbox.labels(state[5:]).set(n)
    m.oldest_pending.set(await store.oldest_pending_age())
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
