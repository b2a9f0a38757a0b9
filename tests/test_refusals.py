"""What a 422 pre-check refusal says (gateway/acceptance.py ``_refusal``): exactly what refused the
application, never an empty "前置校验未通过：", never a silent cut; ``checks`` keeps every check."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from gateway.acceptance import Acceptance
from gateway.domain.prechecks import UNAVAILABLE, Evaluation, evaluate
from tests.conftest import Running, demo_application
from tests.test_prechecks import (
    CARD_APPLY,
    FUND,
    MEDICAL,
    ONE_CHILD,
    OWN_CARD,
    S_NORMAL,
    S_RESIDENT,
    answers,
    request,
)

SUBMIT = "/api/v1/joint-applications"
NOT_OWNED = "6222020000000000006"


def refusal(scenario: dict[str, Any], **changes: Any) -> dict[str, Any]:
    ev: Evaluation = evaluate(request(**scenario), answers(**changes))
    assert not ev.accepted
    body = Acceptance._refusal(object.__new__(Acceptance), ev).body()  # the method reads only the evaluation
    assert body["checks"] == [c.to_json() for c in ev.checks]  # every check, whatever the detail says
    return body


# (case, scenario, department changes, what the detail must say, what it must not say)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[str], list[str]]] = [
    ("initiating check fails, one-child alternative H03 fails too",
     {**S_NORMAL, "optional": (ONE_CHILD,)}, {"hrss": {"arrears": True}},
     ["前置校验未通过：P10 未通过：申请人没有社会保险费欠费情况"], ["H03", "H01"]),
    ("initiating check unverifiable", S_NORMAL, {"justice": UNAVAILABLE},
     ["J01 无法核验", "J02 无法核验", "司法数据暂时无法获取"], ["P01"]),
    ("failures come before unverifiable checks", S_NORMAL,
     {"hrss": {"arrears": True, "gaps": "yes", "contribution_months": 100}},
     ["前置校验未通过：P10 未通过", "P12 未通过", "P13 无法核验"], []),
    ("more than five: shortened, and says so", S_NORMAL, {"hrss": UNAVAILABLE},
     ["P01 无法核验", "……等13项（见 checks）"], ["P07 "]),
    ("all_or_nothing: fund centre not connected", {**S_NORMAL, "center": "430100", "all_or_nothing": True}, {},
     ["以下事项未能纳入", "住房公积金提取（退休提取）：该公积金中心暂未接入，请到所属中心办理"],
     ["前置校验未通过：；", "M0"]),
    ("all_or_nothing: the hpf record names another centre", {**S_NORMAL, "all_or_nothing": True},
     {"hpf": {"center": "430100"}}, ["住房公积金提取（退休提取）：", "430100"], []),
    ("all_or_nothing: edited card not the applicant's",
     {**S_NORMAL, "all_or_nothing": True, "card": NOT_OWNED, "edited": True}, {},
     ["住房公积金提取（退休提取）：修改后的卡号不是申请人本人的社会保障卡或一类储蓄卡"], [NOT_OWNED, "M0"]),
    ("all_or_nothing: an optional item's check fails", {**S_NORMAL, "all_or_nothing": True},
     {"nhsa": {"transfer_pending": True}},
     ["职工基本医疗保险参保登记（在职转退休）：前置校验未通过：M03（M03 未通过：申请人没有需要转移接续"],
     ["住房公积金"]),
    ("all_or_nothing: no one-child alternative passes", {**S_RESIDENT, "optional": (ONE_CHILD,), "all_or_nothing": True,
                                                         "today": date(2045, 1, 1)},
     {"health": {"urban": False}}, ["城镇独生子女父母奖励对象申请：", "H01 未通过", "H02 未通过", "H03 未通过"], []),
    ("all_or_nothing: a card item not needed is not a cause",
     {**S_NORMAL, "optional": (CARD_APPLY, MEDICAL), "all_or_nothing": True}, {"nhsa": UNAVAILABLE},
     ["职工基本医疗保险参保登记（在职转退休）：前置校验无法核验", "M01 无法核验"], ["社会保障卡", "已有社会保障卡"]),
]


@pytest.mark.parametrize(("scenario", "changes", "says", "not_says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_refusal_detail_names_exactly_what_refused_the_application(
    scenario: dict[str, Any], changes: dict[str, Any], says: list[str], not_says: list[str]
) -> None:
    body = refusal(scenario, **changes)
    detail = body["detail"]
    assert not detail.endswith("：") and "：；" not in detail, detail
    for text in says:
        assert text in detail, (text, detail)
    for text in not_says:
        assert text not in detail, (text, detail)
    assert body["checks_withheld"] is False


def test_identity_refusal_says_the_checks_are_withheld_and_reports_the_id_entry() -> None:
    body = refusal({**S_NORMAL, "optional": (FUND,), "card": OWN_CARD}, police={"identity_verified": False})
    assert body["type"].endswith("/identity-not-verified")
    assert body["checks_withheld"] is True
    assert "不予披露" in body["detail"] and "公安" in body["detail"]
    assert [(c["key"], c["department"], c["result"]) for c in body["checks"]] == [("ID", "police", "fail")]
    unverifiable = refusal(S_NORMAL, police=UNAVAILABLE)
    assert unverifiable["type"].endswith("/identity-unverifiable") and unverifiable["checks_withheld"] is True
    assert [(c["key"], c["result"]) for c in unverifiable["checks"]] == [("ID", "unverifiable")]


# --- over HTTP ------------------------------------------------------------------------------------


async def test_all_or_nothing_refusal_over_http_names_the_item_and_its_reason(gw: Running) -> None:
    # 测试戊一's fund is held by a city centre (430100): with all_or_nothing the whole application is refused.
    app = copy.deepcopy(demo_application("DEMO-021")) | {"application_no": "REFUSE-AON-1", "all_or_nothing": True}
    status, problem, _ = await gw.post(SUBMIT, app)
    assert status == 422 and problem["type"].endswith("/all-or-nothing"), problem
    assert "住房公积金提取（退休提取）：该公积金中心暂未接入" in problem["detail"]
    assert len(problem["checks"]) == 15 + 7 + 3  # P01–P13, J01–J02, M01–M07, F01–F03: every check listed
    # 测试庚一 edited his card to one that is not his.
    card = copy.deepcopy(demo_application("DEMO-032")) | {"application_no": "REFUSE-AON-2", "all_or_nothing": True}
    status, problem, _ = await gw.post(SUBMIT, card)
    assert status == 422 and "修改后的卡号不是申请人本人的" in problem["detail"], problem
    assert card["bank_card"]["number"] not in problem["detail"]


async def test_identity_refusal_over_http_has_the_id_entry_and_says_nothing_else_is_disclosed(gw: Running) -> None:
    status, problem, _ = await gw.post(SUBMIT, demo_application("DEMO-017"))  # 测试戊四: identity not verified
    assert status == 422 and problem["type"].endswith("/identity-not-verified"), problem
    assert problem["checks_withheld"] is True and "不予披露" in problem["detail"]
    assert [(c["key"], c["department"], c["result"], c["code"]) for c in problem["checks"]] == [
        ("ID", "police", "fail", "ID_FAIL")
    ]
    status, answer, _ = await gw.post("/api/v1/prechecks", demo_application("DEMO-017"))
    assert status == 200 and answer["accepted"] is False
    assert [c["key"] for c in answer["checks"]] == ["ID"]
