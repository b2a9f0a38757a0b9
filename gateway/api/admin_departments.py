"""Admin API: department bindings — list, register or update, disable, enable, remove, history."""

from __future__ import annotations

from aiohttp import web

from gateway.api.admin import admin_json, authorize
from gateway.api.body import read_json
from gateway.bindings import DEPARTMENT_CODES, BindingError
from gateway.config import ConfigError
from gateway.keys import AUDIT, BINDINGS, DEPARTMENTS
from gateway.problems import Problem
from gateway.store.audit import AuditRecord


def _code(request: web.Request) -> str:
    code = request.match_info["department"]
    if code not in DEPARTMENT_CODES:
        raise Problem(404, "unknown-department", "Unknown department", "no department with this code",
                      errors=[{"pointer": "department", "detail": "is not a department of this gateway"}])
    return code


def _record(request: web.Request, actor: str, action: str, code: str) -> AuditRecord:
    """The admin action's audit record, written in the same transaction as the change."""
    return request.app[AUDIT].make(f"admin:{actor}", "admin_action", "applied", action=action, department=code)


def _refused(exc: Exception) -> Problem:
    """A binding that cannot be applied: 422, nothing changed."""
    return Problem(422, "binding-refused", "Binding not applied", str(exc))


async def list_departments(request: web.Request) -> web.Response:
    authorize(request)
    return admin_json({"departments": request.app[BINDINGS].views()})


def _configured(request: web.Request) -> str:
    code = _code(request)
    if code not in request.app[DEPARTMENTS]:
        raise Problem(404, "department-not-configured", "Department not configured",
                      "this department has no binding yet: register one with PUT")
    return code


async def show_department(request: web.Request) -> web.Response:
    authorize(request)
    return admin_json(request.app[BINDINGS].view(_configured(request)))


async def put_department(request: web.Request) -> web.Response:
    actor = authorize(request)
    code = _code(request)
    payload = await read_json(request)
    try:
        record = _record(request, actor, "register_binding", code)
        view = await request.app[BINDINGS].register(code, payload, actor, record)
    except (BindingError, ConfigError) as exc:
        await request.app[AUDIT].write_now(f"admin:{actor}", "admin_action", "refused", action="register_binding",
                                           department=code)
        raise _refused(exc) from exc
    return admin_json(view)


async def _switch(request: web.Request, disabled: bool) -> web.Response:
    actor = authorize(request)
    code = _configured(request)
    action = "disable_department" if disabled else "enable_department"
    view = await request.app[BINDINGS].set_disabled(code, disabled, actor, _record(request, actor, action, code))
    return admin_json(view)


async def disable_department(request: web.Request) -> web.Response:
    return await _switch(request, disabled=True)


async def enable_department(request: web.Request) -> web.Response:
    return await _switch(request, disabled=False)


async def remove_binding(request: web.Request) -> web.Response:
    actor = authorize(request)
    code = _code(request)
    try:
        view = await request.app[BINDINGS].remove(code, actor, _record(request, actor, "remove_binding", code))
    except (BindingError, ConfigError) as exc:
        raise _refused(exc) from exc
    return admin_json(view)


async def department_history(request: web.Request) -> web.Response:
    authorize(request)
    code = _code(request)
    return admin_json({"department": code, "history": await request.app[BINDINGS].history(code)})


def add_department_routes(app: web.Application) -> None:
    app.router.add_get("/admin/v1/departments", list_departments)
    app.router.add_get("/admin/v1/departments/{department}", show_department)
    app.router.add_put("/admin/v1/departments/{department}", put_department)
    app.router.add_delete("/admin/v1/departments/{department}", remove_binding)
    app.router.add_post("/admin/v1/departments/{department}/disable", disable_department)
    app.router.add_post("/admin/v1/departments/{department}/enable", enable_department)
    app.router.add_get("/admin/v1/departments/{department}/history", department_history)
