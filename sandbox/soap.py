"""Sandbox SOAP departments: 卫健 (SOAP 1.1, poll for results) and 司法 (SOAP 1.2 query)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from sandbox.state import SandboxState

WSDL_DIR = Path(__file__).with_name("wsdl")
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
HEALTH_NS = "http://wjw.hunan.gov.cn/reward/v1"
JUSTICE_NS = "http://sft.hunan.gov.cn/sentence/v1"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _envelope(soap_ns: str, body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{soap_ns}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    )


def _element(ns: str, name: str, fields: dict[str, Any]) -> str:
    inner = "".join(
        f"<t:{k}>{escape(_text(v))}</t:{k}>" for k, v in fields.items() if v is not None
    )
    return f'<t:{name} xmlns:t="{ns}">{inner}</t:{name}>'


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fault11(code: str, message: str) -> web.Response:
    body = f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{escape(message)}</faultstring></soap:Fault>"
    return web.Response(text=_envelope(SOAP11, body), status=500, content_type="text/xml", charset="utf-8")


def _fault12(code: str, message: str) -> web.Response:
    body = (
        f"<soap:Fault><soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code>"
        f'<soap:Reason><soap:Text xml:lang="zh">{escape(message)}</soap:Text></soap:Reason></soap:Fault>'
    )
    return web.Response(text=_envelope(SOAP12, body), status=500, content_type="application/soap+xml", charset="utf-8")


async def _parse(request: web.Request, soap_ns: str) -> tuple[str, dict[str, str]] | None:
    try:
        root = etree.fromstring(await request.read(), _PARSER)
    except etree.XMLSyntaxError:
        return None
    body = root.find(f"{{{soap_ns}}}Body")
    if body is None or len(body) == 0:
        return None
    op = body[0]
    return etree.QName(op).localname, {etree.QName(c).localname: (c.text or "") for c in op}


def health_app(state: SandboxState) -> web.Application:
    cases: dict[str, dict[str, str]] = {}

    async def wsdl(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(WSDL_DIR / "health.wsdl")

    async def service(request: web.Request) -> web.Response:
        parsed = await _parse(request, SOAP11)
        if parsed is None:
            return _fault11("Client", "无法解析的SOAP请求")
        op, f = parsed
        if op == "QueryFamily":
            rec = state.people.section(f.get("idNumber", ""), "health")
            fields: dict[str, Any] = {"found": rec is not None}
            if rec is not None:
                fields |= {
                    "urban": rec.get("urban"),
                    "certificateDate": rec.get("certificate_date"),
                    "eligibleBefore2016": rec.get("eligible_before_2016"),
                    "childrenCount": rec.get("children_born_or_adopted"),
                }
            return _ok(_element(HEALTH_NS, "QueryFamilyResponse", fields))
        if op == "SubmitReward":
            serial = f.get("serialNo", "")
            if not serial:
                return _fault11("Client", "缺少业务流水号")
            if state.ledger.record("health", serial, "one_child_parent_reward"):
                approved, reason = state.people.decision(f.get("idNumber", ""), "one_child_parent_reward")
                # The department decides on a later poll: first answer is "processing".
                cases[serial] = {"state": "0", "final": "1" if approved else "2", "remark": reason}
            return _ok(_element(HEALTH_NS, "SubmitRewardResponse", {"receiptNo": "WJ" + serial[-12:]}))
        if op == "QueryRewardResult":
            serial = f.get("serialNo", "")
            case = cases.get(serial)
            if case is None:  # 9 = 无此业务流水号: never received
                return _ok(_element(HEALTH_NS, "QueryRewardResultResponse", {"serialNo": serial, "state": "9"}))
            answer = {"serialNo": serial, "state": case["state"], "remark": case["remark"] or None}
            case["state"] = case["final"]
            return _ok(_element(HEALTH_NS, "QueryRewardResultResponse", answer))
        return _fault11("Client", f"未知操作 {op}")

    app = web.Application()
    app.router.add_get("/reward/services/RewardService", wsdl)
    app.router.add_post("/reward/services/RewardService", service)
    return app


def _ok(body: str, soap_ns: str = SOAP11) -> web.Response:
    ctype = "text/xml" if soap_ns == SOAP11 else "application/soap+xml"
    return web.Response(text=_envelope(soap_ns, body), content_type=ctype, charset="utf-8")


def justice_app(state: SandboxState) -> web.Application:
    async def wsdl(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(WSDL_DIR / "justice.wsdl")

    async def service(request: web.Request) -> web.Response:
        parsed = await _parse(request, SOAP12)
        if parsed is None:
            return _fault12("Sender", "无法解析的SOAP请求")
        op, f = parsed
        if op != "QuerySentence":
            return _fault12("Sender", f"未知操作 {op}")
        rec = state.people.section(f.get("idNumber", ""), "justice")
        fields: dict[str, Any] = {"resultCode": "00" if rec is not None else "01"}
        if rec is not None:
            fields |= {
                "prisonRecordAffectingBenefits": rec.get("prison_record_affecting_benefits"),
                "servingSentence": rec.get("serving_sentence"),
            }
        return _ok(_element(JUSTICE_NS, "QuerySentenceResponse", fields), SOAP12)

    app = web.Application()
    app.router.add_get("/sentence/services/SentenceService", wsdl)
    app.router.add_post("/sentence/services/SentenceService", service)
    return app
