"""Telling the platform: the callback carries the latest state with a rising version, is
signed, survives the platform's own outages, and goes only where it is allowed to go."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, hmac

from gateway.auth import canonical, sm3_hex
from gateway.config import GatewayConfig, NotifySettings
from gateway.demo import running_gateway
from gateway.notify import callback_url_problem
from sandbox.people import DEFAULT_PEOPLE
from tests.conftest import Running, demo_application
from tests.test_resilience import ADMIN, fast

KEY = ("gateway-notify", "notify-secret-for-tests")


class Platform:
    """A loopback stand-in for the platform's callback endpoint."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first, self.status = fail_first, status
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append((dict(request.headers), body))
        if len(self.calls) <= self.fail_first:
            return web.Response(status=self.status, text="busy")
        return web.json_response({"ok": True})

    async def __aenter__(self) -> Platform:
        app = web.Application()
        app.router.add_post("/cb", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/cb"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def gw_signed(config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Running]:
    cfg = fast(config)
    cfg = replace(cfg, notify=replace(cfg.notify, signing_key=KEY))
    async with running_gateway(cfg, tmp_path, DEFAULT_PEOPLE, decision_delay=0.02) as (url, sb, c):
        async with aiohttp.ClientSession() as http:
            yield Running(url, sb, c, http)


async def _until(predicate: Any, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_the_platform_gets_the_final_state_last_with_rising_versions_through_its_outage(
    gw_signed: Running,
) -> None:
    async with Platform(fail_first=2) as platform:
        app = demo_application("DEMO-001") | {"callback_url": platform.url}
        assert (await gw_signed.post("/api/v1/joint-applications", app))[0] == 202

        def completed() -> bool:
            return any(b'"completed"' in body for h, body in platform.calls[platform.fail_first:])

        await _until(completed)
        await asyncio.sleep(0.3)  # nothing older may arrive after the final state

        delivered = [(int(h["X-Notification-Version"]), json.loads(body)) for h, body in platform.calls[2:]]
        versions = [v for v, _ in delivered]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        assert delivered[-1][1]["status"] == "completed"
        _, final = await gw_signed.get(f"/api/v1/joint-applications/{app['application_no']}")
        assert delivered[-1][1] == final  # the same body as GET


async def test_each_notification_is_signed_so_the_platform_can_verify_it(gw_signed: Running) -> None:
    async with Platform() as platform:
        app = copy.deepcopy(demo_application("DEMO-003")) | {"callback_url": platform.url}
        assert (await gw_signed.post("/api/v1/joint-applications", app))[0] == 202
        await _until(lambda: bool(platform.calls))
        headers, body = platform.calls[0]
        assert headers["X-App-Key"] == KEY[0] and headers["X-Content-SM3"] == sm3_hex(body)
        message = canonical("POST", "/cb", {}, KEY[0], headers["X-Timestamp"], headers["X-Nonce"], sm3_hex(body))
        mac = hmac.HMAC(KEY[1].encode(), hashes.SM3())
        mac.update(message)
        assert headers["X-Signature"] == mac.finalize().hex()
        assert headers["Idempotency-Key"] == f"{app['application_no']}:{headers['X-Notification-Version']}"


async def test_a_platform_that_refuses_the_callback_dead_letters_the_notification_not_the_items(
    gw_signed: Running,
) -> None:
    async with Platform(fail_first=1000, status=400) as platform:
        app = demo_application("DEMO-003") | {"callback_url": platform.url}
        assert (await gw_signed.post("/api/v1/joint-applications", app))[0] == 202
        headers = {"Authorization": f"Bearer {ADMIN}"}

        async def letters() -> list[dict[str, Any]]:
            async with gw_signed.http.get(gw_signed.base_url + "/admin/v1/dead-letters", headers=headers) as r:
                return list((await r.json())["dead_letters"])

        for _ in range(200):
            found = [d for d in await letters() if d["kind"] == "notify"]
            if found:
                break
            await asyncio.sleep(0.05)
        assert found and "HTTP 400" in found[0]["last_error"]
        _, state = await gw_signed.get(f"/api/v1/joint-applications/{app['application_no']}")
        assert not [i for i in state["items"] if i["status"] == "failed"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://platform.example/cb", "https"),
        ("https://127.0.0.1/cb", "loopback"),
        ("https://10.2.3.4/cb", "private"),
        ("https://localhost/cb", "local"),
        ("https://user:pw@platform.example/cb", "credentials"),
        ("ftp://platform.example/cb", "http"),
        ("https://elsewhere.example/cb", "not configured"),
    ],
)
def test_callback_urls_outside_the_policy_are_refused(url: str, why: str) -> None:
    settings = NotifySettings(allowed_hosts=("platform.example",) if "elsewhere" in url else ())
    problem = callback_url_problem(url, settings)
    assert problem is not None and why in problem


def test_a_public_https_callback_url_is_allowed() -> None:
    assert callback_url_problem("https://platform.example/cb", NotifySettings()) is None
    only_platform = NotifySettings(allowed_hosts=("platform.example",))
    assert callback_url_problem("https://platform.example/cb", only_platform) is None


async def test_a_refused_callback_url_is_a_400_naming_the_field(config: GatewayConfig, tmp_path: Path) -> None:
    cfg = replace(config, notify=replace(config.notify, allow_insecure=False))
    async with running_gateway(cfg, tmp_path, DEFAULT_PEOPLE, decision_delay=0.02) as (url, sb, c):
        async with aiohttp.ClientSession() as http:
            gw = Running(url, sb, c, http)
            app = demo_application("DEMO-003") | {"callback_url": "http://127.0.0.1:9/cb"}
            status, body, _ = await gw.post("/api/v1/joint-applications", app)
            assert status == 400 and body["errors"][0]["pointer"] == "/callback_url"
            assert (await gw.get(f"/api/v1/joint-applications/{app['application_no']}"))[0] == 404


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f000001", "0", "localhost.", "[::1]", "10.1", "0177.0.0.1", "169.254.169.254",
             "[64:ff9b::a00:1]", "[2002:7f00:1::]", "[::ffff:10.0.0.1]"]
)
def test_a_loopback_or_private_address_is_refused_in_every_numeric_spelling(host: str) -> None:
    problem = callback_url_problem(f"https://{host}/cb", NotifySettings())
    assert problem is not None and ("loopback" in problem or "local host" in problem)


async def test_a_callback_name_that_resolves_to_a_private_address_is_refused_when_connecting() -> None:
    from aiohttp.abc import ResolveResult

    from gateway.notify import PrivateAddress, PublicOnlyResolver

    resolver = PublicOnlyResolver()

    def answer(address: str) -> list[ResolveResult]:
        return [{"hostname": "cb.platform.example", "host": address, "port": 443, "family": 2, "proto": 0,
                 "flags": 0}]

    async def private(*_: object) -> list[ResolveResult]:
        return answer("10.20.30.40")

    async def public(*_: object) -> list[ResolveResult]:
        return answer("58.20.0.1")

    resolver._inner.resolve = private  # type: ignore[method-assign]  # what DNS answers, in this unit test
    with pytest.raises(PrivateAddress):
        await resolver.resolve("cb.platform.example", 443)
    resolver._inner.resolve = public  # type: ignore[method-assign]
    assert (await resolver.resolve("cb.platform.example", 443))[0]["host"] == "58.20.0.1"
    await resolver.close()
