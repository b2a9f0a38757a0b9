"""Start every sandbox department on loopback (free ports by default) and say where they are."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from sandbox.faults import Faults, fault_middleware, faults_routes
from sandbox.filedrop import run_hpf_exchange
from sandbox.people import DEFAULT_PEOPLE, People
from sandbox.rest import add_ledger_route, hpf_query_app, hrss_app, nhsa_app, police_app
from sandbox.soap import health_app, justice_app
from sandbox.state import SandboxState

DEFAULT_PORTS = {"police": 18701, "hrss": 18702, "nhsa": 18703, "health": 18704, "justice": 18705, "hpf": 18706}


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
) -> AsyncIterator[RunningSandbox]:
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
                fault_middleware(lambda n=name: state.faults_of(n), state.rng, soap=name in ("health", "justice"))
            )
            faults_routes(app, lambda n=name: state.faults_of(n), lambda f, n=name: state.faults.__setitem__(n, f))
            if name in ("health", "justice"):
                add_ledger_route(app, state.ledger, name)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            port = wanted.get(name) or _free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            actual[name] = port
        exchange = asyncio.create_task(run_hpf_exchange(state, hpf_root))
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
