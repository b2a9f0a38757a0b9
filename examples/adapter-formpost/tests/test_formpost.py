"""The formpost adapter against a small loopback department server, over real sockets.

Runs where the gateway is installed (it provides ``adapters.*``): ``python -m pytest``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from adapters.base import (
    Adapter,
    Operation,
    OutboundMessage,
    PermanentError,
    ResultSource,
    TransientError,
    UnknownOutcome,
)
from adapters.context import AdapterContext
from aiohttp import web

from gateway_adapter_formpost import FormPostAdapter
from gateway_adapter_formpost.codec import ReplyFormatError, parse_lines

ID_NUMBER = "430102196303120719"  # synthetic (the gateway sandbox's 示例甲)
NAME = "示例甲"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class County:
    """A loopback 县级 system: records what it received, answers with ``handler``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.handler: Handler = self.ok
        self.url = ""
        self.release = asyncio.Event()  # handlers that never answer wait on this

    async def ok(self, _: web.Request) -> web.Response:
        return web.Response(text="fhdm=00\njg=1\n", content_type="text/plain")

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        charset = request.charset or "utf-8"
        self.received.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "content_type": request.content_type,
                "charset": charset,
                "form": parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding=charset),
            }
        )
        return await self.handler(request)


@pytest.fixture
async def county() -> AsyncIterator[County]:
    c = County()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", c.dispatch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    c.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield c
    finally:
        c.release.set()
        await runner.cleanup()


@pytest.fixture
def requests_seen() -> list[str]:
    return []


