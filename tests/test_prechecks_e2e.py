"""Pre-checks over real sockets: every rule of docs/eligibility.md against the sandbox people.

Each person named 测试<KEY> in sandbox/people.json fails exactly that check; the request is built
here from the person's record, the answer comes back through POST /api/v1/prechecks (and, for a
refusal, POST /api/v1/joint-applications). Also: slow departments, the retirement-age policy
endpoint and the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.config import GatewayConfig
from sandbox.people import DEFAULT_PEOPLE
from sandbox.runner import run_sandbox
from tests.conftest import DEMO_APPLICATIONS, ROOT, Running
from tests.test_retirement_age import WORKED_EXAMPLES

SUBMITTED_AT = "2026-12-03T10:00:00+08:00"
PRECHECKS = "/api/v1/prechecks"
SUBMIT = "/api/v1/joint-applications"
PROBLEM_JSON = "application/problem+json"

PEOPLE: dict[str, dict[str, Any]] = {
    p["name"]: p for p in json.loads(DEFAULT_PEOPLE.read_text(encoding="utf-8"))["people"]
}
_DEMO = json.loads(DEMO_APPLICATIONS.read_text(encoding="utf-8"))
# One material of every code the demo applications use ("materials as in sandbox/applications.json").
MATERIALS: list[dict[str, Any]] = list({m["code"]: m for a in _DEMO for m in a["materials"]}.values())

MEDICAL, ONE_CHILD, FUND = "medical_retiree_registration", "one_child_parent_reward", "provident_fund_withdrawal"

# Report order of eligibility.md ("Checks are reported in this order").
DOC_ORDER = (
    [f"P{n:02d}" for n in range(1, 14)]
    + ["P03E", "E01", "E02", "E03", "E04", "J01", "J02"]
    + [f"M{n:02d}" for n in range(1, 8)]
    + ["H01", "H02", "H03", "F01", "F02", "F03"]
    + [f"R{n:02d}" for n in range(1, 11)]
)


@dataclass(frozen=True)
class Shape:
    """What makes a check run: initiating item, early reason, optional items, flexible month."""

    initiating: str
    early_reason: str | None = None
    optional: tuple[str, ...] = ()
    requested_month: str | None = None


NORMAL = Shape("retire_normal")
SPECIAL = Shape("retire_early", "special_work_type")
ILLNESS = Shape("retire_early", "illness")
# 测试E04 (male 1967-02) may retire flexibly from 2027-02 on: 2027-01 is outside his window.
FLEXIBLE = Shape("retire_early", "flexible", requested_month="2027-01")
WITH_MEDICAL = Shape("retire_normal", optional=(MEDICAL,))
WITH_ONE_CHILD = Shape("retire_normal", optional=(ONE_CHILD,))
WITH_FUND = Shape("retire_normal", optional=(FUND,))
RESIDENT = Shape("resident_pension")

# KEY → (shape, eligible baseline person for that same shape). A baseline passes every check the
# shape runs (asserted below), so each is "fully eligible" for that body.
CASES: dict[str, tuple[Shape, str]] = {
    **{k: (NORMAL, "测试甲一") for k in [f"P{n:02d}" for n in range(1, 14)] + ["J01", "J02"]},
    "P03E": (SPECIAL, "测试丙一"),
    "E01": (SPECIAL, "测试丙一"),
    "E02": (ILLNESS, "测试丙二"),
    "E03": (SPECIAL, "测试丙一"),
    "E04": (FLEXIBLE, "测试丙三"),
    **{f"M{n:02d}": (WITH_MEDICAL, "测试甲一") for n in range(1, 8)},
    # 测试甲一 has a child (H03 fails for him); 测试F02 qualifies by all three H rules and his
    # only flagged fact (an hpf loan) is never asked with this shape.
    **{f"H{n:02d}": (WITH_ONE_CHILD, "测试F02") for n in range(1, 4)},
    **{f"F{n:02d}": (WITH_FUND, "测试甲一") for n in range(1, 4)},
    **{f"R{n:02d}": (RESIDENT, "示例丙") for n in range(1, 11)},
    # 测试M07本省 has 31 years of medical contributions but 12y6m in Hunan: enough for 2025 (12),
    # not for 2026 (13, 湖南省职工基本医疗保险实施办法 art. 26). He fails M07 on that rule alone.
    "M07本省": (WITH_MEDICAL, "测试甲一"),
}
# Persons whose name is not the key they fail.
TARGET = {"H全": "H03", "M07本省": "M07"}
# The documented unavoidable companions: P13/R10 are judged only under the minimum months, so
# P12/R09 fail with them; 测试H全 fails all three one-child alternatives.
ALSO_FAILS = {"P13": {"P12"}, "R10": {"R09"}, "H全": {"H01", "H02"}}
# P13/R10 are judged only under the minimum months: an eligible person (at/over it) gets
# not_applicable, and the under-minimum person without gaps (测试P12/测试R09) passes them.
BASELINE_RESULT = {"P13": "not_applicable", "R10": "not_applicable"}
GAPS_PASS = {"P12": "P13", "R09": "R10"}
ITEM_OF_PREFIX = {"M": MEDICAL, "H": ONE_CHILD, "F": FUND}
DEPT_OF_PREFIX = {"P": "hrss", "E": "hrss", "R": "hrss", "J": "justice", "M": "nhsa", "H": "health", "F": "hpf"}


def _gender(id_number: str) -> str:
    return "male" if int(id_number[16]) % 2 else "female"


def _birth(id_number: str) -> str:
    return f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"


def body_for(person_name: str, shape: Shape, number: str) -> dict[str, Any]:
    """A joint application for this person, everything derived from the people file's record."""
    person = PEOPLE[person_name]
    idn = person["id_number"]
    applicant: dict[str, Any] = {
        "name": person["name"],
        "id_number": idn,
        "gender": _gender(idn),
        "birth_date": _birth(idn),
        "phone": "13800000000",
        "household": "urban",
    }
    if applicant["gender"] == "female" and shape.initiating != "resident_pension":
        applicant["position"] = "worker"
    body: dict[str, Any] = {
        "application_no": number,
        "submitted_at": SUBMITTED_AT,
        "channel": "online",
        "initiating_item": shape.initiating,
        "applicant": applicant,
        "optional_items": list(shape.optional),
        "all_or_nothing": False,
        "materials": MATERIALS,
        "delivery": {"method": "pickup"},
    }
    if shape.early_reason:
        body["early_retirement_reason"] = shape.early_reason
    if shape.requested_month:
        body["requested_retirement_month"] = shape.requested_month
    if FUND in shape.optional:
        applicant["provident_fund_center"] = "430000"
        cards = person.get("hpf", {}).get("bank_cards") or ["6222020000098274301"]  # no hpf record: any card
        body["bank_card"] = {"number": cards[0], "edited": False}
    return body


