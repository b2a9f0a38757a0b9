"""Every REST variant a department system may present — envelopes, charsets, auth, TLS —
and the transport error table, against loopback servers (real sockets) started in the test.
Certificates are generated into tmp_path for the run; none is kept in the repository."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import client_exceptions, web
from aiohttp.client_reqrep import ConnectionKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from adapters.base import Operation, OutboundMessage, PermanentError, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.httperrors import EXCEPTION_TABLE, classify_exception
from adapters.rest import RestAdapter
from gateway.mapping import load_mapping
from tests.certs import Pki

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Seen:
    requests: list[tuple[web.Request, bytes]] = field(default_factory=list)


Handler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def department(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    async def route(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.requests.append((request, body))
        return await handler(request, body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


def raw(body: bytes, content_type: str, status: int = 200) -> Handler:
    async def handler(_: web.Request, __: bytes) -> web.Response:
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    return handler


def ok_json(_: web.Request, __: bytes) -> Awaitable[web.Response]:
    async def respond() -> web.Response:
        return web.json_response({"code": "0"})

    return respond()


@pytest.fixture
async def context() -> AsyncIterator[AdapterContext]:
    async with aiohttp.ClientSession() as session:
        yield AdapterContext(session, ROOT)


def msg(name: str, body: dict[str, Any], delivery_id: str = "D1", **options: Any) -> OutboundMessage:
    return OutboundMessage(Operation(name, "api", options), delivery_id, body)


def rest(context: AdapterContext, url: str, **settings: Any) -> RestAdapter:
    return RestAdapter("dept.api", {"base_url": url, **settings}, context)


# 10. Department envelopes ------------------------------------------------------------------


async def test_nhsa_envelope_built_by_the_mapping_round_trips_to_a_record(context: AdapterContext) -> None:
    mapping = load_mapping(ROOT / "mappings" / "nhsa.v1.toml")

    async def handler(_: web.Request, body: bytes) -> web.Response:
        sent = json.loads(body)
        assert (sent["infno"], sent["msgid"], sent["input"]["data"]["certno"]) == ("1101", "Q1", "X1")
        return web.json_response({"infcode": "0", "output": {"baseinfo": {"psn_insu_stas": "1"}}})

    async with department(handler) as (url, seen):
        message = mapping.build("query", {"applicant": {"id_number": "X1", "name": "测试"}, "delivery_id": "Q1"}, "Q1")
        reply = await rest(context, url).call(message, 2)
    request, _ = seen.requests[0]
    assert request.path == "/nhsa/fsi/api" and request.headers["Idempotency-Key"] == "Q1"
    assert mapping.read_record(reply.body) == {"psn_insu_stas": "1"}


async def test_business_refusal_inside_http_200_passes_the_adapter_and_the_mapping_refuses_it(
    context: AdapterContext,
) -> None:
    """The adapter does not judge business codes (a 200 is a delivered answer); the
    mapping's ok_path/ok_values do, once, for every adapter kind."""
    mapping = load_mapping(ROOT / "mappings" / "nhsa.v1.toml")
    refusal = {"infcode": "-1", "err_msg": "参保人不存在"}
    async with department(raw(json.dumps(refusal).encode(), "application/json")) as (url, _):
        reply = await rest(context, url).call(msg("query", {}, path="/nhsa/fsi/api"), 2)
    assert reply.body == refusal and reply.status == 200
    with pytest.raises(PermanentError, match="code -1"):
        mapping.read_record(reply.body)


# 11. Charsets ---------------------------------------------------------------------------------

GBK_BODY = json.dumps({"msg": "查询成功", "name": "湘"}, ensure_ascii=False)


@pytest.mark.parametrize(
    ("content_type", "encoded", "settings"),
    [
        ("application/json; charset=gbk", GBK_BODY.encode("gbk"), {}),
        ("application/json; charset=GB2312", GBK_BODY.encode("gb2312"), {}),
        ("application/json", GBK_BODY.encode("gbk"), {"reply_encoding": "gbk"}),
        ("text/plain", GBK_BODY.encode("gb18030"), {"reply_encoding": "gb18030"}),
        ("application/json", GBK_BODY.encode("utf-8"), {"reply_encoding": "gbk"}),  # UTF-8 still wins
        ("application/json", b"\xef\xbb\xbf" + GBK_BODY.encode("utf-8"), {}),  # a BOM
        ("application/json; charset=x-unknown", GBK_BODY.encode("gbk"), {"reply_encoding": "gbk"}),
    ],
    ids=["declared-gbk", "declared-gb2312", "bare-gbk-configured", "gb18030-configured", "utf8-with-fallback-set",
         "utf8-bom", "unknown-label"],
)
async def test_reply_charsets_declared_utf8_or_configured(
    context: AdapterContext, content_type: str, encoded: bytes, settings: dict[str, str]
) -> None:
    async with department(raw(encoded, content_type)) as (url, _):
        reply = await rest(context, url, **settings).call(msg("query", {}), 2)
    assert reply.body == {"msg": "查询成功", "name": "湘"}


