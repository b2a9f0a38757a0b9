"""Every SOAP variant a department system may present, against loopback servers (real
sockets) started in the test, with the WSDL fixtures in tests/wsdl/."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest
import xmltodict
from aiohttp import web
from lxml import etree

from adapters import soap as soap_module
from adapters.base import Operation, OutboundMessage, PermanentError, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.soap import SoapAdapter
from adapters.wsdlfiles import OfflineTransport
from gateway.mapping import load_mapping

ROOT = Path(__file__).resolve().parent.parent
WSDL = ROOT / "tests" / "wsdl"
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
S12 = "http://www.w3.org/2003/05/soap-envelope"
PERSON_NS = "http://test.example.gov.cn/person/v1"
AXIS_NS = "http://service.ylbx.example.gov.cn"
XFIRE_NS = "http://ws.sbj.example.gov.cn"
JAXWS_NS = "http://webservice.gaj.example.gov.cn/"
# A made-up ID number (not one of the sandbox people): the masking tests look for it.
ECHOED_ID = "110105194912310021"
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
)
EXTERNAL_ENTITY = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@dataclass
class Seen:
    """What a loopback department received."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def last(self) -> tuple[str, dict[str, str], bytes]:
        return self.requests[-1]

    def envelope(self) -> etree._Element:
        return etree.fromstring(self.last[2])