def results(answer: dict[str, Any]) -> dict[str, str]:
    return {c["key"]: c["result"] for c in answer["checks"]}


def failing(answer: dict[str, Any]) -> set[str]:
    return {k for k, r in results(answer).items() if r == "fail"}


def item(answer: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in answer["items"] if i["item"] == name)


async def precheck(gw: Running, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = await gw.post(PRECHECKS, body)
    assert status == 200, answer
    assert {"checks", "items", "accepted", "unverified_departments"} <= set(answer)
    return answer


# ---------------------------------------------------------------------------------------------
# 1. Every rule, table-driven from the people file
# ---------------------------------------------------------------------------------------------


def _case_params() -> list[Any]:
    params = [pytest.param(key, shape, base, id=key) for key, (shape, base) in CASES.items()]
    params.append(pytest.param("H全", WITH_ONE_CHILD, "测试F02", id="H-all"))
    return [p if p.id != "M07本省" else pytest.param(*p.values, id="M07-in-province") for p in params]


def test_every_listed_key_has_its_test_person() -> None:
    assert {f"测试{k}" for k in CASES} <= set(PEOPLE)
    assert set(DOC_ORDER) <= set(CASES)  # every check key of eligibility.md
    assert len(CASES) == 13 + 1 + 4 + 2 + 7 + 3 + 3 + 10 + 1  # + 测试M07本省


@pytest.mark.parametrize(("key", "shape", "baseline"), _case_params())
async def test_person_fails_exactly_their_check_and_an_eligible_person_passes_it(
    gw: Running, key: str, shape: Shape, baseline: str
) -> None:
    target = TARGET.get(key, key)
    body = body_for(f"测试{key}", shape, f"PRE-{key.encode().hex()}")
    answer = await precheck(gw, body)
    got = results(answer)
    assert got[target] == "fail", got
    assert failing(answer) == {target} | ALSO_FAILS.get(key, set()), got
    assert "unverifiable" not in got.values() and answer["unverified_departments"] == []
    if key in GAPS_PASS:
        assert got[GAPS_PASS[key]] == "pass", got

    initiating = item(answer, shape.initiating)
    prefix = key[0]
    if prefix in ITEM_OF_PREFIX:  # an optional item's check: only that item is affected
        assert answer["accepted"] is True and initiating["included"] is True
        chosen = item(answer, ITEM_OF_PREFIX[prefix])
        if prefix == "H" and key != "H全":  # alternatives: one failing rule does not drop the item
            assert chosen["included"] is True and chosen["reason_code"] == "CHOSEN"
        else:
            assert chosen["included"] is False and chosen["reason_code"] == "PRECHECK_FAILED"
    else:  # an initiating-item check: the application is refused, on /prechecks and on submit
        assert answer["accepted"] is False and initiating["included"] is False
        status, problem, headers = await gw.post(SUBMIT, body)
        assert status == 422, problem
        assert headers["Content-Type"].startswith(PROBLEM_JSON)
        assert problem["type"].endswith("precheck-failed")
        assert problem["checks"] == answer["checks"]
        assert (await gw.get(f"{SUBMIT}/{body['application_no']}"))[0] == 404

    # The same body with an eligible person passes that check, and every other one.
    eligible = await precheck(gw, body_for(baseline, shape, "PRE-BASE"))
    got = results(eligible)
    assert got[target] == BASELINE_RESULT.get(target, "pass"), got
    assert set(got.values()) <= {"pass", "not_applicable"}, got
    assert eligible["accepted"] is True
    assert all(i["included"] for i in eligible["items"] if i["mode"] != "automatic"), eligible["items"]


# ---------------------------------------------------------------------------------------------
# 2. The answer lists every rule
# ---------------------------------------------------------------------------------------------

_P = [f"P{n:02d}" for n in range(1, 14)]
_P_EARLY = [k for k in _P if k != "P03"] + ["P03E"]
_M = [f"M{n:02d}" for n in range(1, 8)]
_H, _F = ["H01", "H02", "H03"], ["F01", "F02", "F03"]
_R = [f"R{n:02d}" for n in range(1, 11)]
_ALL_OPTIONAL = ("sscard_apply", MEDICAL, ONE_CHILD, FUND)
_EARLY_OPTIONAL = ("sscard_apply", ONE_CHILD, FUND)


@pytest.mark.parametrize(
    ("person", "shape", "expected"),
    [
        pytest.param("测试甲一", Shape("retire_normal", optional=_ALL_OPTIONAL),
                     _P + ["J01", "J02"] + _M + _H + _F, id="normal-28"),
        pytest.param("测试丙一", Shape("retire_early", "special_work_type", _EARLY_OPTIONAL),
                     _P_EARLY + ["E01", "E02", "E03", "J01", "J02"] + _H + _F, id="early-special-24"),
        pytest.param("测试丙二", Shape("retire_early", "illness", _EARLY_OPTIONAL),
                     _P_EARLY + ["E01", "E02", "E03", "J01", "J02"] + _H + _F, id="early-illness-24"),
        pytest.param("测试丙三", Shape("retire_early", "flexible", _EARLY_OPTIONAL),
                     _P_EARLY + ["E04", "J01", "J02"] + _H + _F, id="early-flexible-22"),
        pytest.param("测试甲一", Shape("resident_pension", optional=("sscard_apply", ONE_CHILD)),
                     _R + ["J02"] + _H, id="resident-14"),
    ],
)
async def test_precheck_answer_lists_every_rule_with_item_department_result_and_reason_in_doc_order(
    gw: Running, person: str, shape: Shape, expected: list[str]
) -> None:
    answer = await precheck(gw, body_for(person, shape, "PRE-COUNT"))
    checks = answer["checks"]
    assert len(checks) == len(expected)
    assert [c["key"] for c in checks] == sorted(expected, key=DOC_ORDER.index)
    for c in checks:
        assert {"key", "item", "department", "result", "reason", "source", "query"} <= set(c), c
        assert c["source"] and c["query"].startswith(c["department"] + ": "), c
        assert c["item"] == ITEM_OF_PREFIX.get(c["key"][0], shape.initiating), c
        assert c["department"] == DEPT_OF_PREFIX[c["key"][0]], c
        assert c["result"] in ("pass", "fail", "not_applicable", "unverifiable"), c
        assert isinstance(c["reason"], str) and c["reason"].strip(), c
    if shape.early_reason in ("special_work_type", "illness"):
        other = "E02" if shape.early_reason == "special_work_type" else "E01"
        assert results(answer)[other] == "not_applicable"


async def test_m07_in_province_minimum_is_the_year_of_handlings(gw: Running) -> None:
    answer = await precheck(gw, body_for("测试M07本省", WITH_MEDICAL, "PRE-M07-PROV"))
    m07 = next(c for c in answer["checks"] if c["key"] == "M07")
    assert m07["result"] == "fail" and "2026年标准：累计30年，其中本省实际缴费13年" in m07["reason"]
    assert "湖南省职工基本医疗保险实施办法" in m07["source"]
    # The same person a year earlier would pass: 12 years were enough in 2025.
    earlier = body_for("测试M07本省", WITH_MEDICAL, "PRE-M07-2025") | {"submitted_at": "2025-12-03T10:00:00+08:00"}
    assert results(await precheck(gw, earlier))["M07"] == "pass"


async def test_the_hpf_record_centre_wins_over_the_declared_one(gw: Running) -> None:
    # 测试F中心 declares the province centre (430000); the province system's record says 430100.
    answer = await precheck(gw, body_for("测试F中心", WITH_FUND, "PRE-F-CENTRE"))
    got = results(answer)
    assert {got[k] for k in _F} == {"not_applicable"}, got
    fund = item(answer, FUND)
    assert (fund["included"], fund["reason_code"]) == (False, "HPF_CENTER_NOT_CONNECTED")
    assert "430100" in fund["reason"]
    assert answer["accepted"] is True


# ---------------------------------------------------------------------------------------------
# 3. A department that does not answer in time
# ---------------------------------------------------------------------------------------------

SLOW_TIMEOUT = 0.4  # the slow department's query_timeout (s)
SLACK = 1.0  # how much later than the timeout the answer may come back (s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def slow_server() -> AsyncIterator[tuple[str, list[str]]]:
    """Answers nothing until released (at teardown): far longer than any query timeout."""
    hits: list[str] = []
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        hits.append(request.path)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", hits
    finally:
        release.set()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def gateway_with_slow(
    config: GatewayConfig, workdir: Path, department: str
) -> AsyncIterator[tuple[Running, list[str]]]:
    """Like gateway.demo.running_gateway, but one department's REST endpoint is the slow server.

    (running_gateway points every department at the sandbox itself, so the override goes here.)
    """
    async with (
        run_sandbox(DEFAULT_PEOPLE, hpf_root=workdir / "hpf", decision_delay=0.05) as sandbox,
        slow_server() as (slow_url, hits),
    ):
        cfg = sandbox.point_gateway(config)
        assert isinstance(cfg, GatewayConfig)
        cfg = cfg.with_endpoint(department, "api", base_url=slow_url)
        cfg = replace(
            cfg,
            departments={
                **cfg.departments,
                department: replace(cfg.departments[department], query_timeout=SLOW_TIMEOUT),
            },
        )
        cfg = cfg.with_endpoint("hpf", "files", archive=str(workdir / "hpf-archive"), error=str(workdir / "hpf-error"))
        port = _free_port()
        cfg = replace(
            cfg, port=port, public_base_url=f"http://127.0.0.1:{port}",
            database_url=config.database_url if config.database_url.startswith("postgres")
            else f"sqlite:///{workdir / 'gateway.db'}",
        )
        runner = web.AppRunner(build_app(cfg), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            async with aiohttp.ClientSession() as http:
                yield Running(cfg.public_base_url, sandbox, cfg, http), hits
        finally:
            await runner.cleanup()


async def test_slow_optional_department_makes_its_checks_unverifiable_and_drops_only_its_item(
    config: GatewayConfig, tmp_path: Path
) -> None:
    async with gateway_with_slow(config, tmp_path, "nhsa") as (gw, hits):
        body = body_for("测试甲一", Shape("retire_normal", optional=(MEDICAL, ONE_CHILD)), "PRE-SLOW-NHSA")
        started = time.monotonic()
        answer = await precheck(gw, body)
        elapsed = time.monotonic() - started
        assert hits, "the gateway never asked the slow nhsa"
        assert elapsed < SLOW_TIMEOUT + SLACK, elapsed
        got = results(answer)
        assert {got[k] for k in _M} == {"unverifiable"}, got
        assert {k for k, r in got.items() if r == "unverifiable"} == set(_M), got
        assert answer["unverified_departments"] == ["nhsa"]
        medical = item(answer, MEDICAL)
        assert medical["included"] is False and medical["reason_code"] == "PRECHECK_UNVERIFIABLE"
        assert answer["accepted"] is True
        assert item(answer, "retire_normal")["included"] is True
        assert item(answer, ONE_CHILD)["included"] is True  # the other departments were judged

        # With all_or_nothing the unverifiable item refuses the whole application.
        strict = await precheck(gw, body | {"all_or_nothing": True})
        assert strict["accepted"] is False


async def test_slow_initiating_department_refuses_with_422_and_unverifiable_checks_never_fail(
    config: GatewayConfig, tmp_path: Path
) -> None:
    async with gateway_with_slow(config, tmp_path, "hrss") as (gw, hits):
        body = body_for("测试甲一", WITH_MEDICAL, "PRE-SLOW-HRSS")
        started = time.monotonic()
        status, problem, headers = await gw.post(SUBMIT, body)
        elapsed = time.monotonic() - started
        assert hits, "the gateway never asked the slow hrss"
        assert elapsed < SLOW_TIMEOUT + SLACK, elapsed
        assert status == 422, problem
        assert headers["Content-Type"].startswith(PROBLEM_JSON)
        got = results(problem)
        assert {got[k] for k in _P} == {"unverifiable"}, got  # P03 is computed, but hrss decides
        assert "fail" not in got.values(), got
        assert {got[k] for k in ["J01", "J02", *_M]} == {"pass"}, got
        assert problem["unverified_departments"] == ["hrss"]
        assert (await gw.get(f"{SUBMIT}/{body['application_no']}"))[0] == 404


# ---------------------------------------------------------------------------------------------
# 4. GET /api/v1/policy/retirement-age
# ---------------------------------------------------------------------------------------------

POLICY = "/api/v1/policy/retirement-age"
# retirement-age.md, worked examples: male 1966-07 → 60y5m, 2026-12, 60y (2026-07), 63y5m (2029-12).
MALE_1966_07 = {
    "category": "male",
    "birth": "1966-07",
    "statutory_age": {"years": 60, "months": 5},
    "retirement_month": "2026-12",
    "original_age": {"years": 60, "months": 0},
    "flexible_earliest": {"age": {"years": 60, "months": 0}, "month": "2026-07"},
    "flexible_latest": {"age": {"years": 63, "months": 5}, "month": "2029-12"},
    "min_contribution": {"years": 15, "months": 0},
}
MALE_1976_09 = {
    "category": "male",
    "birth": "1976-09",
    "statutory_age": {"years": 63, "months": 0},
    "retirement_month": "2039-09",
    "original_age": {"years": 60, "months": 0},
    "flexible_earliest": {"age": {"years": 60, "months": 0}, "month": "2036-09"},
    "flexible_latest": {"age": {"years": 66, "months": 0}, "month": "2042-09"},
    "min_contribution": {"years": 20, "months": 0},
}


async def _get(gw: Running, query: str) -> tuple[int, Any, str]:
    headers = gw.signed_headers("GET", POLICY + query, b"", None)
    async with gw.http.get(gw.base_url + POLICY + query, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers.get("Content-Type", "")


async def test_policy_endpoint_returns_the_worked_example(gw: Running) -> None:
    status, body, content_type = await _get(gw, "?birth=1966-07&category=male")
    assert status == 200 and content_type.startswith("application/json")
    assert body == MALE_1966_07


def _min_contribution(year: int) -> dict[str, int]:
    """retirement-age.md, annex 4: 15 years to 2029, +6 months a year from 2030, 20 years from 2039."""
    months = min(180 + 6 * max(0, year - 2029), 240)
    return {"years": months // 12, "months": months % 12}


def _worked_json(example: tuple[Any, ...]) -> dict[str, Any]:
    """retirement-age.md's worked-example row as the policy JSON."""
    category, birth, age, retires, earliest, latest = example
    original = {"male": 60, "female_cadre": 55, "female_worker": 50}[str(category)]
    return {
        "category": str(category),
        "birth": birth,
        "statutory_age": {"years": age[0], "months": age[1]},
        "retirement_month": retires,
        "original_age": {"years": original, "months": 0},
        "flexible_earliest": {"age": {"years": earliest[0], "months": earliest[1]}, "month": earliest[2]},
        "flexible_latest": {"age": {"years": latest[0], "months": latest[1]}, "month": latest[2]},
        "min_contribution": _min_contribution(int(retires[:4])),
    }


WORKED = [pytest.param(e, id=f"{e[0]}-{e[1]}") for e in WORKED_EXAMPLES]


def test_all_ten_worked_examples_are_covered() -> None:
    assert len(WORKED) == 10


@pytest.mark.parametrize("example", WORKED)
async def test_policy_endpoint_gives_every_worked_example(gw: Running, example: tuple[Any, ...]) -> None:
    status, body, _ = await _get(gw, f"?birth={example[1]}&category={example[0]}")
    assert status == 200
    assert body == _worked_json(example)


@pytest.mark.parametrize("example", WORKED)
def test_cli_policy_gives_every_worked_example(example: tuple[Any, ...]) -> None:
    done = _cli("policy", "retirement-age", "--birth", example[1], "--category", str(example[0]))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _worked_json(example)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?birth=1966-13&category=male", {"birth"}),
        ("?birth=1966-7&category=male", {"birth"}),
        ("?category=male", {"birth"}),
        ("?birth=1966-07&category=female", {"category"}),
        ("?birth=1966-07", {"category"}),
        ("?birth=July&category=woman", {"birth", "category"}),
    ],
)
async def test_policy_endpoint_bad_query_is_a_400_problem_naming_the_parameter(
    gw: Running, query: str, names: set[str]
) -> None:
    status, body, content_type = await _get(gw, query)
    assert status == 400 and content_type.startswith(PROBLEM_JSON)
    assert {e["pointer"].lstrip("/") for e in body["errors"]} == names
    assert any(name in body["detail"] for name in names)


async def test_policy_endpoint_birth_beyond_the_calendar_is_a_400_not_a_500(gw: Running) -> None:
    status, body, _ = await _get(gw, "?birth=9999-12&category=male")
    assert status == 400, (status, body)
    assert [e["pointer"].lstrip("/") for e in body["errors"]] == ["birth"]


# ---------------------------------------------------------------------------------------------
# 5. The command line
# ---------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_CONFIG", "GATEWAY_DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_cli_policy_prints_the_policy_json() -> None:
    done = _cli("policy", "retirement-age", "--birth", "1976-09", "--category", "male")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == MALE_1976_09
    assert list(json.loads(done.stdout)) == list(MALE_1976_09)


@pytest.mark.parametrize(
    "args", [("--birth", "1976-09", "--category", "female"), ("--birth", "1976/09", "--category", "male")]
)
def test_cli_policy_bad_input_exits_non_zero_with_an_error(args: tuple[str, ...]) -> None:
    done = _cli("policy", "retirement-age", *args)
    assert done.returncode != 0
    assert done.stdout == ""
    assert "error:" in done.stderr
    if "female" in args:
        assert "female_cadre" in done.stderr and "female_worker" in done.stderr  # says what is valid


def test_cli_policy_birth_beyond_the_calendar_is_a_clean_error() -> None:
    done = _cli("policy", "retirement-age", "--birth", "9999-12", "--category", "male")
    assert done.returncode == 2 and done.stderr.startswith("error:"), done.stderr


def _config_with_police_mapping(tmp_path: Path, mapping_text: str) -> Path:
    """The default config, relocated to tmp_path, with the police mapping replaced by ``mapping_text``."""
    mapping = tmp_path / "police.v1.toml"
    mapping.write_text(mapping_text, encoding="utf-8")
    text = (ROOT / "config" / "gateway.toml").read_text(encoding="utf-8")
    old = 'mapping = "mappings/police.v1.toml"'
    assert old in text
    text = f"base_dir = {json.dumps(str(ROOT))}\n" + text.replace(old, f"mapping = {json.dumps(str(mapping))}")
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_check_config_accepts_the_default_config() -> None:
    done = _cli("check-config")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok:")


def test_cli_check_config_rejects_a_mapping_with_an_unknown_transform(tmp_path: Path) -> None:
    police = (ROOT / "mappings" / "police.v1.toml").read_text(encoding="utf-8")
    (tmp_path / "good").mkdir()
    good = _config_with_police_mapping(tmp_path / "good", police)
    assert _cli("check-config", "--config", str(good)).returncode == 0  # relocation alone is fine

    rule = 'xm = "applicant.name"'
    assert rule in police
    bad_text = police.replace(rule, 'xm = { path = "applicant.name", rot13 = true }')
    (tmp_path / "bad").mkdir()
    bad = _config_with_police_mapping(tmp_path / "bad", bad_text)
    done = _cli("check-config", "--config", str(bad))
    assert done.returncode != 0
    assert "unknown transform" in done.stderr and "rot13" in done.stderr
    assert "police.v1.toml" in done.stderr


async def test_the_configured_early_retirement_ages_reach_the_running_gateway(
    config: GatewayConfig, tmp_path: Path
) -> None:
    """[policy.early_retirement] is what the pre-check answers with (a warning, never a refusal)."""
    from gateway.demo import running_gateway
    from gateway.domain.retirement_age import Age
    from tests.conftest import Running, demo_application

    app = demo_application("DEMO-004")  # a man of 58 retiring early for special type of work
    for age, warned in ((Age(55), False), (Age(60), True)):
        cfg = replace(config, early_retirement=replace(config.early_retirement, special_work_type_male=age))
        async with running_gateway(cfg, tmp_path / str(age.years), DEFAULT_PEOPLE, decision_delay=0.02) as (
            url, sb, c
        ), aiohttp.ClientSession() as http:
            status, body, _ = await Running(url, sb, c, http).post("/api/v1/prechecks", app)
        assert status == 200 and body["accepted"] is True
        assert any("EARLY_RETIREMENT_AGE_NOT_REACHED" in w for w in body["warnings"]) is warned, body["warnings"]
