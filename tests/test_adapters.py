"""Each adapter against its sandbox counterpart (or a small loopback server) over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.base import Operation, OutboundMessage, PermanentError, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.rest import RestAdapter
from adapters.soap import SoapAdapter
from gateway.config import ROOT
from sandbox.runner import RunningSandbox, run_sandbox

PERSON = "430102196303120719"  # 示例甲 in the sandbox people file


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(hpf_root=tmp_path / "hpf", decision_delay=0.01) as sb:
        yield sb


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[AdapterContext]:
    async with aiohttp.ClientSession() as session:
        yield AdapterContext(session, ROOT)


def msg(name: str, body: dict[str, Any], delivery_id: str = "D1", **options: Any) -> OutboundMessage:
    return OutboundMessage(Operation(name, "ep", options), delivery_id, body)


async def test_rest_query_returns_the_department_record(sandbox: RunningSandbox, context: AdapterContext) -> None:
    rest = RestAdapter("hrss.api", {"base_url": sandbox.url("hrss")}, context)
    reply = await rest.call(msg("query", {"aac002": PERSON}, path="/hrss/v1/persons/query"), 2)
    assert reply.body["code"] == "0000" and reply.body["data"]["pension_scheme"] == "employee"


async def test_rest_reads_gbk_json_replies(sandbox: RunningSandbox, context: AdapterContext) -> None:
    rest = RestAdapter("hpf.api", {"base_url": sandbox.url("hpf")}, context)
    reply = await rest.call(msg("query", {"zjhm": "000"}, path="/hpf/account/query"), 2)
    assert reply.body == {"ret": "04", "msg": "无此账户", "data": None}


async def test_rest_nhsa_envelope_resend_with_same_msgid_is_one_case(
    sandbox: RunningSandbox, context: AdapterContext
) -> None:
    rest = RestAdapter("nhsa.api", {"base_url": sandbox.url("nhsa")}, context)
    body = {"infno": "2501", "msgid": "D-NHSA-1", "input": {"data": {"certno": PERSON}}}
    first = await rest.call(msg("submit", body, "D-NHSA-1", path="/nhsa/fsi/api"), 2)
    second = await rest.call(msg("submit", body, "D-NHSA-1", path="/nhsa/fsi/api"), 2)
    assert first.body == second.body and first.body["output"]["result"] == "1"
    assert sandbox.state.ledger.cases["nhsa"]["D-NHSA-1"]["received"] == 2


async def _server(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (503, {}, TransientError, None),
        (429, {"Retry-After": "3"}, TransientError, 3.0),
        (400, {}, PermanentError, None),
        (404, {}, PermanentError, None),
    ],
)
async def test_rest_classifies_http_statuses(
    context: AdapterContext, status: int, headers: dict[str, str], error: type, retry_after: float | None
) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers, text="{}")

    runner, url = await _server(handler)
    try:
        with pytest.raises(error) as info:
            await RestAdapter("x", {"base_url": url}, context).call(msg("submit", {}), 2)
        assert info.value.retry_after == retry_after
    finally:
        await runner.cleanup()


async def test_rest_timeout_after_sending_is_an_unknown_outcome(context: AdapterContext) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    runner, url = await _server(slow)
    try:
        with pytest.raises(UnknownOutcome):
            await RestAdapter("x", {"base_url": url}, context).call(msg("submit", {}), 0.1)
    finally:
        await runner.cleanup()


async def test_rest_connection_refused_is_transient_not_unknown(context: AdapterContext) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError) as info:
        await RestAdapter("x", {"base_url": f"http://127.0.0.1:{port}"}, context).call(msg("submit", {}), 1)
    assert not isinstance(info.value, UnknownOutcome)


def _soap(sandbox: RunningSandbox, context: AdapterContext, dept: str) -> SoapAdapter:
    paths = {"health": "/reward/services/RewardService", "justice": "/sentence/services/SentenceService"}
    return SoapAdapter(
        f"{dept}.ws", {"wsdl": f"config/wsdl/{dept}.wsdl", "address": sandbox.url(dept) + paths[dept]}, context
    )


async def test_soap11_query_submit_and_poll_against_the_health_sandbox(
    sandbox: RunningSandbox, context: AdapterContext
) -> None:
    soap = _soap(sandbox, context, "health")
    await soap.open()
    reply = await soap.call(msg("query", {"idNumber": "nobody"}, soap_operation="QueryFamily"), 2)
    assert reply.body["found"] is False
    submit = {"serialNo": "D-H-1", "idNumber": PERSON, "name": "示例甲", "gender": "1", "birthDate": "19630312"}
    receipt = await soap.call(msg("submit", submit, "D-H-1", soap_operation="SubmitReward"), 2)
    assert receipt.body["receiptNo"].startswith("WJ")
    first = await soap.call(msg("status", {"serialNo": "D-H-1"}, soap_operation="QueryRewardResult"), 2)
    second = await soap.call(msg("status", {"serialNo": "D-H-1"}, soap_operation="QueryRewardResult"), 2)
    assert (first.body["state"], second.body["state"]) == ("0", "1")


async def test_soap11_fault_is_a_permanent_error_with_its_message(
    sandbox: RunningSandbox, context: AdapterContext
) -> None:
    soap = _soap(sandbox, context, "health")
    await soap.open()
    with pytest.raises(PermanentError) as info:
        body = {"serialNo": "", "idNumber": PERSON, "name": "x", "gender": "1", "birthDate": "19630312",
                "phone": "1", "retirementApproval": "x"}
        await soap.call(msg("submit", body, soap_operation="SubmitReward"), 2)
    assert "缺少业务流水号" in info.value.detail


async def test_soap12_query_against_the_justice_sandbox(sandbox: RunningSandbox, context: AdapterContext) -> None:
    soap = _soap(sandbox, context, "justice")
    await soap.open()
    reply = await soap.call(msg("query", {"idNumber": PERSON, "requestId": "Q1"}, soap_operation="QuerySentence"), 2)
    assert reply.body == {"resultCode": "00", "prisonRecordAffectingBenefits": False, "servingSentence": False}


async def test_soap_html_error_page_is_a_transport_error_not_a_fault(context: AdapterContext) -> None:
    async def proxy(_: web.Request) -> web.Response:
        return web.Response(status=502, text="<html><body>Bad Gateway</body></html>", content_type="text/html")

    runner, url = await _server(proxy)
    try:
        soap = SoapAdapter("x", {"wsdl": "config/wsdl/health.wsdl", "address": url + "/ws"}, context)
        await soap.open()
        with pytest.raises(TransientError):
            await soap.call(msg("query", {"idNumber": "x"}, soap_operation="QueryFamily"), 2)
    finally:
        await runner.cleanup()


async def test_soap_message_that_does_not_fit_the_wsdl_is_permanent(
    sandbox: RunningSandbox, context: AdapterContext
) -> None:
    soap = _soap(sandbox, context, "health")
    await soap.open()
    with pytest.raises(PermanentError):
        await soap.call(msg("query", {"noSuchField": "x"}, soap_operation="QueryFamily"), 2)


# The file-drop adapter has its own files: tests/test_filedrop.py and tests/test_sftp.py.
