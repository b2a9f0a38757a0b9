"""Fault injection for the sandbox departments, per department, changeable at run time.

Set from `gateway sandbox --faults FILE` or `PUT /_sandbox/faults` on the department's
own server, e.g. ``{"error_rate": 0.2, "reset_after_rate": 0.1, "down_seconds": 5}``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    error_rate: float = 0.0  # answer 503 without processing
    status: int = 503  # the status used by error_rate (e.g. 400 for a permanent fault)
    error_body: str = ""  # the body used by error_rate (e.g. a business refusal inside HTTP 200)
    timeout_rate: float = 0.0  # never answer in time (sleep `timeout_seconds`)
    timeout_seconds: float = 30.0
    slow_seconds: float = 0.0  # added to every answer
    reset_before_rate: float = 0.0  # drop the connection before processing
    reset_after_rate: float = 0.0  # process, then drop the connection (the caller cannot know)
    malformed_rate: float = 0.0  # process, then answer garbage
    soap_fault_rate: float = 0.0  # SOAP departments: a Server fault without processing
    down_until: float = 0.0  # epoch seconds: every connection dropped until then
    match: str = ""  # only requests whose path, SOAPAction or body start contain this text

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"down_seconds"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        faults = cls(**{k: v for k, v in data.items() if k in known})
        if data.get("down_seconds"):
            faults.down_until = time.time() + float(data["down_seconds"])
        return faults


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def fault_middleware(faults_of: Callable[[], Faults], rng: random.Random, soap: bool = False) -> Any:
    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sandbox") or request.method == "GET":
            return await handler(request)
        f = faults_of()
        if f.match:
            head = (await request.read())[:400].decode("utf-8", "replace")
            if f.match not in f"{request.path} {request.headers.get('SOAPAction', '')} {head}":
                return await handler(request)
        if f.down_until > time.time() or rng.random() < f.reset_before_rate:
            _drop(request)
            return web.Response(status=503)
        if f.slow_seconds:
            await asyncio.sleep(f.slow_seconds)
        if rng.random() < f.timeout_rate:
            await asyncio.sleep(f.timeout_seconds)
        if rng.random() < f.error_rate:
            if f.error_body:
                kind = "text/xml" if f.error_body.lstrip().startswith("<") else "application/json"
                return web.Response(status=f.status, text=f.error_body, content_type=kind)
            return web.Response(status=f.status, text="injected fault")
        if soap and rng.random() < f.soap_fault_rate:
            body = (
                '<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                "<soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>系统繁忙</faultstring>"
                "</soap:Fault></soap:Body></soap:Envelope>"
            )
            return web.Response(status=500, text=body, content_type="text/xml")
        response = await handler(request)
        if rng.random() < f.reset_after_rate:
            _drop(request)
            return response
        if rng.random() < f.malformed_rate:
            return web.Response(status=200, text="{not json <", content_type=response.content_type)
        return response

    return inject


def faults_routes(app: web.Application, get: Callable[[], Faults], put: Callable[[Faults], None]) -> None:
    async def show(_: web.Request) -> web.Response:
        return web.json_response(asdict(get()))

    async def change(request: web.Request) -> web.Response:
        try:
            put(Faults.from_json(await request.json()))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(asdict(get()))

    app.router.add_get("/_sandbox/faults", show)
    app.router.add_put("/_sandbox/faults", change)
