"""Sandbox REST departments: 公安 (police), 人社 (hrss), 医保 (nhsa), 公积金 account query (hpf)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from gateway.auth import sign
from sandbox.people import Ledger
from sandbox.state import SandboxState

ITEM_KEYS = {  # hrss item code + our key travel together; the key decides
    "retire_normal", "retire_early", "resident_pension", "sscard_apply", "sscard_activate",
    "injury_benefit_change", "employment_filing_end", "unemployment_benefit_end",
}


def _json(data: Any, status: int = 200, charset: str = "utf-8") -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode(charset),
        status=status,
        content_type="application/json",
        charset=charset,
    )


def police_app(state: SandboxState) -> web.Application:
    async def verify(request: web.Request) -> web.Response:
        body = await request.json()
        record = state.people.section(str(body.get("sfzhm", "")), "police")
        if record is None:
            return _json({"code": "1", "message": "无此人员", "data": None})
        verified = "1" if record.get("identity_verified") else "0"
        return _json({"code": "0", "message": "成功", "data": {"hcjg": verified}})

    app = web.Application()
    app.router.add_post("/police/identity/verify", verify)
    add_ledger_route(app, state.ledger, "police")
    return app


def hrss_app(state: SandboxState) -> web.Application:
    people, ledger = state.people, state.ledger

    async def query(request: web.Request) -> web.Response:
        body = await request.json()
        record = people.section(str(body.get("aac002", "")), "hrss")
        if record is None:
            return _json({"code": "0004", "msg": "未查询到参保信息", "data": None})
        return _json({"code": "0000", "msg": "成功", "data": record})

    async def submit(request: web.Request) -> web.Response:
        body = await request.json()
        lsh = request.headers.get("Idempotency-Key") or str(body.get("lsh", ""))
        item = str(body.get("ywlx", ""))
        if not lsh or item not in ITEM_KEYS:
            return _json({"code": "4001", "msg": "报文缺少流水号或事项类型"}, status=400)
        if ledger.record("hrss", lsh, item, request.headers.get("X-Request-Id", "")):
            approved, reason = people.decision(str(body.get("aac002", "")), item)
            task = asyncio.create_task(
                _decide_later(state, lsh, approved, reason, str(body.get("hdurl", "")))
            )
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        return _json({"code": "0000", "msg": "已受理", "data": {"slbh": "RS" + lsh[-12:]}}, status=202)

    async def status(request: web.Request) -> web.Response:
        lsh = str((await request.json()).get("lsh", ""))
        case = ledger.cases.get("hrss", {}).get(lsh)
        if case is None:
            return _json({"code": "0004", "msg": "无此办件"})
        data = {"lsh": lsh, "bjjg": case["decided"] or "受理", "bjyj": case.get("reason", ""),
                "pzwh": case.get("document", "")}
        return _json({"code": "0000", "msg": "成功", "data": data})

    app = web.Application()
    app.router.add_post("/hrss/v1/persons/query", query)
    app.router.add_post("/hrss/v1/items", submit)
    app.router.add_post("/hrss/v1/items/status", status)
    add_ledger_route(app, ledger, "hrss")
    return app


async def _decide_later(state: SandboxState, lsh: str, approved: bool, reason: str, url: str) -> None:
    """人社 decides after a short delay and pushes the result to the gateway's callback."""
    await asyncio.sleep(state.decision_delay)
    verdict = "办结" if approved else "不予受理"
    document = f"湘人社退审〔2026〕{lsh[-6:]}号" if approved else ""  # 批准文号
    state.ledger.cases["hrss"][lsh] |= {
        "decided": verdict, "decided_at": time.time(), "reason": reason, "document": document
    }
    if state.drop_callbacks:
        return  # the department decided, but its callback is lost on the way
    payload = {"lsh": lsh, "bjjg": verdict, "bjyj": reason, "pzwh": document}
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    for attempt in range(8):
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if state.callback_key:
            headers |= sign("POST", URL(url).path, body, *state.callback_key)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            post = state.session.post(url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=5))
            async with post as resp:
                if resp.status < 300:
                    return
        await asyncio.sleep(min(0.2 * 2**attempt, 5))


def nhsa_app(state: SandboxState) -> web.Application:
    """国家医保信息平台 style: one URL, infno selects the transaction, infcode answers."""
    people, ledger = state.people, state.ledger
    decided: dict[str, dict[str, Any]] = {}

    async def api(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _json({"infcode": -1, "err_msg": "报文格式错误", "output": None})
        infno, msgid = str(body.get("infno", "")), str(body.get("msgid", ""))
        data = (body.get("input") or {}).get("data") or {}
        certno = str(data.get("certno", ""))
        if infno == "1101":
            record = people.section(certno, "nhsa")
            return _json({"infcode": 0, "err_msg": "", "msgid": msgid, "output": {"baseinfo": record or {}}})
        if infno == "2501":
            if not msgid:
                return _json({"infcode": -1, "err_msg": "缺少报文ID", "output": None})
            if ledger.record("nhsa", msgid, "medical_retiree_registration"):
                approved, reason = people.decision(certno, "medical_retiree_registration")
                decided[msgid] = {"result": "1" if approved else "0", "reason": reason, "msgid": msgid}
            # A re-sent message id gets the first answer again, never a second case.
            return _json({"infcode": 0, "err_msg": "", "msgid": msgid, "output": decided[msgid]})
        return _json({"infcode": -1, "err_msg": f"未知交易编号 {infno}", "output": None})

    app = web.Application()
    app.router.add_post("/nhsa/fsi/api", api)
    add_ledger_route(app, ledger, "nhsa")
    return app


def hpf_query_app(state: SandboxState) -> web.Application:
    """省直公积金 account query (GBK JSON, as that system answers)."""

    async def query(request: web.Request) -> web.Response:
        body = await request.json()
        record = state.people.section(str(body.get("zjhm", "")), "hpf")
        if record is None:
            return _json({"ret": "04", "msg": "无此账户", "data": None}, charset="gbk")
        return _json({"ret": "00", "msg": "成功", "data": record}, charset="gbk")

    app = web.Application()
    app.router.add_post("/hpf/account/query", query)
    add_ledger_route(app, state.ledger, "hpf")
    return app


def add_ledger_route(app: web.Application, ledger: Ledger, department: str) -> None:
    async def cases(_: web.Request) -> web.Response:
        return _json(ledger.cases.get(department, {}))

    app.router.add_get("/_sandbox/cases", cases)
