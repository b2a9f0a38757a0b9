"""HTTP handlers: the platform's endpoints, department callbacks, policy and operations."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.acceptance import application_view
from gateway.api.body import read_json
from gateway.domain.retirement_age import Category, YearMonth, retirement_policy
from gateway.intake import IntakeOutcome
from gateway.keys import ACCEPTANCE, INTAKE, METRICS, STORE
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
    answer = await request.app[ACCEPTANCE].submit(await read_json(request))
    return json_response(answer.body, answer.status, answer.headers)


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
    except ValueError:
        errors.append({"pointer": "birth", "detail": "must be YYYY-MM"})
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
    try:
        counts = await request.app[STORE].counts()
    except Exception as exc:  # the store is down: not ready, say why without a stack trace
        raise Problem(503, "not-ready", "Not ready", f"store unreachable: {type(exc).__name__}") from exc
    return json_response({"status": "ready", "outbox": counts})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    for state, n in (await request.app[STORE].counts()).items():
        if state.startswith("jobs_"):
            m.outbox.labels(state[5:]).set(n)
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
