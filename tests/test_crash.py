"""Kill the gateway with SIGKILL mid-dispatch, and run two replicas on one PostgreSQL:
every accepted application still completes, and every department holds one case per item."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import Gateway, Sandbox, free_port, gateway_config
from tests.stores import PG_URL
from tests.test_resilience import accepted_batch


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path)
    try:
        yield sb
    finally:
        sb.stop()


async def _submit(urls: list[str], apps: list[dict[str, Any]]) -> None:
    sem = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as http:

        async def one(n: int, app: dict[str, Any]) -> None:
            async with sem, http.post(urls[n % len(urls)] + "/api/v1/joint-applications", json=app) as resp:
                assert resp.status == 202, await resp.text()

        await asyncio.gather(*(one(n, a) for n, a in enumerate(apps)))


async def _wait_all_final(url: str, apps: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        finals: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and len(finals) < len(apps):
            for app in apps:
                number = app["application_no"]
                if number in finals:
                    continue
                async with http.get(f"{url}/api/v1/joint-applications/{number}") as resp:
                    body = await resp.json()
                if body["status"] == "completed":
                    finals[number] = body
            await asyncio.sleep(0.3)
        if len(finals) < len(apps):
            stuck = []
            for app in apps:
                if app["application_no"] not in finals:
                    async with http.get(f"{url}/api/v1/joint-applications/{app['application_no']}") as resp:
                        body = await resp.json()
                    stuck.append({i["item"]: i["status"] for i in body["items"]})
            raise AssertionError(f"{len(stuck)} applications never completed: {stuck}")
    return list(finals.values())


def _assert_one_case_per_item(sandbox: Sandbox, finals: list[dict[str, Any]], resends_allowed: bool) -> None:
    decided = {i["delivery"]: i for f in finals for i in f["items"] if i["status"] in ("approved", "rejected")}
    assert not [i for f in finals for i in f["items"] if i["status"] == "failed"]
    cases = {d: c for dept in ("hrss", "nhsa", "health", "hpf") for d, c in sandbox.cases(dept).items()}
    assert set(decided) <= set(cases)  # every decision came from a real case...
    assert set(cases) <= {i["delivery"] for f in finals for i in f["items"]}  # ...and no stray case exists
    if not resends_allowed:
        assert all(c["received"] == 1 for c in cases.values()), "a job was processed twice"


async def test_sigkill_during_dispatch_loses_nothing_and_doubles_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    gw = Gateway(gateway_config(tmp_path, sandbox, port, url, "gw"), port, url)
    gw.start()
    try:
        apps = accepted_batch(copies=8)  # 208 applications
        assert len(apps) >= 200
        await _submit([gw.url], apps)
        for _ in range(3):
            await asyncio.sleep(0.7)
            gw.kill9()
            gw.start()
        finals = await _wait_all_final(gw.url, apps, timeout=90)
        _assert_one_case_per_item(sandbox, finals, resends_allowed=True)
    finally:
        gw.stop()


async def test_two_gateways_on_postgresql_share_the_work_and_process_no_job_twice(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    import uuid

    import asyncpg

    schema = "crash_" + uuid.uuid4().hex[:10]
    url = f"{PG_URL}?schema={schema}"
    gateways = []
    for name in ("a", "b"):
        port = free_port()
        gateways.append(Gateway(gateway_config(tmp_path, sandbox, port, url, name), port, url))
    try:
        for g in gateways:
            g.start()
        apps = accepted_batch(copies=4)
        await _submit([g.url for g in gateways], apps)
        finals = await _wait_all_final(gateways[0].url, apps, timeout=90)
        _assert_one_case_per_item(sandbox, finals, resends_allowed=False)
        async with aiohttp.ClientSession() as http:
            for g in gateways:
                async with http.get(g.url + "/metrics") as resp:
                    text = await resp.text()
                assert 'operation="submit",outcome="ok"' in text, "both replicas should have sent items"
    finally:
        for g in gateways:
            g.stop()
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()