@pytest.fixture
async def context(requests_seen: list[str]) -> AsyncIterator[AdapterContext]:
    """Like the gateway's: one session for every adapter, traced to prove the adapter uses it."""
    trace = aiohttp.TraceConfig()

    async def started(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        requests_seen.append(str(params.url))

    trace.on_request_start.append(started)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield AdapterContext(session, Path.cwd())


def adapter(context: AdapterContext, url: str, **settings: Any) -> FormPostAdapter:
    return FormPostAdapter("county.form", {"base_url": url, **settings}, context)


def msg(name: str, body: dict[str, Any], delivery_id: str = "D0001", **options: Any) -> OutboundMessage:
    return OutboundMessage(Operation(name, "form", {"path": "/yb/tx", **options}), delivery_id, body)


async def test_follows_the_gateway_adapter_protocol(context: AdapterContext) -> None:
    a = adapter(context, "http://127.0.0.1:9")
    assert isinstance(a, Adapter) and a.kind == "formpost"
    assert not isinstance(a, ResultSource)  # results come in the reply, by callback or by polling


async def test_submit_posts_a_form_with_the_delivery_id_in_header_and_field(
    county: County, context: AdapterContext, requests_seen: list[str]
) -> None:
    a = adapter(context, county.url, delivery_id_field="lsh")
    await a.open()
    body = {"sfzh": ID_NUMBER, "xm": NAME, "xx": {"xb": "1"}, "cl": ["a", "b"], "bz": None, "hy": True, "n": 3}
    reply = await a.call(msg("submit", body, "D-42"), 2)
    await a.close()
    (got,) = county.received
    assert got["path"] == "/yb/tx" and got["content_type"] == "application/x-www-form-urlencoded"
    assert got["headers"]["Idempotency-Key"] == "D-42"
    assert got["form"] == [
        ("sfzh", ID_NUMBER), ("xm", NAME), ("xx.xb", "1"), ("cl", "a"), ("cl", "b"), ("hy", "1"), ("n", "3"),
        ("lsh", "D-42"),
    ]
    assert reply.body == {"fhdm": "00", "jg": "1"} and reply.status == 200
    assert requests_seen == [county.url + "/yb/tx"]  # through the shared session
    assert not context.session.closed  # close() leaves the gateway's session alone


async def test_delivery_id_field_replaces_a_value_the_mapping_put_there(
    county: County, context: AdapterContext
) -> None:
    await adapter(context, county.url, delivery_id_field="lsh").call(msg("submit", {"lsh": "other"}, "D-7"), 2)
    assert county.received[0]["form"] == [("lsh", "D-7")]


async def test_gbk_form_and_gbk_reply_round_trip(county: County, context: AdapterContext) -> None:
    async def gbk(_: web.Request) -> web.Response:
        return web.Response(body="fhdm=00\nfhxx=成功\n".encode("gbk"), content_type="text/plain", charset="gbk")

    county.handler = gbk
    reply = await adapter(context, county.url, encoding="gbk").call(msg("submit", {"xm": NAME}), 2)
    assert county.received[0]["charset"] == "gbk" and county.received[0]["form"] == [("xm", NAME)]
    assert reply.body == {"fhdm": "00", "fhxx": "成功"}


async def test_reply_without_charset_is_read_in_the_configured_encoding(
    county: County, context: AdapterContext
) -> None:
    async def bare(_: web.Request) -> web.Response:
        return web.Response(body="fhxx=成功".encode("gbk"), headers={"Content-Type": "text/plain"})

    county.handler = bare
    reply = await adapter(context, county.url, encoding="gbk").call(msg("submit", {}), 2)
    assert reply.body == {"fhxx": "成功"}


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
async def test_json_replies_are_read_by_content_type_or_by_their_first_character(
    county: County, context: AdapterContext, content_type: str
) -> None:
    async def js(_: web.Request) -> web.Response:
        return web.Response(text='{"fhdm": "00", "data": {"cbbz": 1}}', content_type=content_type)

    county.handler = js
    reply = await adapter(context, county.url).call(msg("query", {"sfzh": ID_NUMBER}), 2)
    assert reply.body == {"fhdm": "00", "data": {"cbbz": 1}}


async def test_dotted_keys_in_lines_nest_so_a_mapping_reads_them_like_json(
    county: County, context: AdapterContext
) -> None:
    async def nested(_: web.Request) -> web.Response:
        return web.Response(text="# 县医保\nfhdm=00\n\nout.jg = 1\nout.yy=\n", content_type="text/plain")

    county.handler = nested
    reply = await adapter(context, county.url).call(msg("submit", {}), 2)
    assert reply.body == {"fhdm": "00", "out": {"jg": "1", "yy": ""}}


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (503, {}, TransientError, None),
        (502, {}, TransientError, None),
        (429, {"Retry-After": "7"}, TransientError, 7.0),
        (400, {}, PermanentError, None),
        (403, {}, PermanentError, None),
    ],
)
async def test_http_statuses_are_classified_like_the_built_in_adapters(
    county: County, context: AdapterContext, status: int, headers: dict[str, str], error: type, retry_after: float
) -> None:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers, text=f"fhxx={NAME}")

    county.handler = answer
    with pytest.raises(error) as info:
        await adapter(context, county.url).call(msg("submit", {"sfzh": ID_NUMBER, "xm": NAME}), 2)
    assert not isinstance(info.value, UnknownOutcome)  # a status is an answer: the outcome is known
    assert info.value.status == status and info.value.retry_after == retry_after
    assert ID_NUMBER not in str(info.value) and NAME not in str(info.value)


async def test_timeout_after_sending_is_an_unknown_outcome(county: County, context: AdapterContext) -> None:
    async def slow(_: web.Request) -> web.Response:
        await county.release.wait()  # answers only after the client gave up
        return web.Response(text="jg=1")

    county.handler = slow
    with pytest.raises(UnknownOutcome):
        await adapter(context, county.url).call(msg("submit", {}), 0.2)
    assert len(county.received) == 1  # it did arrive: a re-send must carry the same id


async def test_connection_dropped_after_sending_is_an_unknown_outcome(
    county: County, context: AdapterContext
) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        await county.release.wait()  # never answered
        return web.Response(text="jg=1")

    county.handler = drop
    with pytest.raises(UnknownOutcome):
        await adapter(context, county.url).call(msg("submit", {}), 2)


