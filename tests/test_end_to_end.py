"""The whole path over real sockets: platform → gateway → sandbox departments → results back."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from typing import Any

import pytest
from aiohttp import web

from gateway.demo import submit_and_follow
from gateway.logs import configure_logging
from tests.conftest import DEMO_APPLICATIONS, EXAMPLES, ROOT, Running, demo_application
from tests.pii import leaks

DEPENDENTS = {
    "employment_filing_end", "injury_benefit_change", "unemployment_benefit_end",
    "medical_retiree_registration", "one_child_parent_reward", "provident_fund_withdrawal",
}


def _check(results: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    for r in results:
        want = expected[r["application_no"]]
        if not want["accepted"]:
            assert r["http_status"] == 422, r["application_no"]
            failing = sorted(c["key"] for c in r["response"].get("checks", []) if c["result"] == "fail")
            assert failing == sorted(want["failing"]), r["application_no"]
            continue
        assert r["http_status"] == 202, (r["application_no"], r["response"])
        assert r["final"]["status"] == "completed", r["application_no"]
        got = {i["item"]: i["status"] for i in r["final"]["items"] if i["status"] != "skipped"}
        assert got == want["items"], r["application_no"]


async def test_worked_examples_reach_the_expected_final_statuses(gw: Running) -> None:
    apps = json.loads((EXAMPLES / "applications.json").read_text(encoding="utf-8"))
    expected = json.loads((EXAMPLES / "expected.json").read_text(encoding="utf-8"))
    _check(await submit_and_follow(gw.base_url, apps, timeout=20, signer=gw.signer), expected)


async def test_demo_batch_covers_every_initiating_item_and_reaches_expected_statuses(gw: Running) -> None:
    apps = json.loads(DEMO_APPLICATIONS.read_text(encoding="utf-8"))
    expected = json.loads((ROOT / "sandbox" / "demo_expected.json").read_text(encoding="utf-8"))
    assert {a["initiating_item"] for a in apps} == {"retire_normal", "retire_early", "resident_pension"}
    results = await submit_and_follow(gw.base_url, apps, timeout=30, signer=gw.signer)
    _check(results, expected)
    # Every department saw work, through every adapter kind.
    cases = gw.sandbox.state.ledger.cases
    assert {"hrss", "nhsa", "health", "hpf"} <= set(cases)


async def test_dependent_items_are_sent_only_after_the_initiating_item_is_approved(gw: Running) -> None:
    app = demo_application("DEMO-001")
    results = await submit_and_follow(gw.base_url, [app], timeout=20, signer=gw.signer)
    final = results[0]["final"]
    assert final["status"] == "completed"
    ledger = gw.sandbox.state.ledger.cases
    delivery = {i["item"]: i["delivery"] for i in final["items"]}
    initiating = ledger["hrss"][delivery[app["initiating_item"]]]
    assert initiating["decided"] == "办结"
    sent_after = [
        (item, dept_cases[delivery[item]]["received_at"])
        for dept_cases in ledger.values()
        for item in DEPENDENTS
        if item in delivery and delivery[item] in dept_cases
    ]
    assert sent_after, "the demo person should have dependent items"
    for item, received_at in sent_after:
        assert received_at >= initiating["decided_at"], item


async def test_rejected_initiating_item_cancels_dependents_without_sending_them(gw: Running) -> None:
    expected = json.loads((ROOT / "sandbox" / "demo_expected.json").read_text(encoding="utf-8"))
    number = next(
        n for n, e in expected.items()
        if e["accepted"] and any(s == "cancelled" for s in e["items"].values())
    )
    results = await submit_and_follow(gw.base_url, [demo_application(number)], timeout=20, signer=gw.signer)
    items = {i["item"]: i for i in results[0]["final"]["items"]}
    cancelled = [i for i in items.values() if i["status"] == "cancelled"]
    assert cancelled
    sent = {d for cases in gw.sandbox.state.ledger.cases.values() for d in cases}
    for it in cancelled:
        assert it["reason_code"] == "PREREQUISITE_NOT_APPROVED"
        assert it["delivery"] not in sent


async def test_resubmitting_an_application_no_replays_and_never_creates_a_second_case(gw: Running) -> None:
    app = demo_application("DEMO-001")
    first = await gw.post("/api/v1/joint-applications", app)
    again = await asyncio.gather(*(gw.post("/api/v1/joint-applications", app) for _ in range(10)))
    assert first[0] == 202
    for status, body, headers in again:
        assert status == 202 and body == first[1]
        assert headers["Idempotent-Replayed"] == "true"
    await submit_and_follow(gw.base_url, [app], timeout=20, signer=gw.signer)
    for cases in gw.sandbox.state.ledger.cases.values():
        assert all(c["received"] == 1 for c in cases.values())
    changed = copy.deepcopy(app)
    changed["applicant"]["phone"] = "13900000000"
    status, body, _ = await gw.post("/api/v1/joint-applications", changed)
    assert status == 409
    assert body["errors"][0]["pointer"] == "/application_no"


async def test_concurrent_identical_submissions_create_exactly_one_case(gw: Running) -> None:
    app = demo_application("DEMO-003")
    answers = await asyncio.gather(*(gw.post("/api/v1/joint-applications", app) for _ in range(20)))
    assert {a[0] for a in answers} == {202}
    assert sum(1 for a in answers if "Idempotent-Replayed" not in a[2]) == 1


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda a: a["applicant"].pop("id_number"), "/applicant/id_number"),
        (lambda a: a["applicant"].__setitem__("phone", "12345"), "/applicant/phone"),
        (lambda a: a.__setitem__("initiating_item", "retire_later"), "/initiating_item"),
        (lambda a: a["applicant"].__setitem__("id_number", "430102196303120718"), "/applicant/id_number"),
        (lambda a: a["applicant"].__setitem__("gender", "female"), "/applicant/gender"),
        (lambda a: a.__setitem__("unexpected", 1), "/unexpected"),
        (lambda a: a["materials"][0].__setitem__("sha256", "0" * 64), "/materials/0/sha256"),
    ],
)
async def test_schema_and_rule_errors_name_the_field(gw: Running, change: Any, pointer: str) -> None:
    app = demo_application("DEMO-001")
    change(app)
    status, body, headers = await gw.post("/api/v1/joint-applications", app)
    assert status == 400
    assert headers["Content-Type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in body["errors"]]
    assert app["applicant"].get("id_number", "none") not in json.dumps(body)
    assert (await gw.get(f"/api/v1/joint-applications/{app['application_no']}"))[0] == 404


async def test_platform_callback_receives_the_final_state(gw: Running) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    platform = web.Application()
    platform.router.add_post("/cb", hook)
    runner = web.AppRunner(platform)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        app = demo_application("DEMO-003") | {"callback_url": f"http://127.0.0.1:{port}/cb"}
        results = await submit_and_follow(gw.base_url, [app], timeout=20, signer=gw.signer)
        for _ in range(50):
            if received and received[-1]["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        assert received[-1] == results[0]["final"]
    finally:
        await runner.cleanup()


async def test_get_unknown_application_is_a_problem_404(gw: Running) -> None:
    status, body = await gw.get("/api/v1/joint-applications/NOPE-1")
    assert status == 404 and body["type"].endswith("application-not-found")


async def test_the_platform_request_id_travels_to_the_departments_and_back_in_the_logs(gw: Running) -> None:
    logs = io.StringIO()
    configure_logging("INFO", stream=logs)
    app = copy.deepcopy(demo_application("DEMO-003")) | {"application_no": "TRACE-1"}
    status, _, headers = await gw.post("/api/v1/joint-applications", app, headers={"X-Request-Id": "plat-req-7731"})
    assert status == 202 and headers["X-Request-Id"] == "plat-req-7731"
    [result] = await submit_and_follow(gw.base_url, [app], timeout=20, signer=gw.signer)  # follows the case
    delivery = {i["item"]: i["delivery"] for i in result["final"]["items"]}
    # Sent later by the dispatcher, still carrying the request that created the application.
    initiating = delivery[result["final"]["initiating_item"]]
    assert gw.sandbox.state.ledger.cases["hrss"][initiating]["request_id"] == "plat-req-7731"
    assert not leaks(logs.getvalue())  # these logs bypass the suite's own scanner: scan them here
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    changes = [ln for ln in lines if ln.get("application_no") == "TRACE-1" and ln["event"].endswith("_status_changed")]
    assert changes and all(ln.get("request_id") == "plat-req-7731" for ln in changes)
    assert any(ln["event"] == "application_status_changed" and ln["new"] == "completed" for ln in changes)


def test_the_examples_kept_here_are_the_platforms_own() -> None:
    """sandbox/examples is a copy of the platform team's shared/examples: where that folder
    is beside the checkout (the developers' machines), the two must not have drifted."""
    shared = ROOT.parent / "shared" / "examples"
    if not shared.is_dir():
        pytest.skip(f"the platform's shared folder is not beside this checkout ({shared})")
    for name in ("applications.json", "people.json", "expected.json"):
        assert json.loads((EXAMPLES / name).read_text("utf-8")) == json.loads((shared / name).read_text("utf-8")), name
