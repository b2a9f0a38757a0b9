"""Delivery to departments and back, with answers lost on purpose: a lost reply is resolved
by asking the department, a lost callback by a status poll, and nobody but the department
an item belongs to can decide it. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import GatewayConfig
from gateway.demo import running_gateway, submit_and_follow
from gateway.messages import delivery_id_for
from sandbox.faults import Faults
from sandbox.people import DEFAULT_PEOPLE
from tests.conftest import Running, demo_application
from tests.stores import KINDS, fresh_url
from tests.test_resilience import ADMIN, accepted_batch, fast


@pytest.fixture(params=KINDS)
async def gw_any(request: pytest.FixtureRequest, config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Running]:
    """The gateway with fast retries, on each store in turn."""
    async with fresh_url(request.param, tmp_path) as url:
        cfg = replace(fast(config), database_url=url)
        hrss = replace(cfg.departments["hrss"], reconcile_after=0.3)
        cfg = replace(cfg, departments={**cfg.departments, "hrss": hrss})
        async with running_gateway(cfg, tmp_path, DEFAULT_PEOPLE, decision_delay=0.02) as (base, sb, c):
            async with aiohttp.ClientSession() as http:
                yield Running(base, sb, c, http)


def hrss_items(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for r in results for i in r["final"]["items"] if i["department"] == "hrss" and i["status"] != "skipped"]


async def test_a_reply_lost_after_processing_is_resolved_by_asking_the_status_not_by_resending(
    gw_any: Running,
) -> None:
    # Every hrss submission is processed, then its connection is dropped before the answer.
    gw_any.sandbox.state.faults["hrss"] = Faults(reset_after_rate=1.0, match='"ywlx"')
    gw_any.sandbox.state.decision_delay = 0.5  # no callback can settle an item before the next attempt
    # One application: fewer failures than open the circuit breaker, so every retry is immediate.
    results = await submit_and_follow(gw_any.base_url, accepted_batch()[:1], timeout=30)
    assert all(r["final"]["status"] == "completed" for r in results)
    items = hrss_items(results)
    assert items and not [i for i in items if i["status"] == "failed"]
    cases = gw_any.sandbox.state.ledger.cases["hrss"]
    # One submission each: the gateway asked "do you have it?" instead of sending it again.
    assert all(cases[i["delivery"]]["received"] == 1 for i in items)


async def test_a_callback_lost_on_the_way_is_reconciled_by_a_status_poll(gw_any: Running) -> None:
    gw_any.sandbox.state.drop_callbacks = True
    app = demo_application("DEMO-001")
    [result] = await submit_and_follow(gw_any.base_url, [app], timeout=30)
    assert result["final"]["status"] == "completed"
    statuses = {i["item"]: i["status"] for i in result["final"]["items"]}
    assert statuses["retire_normal"] == "approved"
    assert statuses["employment_filing_end"] == "approved"  # released by the reconciled approval


async def test_a_department_cannot_decide_another_departments_item(gw_any: Running) -> None:
    gw = gw_any
    app = copy.deepcopy(demo_application("DEMO-033")) | {"application_no": "SPOOF-1"}
    status, _, _ = await gw.post("/api/v1/joint-applications", app)
    assert status == 202
    # hrss claims to reject the provident-fund item, which is hpf's.
    spoof = {"lsh": delivery_id_for("SPOOF-1", "provident_fund_withdrawal"), "bjjg": "退件", "bjyj": "x"}
    status, body, _ = await gw.post("/api/v1/callbacks/hrss", spoof)
    assert status == 404 and body["type"].endswith("unknown-delivery")
    status, body, _ = await gw.post("/api/v1/callbacks/nobody", spoof)
    assert status == 404 and body["type"].endswith("unknown-department")
    [result] = await submit_and_follow(gw.base_url, [app], timeout=20, signer=gw.signer)  # a replay: follows it
    statuses = {i["item"]: i["status"] for i in result["final"]["items"]}
    assert statuses["provident_fund_withdrawal"] == "approved"  # what hpf itself decided


async def test_a_refusal_inside_an_http_200_acknowledgement_is_a_refusal(gw_any: Running) -> None:
    # hrss acknowledges a submission with code 0000 (mappings/hrss.v1.toml); another code in
    # an HTTP 200 is its refusal: the item is failed, never shown as accepted.
    refusal = '{"code": "4002", "msg": "报文校验不通过"}'
    gw_any.sandbox.state.faults["hrss"] = Faults(error_rate=1.0, status=200, error_body=refusal, match='"ywlx"')
    [result] = await submit_and_follow(gw_any.base_url, [demo_application("DEMO-001")], timeout=20)
    initiating = next(i for i in result["final"]["items"] if i["item"] == "retire_normal")
    assert initiating["status"] == "failed" and initiating["reason_code"] == "DELIVERY_FAILED"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with gw_any.http.get(gw_any.base_url + "/admin/v1/dead-letters", headers=headers) as resp:
        letters = (await resp.json())["dead_letters"]
    assert any("code 4002" in d["last_error"] for d in letters)


async def test_a_keyed_request_still_in_progress_gets_409_with_retry_after(gw_any: Running) -> None:
    gw_any.sandbox.state.faults["police"] = Faults(slow_seconds=0.6)
    app = accepted_batch()[2]
    headers = {"Idempotency-Key": "slow-1"}
    first = asyncio.create_task(gw_any.post("/api/v1/joint-applications", app, headers=headers))
    await asyncio.sleep(0.2)
    status, body, resp_headers = await gw_any.post("/api/v1/joint-applications", app, headers=headers)
    assert status == 409 and body["type"].endswith("request-in-progress")
    assert resp_headers["Retry-After"] == "1"
    assert (await first)[0] == 202
    again = await gw_any.post("/api/v1/joint-applications", app, headers=headers)
    assert again[0] == 202 and again[2]["Idempotent-Replayed"] == "true"


async def test_key_order_and_defaults_do_not_change_the_fingerprint_but_content_does(gw_any: Running) -> None:
    app = accepted_batch()[3]
    assert (await gw_any.post("/api/v1/joint-applications", app))[0] == 202
    reordered = dict(reversed(list(app.items())))
    status, _, headers = await gw_any.post("/api/v1/joint-applications", reordered)
    assert status == 202 and headers["Idempotent-Replayed"] == "true"
    changed = copy.deepcopy(app)
    changed["applicant"]["phone"] = "13900000000"
    assert (await gw_any.post("/api/v1/joint-applications", changed))[0] == 409


async def test_a_considered_refusal_is_replayed_under_its_key_but_an_unverifiable_one_is_not(
    gw_any: Running,
) -> None:
    refused = copy.deepcopy(demo_application("DEMO-024")) | {"application_no": "REF-1"}  # F02 fails
    key = {"Idempotency-Key": "refusal-1"}
    first = await gw_any.post("/api/v1/joint-applications", refused, headers=key)
    again = await gw_any.post("/api/v1/joint-applications", refused, headers=key)
    assert first[0] == again[0] == 422 and again[2]["Idempotent-Replayed"] == "true"
    # A refusal because a department could not be asked may turn out differently later.
    gw_any.sandbox.state.faults["hrss"] = Faults(error_rate=1.0, match="persons/query")
    app = copy.deepcopy(accepted_batch()[0]) | {"application_no": "UNV-1"}
    key = {"Idempotency-Key": "unverifiable-1"}
    assert (await gw_any.post("/api/v1/joint-applications", app, headers=key))[0] == 422
    gw_any.sandbox.state.faults["hrss"] = Faults()
    assert (await gw_any.post("/api/v1/joint-applications", app, headers=key))[0] == 202


async def test_duplicate_json_keys_are_refused_before_anything_is_stored(gw: Running) -> None:
    body = b'{"application_no": "DUP-1", "application_no": "DUP-2"}'
    headers = gw.signed_headers("POST", "/api/v1/joint-applications", body, None)
    async with gw.http.post(gw.base_url + "/api/v1/joint-applications", data=body, headers=headers) as resp:
        problem = await resp.json(content_type=None)
        assert resp.status == 400 and "duplicate key" in problem["detail"]
    status, _ = await gw.get("/api/v1/joint-applications/DUP-1")
    assert status == 404


async def test_idempotency_keys_are_forgotten_after_their_retention_period(
    config: GatewayConfig, tmp_path: Path
) -> None:
    cfg = replace(config, idempotency_key_ttl=0.4)
    async with running_gateway(cfg, tmp_path, DEFAULT_PEOPLE, decision_delay=0.02) as (url, sb, c):
        async with aiohttp.ClientSession() as http:
            gw = Running(url, sb, c, http)
            first, second = accepted_batch()[:2]
            key = {"Idempotency-Key": "short-lived"}
            assert (await gw.post("/api/v1/joint-applications", first, headers=key))[0] == 202
            assert (await gw.post("/api/v1/joint-applications", second, headers=key))[0] == 422  # reused
            for _ in range(40):
                await asyncio.sleep(0.1)
                status, _, _ = await gw.post("/api/v1/joint-applications", second, headers=key)
                if status == 202:
                    break
            assert status == 202  # the key's record is gone: the same key now starts afresh
            status, _, headers = await gw.post("/api/v1/joint-applications", first)
            assert status == 202 and headers["Idempotent-Replayed"] == "true"  # application_no: forever