@pytest.mark.parametrize(("operation", "error"), [("query", TransientError), ("submit", UnknownOutcome)])
async def test_bare_gbk_reply_without_reply_encoding_is_malformed_not_mojibake(
    context: AdapterContext, operation: str, error: type
) -> None:
    async with department(raw(GBK_BODY.encode("gbk"), "application/json")) as (url, _):
        with pytest.raises(error) as info:
            await rest(context, url).call(msg(operation, {}), 2)
    assert type(info.value) is error and "reply_encoding" in info.value.detail


async def test_request_encoding_gbk_sends_gbk_and_refuses_what_gbk_cannot_hold(context: AdapterContext) -> None:
    async with department(ok_json) as (url, seen):
        adapter = rest(context, url, request_encoding="gbk")
        await adapter.call(msg("submit", {"xm": "测试"}), 2)
        with pytest.raises(PermanentError, match="cannot be written in gbk"):
            await adapter.call(msg("submit", {"xm": "𠮷"}), 2)  # outside GBK
    request, body = seen.requests[0]
    assert request.headers["Content-Type"] == "application/json; charset=gbk"
    assert json.loads(body.decode("gbk")) == {"xm": "测试"}
    assert len(seen.requests) == 1  # the refused message never left


def test_misspelt_setting_stops_start_up(context: AdapterContext) -> None:
    with pytest.raises(ValueError, match="no setting tokn_env"):
        rest(context, "http://127.0.0.1:9", tokn_env="TEST_DEPT_TOKEN")


def test_unknown_charset_in_settings_stops_start_up(context: AdapterContext) -> None:
    with pytest.raises(ValueError, match="reply_encoding"):
        rest(context, "http://127.0.0.1:9", reply_encoding="no-such-charset")


# 13a. Static token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "header", "value"),
    [
        ({"token_env": "TEST_DEPT_TOKEN"}, "Authorization", "Bearer s3cr3t-tok"),
        ({"token_env": "TEST_DEPT_TOKEN", "token_header": "X-Access-Token", "token_scheme": ""},
         "X-Access-Token", "s3cr3t-tok"),
        ({"token_env": "TEST_DEPT_TOKEN", "token_scheme": "Token"}, "Authorization", "Token s3cr3t-tok"),
    ],
)
async def test_static_token_comes_from_the_environment(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], header: str, value: str
) -> None:
    monkeypatch.setenv("TEST_DEPT_TOKEN", "s3cr3t-tok")
    async with department(ok_json) as (url, seen):
        adapter = rest(context, url, **settings)
        await adapter.open()
        await adapter.call(msg("query", {}), 2)
    assert seen.requests[0][0].headers[header] == value


