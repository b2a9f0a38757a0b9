"""Signed requests: who may call, and every way a request is refused (401 problem+json)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway.auth import sign, sm3_hex
from tests.conftest import Running, demo_application

PATH = "/api/v1/prechecks"


def _key(gw: Running) -> tuple[str, str]:
    return next(iter(gw.config.auth.platform_keys.items()))


async def _raw_post(gw: Running, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | headers
    async with gw.http.post(gw.base_url + path, data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def _body() -> bytes:
    return json.dumps(demo_application("DEMO-001"), ensure_ascii=False).encode()


def test_sm3_matches_the_standard_test_vector() -> None:
    # GB/T 32905-2016, example 1
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


async def test_a_correctly_signed_request_is_served(gw: Running) -> None:
    key, secret = _key(gw)
    status, _ = await _raw_post(gw, PATH, _body(), sign("POST", PATH, _body(), key, secret))
    assert status == 200


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-Signature"}, b), "missing_headers"),
        (lambda h, b: (h | {"X-App-Key": "someone-else"}, b), "unknown_key"),
        (lambda h, b: (h | {"X-Signature": "0" * 64}, b), "signature"),
        (lambda h, b: (h, b.replace(b"DEMO-001", b"DEMO-999")), "digest"),
        (lambda h, b: (h | {"X-Nonce": "short"}, b), "nonce_format"),
        (lambda h, b: (h | {"X-Signature-Method": "HMAC-SHA256"}, b), "method"),
    ],
)
async def test_tampered_or_incomplete_requests_are_refused_with_the_reason(
    gw: Running, tamper: Any, reason: str
) -> None:
    key, secret = _key(gw)
    body = _body()
    headers, body = tamper(sign("POST", PATH, body, key, secret), body)
    status, problem = await _raw_post(gw, PATH, body, headers)
    assert status == 401 and problem["reason"] == reason
    assert problem["type"].endswith("unauthenticated")


async def test_a_stale_timestamp_is_refused(gw: Running) -> None:
    key, secret = _key(gw)
    headers = sign("POST", PATH, _body(), key, secret, now=time.time() - 301)
    status, problem = await _raw_post(gw, PATH, _body(), headers)
    assert status == 401 and problem["reason"] == "timestamp"


async def test_a_replayed_request_is_refused(gw: Running) -> None:
    key, secret = _key(gw)
    headers = sign("POST", PATH, _body(), key, secret)
    assert (await _raw_post(gw, PATH, _body(), headers))[0] == 200
    status, problem = await _raw_post(gw, PATH, _body(), headers)
    assert status == 401 and problem["reason"] == "replay"


async def test_authentication_comes_before_the_body_is_parsed(gw: Running) -> None:
    status, problem = await _raw_post(gw, PATH, b"{not json", {})
    assert status == 401 and problem["reason"] == "missing_headers"


async def test_department_callbacks_need_the_department_key_not_the_platform_key(gw: Running) -> None:
    key, secret = _key(gw)
    path = "/api/v1/callbacks/hrss"
    body = b'{"lsh": "D1", "bjjg": "\\u529e\\u7ed3"}'
    status, problem = await _raw_post(gw, path, body, sign("POST", path, body, key, secret))
    assert status == 401 and problem["reason"] == "unknown_key"


async def test_operations_endpoints_need_no_signature(gw: Running) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        async with gw.http.get(gw.base_url + path) as resp:
            assert resp.status == 200, path
    async with gw.http.get(gw.base_url + "/metrics") as resp:
        text = await resp.text()
    assert "gateway_auth_failures" in text
