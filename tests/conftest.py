"""Shared fixtures: the sandbox departments and the gateway on free loopback ports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import GatewayConfig, load_config
from gateway.demo import running_gateway
from gateway.logs import configure_logging
from sandbox.people import DEFAULT_PEOPLE
from sandbox.runner import RunningSandbox

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEMO_APPLICATIONS = ROOT / "sandbox" / "applications.json"


class Running:
    def __init__(self, base_url: str, sandbox: RunningSandbox, config: GatewayConfig, http: aiohttp.ClientSession):
        self.base_url = base_url
        self.sandbox = sandbox
        self.config = config
        self.http = http

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, Any]:
        async with self.http.post(self.base_url + path, json=body, **kw) as resp:
            return resp.status, await resp.json(content_type=None), resp.headers

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base_url + path) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture(autouse=True)
def json_logs() -> None:
    """Tests log exactly as production does: JSON lines through the masking processor."""
    configure_logging("INFO")


@pytest.fixture
def config() -> GatewayConfig:
    return load_config()


@pytest.fixture
async def gw(config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Running]:
    async with running_gateway(config, tmp_path, DEFAULT_PEOPLE, decision_delay=0.05) as (url, sandbox, cfg):
        async with aiohttp.ClientSession() as http:
            yield Running(url, sandbox, cfg, http)


def demo_application(number: str) -> dict[str, Any]:
    apps = json.loads(DEMO_APPLICATIONS.read_text(encoding="utf-8"))
    return next(a for a in apps if a["application_no"] == number)
