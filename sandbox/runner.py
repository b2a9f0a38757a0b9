"""Start every sandbox department on loopback (free ports by default) and say where they are.

The provident-fund file exchange speaks v1 (GBK XML) unless told otherwise: ``hpf_files``
(a ``sandbox.filedrop.HpfFiles``), or, for ``gateway sandbox``, the environment variable
``GATEWAY_SANDBOX_HPF_FILES`` with the file-drop endpoint's own setting names, e.g.
``format=csv,encoding=utf-8,done_marker=.done`` (docs/onboarding.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web

from sandbox.faults import Faults, fault_middleware, faults_routes
from sandbox.filedrop import HpfFiles, run_hpf_exchange
from sandbox.people import DEFAULT_PEOPLE, People
from sandbox.rest import add_ledger_route, hpf_query_app, hrss_app, nhsa_app, police_app
from sandbox.soap import health_app, justice_app
from sandbox.state import SandboxState

DEFAULT_PORTS = {"police": 18701, "hrss": 18702, "nhsa": 18703, "health": 18704, "justice": 18705, "hpf": 18706}
HPF_FILES_ENV = "GATEWAY_SANDBOX_HPF_FILES"
_HPF_SETTINGS = {"format": "fmt", "encoding": "encoding", "done_marker": "done_marker"}


def hpf_files_from_text(text: str) -> HpfFiles:
    """``format=csv,encoding=utf-8,done_marker=.done`` → the exchange's file options.

    The names are the gateway's file-drop endpoint settings, so both sides read alike;
    anything else is refused (ConfigError, so that ``gateway sandbox`` says so plainly)."""
    from gateway.config import ConfigError

    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in _HPF_SETTINGS:
            raise ConfigError(f"{HPF_FILES_ENV}: {part!r}: use {', '.join(f'{k}=…' for k in _HPF_SETTINGS)}")
        options[_HPF_SETTINGS[key.strip()]] = value.strip()
    files = HpfFiles(**options)
    if files.fmt not in ("xml", "csv"):
        raise ConfigError(f"{HPF_FILES_ENV}: format must be xml or csv")
    if files.encoding not in ("utf-8", "utf-8-sig", "gbk", "gb18030"):
        raise ConfigError(f"{HPF_FILES_ENV}: encoding must be utf-8, utf-8-sig, gbk or gb18030")
    if files.done_marker and not files.done_marker.startswith("."):
        raise ConfigError(f"{HPF_FILES_ENV}: done_marker is a suffix such as .done")
    return files


@dataclass
class RunningSandbox:
    state: SandboxState
    ports: dict[str, int]
    hpf_root: Path

    def url(self, department: str) -> str:
        return f"http://127.0.0.1:{self.ports[department]}"

    def point_gateway(self, config: object) -> object:
        """A gateway configuration whose department endpoints are this sandbox."""
        from gateway.config import GatewayConfig

        assert isinstance(config, GatewayConfig)
        c = config
        for dept in ("police", "hrss", "nhsa"):
            c = c.with_endpoint(dept, "api", base_url=self.url(dept))
        c = c.with_endpoint("hpf", "api", base_url=self.url("hpf"))
        c = c.with_endpoint(
            "health", "ws", address=self.url("health") + "/reward/services/RewardService"
        )
        c = c.with_endpoint(
            "justice", "ws", address=self.url("justice") + "/sentence/services/SentenceService"
        )
        c = c.with_endpoint(
            "hpf", "files", inbox=str(self.hpf_root / "inbox"), outbox=str(self.hpf_root / "outbox")
        )
        return c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def run_sandbox(
    people_path: Path = DEFAULT_PEOPLE,
    hpf_root: Path = Path("var/sandbox/hpf"),
    ports: dict[str, int] | None = None,
    decision_delay: float = 0.2,
    faults: dict[str, Faults] | None = None,
    hpf_files: HpfFiles | None = None,
) -> AsyncIterator[RunningSandbox]:
    """``hpf_files``: how the provident-fund exchange reads requests and writes results;
    None: from ``GATEWAY_SANDBOX_HPF_FILES`` when set, else v1's GBK XML without markers."""
    if hpf_files is None:
        text = os.environ.get(HPF_FILES_ENV)
        hpf_files = hpf_files_from_text(text) if text else HpfFiles()
    session = aiohttp.ClientSession()
    state = SandboxState(People.load(people_path), session, decision_delay=decision_delay)
    state.faults.update(faults or {})
    apps = {
        "police": police_app(state),
        "hrss": hrss_app(state),
        "nhsa": nhsa_app(state),
        "health": health_app(state),
        "justice": justice_app(state),
        "hpf": hpf_query_app(state),
    }
    wanted = ports or {k: 0 for k in apps}
    runners: list[web.AppRunner] = []
    actual: dict[str, int] = {}
    exchange: asyncio.Task[None] | None = None
    try:
        for name, app in apps.items():
            app.middlewares.append(
                fault_middleware(partial(state.faults_of, name), state.rng, soap=name in ("health", "justice"))
            )
            faults_routes(app, partial(state.faults_of, name), partial(state.faults.__setitem__, name))
            if name in ("health", "justice"):
                add_ledger_route(app, state.ledger, name)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            port = wanted.get(name) or _free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            actual[name] = port
        exchange = asyncio.create_task(run_hpf_exchange(state, hpf_root, files=hpf_files))
        yield RunningSandbox(state, actual, hpf_root)
    finally:
        if exchange:
            exchange.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exchange
        for t in list(state.tasks):
            t.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        for runner in runners:
            await runner.cleanup()
        await session.close()
