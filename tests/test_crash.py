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

from tests.conftest import ROOT
from tests.processes import Gateway, Sandbox, free_port, gateway_config
from tests.stores import KINDS, PG_URL, fresh_url, opened
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


DEPENDENT_ITEMS = {
    "employment_filing_end", "injury_benefit_change", "unemployment_benefit_end",
    "medical_retiree_registration", "one_child_parent_reward", "provident_fund_withdrawal",
}


def _assert_one_case_per_item(sandbox: Sandbox, finals: list[dict[str, Any]], resends_allowed: bool) -> dict[str, Any]:
    """Every decision came from one department case with the item's one delivery id (a
    re-send with a new id would be a stray case), and no dependent item reached its
    department before the initiating item was decided there."""
    decided = {i["delivery"]: i for f in finals for i in f["items"] if i["status"] in ("approved", "rejected")}
    assert not [i for f in finals for i in f["items"] if i["status"] == "failed"]
    cases = {d: c for dept in ("hrss", "nhsa", "health", "hpf") for d, c in sandbox.cases(dept).items()}
    assert set(decided) <= set(cases)  # every decision came from a real case...
    assert set(cases) <= {i["delivery"] for f in finals for i in f["items"]}  # ...and no stray case exists
    if not resends_allowed:
        assert all(c["received"] == 1 for c in cases.values()), "a job was processed twice"
    for f in finals:
        by_item = {i["item"]: i for i in f["items"]}
        initiating = cases[by_item[f["initiating_item"]]["delivery"]]
        for item in DEPENDENT_ITEMS & set(by_item):
            delivery = by_item[item]["delivery"]
            if delivery in cases:
                assert cases[delivery]["received_at"] >= initiating["decided_at"], (f["application_no"], item)
    return cases


@pytest.mark.parametrize("kind", KINDS)
async def test_sigkill_during_dispatch_loses_nothing_and_doubles_nothing(
    kind: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with fresh_url(kind, tmp_path) as url:
        port = free_port()
        gw = Gateway(gateway_config(tmp_path, sandbox, port, url, "gw"), port, url)
        gw.start()
        try:
            apps = accepted_batch(copies=8)  # 208 applications
            assert len(apps) >= 200
            await _submit([gw.url], apps)
            in_flight_at_kill = []
            for _ in range(4):
                await asyncio.sleep(0.6)
                in_flight_at_kill.append(await _leased_jobs(url, tmp_path))
                gw.kill9()
                gw.start()
            assert any(in_flight_at_kill), "the kills should have hit jobs being worked on"
            finals = await _wait_all_final(gw.url, apps, timeout=90)
            _assert_one_case_per_item(sandbox, finals, resends_allowed=True)
        finally:
            gw.stop()


async def _leased_jobs(url: str, tmp_path: Path) -> int:
    """Jobs some worker holds right now (read from a second connection to the store)."""
    async with opened(url, tmp_path) as store, store.connector.read() as tx:
        row = await tx.fetchone("SELECT COUNT(*) AS n FROM jobs WHERE state = 'pending' AND lease_owner IS NOT NULL")
    return int(row["n"]) if row else 0


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


async def test_sigterm_stops_claiming_hands_in_flight_jobs_back_and_a_restart_finishes_them(tmp_path: Path) -> None:
    # hrss takes 3 s over each submission: SIGTERM arrives while they are in flight.
    sandbox = Sandbox(tmp_path, faults={"hrss": {"slow_seconds": 3, "match": '"ywlx"'}})
    port = free_port()
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = gateway_config(tmp_path, sandbox, port, url, "gw")
    config.write_text(config.read_text().replace("shutdown_deadline = 10", "shutdown_deadline = 1"))
    gw = Gateway(config, port, url)
    gw.start()
    try:
        apps = accepted_batch()[:6]
        await _submit([gw.url], apps)
        await asyncio.sleep(0.8)
        assert await _leased_jobs(url, tmp_path) > 0, "submissions should be in flight"
        assert gw.terminate(timeout=20) == 0  # a clean exit, within the deadline plus cleanup
        async with opened(url, tmp_path) as store, store.connector.read() as tx:
            held = await tx.fetchone("SELECT COUNT(*) AS n FROM jobs WHERE lease_owner IS NOT NULL")
            dead = await tx.fetchone("SELECT COUNT(*) AS n FROM dead_letters")
        assert held is not None and held["n"] == 0  # every in-flight job was handed back
        assert dead is not None and dead["n"] == 0  # ...none was given up on
        sandbox.set_faults("hrss", {})
        gw.start()
        finals = await _wait_all_final(gw.url, apps, timeout=60)
        _assert_one_case_per_item(sandbox, finals, resends_allowed=True)
    finally:
        gw.stop()
        sandbox.stop()


def _dlq(config: Path, url: str, *args: str) -> Any:
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "dlq", *args, "--config", str(config)],
        cwd=ROOT, env=os.environ | {"GATEWAY_DATABASE_URL": url}, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_dlq_cli_lists_shows_and_replays_a_dead_letter_with_the_same_delivery_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.set_faults("nhsa", {"error_rate": 1.0, "status": 400, "match": '"infno": "2501"'})
    port = free_port()
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    config = gateway_config(tmp_path, sandbox, port, url, "gw")
    gw = Gateway(config, port, url)
    gw.start()
    try:
        app = next(a for a in accepted_batch() if "medical_retiree_registration" in a.get("optional_items", []))
        await _submit([gw.url], [app])
        for _ in range(200):
            letters = _dlq(config, url, "list")["dead_letters"]
            if letters:
                break
            await asyncio.sleep(0.1)
        [letter] = letters
        assert letter["item"] == "medical_retiree_registration" and "HTTP 400" in letter["last_error"]
        detail = _dlq(config, url, "show", str(letter["job_id"]))
        assert detail["history"] and all("HTTP 400" in h["error"] for h in detail["history"])
        sandbox.set_faults("nhsa", {})
        assert _dlq(config, url, "replay", str(letter["job_id"])) == {"job_id": letter["job_id"], "replayed": True}
        [final] = await _wait_all_final(gw.url, [app], timeout=30)
        medical = next(i for i in final["items"] if i["item"] == "medical_retiree_registration")
        assert medical["status"] == "approved"
        assert sandbox.cases("nhsa")[medical["delivery"]]["received"] == 1  # the 400s were refused unprocessed
        assert _dlq(config, url, "list")["dead_letters"] == []
    finally:
        gw.stop()
