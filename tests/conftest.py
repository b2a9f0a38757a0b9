"""Shared fixtures: the sandbox departments and the gateway on free loopback ports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest

from gateway.auth import sign
from gateway.config import GatewayConfig, load_config
from gateway.demo import Signer, platform_signer, running_gateway
from gateway.logs import configure_logging
from sandbox.people import DEFAULT_PEOPLE
from sandbox.runner import RunningSandbox
from tests.pii import leaks

pytest_plugins = ("tests.certs", "tests.stores")  # the test PKI (`pki`); one store per kind (`url`, `store`)

ROOT = Path(__file__).resolve().parent.parent
# The platform's worked examples (a copy of its shared/examples, kept with the tests).
EXAMPLES = ROOT / "sandbox" / "examples"
DEMO_APPLICATIONS = ROOT / "sandbox" / "applications.json"


class Running:
    def __init__(self, base_url: str, sandbox: RunningSandbox, config: GatewayConfig, http: aiohttp.ClientSession):
        self.base_url = base_url
        self.sandbox = sandbox
        self.config = config
        self.http = http

    @property
    def signer(self) -> Signer | None:
        return platform_signer(self.config)

    def signed_headers(self, method: str, target: str, body: bytes, headers: dict[str, str] | None) -> dict[str, str]:
        """Headers of a request from the platform: signed when the gateway has authentication on."""
        out = {"Content-Type": "application/json"}
        if self.config.auth.enabled:
            path, _, query = target.partition("?")
            key, secret = next(iter(self.config.auth.platform_keys.items()))
            out |= sign(method, path, body, key, secret, query=dict(parse_qsl(query)))
        return out | (headers or {})

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        signed = self.signed_headers("POST", path, data, headers)
        async with self.http.post(self.base_url + path, data=data, headers=signed) as r:
            body = await r.json(content_type=None)
            if r.status >= 400:  # error bodies never echo personal data
                assert not leaks(json.dumps(body, ensure_ascii=False)), leaks(json.dumps(body, ensure_ascii=False))
            return r.status, body, r.headers

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base_url + path, headers=self.signed_headers("GET", path, b"", None)) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Every test's captured logs and output go through the personal-data scanner: a test
    whose run wrote an unmasked ID number, name, phone, address or bank card fails."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "teardown" or item.get_closest_marker("pii_allowed"):
        return
    text = "\n".join(content for _, content in report.sections)
    found = leaks(text)
    if found:
        report.outcome = "failed"
        report.longrepr = f"unmasked personal data in logs/output: {found}"


@pytest.fixture(autouse=True)
def json_logs() -> None:
    """Tests log exactly as production does: JSON lines through the masking processor."""
    configure_logging("INFO")


@pytest.fixture
def config() -> GatewayConfig:
    return load_config()


@pytest.fixture
async def gw(config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Running]:
    async with running_gateway(config, tmp_path, DEFAULT_PEOPLE, decision_delay=0.05, auth=True) as (
        url, sandbox, cfg
    ):
        async with aiohttp.ClientSession() as http:
            yield Running(url, sandbox, cfg, http)


def demo_application(number: str) -> dict[str, Any]:
    apps = json.loads(DEMO_APPLICATIONS.read_text(encoding="utf-8"))
    return next(a for a in apps if a["application_no"] == number)
