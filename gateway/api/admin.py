"""The admin API (its own bearer token): dead letters — list, inspect, replay — and
department bindings (gateway/api/admin_departments.py).

Every change names its operator: ``X-Operator`` (1–64 of ``A-Za-z0-9_.@-``), recorded
with the change; without it the actor is ``admin-api``."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

import structlog
from aiohttp import web

from gateway.keys import AUDIT, CONFIG, METRICS, STORE
from gateway.problems import Problem

log = structlog.get_logger("gateway.admin")


def _authorize(request: web.Request) -> None:
    token = request.app[CONFIG].admin_token
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    given_token = value.encode("utf-8", "surrogateescape")
    if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(given_token, token.encode()):
        reason = "disabled" if token is None else ("missing" if not given else "invalid")
        request.app[METRICS].auth_failures.labels("admin", reason).inc()
        raise Problem(
            401, "unauthorized", "Admin credentials required",
            "the admin API needs Authorization: Bearer <admin token>"
            + (" (no admin token is configured)" if token is None else ""),
            headers={"WWW-Authenticate": 'Bearer realm="gateway-admin"'},
        )


_JOB_ID = re.compile(r"[0-9]{1,18}")
OPERATOR: web.RequestKey[str] = web.RequestKey("operator", str)  # the authenticated admin operator
_OPERATOR = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def authorize(request: web.Request) -> str:
    """Check the admin token; the operator making the change. A change is refused while the
    audit trail cannot record it."""
    _authorize(request)
    request[OPERATOR] = "admin-api"
    if request.method == "GET":
        return "admin-api"  # reading changes nothing: no operator to record
    request.app[AUDIT].check_writable()
    operator = request.headers.get("X-Operator", "")
    if operator and not _OPERATOR.match(operator):
        raise Problem(400, "validation-error", "Invalid operator", "X-Operator: 1–64 of A-Za-z0-9_.@-",
                      errors=[{"pointer": "header:X-Operator", "detail": "1–64 of A-Za-z0-9_.@-"}])
    actor = operator or "admin-api"
    request[OPERATOR] = actor  # the audit trail's actor, now that it is checked
    return actor


def admin_json(body: Any, status: int = 200) -> web.Response:
    return _json(body, status)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False, default=str).encode("utf-8"),
        status=status, content_type="application/json", charset="utf-8",
    )


def _job_id(request: web.Request) -> int:
    raw = request.match_info["job_id"]
    if not _JOB_ID.fullmatch(raw):  # ASCII digits that fit a database integer
        raise Problem(400, "validation-error", "Invalid id", "job id must be a number of 1–18 digits",
                      errors=[{"pointer": "job_id", "detail": "must be 1–18 digits"}])
    return int(raw)


async def list_dead_letters(request: web.Request) -> web.Response:
    _authorize(request)
    flag = request.query.get("include_replayed", "false")
    if flag not in ("true", "false"):
        raise Problem(400, "validation-error", "Invalid query", "include_replayed: must be true or false",
                      errors=[{"pointer": "include_replayed", "detail": "must be true or false"}])
    include = flag == "true"
    return _json({"dead_letters": await request.app[STORE].dead_letters(include)})


async def show_dead_letter(request: web.Request) -> web.Response:
    _authorize(request)
    detail = await request.app[STORE].dead_letter_detail(_job_id(request))
    if detail is None:
        raise Problem(404, "dead-letter-not-found", "No such dead letter", "no dead letter with this job id")
    return _json(detail)


async def replay_dead_letter(request: web.Request) -> web.Response:
    actor = authorize(request)
    job_id = _job_id(request)
    record = request.app[AUDIT].make(f"admin:{actor}", "admin_action", "replayed", action="replay_dead_letter",
                                     job=job_id)
    if not await request.app[STORE].replay_dead_letter(job_id, record):
        raise Problem(404, "dead-letter-not-found", "No such dead letter",
                      "no dead letter with this job id waiting for a replay")
    log.info("dead_letter_replayed", job=job_id, actor=actor)
    return _json({"job_id": job_id, "replayed": True}, 202)


def add_admin_routes(app: web.Application) -> None:
    from gateway.api.admin_departments import add_department_routes

    add_department_routes(app)
    app.router.add_get("/admin/v1/dead-letters", list_dead_letters)
    app.router.add_get("/admin/v1/dead-letters/{job_id}", show_dead_letter)
    app.router.add_post("/admin/v1/dead-letters/{job_id}/replay", replay_dead_letter)