Handler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def department(handler: Handler) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    async def route(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.requests.append((request.path_qs, dict(request.headers), body))
        return await handler(request, body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


def answer(xml: str, status: int = 200, content_type: str = "text/xml") -> Handler:
    async def handler(_: web.Request, __: bytes) -> web.Response:
        return web.Response(body=xml.encode("utf-8"), status=status, content_type=content_type, charset="utf-8")

    return handler


def env11(body: str, prefix: str = "soap") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><{prefix}:Envelope xmlns:{prefix}="{S11}">'
            f"<{prefix}:Body>{body}</{prefix}:Body></{prefix}:Envelope>")


def env12(body: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="{S12}">'
            f"<env:Body>{body}</env:Body></env:Envelope>")


def person_reply(version: str = "1.1") -> str:
    inner = f'<p:QueryPersonResponse xmlns:p="{PERSON_NS}"><p:code>00</p:code><p:retired>true</p:retired>' \
            "<p:months>180</p:months></p:QueryPersonResponse>"
    return env11(inner) if version == "1.1" else env12(inner)


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with aiohttp.ClientSession() as session:
        yield AdapterContext(session, ROOT)


def msg(name: str, body: dict[str, Any], delivery_id: str = "D1", **options: Any) -> OutboundMessage:
    return OutboundMessage(Operation(name, "ws", options), delivery_id, body)


async def opened(context: AdapterContext, wsdl: str | Path, address: str, **settings: Any) -> SoapAdapter:
    adapter = SoapAdapter("dept.ws", {"wsdl": str(wsdl), "address": address, **settings}, context)
    await adapter.open()
    return adapter


# 1. SOAP 1.1 and 1.2 ---------------------------------------------------------------------


async def test_soap11_port_sends_a_11_envelope_with_soapaction_and_reads_typed_values(
    context: AdapterContext,
) -> None:
    async with department(answer(person_reply("1.1"))) as (url, seen):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws", port="PersonSoap11")
        reply = await soap.call(msg("query", {"idNumber": "X1", "year": 2026}, soap_operation="QueryPerson"), 2)
    _, headers, _ = seen.last
    assert headers["Content-Type"].startswith("text/xml")
    assert headers["SOAPAction"] == '"urn:QueryPerson"'
    root = seen.envelope()
    assert root.tag == f"{{{S11}}}Envelope"
    assert root.findtext(f"{{{S11}}}Body/{{{PERSON_NS}}}QueryPerson/{{{PERSON_NS}}}idNumber") == "X1"
    assert reply.body == {"code": "00", "retired": True, "months": 180}
    assert soap.soap_version == "1.1"


async def test_soap12_port_sends_a_12_envelope_with_the_action_in_content_type(context: AdapterContext) -> None:
    async with department(answer(person_reply("1.2"), content_type="application/soap+xml")) as (url, seen):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws", port="PersonSoap12")
        reply = await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    _, headers, _ = seen.last
    assert headers["Content-Type"].startswith("application/soap+xml")
    assert 'action="urn:QueryPerson"' in headers["Content-Type"]
    assert seen.envelope().tag == f"{{{S12}}}Envelope"
    assert reply.body["retired"] is True
    assert soap.soap_version == "1.2"


async def test_soap11_envelope_from_a_12_port_is_a_malformed_reply_not_a_success(context: AdapterContext) -> None:
    async with department(answer(person_reply("1.1"))) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws", port="PersonSoap12")
        with pytest.raises(TransientError) as info:
            await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    assert "does not fit the WSDL" in info.value.detail


# 2. document/literal and rpc ---------------------------------------------------------------


async def test_rpc_encoded_axis_operation_wraps_parts_in_the_operation_element(context: AdapterContext) -> None:
    reply = env11(f'<ns1:queryPersonResponse xmlns:ns1="{AXIS_NS}" '
                  'soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">'
                  '<queryPersonReturn xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:string">'
                  "00</queryPersonReturn></ns1:queryPersonResponse>")
    async with department(answer(reply)) as (url, seen):
        soap = await opened(context, WSDL / "axis_rpc_encoded.wsdl", url + "/ylbx/services/YlbxService")
        result = await soap.call(msg("query", {"idNumber": "X1", "year": 2026}, soap_operation="queryPerson"), 2)
    wrapper = seen.envelope().find(f"{{{S11}}}Body/{{{AXIS_NS}}}queryPerson")
    assert wrapper is not None, "rpc style: the body holds an element named after the operation"
    assert [(c.tag, c.text) for c in wrapper] == [("idNumber", "X1"), ("year", "2026")]  # parts, unqualified
    assert result.body == {"queryPersonReturn": "00"}


async def test_rpc_literal_soap12_xml_string_round_trip(context: AdapterContext) -> None:
    inner = "<response><code>00</code><data><retired>1</retired><name>测试</name></data></response>"

    async def handler(_: web.Request, body: bytes) -> web.Response:
        arg0 = etree.fromstring(body).findtext(f"{{{S12}}}Body/{{{XFIRE_NS}}}invoke/arg0")
        assert xmltodict.parse(arg0) == {"request": {"jylx": "Q01", "sfzh": "X1"}}
        assert arg0.startswith('<?xml version="1.0" encoding="UTF-8"?>')
        xml = env12(f'<ns:invokeResponse xmlns:ns="{XFIRE_NS}"><return>{escape(inner)}</return></ns:invokeResponse>')
        return web.Response(text=xml, content_type="application/soap+xml", charset="utf-8")

    async with department(handler) as (url, _):
        soap = await opened(context, WSDL / "xfire_rpc_literal12.wsdl", url + "/sbj")
        reply = await soap.call(msg("query", {"jylx": "Q01", "sfzh": "X1"}, soap_operation="invoke",
                                    xml_in="arg0", xml_root="request", xml_out="return"), 2)
    assert reply.body == {"response": {"code": "00", "data": {"retired": "1", "name": "测试"}}}


# 3. Business XML inside a string element ---------------------------------------------------


async def test_axis_invoke_with_transaction_code_and_xml_string_forces_lists(context: AdapterContext) -> None:
    inner = "<result><code>00</code><records><record><year>2025</year></record></records></result>"

    async def handler(_: web.Request, body: bytes) -> web.Response:
        call = etree.fromstring(body).find(f"{{{S11}}}Body/{{{AXIS_NS}}}invoke")
        assert call.findtext("in0") == "QRY001"  # the constant soap_params
        assert xmltodict.parse(call.findtext("in1")) == {"req": {"sfzh": "X1"}}
        xml = env11(f'<ns1:invokeResponse xmlns:ns1="{AXIS_NS}"><invokeReturn>{escape(inner)}</invokeReturn>'
                    "</ns1:invokeResponse>")
        return web.Response(text=xml, content_type="text/xml", charset="utf-8")

    async with department(handler) as (url, _):
        soap = await opened(context, WSDL / "axis_rpc_encoded.wsdl", url + "/ylbx")
        reply = await soap.call(msg("query", {"req": {"sfzh": "X1"}}, soap_operation="invoke",
                                    soap_params={"in0": "QRY001"}, xml_in="in1", xml_out="invokeReturn",
                                    xml_force_list=["record"]), 2)
    assert reply.body["result"]["records"]["record"] == [{"year": "2025"}]


async def test_xml_string_declaring_gbk_is_read_as_the_text_it_already_is(context: AdapterContext) -> None:
    inner = '<?xml version="1.0" encoding="GBK"?><response><code>00</code><msg>成功</msg></response>'
    reply = env11(f'<ns2:invokeResponse xmlns:ns2="{JAXWS_NS}"><return>{escape(inner)}</return></ns2:invokeResponse>')
    async with department(answer(reply)) as (url, seen):
        soap = await opened(context, WSDL / "jaxws_xml_string.wsdl", url + "/gaj/ws/dataExchange")
        result = await soap.call(msg("query", {"sfzh": "X1"}, soap_operation="invoke",
                                     xml_in="arg0", xml_root="request", xml_declaration=False, xml_out="return"), 2)
    arg0 = seen.envelope().findtext(f"{{{S11}}}Body/{{{JAXWS_NS}}}invoke/arg0")
    assert arg0 == "<request><sfzh>X1</sfzh></request>"  # no declaration when told so
    assert result.body == {"response": {"code": "00", "msg": "成功"}}


async def test_xml_string_options_reach_the_adapter_through_the_mapping_file(
    context: AdapterContext, tmp_path: Path
) -> None:
    (tmp_path / "gaj.v1.toml").write_text(textwrap.dedent("""
        department = "gaj"
        version = "v1"
        [operations.query]
        endpoint = "ws"
        soap_operation = "invoke"
        xml_in = "arg0"
        xml_root = "request"
        xml_out = "return"
        [operations.query.request]
        "head.jylx" = { const = "RKXX01" }
        "body.sfzh" = "applicant.id_number"
        [operations.query.reply]
        ok_path = "response.code"
        ok_values = ["00"]
        record_path = "response.data"
        [operations.query.reply.fields]
        identity_verified = { path = "hcjg", equals = "1" }
    """), encoding="utf-8")
    mapping = load_mapping(tmp_path / "gaj.v1.toml")
    options = mapping.operations["query"].operation.options
    assert {k: options[k] for k in ("xml_in", "xml_root", "xml_out")} == {
        "xml_in": "arg0", "xml_root": "request", "xml_out": "return"}
    inner = "<response><code>00</code><data><hcjg>1</hcjg></data></response>"
    reply = env11(f'<ns2:invokeResponse xmlns:ns2="{JAXWS_NS}"><return>{escape(inner)}</return></ns2:invokeResponse>')
    async with department(answer(reply)) as (url, seen):
        soap = await opened(context, WSDL / "jaxws_xml_string.wsdl", url + "/gaj")
        message = mapping.build("query", {"applicant": {"id_number": "X1"}, "delivery_id": "Q1"}, "Q1")
        result = await soap.call(message, 2)
    sent = xmltodict.parse(seen.envelope().findtext(f"{{{S11}}}Body/{{{JAXWS_NS}}}invoke/arg0"))
    assert sent == {"request": {"head": {"jylx": "RKXX01"}, "body": {"sfzh": "X1"}}}
    assert mapping.read_record(result.body) == {"identity_verified": True}


async def test_xml_in_without_a_root_for_several_fields_is_a_permanent_error(context: AdapterContext) -> None:
    async with department(answer(person_reply())) as (url, seen):
        soap = await opened(context, WSDL / "jaxws_xml_string.wsdl", url + "/gaj")
        with pytest.raises(PermanentError) as info:
            await soap.call(msg("submit", {"a": "1", "b": "2"}, soap_operation="invoke", xml_in="arg0"), 2)
    assert "xml_root" in info.value.detail and seen.requests == []


@pytest.mark.parametrize(("operation", "error"), [("query", TransientError), ("submit", UnknownOutcome)])
async def test_xml_string_that_is_not_well_formed_is_a_malformed_reply(
    context: AdapterContext, operation: str, error: type
) -> None:
    reply = env11(f'<ns2:invokeResponse xmlns:ns2="{JAXWS_NS}"><return>{escape("<response><code>")}</return>'
                  "</ns2:invokeResponse>")
    async with department(answer(reply)) as (url, _):
        soap = await opened(context, WSDL / "jaxws_xml_string.wsdl", url + "/gaj")
        with pytest.raises(error) as info:
            await soap.call(msg(operation, {"r": {}}, soap_operation="invoke", xml_in="arg0", xml_out="return"), 2)
    assert type(info.value) is error and "not well-formed" in info.value.detail


# 4. Faults ----------------------------------------------------------------------------------

FAULTS = {
    "1.1 prefixed": (env11("<soap:Fault><faultcode>soap:Client</faultcode><faultstring>参数错误</faultstring>"
                           "<detail><err>缺少字段 idNumber</err></detail></soap:Fault>"), (), PermanentError,
                     ("SOAP fault Client", "参数错误", "缺少字段 idNumber")),
    "1.1 default namespace": (
        f'<?xml version="1.0"?><Envelope xmlns="{S11}"><Body><Fault xmlns="{S11}">'
        "<faultcode>Server</faultcode><faultstring>系统繁忙，请稍后再试</faultstring></Fault></Body></Envelope>",
        ("Server",), TransientError, ("SOAP fault Server", "系统繁忙")),
    "1.1 SOAP-ENV Axis": (env11("<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server.userException</faultcode>"
                                "<faultstring>java.lang.NullPointerException</faultstring></SOAP-ENV:Fault>",
                                prefix="SOAP-ENV"), ("Server",), PermanentError,
                          ("Server.userException", "NullPointerException")),
    "1.2 subcode": (env12('<env:Fault xmlns:app="urn:dept"><env:Code><env:Value>env:Receiver</env:Value>'
                          "<env:Subcode><env:Value>app:Busy</env:Value></env:Subcode></env:Code>"
                          '<env:Reason><env:Text xml:lang="en">busy</env:Text><env:Text xml:lang="zh">繁忙</env:Text>'
                          "</env:Reason><env:Detail><app:retryAfter>30</app:retryAfter></env:Detail></env:Fault>"),
                    ("Busy",), TransientError, ("SOAP fault Receiver/Busy", "繁忙", "[30]")),
    "1.2 default namespace": (
        f'<?xml version="1.0"?><Envelope xmlns="{S12}"><Body><Fault><Code><Value>Sender</Value>'
        "<Subcode><Value>undeclared:BadId</Value></Subcode></Code>"
        "<Reason><Text>证件号码格式错误</Text></Reason></Fault></Body></Envelope>",
        ("Receiver",), PermanentError, ("SOAP fault Sender/BadId", "证件号码格式错误")),
}


@pytest.mark.parametrize("status", [500, 200])
@pytest.mark.parametrize("case", list(FAULTS))
async def test_faults_of_both_versions_carry_code_and_short_detail(
    context: AdapterContext, case: str, status: int
) -> None:
    xml, transient_faults, error, needles = FAULTS[case]
    ctype = "application/soap+xml" if S12 in xml else "text/xml"
    async with department(answer(xml, status, ctype)) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws")
        with pytest.raises(error) as info:
            await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson",
                                transient_faults=list(transient_faults)), 2)
    assert type(info.value) is error
    for needle in needles:
        assert needle in info.value.detail
    assert info.value.status == status


