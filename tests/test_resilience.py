"""Nothing lost, nothing doubled — with the sandbox departments misbehaving on purpose."""

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

from gateway.config import GatewayConfig, RetrySettings
from gateway.demo import running_gateway, submit_and_follow
from sandbox.faults import Faults
from sandbox.people import DEFAULT_PEOPLE
from tests.conftest import DEMO_APPLICATIONS, Running
from tests.stores import KINDS, fresh_url

ADMIN = "test-admin-token"


def fast(config: GatewayConfig, attempts: int = 8, max_age: float = 60) -> GatewayConfig:
    """Small waits so a test sees many retries in a few seconds."""
    retry = RetrySettings(attempts=attempts, max_age=max_age, base=0.02, cap=0.2)
    depts = {k: replace(d, retry=retry, call_timeout=1.0, poll_interval=0.05) for k, d in config.departments.items()}
    return replace(config, departments=depts, breaker_open_seconds=0.5, admin_token=ADMIN)


@pytest.fixture(params=KINDS)
async def gw_fast(request: pytest.FixtureRequest, config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Running]:
    """The gateway with fast retries, on each store in turn."""
    async with fresh_url(request.param, tmp_path) as store_url, running_gateway(
        replace(fast(config), database_url=store_url), tmp_path, DEFAULT_PEOPLE, decision_delay=0.02
    ) as (url, sb, cfg):
        async with aiohttp.ClientSession() as http:
            yield Running(url, sb, cfg, http)


def accepted_batch(copies: int = 1) -> list[dict[str, Any]]:
    """The demo applications that are accepted, each `copies` times under new numbers."""
    expected = json.loads((DEMO_APPLICATIONS.parent / "demo_expected.json").read_text(encoding="utf-8"))
    every = json.loads(DEMO_APPLICATIONS.read_text(encoding="utf-8"))
    apps = [a for a in every if expected[a["application_no"]]["accepted"]]
    out = []
    for n in range(copies):
        for a in apps:
            b = copy.deepcopy(a)
            b["application_no"] = f"{a['application_no']}-{n}"
            out.append(b)
    return out


def sent_items(results: list[dict[str, Any]]) -> set[str]:
    return {
        i["delivery"] for r in results for i in r["final"]["items"]
        if i["status"] in ("approved", "rejected") and i["delivery"]
    }