async def test_missing_token_variable_stops_open_naming_the_variable(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_DEPT_TOKEN", raising=False)
    with pytest.raises(PermanentError, match="TEST_DEPT_TOKEN"):
        await rest(context, "http://127.0.0.1:9", token_env="TEST_DEPT_TOKEN").open()


@pytest.mark.parametrize(
    "settings",
    [{"token": "abc"}, {"hmac_key": "abc"}, {"headers": {"Authorization": "Bearer abc"}},
     {"headers": {"X-Api-Key": "a"}}],
    ids=["token", "hmac_key", "authorization-header", "api-key-header"],
)
def test_secrets_written_into_the_configuration_are_refused(context: AdapterContext, settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="environment variable|token_env"):
        rest(context, "http://127.0.0.1:9", **settings)


# 13b. HMAC signatures ---------------------------------------------------------------------------


def _expected_signature(algorithm: str, secret: bytes, canonical: bytes) -> str:
    """Written apart from adapters/auth.py: stdlib hashlib/hmac, cryptography only for SM3
    where this OpenSSL lacks it."""
    name = "sha256" if algorithm == "HMAC-SHA256" else "sm3"
    if name in hashlib.algorithms_available:
        return hmac.new(secret, canonical, name).hexdigest()
    mac = crypto_hmac.HMAC(secret, hashes.SM3())
    mac.update(canonical)
    return mac.finalize().hex()


def _digest(algorithm: str, body: bytes) -> str:
    if algorithm == "HMAC-SHA256":
        return hashlib.sha256(body).hexdigest()
    if "sm3" in hashlib.algorithms_available:
        return hashlib.new("sm3", body).hexdigest()
    h = hashes.Hash(hashes.SM3())
    h.update(body)
    return h.finalize().hex()


@pytest.mark.parametrize("algorithm", ["HMAC-SHA256", "HMAC-SM3"])
async def test_hmac_signature_verifies_over_method_path_time_nonce_and_body_digest(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    secret = "k3y-for-the-test"
    monkeypatch.setenv("TEST_DEPT_HMAC", secret)

    async def verify(request: web.Request, body: bytes) -> web.Response:
        h = request.headers
        canonical = "\n".join([request.method, request.raw_path, h["X-Ca-Timestamp"], h["X-Ca-Nonce"],
                               _digest(algorithm, body)]).encode()
        good = hmac.compare_digest(h["X-Ca-Signature"], _expected_signature(algorithm, secret.encode(), canonical))
        fresh = abs(time.time() - int(h["X-Ca-Timestamp"])) <= 300
        if not (good and fresh and h["X-Ca-Key"] == "gw-key-1" and h["X-Ca-Signature-Method"] == algorithm):
            return web.json_response({"code": "401"}, status=401)
        return web.json_response({"code": "0"})

    async with department(verify) as (url, seen):
        adapter = rest(context, url + "/gov", hmac_key_env="TEST_DEPT_HMAC", hmac_key_id="gw-key-1",
                       hmac_algorithm=algorithm)
        await adapter.open()
        for _ in range(2):
            reply = await adapter.call(msg("query", {"xm": "测试"}, path="/api/v1/person?type=1&q=a%20b"), 2)
            assert reply.body == {"code": "0"}
    nonces = {r.headers["X-Ca-Nonce"] for r, _ in seen.requests}
    assert len(nonces) == 2  # a fresh nonce per request
    assert seen.requests[0][0].raw_path == "/gov/api/v1/person?type=1&q=a%20b"


async def test_hmac_signature_does_not_verify_with_another_key(
    context: AdapterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DEPT_HMAC", "the-wrong-key")

    async def verify(request: web.Request, body: bytes) -> web.Response:
        h = request.headers
        canonical = "\n".join([request.method, request.raw_path, h["X-Ca-Timestamp"], h["X-Ca-Nonce"],
                               _digest("HMAC-SHA256", body)]).encode()
        good = hmac.compare_digest(h["X-Ca-Signature"], _expected_signature("HMAC-SHA256", b"right-key", canonical))
        return web.json_response({}, status=200 if good else 401)

    async with department(verify) as (url, _):
        adapter = rest(context, url, hmac_key_env="TEST_DEPT_HMAC", hmac_key_id="gw-key-1")
        with pytest.raises(PermanentError, match="HTTP 401"):
            await adapter.call(msg("query", {}), 2)


@pytest.mark.parametrize("settings", [{"hmac_key_env": "X"}, {"hmac_key_id": "k"},
                                      {"hmac_key_env": "X", "hmac_key_id": "k", "hmac_algorithm": "MD5"}])
def test_incomplete_or_unknown_hmac_settings_stop_start_up(context: AdapterContext, settings: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="hmac"):
        rest(context, "http://127.0.0.1:9", **settings)


# 13c. Mutual TLS ---------------------------------------------------------------------------------


def _server_context(pki: Pki, max_tls12: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    if max_tls12:  # a server that checks the client certificate inside the handshake
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


async def who(request: web.Request, _: bytes) -> web.Response:
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    subject = dict(x[0] for x in peer["subject"]) if peer else {}
    return web.json_response({"client": subject.get("commonName")})


async def test_mutual_tls_with_the_client_certificate_gets_through(context: AdapterContext, pki: Pki) -> None:
    async with department(who, _server_context(pki)) as (url, _):
        adapter = rest(context, url, client_cert=str(pki.client_cert), client_key=str(pki.client_key),
                       ca_file=str(pki.ca))
        await adapter.open()
        reply = await adapter.call(msg("query", {}), 2)
    assert reply.status == 200 and reply.body == {"client": "gateway"}


@pytest.mark.parametrize("certificate", ["none", "untrusted"])
async def test_mutual_tls_without_an_accepted_certificate_is_a_permanent_tls_error(
    context: AdapterContext, pki: Pki, certificate: str
) -> None:
    """Checked in the handshake (TLS 1.2): the refusal is certain, so PermanentError. The
    same shared session keeps serving the endpoint that has the right certificate."""
    client = {} if certificate == "none" else {"client_cert": str(pki.rogue_cert), "client_key": str(pki.rogue_key)}
    async with department(who, _server_context(pki, max_tls12=True)) as (url, seen):
        good = rest(context, url, client_cert=str(pki.client_cert), client_key=str(pki.client_key),
                    ca_file=str(pki.ca))
        bad = rest(context, url, ca_file=str(pki.ca), **client)
        assert (await good.call(msg("query", {}), 2)).body == {"client": "gateway"}
        with pytest.raises(PermanentError) as info:
            await bad.call(msg("submit", {}), 2)
        assert (await good.call(msg("query", {}), 2)).body == {"client": "gateway"}
    assert "TLS" in info.value.detail
    assert len(seen.requests) == 2  # the refused one never reached the application


async def test_tls13_refusal_after_the_handshake_is_an_unknown_outcome_that_names_tls(
    context: AdapterContext, pki: Pki
) -> None:
    """TLS 1.3 checks the client certificate after the client has sent its request; the
    server then resets the line, which a client cannot tell from a crash after receipt.
    So it stays an UnknownOutcome (retried, same delivery id), with TLS named for the operator."""
    async with department(who, _server_context(pki)) as (url, seen):
        with pytest.raises(UnknownOutcome) as info:
            await rest(context, url, ca_file=str(pki.ca)).call(msg("submit", {}), 2)
    assert "TLS" in info.value.detail and seen.requests == []


async def test_untrusted_server_certificate_is_a_permanent_tls_error(context: AdapterContext, pki: Pki) -> None:
    async with department(who, _server_context(pki)) as (url, seen):
        with pytest.raises(PermanentError) as info:
            await rest(context, url).call(msg("query", {}), 2)  # the system trust store knows no test CA
    assert "TLS" in info.value.detail and "CERTIFICATE_VERIFY_FAILED" in info.value.detail
    assert seen.requests == []


async def test_unreadable_tls_files_stop_open_naming_the_files(
    context: AdapterContext, pki: Pki, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.key"
    broken.write_text("not a key", encoding="utf-8")
    adapter = rest(context, "https://127.0.0.1:9", client_cert=str(pki.client_cert), client_key=str(broken))
    with pytest.raises(PermanentError) as info:
        await adapter.open()
    assert "broken.key" in info.value.detail and "not a key" not in info.value.detail


def test_tls_settings_on_a_plain_http_address_stop_start_up(context: AdapterContext, pki: Pki) -> None:
    with pytest.raises(ValueError, match="https"):
        rest(context, "http://127.0.0.1:9", client_cert=str(pki.client_cert))


# 14. Transport failures over real sockets ----------------------------------------------------------


async def test_connection_reset_after_the_request_was_sent_is_an_unknown_outcome(context: AdapterContext) -> None:
    received = asyncio.Event()

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        received.set()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(UnknownOutcome):
            await rest(context, f"http://127.0.0.1:{port}").call(msg("submit", {"a": 1}), 2)
    finally:
        server.close()
        await server.wait_closed()
    assert received.is_set()


async def test_connection_refused_is_transient_and_not_an_unknown_outcome(context: AdapterContext) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientError) as info:
        await rest(context, f"http://127.0.0.1:{port}").call(msg("submit", {}), 2)
    assert type(info.value) is TransientError


async def test_redirects_are_not_followed_and_are_permanent(context: AdapterContext) -> None:
    async def redirect(request: web.Request, _: bytes) -> web.Response:
        if request.path == "/moved":
            return web.json_response({"code": "0"})
        raise web.HTTPFound("/moved")

    async with department(redirect) as (url, seen):
        with pytest.raises(PermanentError, match="HTTP 302"):
            await rest(context, url).call(msg("submit", {}, path="/old"), 2)
    assert [r.path for r, _ in seen.requests] == ["/old"]


# 14. The classification table ----------------------------------------------------------------------


def _aiohttp_client_exceptions() -> list[type[BaseException]]:
    found = {
        cls for module in (aiohttp, client_exceptions) for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, aiohttp.ClientError)
    }
    return sorted(found, key=lambda c: c.__name__)


def test_every_aiohttp_client_exception_has_a_row_in_the_table() -> None:
    listed = {cls for cls, _, _ in EXCEPTION_TABLE}
    missing = [cls.__name__ for cls in _aiohttp_client_exceptions() if cls not in listed]
    assert not missing, f"aiohttp exceptions without a classification: {missing}"


def test_no_row_of_the_table_is_hidden_behind_an_earlier_superclass() -> None:
    for i, (cls, _, _) in enumerate(EXCEPTION_TABLE):
        first = next(j for j, (c, _, _) in enumerate(EXCEPTION_TABLE) if issubclass(cls, c))
        assert first == i, f"{cls.__name__} is caught by row {first} ({EXCEPTION_TABLE[first][0].__name__})"


@pytest.mark.parametrize("cls", _aiohttp_client_exceptions(), ids=lambda c: c.__name__)
def test_each_aiohttp_exception_is_classified_by_its_row(cls: type[BaseException]) -> None:
    exc = cls.__new__(cls)  # no arguments: classification reads the type, never the text
    expected = next(error for c, error, _ in EXCEPTION_TABLE if c is cls)
    assert type(classify_exception(exc, "dept.api query")) is expected


@pytest.mark.parametrize(
    ("cls", "error"),
    [
        (aiohttp.ClientConnectorCertificateError, PermanentError),
        (aiohttp.ClientConnectorSSLError, PermanentError),
        (aiohttp.ClientSSLError, PermanentError),
        (aiohttp.ServerFingerprintMismatch, PermanentError),
        (aiohttp.InvalidURL, PermanentError),
        (aiohttp.ClientConnectorError, TransientError),
        (aiohttp.ClientConnectorDNSError, TransientError),
        (aiohttp.ConnectionTimeoutError, TransientError),
        (aiohttp.ServerDisconnectedError, UnknownOutcome),
        (aiohttp.ClientConnectionResetError, UnknownOutcome),
        (aiohttp.ClientOSError, UnknownOutcome),
        (aiohttp.ClientPayloadError, UnknownOutcome),
        (aiohttp.SocketTimeoutError, UnknownOutcome),
    ],
    ids=lambda v: v.__name__,
)
def test_the_policy_for_the_key_aiohttp_exceptions(cls: type[BaseException], error: type) -> None:
    """Written out apart from the table: TLS does not heal, nothing-sent is transient,
    sent-then-lost is an unknown outcome."""
    assert type(classify_exception(cls.__new__(cls), "dept.api submit")) is error


KEY = ConnectionKey("dept.example", 443, True, True, None, None, None, None)


@pytest.mark.parametrize(
    ("exc", "tls", "error", "needle"),
    [
        (aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError(1, "verify failed")), True,
         PermanentError, "TLS"),
        (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")), False, TransientError, "connect"),
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError(104, "reset")), True, PermanentError, "TLS handshake"),
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError(104, "reset")), False, TransientError, "connect"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), False, UnknownOutcome, "reset"),
        (aiohttp.ServerDisconnectedError(), False, UnknownOutcome, "lost"),
        (aiohttp.ConnectionTimeoutError(), False, TransientError, "no connection"),
        (aiohttp.SocketTimeoutError(), False, UnknownOutcome, "timeout"),
        (TimeoutError(), False, UnknownOutcome, "timeout"),
        (ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]"), True, PermanentError, "TLS"),
        (ConnectionRefusedError(111, "refused"), False, TransientError, "connect"),
        (ConnectionResetError(104, "reset"), False, UnknownOutcome, "lost"),
    ],
    ids=["cert-verify", "refused", "tls-handshake-reset", "plain-connect-reset", "reset-after-send", "disconnected",
         "connect-timeout", "read-timeout", "total-timeout", "raw-ssl", "raw-refused", "raw-reset"],
)
def test_classification_of_the_failures_that_matter(exc: BaseException, tls: bool, error: type, needle: str) -> None:
    result = classify_exception(exc, "dept.api submit", tls=tls)
    assert type(result) is error and needle in result.detail


def test_a_programming_error_is_not_classified_but_re_raised() -> None:
    with pytest.raises(KeyError):
        classify_exception(KeyError("x"), "dept.api query")