async def test_transient_faults_from_the_endpoint_settings_apply_to_every_operation(context: AdapterContext) -> None:
    xml = env11("<soap:Fault><faultcode>soap:Server</faultcode><faultstring>忙</faultstring></soap:Fault>")
    async with department(answer(xml, 500)) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws", transient_faults=["Server"])
        with pytest.raises(TransientError):
            await soap.call(msg("submit", {"serialNo": "D1", "idNumber": "X1"}, soap_operation="SubmitCase"), 2)


async def test_fault_detail_masks_an_id_number_the_department_echoes(context: AdapterContext) -> None:
    xml = env11(f"<soap:Fault><faultcode>soap:Client</faultcode><faultstring>身份证号{ECHOED_ID}不存在</faultstring>"
                f"<detail><input>{ECHOED_ID}</input><phone>13912345678</phone>{'很长的说明' * 80}</detail>"
                "</soap:Fault>")
    async with department(answer(xml, 500)) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws")
        with pytest.raises(PermanentError) as info:
            await soap.call(msg("query", {"idNumber": ECHOED_ID}, soap_operation="QueryPerson"), 2)
    detail = info.value.detail
    assert ECHOED_ID not in detail and "13912345678" not in detail
    assert "11************0021" in detail and "139****5678" in detail
    assert len(detail) < 500  # short: the department's essay is cut