async def test_reply_cut_short_is_an_unknown_outcome(county: County, context: AdapterContext) -> None:
    async def short(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "100", "Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(b"fhdm=00\n")
        assert request.transport is not None
        request.transport.close()
        return resp

    county.handler = short
    with pytest.raises(UnknownOutcome):
        await adapter(context, county.url).call(msg("submit", {}), 2)


async def test_connection_refused_is_transient_and_not_unknown(context: AdapterContext) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError) as info:
        await adapter(context, f"http://127.0.0.1:{port}").call(msg("submit", {}), 1)
    assert not isinstance(info.value, UnknownOutcome)  # nothing was sent: safe to send again


@pytest.mark.parametrize("text", ["成功", "jg=1\njg=0", "=1", "out=1\nout.jg=1"])
async def test_unreadable_reply_to_a_submission_is_unknown_but_to_a_query_only_transient(
    county: County, context: AdapterContext, text: str
) -> None:
    async def odd(_: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain")

    county.handler = odd
    with pytest.raises(UnknownOutcome) as info:
        await adapter(context, county.url).call(msg("submit", {}), 2)
    assert "成功" not in str(info.value)  # the reply is not quoted: it may hold personal data
    with pytest.raises(TransientError) as query_info:
        await adapter(context, county.url).call(msg("query", {}), 2)
    assert not isinstance(query_info.value, UnknownOutcome)


async def test_reply_in_the_wrong_charset_is_unreadable(county: County, context: AdapterContext) -> None:
    async def latin(_: web.Request) -> web.Response:
        return web.Response(body="jg=成功".encode("gbk"), content_type="text/plain", charset="utf-8")

    county.handler = latin
    with pytest.raises(UnknownOutcome):
        await adapter(context, county.url).call(msg("submit", {}), 2)


async def test_a_character_outside_the_charset_is_permanent_and_names_the_field_only(
    county: County, context: AdapterContext
) -> None:
    with pytest.raises(PermanentError) as info:
        await adapter(context, county.url, encoding="gbk").call(msg("submit", {"xm": "𠮷" + NAME}), 2)
    assert "xm" in str(info.value) and NAME not in str(info.value)
    assert county.received == []  # refused before anything was sent


async def test_a_value_a_form_cannot_hold_is_permanent(county: County, context: AdapterContext) -> None:
    with pytest.raises(PermanentError) as info:
        await adapter(context, county.url).call(msg("submit", {"cl": [{"a": 1}]}), 2)
    assert "cl" in str(info.value) and county.received == []


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"base_url": "ftp://x"},
        {"base_url": "http://x", "encoding": "no-such-charset"},
        {"base_url": "http://x", "reply": "xml"},
        {"base_url": "http://x", "base-url": "http://y"},
        {"base_url": "http://x", "headers": {"Idempotency-Key": "fixed"}},
        {"base_url": "http://x", "delivery_id_field": ""},
    ],
)
async def test_bad_settings_stop_start_up_naming_the_endpoint(
    context: AdapterContext, settings: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="county.form"):
        FormPostAdapter("county.form", settings, context)


def test_line_parser_refuses_what_it_cannot_read_unambiguously() -> None:
    assert parse_lines("a=1=2\n b = x ") == {"a": "1=2", "b": "x"}
    for bad in ("a", "a=1\na=2", "a..b=1", "a=1\na.b=2"):
        with pytest.raises(ReplyFormatError):
            parse_lines(bad)


def test_a_credential_header_in_the_settings_is_refused() -> None:
    from adapters.context import AdapterContext

    from gateway_adapter_formpost import FormPostAdapter

    with pytest.raises(ValueError, match="credential"):
        FormPostAdapter("nhsa.api", {"base_url": "http://x", "headers": {"Authorization": "Bearer s3cret"}},
                        AdapterContext(None, Path(".")))  # type: ignore[arg-type]