async def test_transient_faults_and_resets_after_processing_deliver_everything_once(gw_fast: Running) -> None:
    # Submissions only: a pre-check query that fails is "unverifiable" and refuses up front.
    faults = gw_fast.sandbox.state.faults
    faults["hrss"] = Faults(error_rate=0.2, reset_after_rate=0.2, reset_before_rate=0.05, match="/hrss/v1/items")
    faults["nhsa"] = Faults(error_rate=0.2, reset_after_rate=0.2, match='"infno": "2501"')
    faults["health"] = Faults(soap_fault_rate=0.2, reset_after_rate=0.1, match="SubmitReward")
    results = await submit_and_follow(gw_fast.base_url, accepted_batch(), timeout=60)
    assert all(r["final"]["status"] == "completed" for r in results)
    assert not [i for r in results for i in r["final"]["items"] if i["status"] == "failed"]
    cases = gw_fast.sandbox.state.ledger.cases
    received = {d: c for dept in ("hrss", "nhsa", "health", "hpf") for d, c in cases.get(dept, {}).items()}
    # Every decided item was a case at its department exactly once, whatever the re-sends.
    assert sent_items(results) <= set(received)
    # The faults really hit: calls failed, some after the department had processed them.
    async with gw_fast.http.get(gw_fast.base_url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'operation="submit",outcome="unknown"' in metrics and 'operation="submit",outcome="transient"' in metrics


async def test_department_down_for_a_while_then_back_opens_and_closes_its_breaker(gw_fast: Running) -> None:
    apps = accepted_batch()[:6]
    accepted = await asyncio.gather(*(gw_fast.post("/api/v1/joint-applications", a) for a in apps))
    assert {a[0] for a in accepted} == {202}
    gw_fast.sandbox.state.faults["hrss"] = Faults.from_json({"down_seconds": 2})
    task = asyncio.create_task(submit_and_follow(gw_fast.base_url, apps, timeout=30))
    saw_open = False
    for _ in range(40):
        await asyncio.sleep(0.1)
        _, ready = await gw_fast.get("/readyz")
        saw_open = saw_open or "hrss.api" in ready["open_breakers"]
    results = await task
    assert saw_open
    assert all(r["final"]["status"] == "completed" for r in results)
    assert not [i for r in results for i in r["final"]["items"] if i["status"] == "failed"]
    _, ready = await gw_fast.get("/readyz")
    assert ready["circuit_breakers"]["hrss.api"] == "closed"
    async with gw_fast.http.get(gw_fast.base_url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'gateway_circuit_breaker_state{department="hrss",endpoint="api"} 0.0' in metrics


async def test_permanent_fault_dead_letters_and_replay_delivers_with_the_same_delivery_id(gw_fast: Running) -> None:
    gw_fast.sandbox.state.faults["nhsa"] = Faults(error_rate=1.0, status=400, match='"infno": "2501"')
    app = next(a for a in accepted_batch() if "medical_retiree_registration" in a.get("optional_items", []))
    [result] = await submit_and_follow(gw_fast.base_url, [app], timeout=20)
    medical = next(i for i in result["final"]["items"] if i["item"] == "medical_retiree_registration")
    assert medical["status"] == "failed" and medical["reason_code"] == "DELIVERY_FAILED"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with gw_fast.http.get(gw_fast.base_url + "/admin/v1/dead-letters", headers=headers) as resp:
        letters = (await resp.json())["dead_letters"]
    [letter] = [d for d in letters if d["item"] == "medical_retiree_registration"]
    assert "HTTP 400" in letter["last_error"]
    async with gw_fast.http.get(gw_fast.base_url + "/admin/v1/dead-letters") as resp:
        assert resp.status == 401
    gw_fast.sandbox.state.faults["nhsa"] = Faults()
    url = f"{gw_fast.base_url}/admin/v1/dead-letters/{letter['job_id']}/replay"
    async with gw_fast.http.post(url, headers=headers) as resp:
        assert resp.status == 202
    for _ in range(100):
        _, final = await gw_fast.get(f"/api/v1/joint-applications/{app['application_no']}")
        if final["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    medical = next(i for i in final["items"] if i["item"] == "medical_retiree_registration")
    assert medical["status"] == "approved"
    assert gw_fast.sandbox.state.ledger.cases["nhsa"][medical["delivery"]]["received"] == 1


async def test_idempotency_key_replays_refuses_other_payloads_and_forgets_invalid_requests(gw_fast: Running) -> None:
    app = accepted_batch()[0]
    headers = {"Idempotency-Key": "platform-req:0001"}
    first = await gw_fast.post("/api/v1/joint-applications", app, headers=headers)
    again = await gw_fast.post("/api/v1/joint-applications", app, headers=headers)
    assert first[0] == again[0] == 202 and first[1] == again[1]
    assert again[2]["Idempotent-Replayed"] == "true"
    other = copy.deepcopy(app) | {"application_no": "OTHER-1"}
    status, body, _ = await gw_fast.post("/api/v1/joint-applications", other, headers=headers)
    assert status == 422 and body["type"].endswith("idempotency-key-reused")
    bad = copy.deepcopy(app) | {"application_no": "BAD-1"}
    bad["applicant"]["phone"] = "1"
    key = {"Idempotency-Key": "platform-req:0002"}
    assert (await gw_fast.post("/api/v1/joint-applications", bad, headers=key))[0] == 400
    good = copy.deepcopy(app) | {"application_no": "GOOD-1"}
    assert (await gw_fast.post("/api/v1/joint-applications", good, headers=key))[0] == 202
    status, body, _ = await gw_fast.post(
        "/api/v1/joint-applications", good, headers={"Idempotency-Key": "bad key!"}
    )
    assert status == 400 and body["errors"][0]["pointer"] == "header:Idempotency-Key"


async def test_fifty_identical_concurrent_posts_with_one_key_create_one_case(gw_fast: Running) -> None:
    app = accepted_batch()[1]
    headers = {"Idempotency-Key": "burst-1"}
    answers = await asyncio.gather(
        *(gw_fast.post("/api/v1/joint-applications", app, headers=headers) for _ in range(50))
    )
    statuses = sorted(a[0] for a in answers)
    assert set(statuses) <= {202, 409}
    assert sum(1 for a in answers if a[0] == 202 and "Idempotent-Replayed" not in a[2]) == 1
    in_progress = [a for a in answers if a[0] == 409]
    assert all(a[2]["Retry-After"] == "1" for a in in_progress)
    results = await submit_and_follow(gw_fast.base_url, [app], timeout=20)
    assert results[0]["http_status"] == 202
    for cases in gw_fast.sandbox.state.ledger.cases.values():
        assert all(c["received"] == 1 for c in cases.values())