# 5. Non-SOAP error bodies -------------------------------------------------------------------

NGINX_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>" \
            "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
APACHE_503 = '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head><title>503 Service Unavailable' \
             "</title></head><body><h1>Service Unavailable</h1></body></html>"
LOGIN_PAGE = "<html><body><form action='/sso/login'>统一身份认证</form></body></html>"


@pytest.mark.parametrize(
    ("status", "ctype", "body", "operation", "error"),
    [
        (502, "text/html", NGINX_502, "submit", TransientError),
        (503, "text/html", APACHE_503, "query", TransientError),
        (500, "text/plain", "Internal Server Error", "submit", TransientError),
        (404, "text/html", "<html>Not Found</html>", "submit", PermanentError),
        (200, "text/html", LOGIN_PAGE, "submit", UnknownOutcome),
        (200, "text/html", LOGIN_PAGE, "query", TransientError),
        (200, "text/html", LOGIN_PAGE, "status", TransientError),
        (200, "text/xml", "", "submit", UnknownOutcome),
        (200, "text/xml", "<html><body>ok</body></html>", "query", TransientError),
        (200, "application/json", '{"code": "0"}', "submit", UnknownOutcome),
        (503, "text/xml", "", "query", TransientError),
        (502, "application/xhtml+xml", APACHE_503, "submit", TransientError),
    ],
    ids=["502-nginx", "503-apache-doctype", "500-text", "404-html", "200-html-submit", "200-html-query",
         "200-html-status", "200-empty", "200-xml-not-soap", "200-json", "503-empty", "502-xhtml-doctype"],
)
async def test_non_soap_bodies_are_transport_errors_by_http_status(
    context: AdapterContext, status: int, ctype: str, body: str, operation: str, error: type
) -> None:
    async with department(answer(body, status, ctype)) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws")
        with pytest.raises(error) as info:
            await soap.call(msg(operation, {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    assert type(info.value) is error  # exactly: a query's malformed reply is not an UnknownOutcome
    assert "SOAP fault" not in info.value.detail and "DTD" not in info.value.detail


async def test_soap_fault_served_as_text_html_is_still_read_as_a_fault(context: AdapterContext) -> None:
    xml = env11("<soap:Fault><faultcode>soap:Client</faultcode><faultstring>无此业务</faultstring></soap:Fault>")
    async with department(answer(xml, 500, "text/html")) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws")
        with pytest.raises(PermanentError) as info:
            await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    assert "SOAP fault Client: 无此业务" in info.value.detail


# 6. WSDLs split over files; remote references refused ---------------------------------------


async def test_wsdl_with_wsdl_import_xsd_import_and_include_loads_from_local_files(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[str] = []
    original = OfflineTransport.load

    def recording(self: OfflineTransport, url: str) -> bytes:
        loaded.append(url)
        return original(self, url)

    monkeypatch.setattr(OfflineTransport, "load", recording)
    split = "http://test.example.gov.cn/split/v1"
    common = "http://test.example.gov.cn/common/v1"
    reply = env11(f'<s:LookupResponse xmlns:s="{split}"><s:result><c:code xmlns:c="{common}">00</c:code>'
                  f'<c:level xmlns:c="{common}">A</c:level></s:result></s:LookupResponse>')
    async with department(answer(reply)) as (url, seen):
        soap = await opened(context, WSDL / "imports" / "service.wsdl", url + "/split")
        result = await soap.call(msg("query", {"person": {"idNumber": "X1"}}, soap_operation="Lookup"), 2)
    names = sorted(Path(u).relative_to(WSDL / "imports").as_posix() for u in loaded)
    assert names == ["interface.wsdl", "service.wsdl", "xsd/common/types.xsd", "xsd/messages.xsd"]
    sent = seen.envelope().find(f"{{{S11}}}Body/{{{split}}}Lookup/{{{split}}}person/{{{common}}}idNumber")
    assert sent is not None and sent.text == "X1"
    assert result.body == {"result": {"code": "00", "level": "A"}}


@pytest.mark.parametrize(
    ("wsdl", "url"),
    [("remote_schema.wsdl", "https://schemas.invalid/remote/types.xsd"),
     ("remote_wsdl_import.wsdl", "http://schemas.invalid/remote/interface.wsdl")],
)
async def test_wsdl_referencing_a_network_document_fails_at_open_naming_it(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch, wsdl: str, url: str
) -> None:
    def no_network(*_: Any) -> bytes:
        raise AssertionError("the WSDL loader went to the network")

    monkeypatch.setattr(OfflineTransport, "_load_remote_data", no_network)
    soap = SoapAdapter("dept.ws", {"wsdl": str(WSDL / wsdl), "address": "http://127.0.0.1:9/ws"}, context)
    with pytest.raises(PermanentError) as info:
        await soap.open()
    assert url in info.value.detail and "not a local file" in info.value.detail and wsdl in info.value.detail


async def test_rpc_encoded_wsdl_loads_offline_with_the_bundled_soap_encoding_schema(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[str] = []
    original = OfflineTransport.load
    monkeypatch.setattr(OfflineTransport, "load", lambda self, u: loaded.append(u) or original(self, u))
    await opened(context, WSDL / "axis_rpc_encoded.wsdl", "http://127.0.0.1:9/ws")
    assert "http://schemas.xmlsoap.org/soap/encoding/" in loaded  # served from the bundled copy


# 7. The configured address wins --------------------------------------------------------------


async def by_action(request: web.Request, body: bytes) -> web.Response:
    if "SubmitCase" in request.headers.get("SOAPAction", ""):
        xml = env11(f'<p:SubmitCaseResponse xmlns:p="{PERSON_NS}"><p:receiptNo>R1</p:receiptNo></p:SubmitCaseResponse>')
        return web.Response(text=xml, content_type="text/xml")
    return await answer(person_reply())(request, body)


async def test_the_wsdl_published_address_is_never_contacted(context: AdapterContext, tmp_path: Path) -> None:
    async with department(by_action) as (trap_url, trap), department(by_action) as (real_url, real):
        text = (WSDL / "person.wsdl").read_text(encoding="utf-8")
        wsdl = tmp_path / "person.wsdl"
        wsdl.write_text(text.replace("http://10.20.30.40:8080", trap_url), encoding="utf-8")
        soap = await opened(context, wsdl, real_url + "/gateway/PersonService?wsdl-free=1")
        await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
        receipt = await soap.call(msg("submit", {"serialNo": "D1", "idNumber": "X1"}, soap_operation="SubmitCase"), 2)
    assert receipt.body == {"receiptNo": "R1"}
    assert trap.requests == []
    assert [path for path, _, _ in real.requests] == ["/gateway/PersonService?wsdl-free=1"] * 2


# 8. No unsafe XML -----------------------------------------------------------------------------

UNSAFE = {
    "billion-laughs": BILLION_LAUGHS + f'<soap:Envelope xmlns:soap="{S11}"><soap:Body>'
                      f'<p:QueryPersonResponse xmlns:p="{PERSON_NS}"><p:code>&lol4;</p:code>'
                      "</p:QueryPersonResponse></soap:Body></soap:Envelope>",
    "external-entity": EXTERNAL_ENTITY + f'<soap:Envelope xmlns:soap="{S11}"><soap:Body>'
                       f'<p:QueryPersonResponse xmlns:p="{PERSON_NS}"><p:code>&xxe;</p:code>'
                       "</p:QueryPersonResponse></soap:Body></soap:Envelope>",
}


@pytest.mark.parametrize("operation", ["query", "submit"])
@pytest.mark.parametrize("case", list(UNSAFE))
async def test_envelope_with_a_dtd_is_refused_and_never_expanded(
    context: AdapterContext, case: str, operation: str
) -> None:
    async with department(answer(UNSAFE[case])) as (url, _):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws")
        with pytest.raises(PermanentError) as info:
            await soap.call(msg(operation, {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    assert "DTD" in info.value.detail
    assert "lollol" not in info.value.detail and "root:" not in info.value.detail


@pytest.mark.parametrize("case", ["billion-laughs", "external-entity"])
async def test_xml_string_with_a_dtd_is_refused_and_never_expanded(context: AdapterContext, case: str) -> None:
    inner = (BILLION_LAUGHS + "<response><code>&lol4;</code></response>" if case == "billion-laughs"
             else EXTERNAL_ENTITY + "<response><code>&xxe;</code></response>")
    reply = env11(f'<ns2:invokeResponse xmlns:ns2="{JAXWS_NS}"><return>{escape(inner)}</return></ns2:invokeResponse>')
    async with department(answer(reply)) as (url, _):
        soap = await opened(context, WSDL / "jaxws_xml_string.wsdl", url + "/gaj")
        with pytest.raises(PermanentError) as info:
            await soap.call(
                msg("submit", {"r": {"a": "1"}}, soap_operation="invoke", xml_in="arg0", xml_out="return"), 2
            )
    assert "DTD" in info.value.detail and "root:" not in info.value.detail


# 9. One zeep client per adapter, built at open -----------------------------------------------


async def test_zeep_client_is_built_once_at_open_and_reused(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []

    class CountingClient(soap_module.Client):  # type: ignore[misc]
        def __init__(self, wsdl: str, *args: Any, **kwargs: Any) -> None:
            built.append(wsdl)
            super().__init__(wsdl, *args, **kwargs)

    monkeypatch.setattr(soap_module, "Client", CountingClient)
    async with department(answer(person_reply())) as (url, seen):
        soap = SoapAdapter("dept.ws", {"wsdl": str(WSDL / "person.wsdl"), "address": url + "/ws"}, context)
        with pytest.raises(TransientError, match="not open"):
            await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
        assert built == []  # nothing is loaded before open
        await soap.open()
        await soap.open()
        for _ in range(3):
            await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    assert len(built) == 1 and len(seen.requests) == 3


# Misfits, auth ---------------------------------------------------------------------------------


async def test_message_that_does_not_fit_the_wsdl_is_permanent_and_never_sent(context: AdapterContext) -> None:
    async with department(answer(person_reply())) as (url, seen):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws")
        with pytest.raises(PermanentError) as info:
            await soap.call(msg("query", {"idNumber": [ECHOED_ID, "x"]}, soap_operation="QueryPerson"), 2)
        with pytest.raises(PermanentError, match="no operation"):
            await soap.call(msg("query", {}, soap_operation="NoSuchOperation"), 2)
        with pytest.raises(PermanentError, match="soap_operation"):
            await soap.call(msg("query", {}), 2)
    assert "does not fit the WSDL" in info.value.detail and ECHOED_ID not in info.value.detail
    assert seen.requests == []


async def test_soap_endpoint_sends_the_token_from_the_environment(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SOAP_TOKEN", "tok-123")
    async with department(answer(person_reply())) as (url, seen):
        soap = await opened(context, WSDL / "person.wsdl", url + "/ws", token_env="TEST_SOAP_TOKEN",
                            token_header="X-Token", token_scheme="")
        await soap.call(msg("query", {"idNumber": "X1"}, soap_operation="QueryPerson"), 2)
    assert seen.last[1]["X-Token"] == "tok-123" and seen.last[1]["X-Delivery-Id"] == "D1"


def test_misspelt_soap_setting_stops_start_up(context: AdapterContext) -> None:
    with pytest.raises(ValueError, match="no setting adress"):
        SoapAdapter("dept.ws", {"wsdl": "x.wsdl", "address": "http://127.0.0.1:9/ws", "adress": "x"}, context)
