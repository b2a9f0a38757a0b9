"""Pre-checks and item matching (docs/eligibility.md).

Every case starts from BASE, a person who passes every check, and changes one
thing. ``answers(hrss={"arrears": True})`` merges fields into a department's
record; ``answers(hrss=None)`` is "no record"; ``answers(hrss=UNAVAILABLE)`` an outage.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest

from gateway.domain.items import Department, EarlyReason, Item, Mode
from gateway.domain.prechecks import (
    UNAVAILABLE,
    Applicant,
    DeptAnswer,
    Evaluation,
    Outcome,
    Request,
    departments_needed,
    evaluate,
    planned_check_keys,
)
from gateway.domain.retirement_age import Age, AgeDelay, EarlyRetirementAges, YearMonth
from tests.conftest import EXAMPLES

TODAY = date(2026, 12, 3)
NORMAL, EARLY, RESIDENT = Item.RETIRE_NORMAL, Item.RETIRE_EARLY, Item.RESIDENT_PENSION
SPECIAL, ILLNESS, FLEXIBLE = EarlyReason.SPECIAL_WORK_TYPE, EarlyReason.ILLNESS, EarlyReason.FLEXIBLE
MEDICAL, ONE_CHILD, FUND = (
    Item.MEDICAL_RETIREE_REGISTRATION,
    Item.ONE_CHILD_PARENT_REWARD,
    Item.PROVIDENT_FUND_WITHDRAWAL,
)
CARD_APPLY, CARD_ACTIVATE = Item.SSCARD_APPLY, Item.SSCARD_ACTIVATE
OWN_CARD = "6222021234567890128"  # passes Luhn

BASE: dict[str, dict[str, Any]] = {
    "police": {"identity_verified": True},
    "hrss": {
        "pension_scheme": "employee",
        "receiving_pension": False,
        "receiving_other_basic_pension": False,
        "contribution_months": 312,
        "deemed_contribution_months": 0,
        "arrears": False,
        "gaps": False,
        "irregular_contributions": False,
        "out_of_province_transfer_pending": False,
        "institution_relation": False,
        "urban_rural_linkage_pending": False,
        "military_transfer_pending": False,
        "multiple_accounts": False,
        "contributions_in_ineligible_period": False,
        "benefit_authentication_passed": True,
        "special_work_type_filed": True,
        "labour_capacity": "complete_loss_illness",
        "publicity_working_days": 5,
        "receiving_injury_benefits": False,
        "receiving_unemployment_benefits": False,
        "has_sscard": True,
        "sscard_social_function_active": True,
    },
    "justice": {"prison_record_affecting_benefits": False, "serving_sentence": False},
    "nhsa": {
        "insured": True,
        "category": "in_service",
        "contribution_months": 372,
        "province_contribution_months": 300,
        "transfer_pending": False,
        "military_transfer_pending": False,
        "employee_accounts": 1,
        "deemed_contribution_months": 0,
    },
    # One child with a certificate: H01 and H02 pass, H03 (childless) does not.
    "health": {
        "urban": True,
        "certificate_date": "2001-06-01",
        "eligible_before_2016": True,
        "children_born_or_adopted": 1,
    },
    "hpf": {
        "center": "430000",
        "frozen_by_court": False,
        "loan_outstanding": False,
        "account_status": "sealed",
        "bank_cards": [OWN_CARD],
    },
}


def answers(**changes: Any) -> dict[Department, DeptAnswer]:
    """BASE with departments' fields changed (dict), set to no record (None) or UNAVAILABLE."""
    result: dict[Department, DeptAnswer] = {}
    for name, record in copy.deepcopy(BASE).items():
        change = changes.get(name, {})
        result[Department(name)] = {**record, **change} if isinstance(change, dict) else change
    return result


# Scenarios: the request keyword arguments for each kind of application.
S_NORMAL: dict[str, Any] = {"initiating": NORMAL, "optional": (MEDICAL, FUND)}
S_SPECIAL: dict[str, Any] = {"initiating": EARLY, "reason": SPECIAL, "birth": date(1969, 8, 8), "optional": (FUND,)}
S_ILLNESS: dict[str, Any] = {**S_SPECIAL, "reason": ILLNESS}
# Male 1967-01: statutory 60y7m in 2027-08, flexible earliest 60y in 2027-01 (= the default month).
S_FLEXIBLE: dict[str, Any] = {"initiating": EARLY, "reason": FLEXIBLE, "birth": date(1967, 1, 20)}
S_RESIDENT: dict[str, Any] = {"initiating": RESIDENT}


def request(
    initiating: Item = NORMAL,
    reason: EarlyReason | None = None,
    optional: tuple[Item, ...] = (),
    *,
    all_or_nothing: bool = False,
    gender: str = "male",
    birth: date = date(1960, 5, 15),
    position: str | None = None,
    center: str | None = "430000",
    today: date = TODAY,
    requested: YearMonth | None = None,
    card: str | None = None,
    edited: bool = False,
) -> Request:
    applicant = Applicant(gender, birth, position, "urban", center)
    return Request(initiating, reason, optional, all_or_nothing, applicant, today, requested, card, edited)


def run(scenario: dict[str, Any], **changes: Any) -> Evaluation:
    return evaluate(request(**scenario), answers(**changes))


def failing(ev: Evaluation) -> set[str]:
    return {c.key for c in ev.checks if c.result is Outcome.fail}


def decision(ev: Evaluation, item: Item) -> tuple[bool, str]:
    d = next(d for d in ev.items if d.item is item)
    return d.included, d.reason_code


# --- every check passes for BASE ------------------------------------------------------------------


@pytest.mark.parametrize("scenario", [S_NORMAL, S_SPECIAL, S_ILLNESS, S_FLEXIBLE, S_RESIDENT])
def test_base_person_passes_every_check_and_is_accepted(scenario: dict[str, Any]) -> None:
    ev = run(scenario)
    assert failing(ev) == set()
    assert {c.result for c in ev.checks} <= {Outcome.pass_, Outcome.not_applicable}
    assert ev.accepted and ev.refusal_code is None
    assert all(d.included for d in ev.items if d.mode is not Mode.AUTOMATIC)


# --- each check fails alone when one fact changes ---------------------------------------------------

FAIL_CASES: list[tuple[str, dict[str, Any], dict[str, Any], set[str]]] = [
    ("P01", S_NORMAL, {"hrss": {"pension_scheme": "resident"}}, {"P01"}),
    ("P02", S_NORMAL, {"hrss": {"receiving_pension": True}}, {"P02"}),
    ("P03", {**S_NORMAL, "birth": date(1966, 8, 1)}, {}, {"P03"}),  # 60y5m reached in 2027-01
    ("P04", S_NORMAL, {"hrss": {"irregular_contributions": True}}, {"P04"}),
    ("P05", S_NORMAL, {"hrss": {"out_of_province_transfer_pending": True}}, {"P05"}),
    ("P06", S_NORMAL, {"hrss": {"institution_relation": True}}, {"P06"}),
    ("P07", S_NORMAL, {"hrss": {"urban_rural_linkage_pending": True}}, {"P07"}),
    ("P08", S_NORMAL, {"hrss": {"military_transfer_pending": True}}, {"P08"}),
    ("P09", S_NORMAL, {"hrss": {"multiple_accounts": True}}, {"P09"}),
    ("P10", S_NORMAL, {"hrss": {"arrears": True}}, {"P10"}),
    ("P11", S_NORMAL, {"hrss": {"deemed_contribution_months": 12}}, {"P11"}),
    ("P12", S_NORMAL, {"hrss": {"contribution_months": 179}}, {"P12"}),
    ("P13", S_NORMAL, {"hrss": {"contribution_months": 179, "gaps": True}}, {"P12", "P13"}),
    ("P03E", {**S_SPECIAL, "birth": date(1960, 5, 15)}, {}, {"P03E"}),
    ("E01", S_SPECIAL, {"hrss": {"special_work_type_filed": False}}, {"E01"}),
    ("E02", S_ILLNESS, {"hrss": {"labour_capacity": None}}, {"E02"}),
    ("E03", S_ILLNESS, {"hrss": {"publicity_working_days": 4}}, {"E03"}),
    ("E04", {**S_FLEXIBLE, "requested": YearMonth(2026, 12)}, {}, {"E04"}),
    ("J01", S_NORMAL, {"justice": {"prison_record_affecting_benefits": True}}, {"J01"}),
    ("J02", S_RESIDENT, {"justice": {"serving_sentence": True}}, {"J02"}),
    ("M01", S_NORMAL, {"nhsa": {"insured": False}}, {"M01"}),
    ("M02", S_NORMAL, {"nhsa": {"category": "retired"}}, {"M02"}),
    ("M03", S_NORMAL, {"nhsa": {"transfer_pending": True}}, {"M03"}),
    ("M04", S_NORMAL, {"nhsa": {"military_transfer_pending": True}}, {"M04"}),
    ("M05", S_NORMAL, {"nhsa": {"employee_accounts": 2}}, {"M05"}),
    ("M06", S_NORMAL, {"nhsa": {"deemed_contribution_months": 1}}, {"M06"}),
    ("M07", S_NORMAL, {"nhsa": {"contribution_months": 359}}, {"M07"}),
    ("F01", S_NORMAL, {"hpf": {"frozen_by_court": True}}, {"F01"}),
    ("F02", S_NORMAL, {"hpf": {"loan_outstanding": True}}, {"F02"}),
    ("F03", S_NORMAL, {"hpf": {"account_status": "normal"}}, {"F03"}),
    ("R01", {**S_RESIDENT, "birth": date(1966, 12, 4)}, {}, {"R01"}),  # 60th birthday is tomorrow
    ("R02", S_RESIDENT, {"hrss": {"benefit_authentication_passed": False}}, {"R02"}),
    ("R03", S_RESIDENT, {"hrss": {"receiving_other_basic_pension": True}}, {"R03"}),
    ("R04", S_RESIDENT, {"hrss": {"out_of_province_transfer_pending": True}}, {"R04"}),
    ("R05", S_RESIDENT, {"hrss": {"urban_rural_linkage_pending": True}}, {"R05"}),
    ("R06", S_RESIDENT, {"hrss": {"multiple_accounts": True}}, {"R06"}),
    ("R07", S_RESIDENT, {"hrss": {"contributions_in_ineligible_period": True}}, {"R07"}),
    ("R08", S_RESIDENT, {"hrss": {"arrears": True}}, {"R08"}),
    ("R09", S_RESIDENT, {"hrss": {"contribution_months": 179}}, {"R09"}),
    ("R10", S_RESIDENT, {"hrss": {"contribution_months": 179, "gaps": True}}, {"R09", "R10"}),
]


@pytest.mark.parametrize(("key", "scenario", "changes", "expected"), FAIL_CASES, ids=[c[0] for c in FAIL_CASES])
def test_changing_one_fact_fails_exactly_its_check(
    key: str, scenario: dict[str, Any], changes: dict[str, Any], expected: set[str]
) -> None:
    ev = run(scenario, **changes)
    assert failing(ev) == expected
    check = ev.check(key)
    assert (check.result, check.code) == (Outcome.fail, f"{key}_FAIL")
    assert check.reason.startswith("未通过")


def test_fail_table_covers_every_check_key_but_the_h_alternatives() -> None:
    every = set(planned_check_keys(NORMAL, None, (MEDICAL, ONE_CHILD, FUND)))
    every |= set(planned_check_keys(EARLY, SPECIAL, ())) | set(planned_check_keys(EARLY, ILLNESS, ()))
    every |= set(planned_check_keys(EARLY, FLEXIBLE, ())) | set(planned_check_keys(RESIDENT, None, ()))
    assert every - {c[0] for c in FAIL_CASES} == {"H01", "H02", "H03"}  # tested below, as alternatives


# --- boundaries: the last passing value --------------------------------------------------------------

PASS_EDGES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("P03", {**S_NORMAL, "birth": date(1966, 7, 31)}, {}),  # 60y5m reached in 2026-12, this month
    ("P03E", {**S_SPECIAL, "birth": date(1966, 8, 1)}, {}),  # statutory month 2027-01, still ahead
    ("P12", S_NORMAL, {"hrss": {"contribution_months": 180}}),
    ("P12", S_SPECIAL, {"hrss": {"contribution_months": 180}}),  # special type: the application's year, 2026
    ("E03", S_SPECIAL, {"hrss": {"publicity_working_days": 5}}),
    ("M05", S_NORMAL, {"nhsa": {"employee_accounts": 1}}),
    ("M07", S_NORMAL, {"nhsa": {"contribution_months": 360, "province_contribution_months": 156}}),
    ("M07", {**S_NORMAL, "gender": "female", "position": "worker"}, {"nhsa": {"contribution_months": 300}}),
    ("R01", {**S_RESIDENT, "birth": date(1966, 12, 3)}, {}),
    ("R09", S_RESIDENT, {"hrss": {"contribution_months": 180}}),
]


@pytest.mark.parametrize(("key", "scenario", "changes"), PASS_EDGES, ids=[c[0] for c in PASS_EDGES])
def test_value_at_the_threshold_passes(key: str, scenario: dict[str, Any], changes: dict[str, Any]) -> None:
    assert run(scenario, **changes).check(key).result is Outcome.pass_


def test_p12_minimum_rises_with_the_reform_year() -> None:
    # Male 1969-08 reaches his statutory age (61y2m) in 2030-10: the 2030 minimum is 15y6m.
    retiring_2030 = {**S_NORMAL, "birth": date(1969, 8, 8), "today": date(2030, 11, 5)}
    ev = run(retiring_2030, hrss={"contribution_months": 185})
    assert failing(ev) == {"P12"}
    assert "2030年标准为15年6个月" in ev.check("P12").reason
    assert run(retiring_2030, hrss={"contribution_months": 186}).check("P12").result is Outcome.pass_


# Male 1970-01: statutory 61y4m reached in 2031-05 (minimum 16y = 192 months); flexible from 2030-01.
_B1970 = date(1970, 1, 5)
REFERENCE_YEARS: list[tuple[str, dict[str, Any], int, int]] = [
    # (case, scenario, reference year, its minimum in months)
    ("normal: year the statutory age is reached", {**S_NORMAL, "birth": _B1970, "today": date(2031, 6, 1)}, 2031, 192),
    ("flexible: year of the requested month", {**S_FLEXIBLE, "birth": _B1970, "requested": YearMonth(2030, 6)},
     2030, 186),
    ("special type: the application's year", {**S_SPECIAL, "birth": _B1970}, 2026, 180),
    ("illness: the application's year", {**S_ILLNESS, "birth": _B1970}, 2026, 180),
    ("special type in 2030", {**S_SPECIAL, "birth": _B1970, "today": date(2030, 3, 1)}, 2030, 186),
]


@pytest.mark.parametrize(
    ("scenario", "year", "minimum"), [c[1:] for c in REFERENCE_YEARS], ids=[c[0] for c in REFERENCE_YEARS]
)
def test_p12_reference_year_follows_the_year_of_retirement(scenario: dict[str, Any], year: int, minimum: int) -> None:
    """Annex 4 goes by the year of retirement: special type/illness retire when approved, i.e. now."""
    at = run(scenario, hrss={"contribution_months": minimum})
    below = run(scenario, hrss={"contribution_months": minimum - 1})
    assert at.check("P12").result is Outcome.pass_
    assert below.check("P12").result is Outcome.fail and failing(below) == {"P12"}
    assert f"{year}年标准" in below.check("P12").reason


GAP_EDGES: list[tuple[str, dict[str, Any], int, bool, tuple[Outcome, Outcome]]] = [
    # (gaps check, scenario, months, gaps, (years check, gaps check))
    ("P13", S_NORMAL, 180, True, (Outcome.pass_, Outcome.not_applicable)),  # exactly the minimum: gaps ignored
    ("P13", S_NORMAL, 179, True, (Outcome.fail, Outcome.fail)),
    ("P13", S_NORMAL, 179, False, (Outcome.fail, Outcome.pass_)),
    ("P13", {**S_FLEXIBLE, "birth": _B1970, "requested": YearMonth(2030, 6)}, 186, True,
     (Outcome.pass_, Outcome.not_applicable)),  # the 2030 minimum, 15y6m
    ("P13", {**S_FLEXIBLE, "birth": _B1970, "requested": YearMonth(2030, 6)}, 185, True, (Outcome.fail, Outcome.fail)),
    ("R10", S_RESIDENT, 180, True, (Outcome.pass_, Outcome.not_applicable)),
    ("R10", S_RESIDENT, 179, True, (Outcome.fail, Outcome.fail)),
]


@pytest.mark.parametrize(("key", "scenario", "months", "gaps", "expected"), GAP_EDGES)
def test_gaps_are_judged_only_under_the_minimum_and_ignored_exactly_at_it(
    key: str, scenario: dict[str, Any], months: int, gaps: bool, expected: tuple[Outcome, Outcome]
) -> None:
    years_key = {"P13": "P12", "R10": "R09"}[key]
    ev = run(scenario, hrss={"contribution_months": months, "gaps": gaps})
    assert (ev.check(years_key).result, ev.check(key).result) == expected


def test_m07_in_province_years_follow_the_year_of_handling() -> None:
    thin = {"nhsa": {"province_contribution_months": 156}}  # 13 years: enough in 2026, not in 2027
    assert run(S_NORMAL, **thin).check("M07").result is Outcome.pass_
    assert run({**S_NORMAL, "today": date(2027, 1, 5)}, **thin).check("M07").result is Outcome.fail
    assert run(S_NORMAL, nhsa={"province_contribution_months": 155}).check("M07").result is Outcome.fail


def test_m07_asks_women_for_25_years() -> None:
    woman = {**S_NORMAL, "gender": "female", "position": "cadre", "birth": date(1968, 1, 1)}
    assert run(woman, nhsa={"contribution_months": 299}).check("M07").result is Outcome.fail


def test_p13_is_not_applicable_when_years_reach_the_minimum() -> None:
    ev = run(S_NORMAL, hrss={"gaps": True})  # gaps do not matter with 312 months
    assert (ev.check("P13").result, ev.check("P13").code) == (Outcome.not_applicable, "P13_NA")
    assert ev.accepted


def test_p13_passes_when_under_minimum_without_gaps() -> None:
    ev = run(S_NORMAL, hrss={"contribution_months": 100})
    assert ev.check("P13").result is Outcome.pass_ and failing(ev) == {"P12"}


def test_female_worker_category_decides_p03() -> None:
    # Born 1975-01: a worker (50y1m, 2025-02) has reached her age; a cadre (55y) has not.
    worker = {**S_NORMAL, "gender": "female", "position": "worker", "birth": date(1975, 1, 10)}
    assert run(worker).check("P03").result is Outcome.pass_
    assert run({**worker, "position": "cadre"}).check("P03").result is Outcome.fail


# --- flexible early retirement (E04) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "result"),
    [
        (None, Outcome.pass_),  # default: the month after today's = 2027-01 = earliest
        (YearMonth(2026, 12), Outcome.fail),  # before the earliest month
        (YearMonth(2027, 7), Outcome.pass_),  # the last month before the statutory month
        (YearMonth(2027, 8), Outcome.fail),  # the statutory month itself is not "early"
    ],
)
def test_e04_accepts_months_from_flexible_earliest_up_to_the_statutory_month(
    requested: YearMonth | None, result: Outcome
) -> None:
    assert run({**S_FLEXIBLE, "requested": requested}).check("E04").result is result


def test_e04_refuses_a_requested_month_before_the_submission_month() -> None:
    # Male 1967-01, window 2027-01 … 2027-07; submitted in 2027-03: 2027-02 lies in the window but is past.
    march = {**S_FLEXIBLE, "today": date(2027, 3, 10)}
    past = run({**march, "requested": YearMonth(2027, 2)})
    assert failing(past) == {"E04"} and not past.accepted
    assert "早于提交申请的月份2027-03" in past.check("E04").reason
    assert run({**march, "requested": YearMonth(2027, 3)}).check("E04").result is Outcome.pass_  # this month
    assert run({**march, "requested": None}).check("E04").result is Outcome.pass_  # default: next month


def test_e04_fails_when_the_statutory_month_is_before_2025() -> None:
    # Male 1964-12: statutory 60y in 2024-12, no flexible window; asking in 2024-06 (P03E passes).
    ev = run({**S_FLEXIBLE, "birth": date(1964, 12, 1), "today": date(2024, 6, 3)})
    assert failing(ev) == {"E04"}
    assert "早于2025年1月" in ev.check("E04").reason
    assert ev.check("P03E").result is Outcome.pass_


def test_flexible_uses_e04_instead_of_e01_to_e03() -> None:
    keys = planned_check_keys(EARLY, FLEXIBLE, ())
    assert "E04" in keys and not {"E01", "E02", "E03"} & set(keys)


# --- totals and order ---------------------------------------------------------------------------------

ALL_NORMAL = (CARD_APPLY, CARD_ACTIVATE, MEDICAL, ONE_CHILD, FUND)
ALL_EARLY = (CARD_APPLY, CARD_ACTIVATE, ONE_CHILD, FUND)
ALL_RESIDENT = (CARD_APPLY, CARD_ACTIVATE, ONE_CHILD)


@pytest.mark.parametrize(
    ("initiating", "reason", "optional", "total"),
    [
        (NORMAL, None, ALL_NORMAL, 28),
        (EARLY, SPECIAL, ALL_EARLY, 24),
        (EARLY, ILLNESS, ALL_EARLY, 24),
        (EARLY, FLEXIBLE, ALL_EARLY, 22),
        (RESIDENT, None, ALL_RESIDENT, 14),
        (NORMAL, None, (), 15),
        (RESIDENT, None, (), 11),
    ],
)
def test_check_totals_match_the_plan(
    initiating: Item, reason: EarlyReason | None, optional: tuple[Item, ...], total: int
) -> None:
    keys = planned_check_keys(initiating, reason, optional)
    assert len(keys) == len(set(keys)) == total
    birth = date(1969, 8, 8) if initiating is EARLY else date(1960, 5, 15)
    ev = evaluate(request(initiating, reason, optional, birth=birth), answers())
    assert tuple(c.key for c in ev.checks) == keys


def test_checks_are_reported_in_key_order() -> None:
    assert planned_check_keys(EARLY, SPECIAL, (ONE_CHILD, FUND)) == (
        *("P01", "P02", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12", "P13"),
        *("P03E", "E01", "E02", "E03", "J01", "J02", "H01", "H02", "H03", "F01", "F02", "F03"),
    )
    assert planned_check_keys(RESIDENT, None, (ONE_CHILD,))[:4] == ("J02", "H01", "H02", "H03")


def test_each_check_reports_its_item_and_department() -> None:
    ev = run({**S_NORMAL, "optional": (MEDICAL, ONE_CHILD, FUND)})
    owners = {c.key: (c.item, c.department) for c in ev.checks}
    assert owners["P01"] == (NORMAL, Department.HRSS)
    assert owners["J01"] == (NORMAL, Department.JUSTICE)
    assert owners["M07"] == (MEDICAL, Department.NHSA)
    assert owners["H02"] == (ONE_CHILD, Department.HEALTH)
    assert owners["F03"] == (FUND, Department.HPF)
    assert ev.check("P01").to_json() == {
        "key": "P01",
        "item": "retire_normal",
        "department": "hrss",
        "result": "pass",
        "code": "P01_PASS",
        "reason": ev.check("P01").reason,
        "source": "seed §八(一)1 第1项",
        "query": "hrss: pension_scheme",
    }


# (initiating, reason, key, what its source must name): the seed numbers rows per list.
SOURCES: list[tuple[Item, EarlyReason | None, str, tuple[str, ...]]] = [
    (NORMAL, None, "P12", ("seed §八(一)1 第12项", "附件4")),
    (EARLY, SPECIAL, "P12", ("seed §八(二)1 第15项", "附件4")),
    (NORMAL, None, "P03", ("seed §八(一)1 第3项", "渐进式延迟法定退休年龄")),
    (EARLY, ILLNESS, "P03E", ("seed §八(二)1 第6项", "渐进式延迟法定退休年龄")),
    (EARLY, SPECIAL, "E01", ("seed §八(二)1 第2项",)),
    (EARLY, ILLNESS, "E02", ("seed §八(二)1 第3项",)),
    (EARLY, SPECIAL, "E03", ("seed §八(二)1 第4项",)),
    (EARLY, FLEXIBLE, "E04", ("人社部发〔2024〕94号",)),
    (NORMAL, None, "J02", ("seed §八(一)1 第15项",)),
    (RESIDENT, None, "J02", ("seed §八(三)1 第11项",)),
    (NORMAL, None, "M07", ("seed §八(一)1 第22项", "湖南省职工基本医疗保险实施办法")),
    (NORMAL, None, "H01", ("seed §八(一)1 第23项",)),
    (EARLY, SPECIAL, "H03", ("seed §八(二)1 第21项",)),
    (RESIDENT, None, "H02", ("seed §八(三)1 第13项",)),
    (NORMAL, None, "F03", ("seed §八(一)1 第28项",)),
    (EARLY, ILLNESS, "F01", ("seed §八(二)1 第22项",)),
    (RESIDENT, None, "R10", ("seed §八(三)1 第10项",)),
]


@pytest.mark.parametrize(("initiating", "reason", "key", "names"), SOURCES, ids=[f"{s[0]}-{s[2]}" for s in SOURCES])
def test_each_check_names_its_seed_row_or_law(
    initiating: Item, reason: EarlyReason | None, key: str, names: tuple[str, ...]
) -> None:
    allowed = {NORMAL: ALL_NORMAL, EARLY: ALL_EARLY, RESIDENT: ALL_RESIDENT}[initiating]
    optional = tuple(i for i in allowed if i not in (CARD_APPLY, CARD_ACTIVATE))
    birth = date(1969, 8, 8) if initiating is EARLY else date(1960, 5, 15)
    source = evaluate(request(initiating, reason, optional, birth=birth), answers()).check(key).source
    assert all(name in source for name in names), source


@pytest.mark.parametrize(
    ("initiating", "reason", "optional"),
    [
        (NORMAL, None, ALL_NORMAL),
        (EARLY, SPECIAL, ALL_EARLY),
        (EARLY, FLEXIBLE, ALL_EARLY),
        (RESIDENT, None, ALL_RESIDENT),
    ],
)
def test_every_check_carries_a_source_and_the_query_of_its_department(
    initiating: Item, reason: EarlyReason | None, optional: tuple[Item, ...]
) -> None:
    birth = date(1969, 8, 8) if initiating is EARLY else date(1960, 5, 15)
    for c in evaluate(request(initiating, reason, optional, birth=birth), answers()).checks:
        assert c.source and (c.source.startswith("seed §八") or c.key == "E04"), c
        assert c.query.startswith(f"{c.department}: "), c
        assert {"source", "query"} <= set(c.to_json())


# --- H01–H03 are alternatives --------------------------------------------------------------------------

S_CHILD: dict[str, Any] = {"initiating": RESIDENT, "optional": (ONE_CHILD,)}
CHILDLESS = {"certificate_date": None, "eligible_before_2016": False, "children_born_or_adopted": 0}


@pytest.mark.parametrize(
    ("health", "birth", "gender", "results", "included"),
    [
        ({}, date(1960, 5, 15), "male", ("pass", "pass", "fail"), True),
        ({"eligible_before_2016": False}, date(1960, 5, 15), "male", ("pass", "fail", "fail"), True),
        ({"certificate_date": "2016-03-30"}, date(1960, 5, 15), "male", ("fail", "pass", "fail"), True),
        (
            {"certificate_date": "2016-03-29", "eligible_before_2016": False},
            date(1960, 5, 15),
            "male",
            ("pass", "fail", "fail"),
            True,
        ),
        (CHILDLESS, date(1975, 12, 31), "male", ("fail", "fail", "pass"), True),  # 40 on 2015-12-31
        (CHILDLESS, date(1976, 1, 1), "male", ("fail", "fail", "fail"), False),  # 39
        (CHILDLESS, date(1980, 12, 31), "female", ("fail", "fail", "pass"), True),  # 35
        (CHILDLESS, date(1981, 1, 1), "female", ("fail", "fail", "fail"), False),  # 34
        ({**CHILDLESS, "children_born_or_adopted": 1}, date(1960, 5, 15), "male", ("fail", "fail", "fail"), False),
        ({"urban": False}, date(1960, 5, 15), "male", ("fail", "fail", "fail"), False),
    ],
)
def test_one_child_reward_qualifies_when_any_of_h01_h02_h03_passes(
    health: dict[str, Any], birth: date, gender: str, results: tuple[str, ...], included: bool
) -> None:
    # Applying in 2045 so that every one of them has reached 60 for the resident pension.
    ev = run({**S_CHILD, "birth": birth, "gender": gender, "today": date(2045, 1, 1)}, health=health)
    assert ev.accepted
    assert tuple(str(ev.check(k).result) for k in ("H01", "H02", "H03")) == results
    assert decision(ev, ONE_CHILD) == (included, "CHOSEN" if included else "PRECHECK_FAILED")


def test_childless_category_is_reported_only_when_h03_alone_qualifies() -> None:
    assert run({**S_CHILD, "birth": date(1970, 1, 1)}, health=CHILDLESS).childless is True
    assert run(S_CHILD).childless is False
    assert run(S_RESIDENT).childless is None


def test_h_unverifiable_makes_the_item_unverifiable_only_when_none_passes() -> None:
    bad_date = {"certificate_date": "2001-13-01"}  # H01 cannot be judged
    assert decision(run(S_CHILD, health=bad_date), ONE_CHILD) == (True, "CHOSEN")  # H02 passes
    ev = run(S_CHILD, health={**bad_date, "eligible_before_2016": False})
    assert ev.check("H01").result is Outcome.unverifiable
    assert decision(ev, ONE_CHILD) == (False, "PRECHECK_UNVERIFIABLE")


# --- department answers: unavailable, no record, malformed ------------------------------------------

OWNED_KEYS = {
    Department.HRSS: {"P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12", "P13"},
    Department.JUSTICE: {"J01", "J02"},
    Department.NHSA: {"M01", "M02", "M03", "M04", "M05", "M06", "M07"},
    Department.HEALTH: {"H01", "H02", "H03"},
    Department.HPF: {"F01", "F02", "F03"},
}


@pytest.mark.parametrize("dept", list(OWNED_KEYS))
def test_unavailable_department_makes_its_checks_unverifiable_never_pass_or_fail(dept: Department) -> None:
    ev = run({**S_NORMAL, "optional": (MEDICAL, ONE_CHILD, FUND)}, **{str(dept): UNAVAILABLE})
    owned = {c.key: c for c in ev.checks if c.department is dept}
    assert set(owned) == OWNED_KEYS[dept]
    assert all(c.result is Outcome.unverifiable and c.code == f"{c.key}_UNVERIFIABLE" for c in owned.values())
    assert all(c.result is not Outcome.unverifiable for c in ev.checks if c.department is not dept)
    assert ev.unverified_departments == (dept,)


@pytest.mark.parametrize("dept", [Department.HRSS, Department.JUSTICE])
def test_unverifiable_initiating_check_refuses_the_application(dept: Department) -> None:
    ev = run(S_NORMAL, **{str(dept): UNAVAILABLE})
    assert not ev.accepted and ev.refusal_code == "precheck_failed"
    assert decision(ev, NORMAL) == (False, "PRECHECK_UNVERIFIABLE")


@pytest.mark.parametrize(("dept", "item"), [("nhsa", MEDICAL), ("health", ONE_CHILD), ("hpf", FUND)])
def test_unverifiable_optional_item_is_dropped_and_the_rest_proceeds(dept: str, item: Item) -> None:
    ev = run({**S_NORMAL, "optional": (item,)}, **{dept: UNAVAILABLE})
    assert ev.accepted
    assert decision(ev, item) == (False, "PRECHECK_UNVERIFIABLE")


def test_missing_answer_counts_as_unavailable() -> None:
    given = answers()
    del given[Department.NHSA]
    ev = evaluate(request(**S_NORMAL), given)
    assert ev.check("M01").result is Outcome.unverifiable
    assert Department.NHSA in ev.unverified_departments


def test_malformed_fact_makes_only_its_check_unverifiable() -> None:
    ev = run(S_NORMAL, hrss={"arrears": "no"})
    assert ev.check("P10").result is Outcome.unverifiable
    assert {c.key for c in ev.checks if c.result is Outcome.unverifiable} == {"P10"}
    assert not ev.accepted and ev.unverified_departments == ()


@pytest.mark.parametrize(
    ("dept", "scenario", "expected_fail"),
    [
        ("hrss", S_NORMAL, {"P01", "P12"}),
        ("hrss", S_RESIDENT, {"R02", "R09"}),
        ("justice", S_NORMAL, set()),
        ("nhsa", S_NORMAL, {"M01", "M02", "M07"}),
        ("hpf", S_NORMAL, {"F01", "F03"}),
        ("health", S_CHILD, {"H01", "H02", "H03"}),
    ],
)
def test_no_record_is_judged_as_an_empty_record(dept: str, scenario: dict[str, Any], expected_fail: set[str]) -> None:
    ev = run(scenario, **{dept: None})
    assert failing(ev) == expected_fail
    assert ev.unverified_departments == ()
    assert Outcome.unverifiable not in {c.result for c in ev.checks}


# --- identity --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("police", "refusal"),
    [
        ({"identity_verified": False}, "identity_not_verified"),
        (None, "identity_not_verified"),
        (UNAVAILABLE, "identity_unverifiable"),
        ({"identity_verified": "yes"}, "identity_unverifiable"),
    ],
)
def test_identity_not_verified_refuses_before_any_check(police: Any, refusal: str) -> None:
    ev = run(S_NORMAL, police=police)
    assert (ev.accepted, ev.refusal_code, ev.checks_withheld) == (False, refusal, True)
    [identity] = ev.checks  # the identity outcome alone: nothing else is judged or disclosed
    outcome = Outcome.fail if refusal == "identity_not_verified" else Outcome.unverifiable
    assert (identity.key, identity.department, identity.item) == ("ID", Department.POLICE, NORMAL)
    assert identity.result is outcome
    assert identity.code == ("ID_FAIL" if outcome is Outcome.fail else "ID_UNVERIFIABLE")
    assert "不予披露" in identity.reason and identity.query == "police: identity_verified" and identity.source
    assert not any(d.included for d in ev.items)


def test_verified_identity_is_not_an_entry_of_its_own() -> None:
    ev = run(S_NORMAL)
    assert not ev.checks_withheld and "ID" not in {c.key for c in ev.checks}


# --- decisions -------------------------------------------------------------------------------------------


def test_failed_initiating_check_refuses_and_includes_no_item() -> None:
    ev = run(S_NORMAL, hrss={"arrears": True, "receiving_unemployment_benefits": True})
    assert (ev.accepted, ev.refusal_code) == (False, "precheck_failed")
    assert decision(ev, NORMAL) == (False, "PRECHECK_FAILED")
    assert "P10" in next(d.reason for d in ev.items if d.item is NORMAL)
    assert decision(ev, MEDICAL) == (False, "APPLICATION_REFUSED")
    assert decision(ev, Item.UNEMPLOYMENT_BENEFIT_END) == (False, "APPLICATION_REFUSED")
    assert ev.included_items == ()


def test_failed_optional_item_is_dropped_with_its_failing_checks() -> None:
    ev = run(S_NORMAL, nhsa={"transfer_pending": True})
    assert ev.accepted
    medical = next(d for d in ev.items if d.item is MEDICAL)
    assert (medical.included, medical.reason_code, medical.mode) == (False, "PRECHECK_FAILED", Mode.OPTIONAL)
    assert "M03" in medical.reason
    assert ev.included_items == (NORMAL, Item.EMPLOYMENT_FILING_END, FUND)


@pytest.mark.parametrize("changes", [{"nhsa": {"transfer_pending": True}}, {"nhsa": UNAVAILABLE}])
def test_all_or_nothing_refuses_when_a_chosen_item_cannot_be_included(changes: dict[str, Any]) -> None:
    ev = run({**S_NORMAL, "all_or_nothing": True}, **changes)
    assert (ev.accepted, ev.refusal_code) == (False, "all_or_nothing")
    assert decision(ev, NORMAL) == (False, "ALL_OR_NOTHING")
    assert ev.included_items == ()


def test_all_or_nothing_accepts_when_every_chosen_item_passes() -> None:
    assert run({**S_NORMAL, "all_or_nothing": True}).accepted


def test_all_or_nothing_ignores_a_card_item_the_person_does_not_need() -> None:
    ev = run({**S_NORMAL, "optional": (CARD_APPLY,), "all_or_nothing": True})  # BASE already has a card
    assert ev.accepted
    assert decision(ev, CARD_APPLY) == (False, "NOT_NEEDED")


# --- social security card preconditions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "has_card", "active", "expected"),
    [
        (CARD_APPLY, False, False, (True, "CHOSEN")),
        (CARD_APPLY, True, True, (False, "NOT_NEEDED")),
        (CARD_ACTIVATE, True, False, (True, "CHOSEN")),
        (CARD_ACTIVATE, True, True, (False, "NOT_NEEDED")),
        (CARD_ACTIVATE, False, False, (False, "NOT_NEEDED")),
    ],
)
def test_card_items_need_their_precondition(
    item: Item, has_card: bool, active: bool, expected: tuple[bool, str]
) -> None:
    hrss = {"has_sscard": has_card, "sscard_social_function_active": active}
    assert decision(run({**S_RESIDENT, "optional": (item,)}, hrss=hrss), item) == expected


# --- provident fund: centre and bank card --------------------------------------------------------------


@pytest.mark.parametrize("center", ["430100", "431000"])
def test_fund_centre_not_connected_drops_the_withdrawal_and_the_rest_proceeds(center: str) -> None:
    req = request(**{**S_NORMAL, "center": center})
    assert Department.HPF not in departments_needed(req)
    ev = evaluate(req, answers(hpf=UNAVAILABLE))
    assert ev.accepted
    assert decision(ev, FUND) == (False, "HPF_CENTER_NOT_CONNECTED")
    assert "暂未接入" in next(d.reason for d in ev.items if d.item is FUND)
    assert {ev.check(k).result for k in ("F01", "F02", "F03")} == {Outcome.not_applicable}
    assert ev.unverified_departments == ()


def test_fund_centre_not_connected_refuses_under_all_or_nothing() -> None:
    ev = run({**S_NORMAL, "center": "430100", "all_or_nothing": True})
    assert ev.refusal_code == "all_or_nothing"


def test_withdrawal_without_a_declared_centre_is_an_invalid_request() -> None:
    with pytest.raises(ValueError, match="provident_fund_center"):
        request(**{**S_NORMAL, "center": None})
    assert request(**{**S_RESIDENT, "center": None}).applicant.provident_fund_center is None  # no withdrawal: fine


@pytest.mark.parametrize("all_or_nothing", [False, True])
def test_the_hpf_records_own_centre_wins_over_the_declared_one(all_or_nothing: bool) -> None:
    ev = run({**S_NORMAL, "all_or_nothing": all_or_nothing}, hpf={"center": "430100"})
    assert {ev.check(k).result for k in ("F01", "F02", "F03")} == {Outcome.not_applicable}
    assert "430100" in ev.check("F01").reason
    if all_or_nothing:
        assert ev.refusal_code == "all_or_nothing"
    else:
        assert ev.accepted and decision(ev, FUND) == (False, "HPF_CENTER_NOT_CONNECTED")
        assert "430100" in next(d.reason for d in ev.items if d.item is FUND)


@pytest.mark.parametrize(("center", "expected"), [("430000", (True, "CHOSEN")), (None, (True, "CHOSEN")),
                                                  (430000, (False, "PRECHECK_UNVERIFIABLE"))])
def test_a_record_centre_that_agrees_or_is_absent_keeps_the_declared_one(
    center: Any, expected: tuple[bool, str]
) -> None:
    ev = run(S_NORMAL, hpf={"center": center})
    assert decision(ev, FUND) == expected


@pytest.mark.parametrize(
    ("card", "edited", "cards", "expected"),
    [
        (OWN_CARD, True, [OWN_CARD], (True, "CHOSEN")),
        ("6222020000000000006", True, [OWN_CARD], (False, "BANK_CARD_NOT_OWNED")),
        (None, True, [OWN_CARD], (False, "BANK_CARD_NOT_OWNED")),
        (OWN_CARD, True, [], (False, "BANK_CARD_NOT_OWNED")),  # the record lists no card at all
        (OWN_CARD, True, None, (False, "PRECHECK_UNVERIFIABLE")),  # the record does not say: cannot verify
        ("6222020000000000006", False, [OWN_CARD], (True, "CHOSEN")),  # the system's own proposal
    ],
)
def test_edited_bank_card_must_be_one_of_the_applicants_cards(
    card: str | None, edited: bool, cards: list[str] | None, expected: tuple[bool, str]
) -> None:
    ev = run({**S_NORMAL, "card": card, "edited": edited}, hpf={"bank_cards": cards})
    assert decision(ev, FUND) == expected
    assert ev.accepted


_ABSENT = object()
SSC, CLASS1, CLASS2 = "social_security_card", "class_1_savings", "class_2_savings"
# (initiating scenario, hpf bank_cards, expected decision). Seed §八(一) row 19: social-security card
# or class-I savings card; §八(二) row 20 (early retirement): class-I savings card only.
CARD_TYPE_CASES: list[tuple[str, dict[str, Any], Any, tuple[bool, str]]] = [
    ("normal, ss card", S_NORMAL, [{"number": OWN_CARD, "type": SSC}], (True, "CHOSEN")),
    ("normal, class I", S_NORMAL, [{"number": OWN_CARD, "type": CLASS1}], (True, "CHOSEN")),
    ("normal, class II", S_NORMAL, [{"number": OWN_CARD, "type": CLASS2}], (False, "BANK_CARD_TYPE_NOT_ALLOWED")),
    ("early, ss card", S_SPECIAL, [{"number": OWN_CARD, "type": SSC}], (False, "BANK_CARD_TYPE_NOT_ALLOWED")),
    ("early, class I", S_ILLNESS, [{"number": OWN_CARD, "type": CLASS1}], (True, "CHOSEN")),
    ("early, type not stated", S_SPECIAL, [OWN_CARD], (True, "CHOSEN")),
    ("normal, type null", S_NORMAL, [{"number": OWN_CARD, "type": None}], (True, "CHOSEN")),
    ("normal, other card typed", S_NORMAL, [{"number": "6222020000000000006", "type": CLASS1}],
     (False, "BANK_CARD_NOT_OWNED")),
    ("number not a string", S_NORMAL, [{"number": 6222021234567890128}], (False, "PRECHECK_UNVERIFIABLE")),
    ("not a list", S_NORMAL, OWN_CARD, (False, "PRECHECK_UNVERIFIABLE")),
    ("field absent", S_NORMAL, _ABSENT, (False, "PRECHECK_UNVERIFIABLE")),
]


@pytest.mark.parametrize(("scenario", "cards", "expected"), [c[1:] for c in CARD_TYPE_CASES],
                         ids=[c[0] for c in CARD_TYPE_CASES])
def test_edited_card_must_be_of_the_type_the_seed_allows_when_the_record_says_the_type(
    scenario: dict[str, Any], cards: Any, expected: tuple[bool, str]
) -> None:
    given = answers()
    hpf = dict(given[Department.HPF])  # type: ignore[arg-type]
    if cards is _ABSENT:
        del hpf["bank_cards"]
    else:
        hpf["bank_cards"] = cards
    given[Department.HPF] = hpf
    ev = evaluate(request(**{**scenario, "card": OWN_CARD, "edited": True}), given)
    assert ev.accepted
    assert decision(ev, FUND) == expected
    reason = next(d.reason for d in ev.items if d.item is FUND)
    assert OWN_CARD not in reason
    if expected[1] == "BANK_CARD_TYPE_NOT_ALLOWED":
        assert ("社会保障卡" in reason) is (scenario["initiating"] is NORMAL) and "一类储蓄卡" in reason
    if cards is _ABSENT:  # the department did not say: "could not verify", never "not the applicant's"
        assert "未返回申请人的银行卡信息" in reason


def test_luhn_failure_is_a_warning_only_and_does_not_echo_the_number() -> None:
    bad = "6222021234567890127"
    ev = run({**S_NORMAL, "card": bad, "edited": True}, hpf={"bank_cards": [bad]})
    assert decision(ev, FUND) == (True, "CHOSEN")
    assert len(ev.warnings) == 1 and ev.warnings[0].startswith("BANK_CARD_LUHN")
    assert bad not in ev.warnings[0]
    assert run({**S_NORMAL, "card": OWN_CARD}).warnings == ()


# --- automatic items ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "hrss", "expected"),
    [
        (S_NORMAL, {}, {Item.EMPLOYMENT_FILING_END}),
        (S_SPECIAL, {}, {Item.EMPLOYMENT_FILING_END}),
        (S_NORMAL, {"receiving_injury_benefits": True}, {Item.EMPLOYMENT_FILING_END, Item.INJURY_BENEFIT_CHANGE}),
        (
            S_NORMAL,
            {"receiving_unemployment_benefits": True},
            {Item.EMPLOYMENT_FILING_END, Item.UNEMPLOYMENT_BENEFIT_END},
        ),
        (S_RESIDENT, {}, set()),
        (S_RESIDENT, {"receiving_injury_benefits": True}, {Item.INJURY_BENEFIT_CHANGE}),
    ],
)
def test_automatic_items_follow_hrss_facts(scenario: dict[str, Any], hrss: dict[str, Any], expected: set[Item]) -> None:
    ev = run(scenario, hrss=hrss)
    assert {d.item for d in ev.items if d.mode is Mode.AUTOMATIC and d.included} == expected


def test_every_candidate_automatic_item_is_reported_with_why() -> None:
    ev = run(S_RESIDENT)
    automatic = {d.item: d.reason_code for d in ev.items if d.mode is Mode.AUTOMATIC}
    assert automatic == {
        Item.INJURY_BENEFIT_CHANGE: "NOT_RECEIVING_BENEFITS",
        Item.UNEMPLOYMENT_BENEFIT_END: "NOT_RECEIVING_BENEFITS",
    }


# --- request validation and departments ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initiating": RESIDENT, "optional": (MEDICAL,)},  # medical only with normal retirement
        {"initiating": RESIDENT, "optional": (FUND,)},
        {"initiating": EARLY, "reason": SPECIAL, "optional": (MEDICAL,)},
        {"initiating": NORMAL, "optional": (Item.EMPLOYMENT_FILING_END,)},  # automatic, never chosen
        {"initiating": NORMAL, "optional": (FUND, FUND)},
        {"initiating": EARLY},  # reason missing
        {"initiating": NORMAL, "reason": ILLNESS},
        {"initiating": NORMAL, "gender": "female"},  # a woman's category needs her position
    ],
)
def test_invalid_request_is_refused_with_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        evaluate(request(**kwargs), answers())


def test_planned_check_keys_refuses_optional_items_the_initiating_item_does_not_allow() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        planned_check_keys(RESIDENT, None, (MEDICAL,))


def test_woman_without_position_may_apply_for_resident_pension() -> None:
    assert run({**S_RESIDENT, "gender": "female"}).accepted


@pytest.mark.parametrize(
    ("optional", "center", "extra"),
    [
        ((), "430000", set()),
        ((MEDICAL,), "430000", {Department.NHSA}),
        ((ONE_CHILD,), "430000", {Department.HEALTH}),
        ((FUND,), "430000", {Department.HPF}),
        ((FUND,), "430100", set()),
        ((CARD_APPLY, CARD_ACTIVATE), "430000", set()),
    ],
)
def test_departments_needed_depend_on_the_chosen_items(
    optional: tuple[Item, ...], center: str, extra: set[Department]
) -> None:
    base = {Department.POLICE, Department.HRSS, Department.JUSTICE}
    assert departments_needed(request(NORMAL, None, optional, center=center)) == base | extra


# --- the shared examples ---------------------------------------------------------------------------------




def _example_evaluation(application: dict[str, Any], people: dict[str, Any]) -> Evaluation:
    a = application["applicant"]
    reason = application.get("early_retirement_reason")
    req = Request(
        Item(application["initiating_item"]),
        EarlyReason(reason) if reason else None,
        tuple(Item(i) for i in application["optional_items"]),
        application["all_or_nothing"],
        Applicant(
            a["gender"],
            date.fromisoformat(a["birth_date"]),
            a.get("position"),
            a["household"],
            a.get("provident_fund_center"),
        ),
        date.fromisoformat(application["submitted_at"][:10]),
    )
    person = people[a["id_number"]]
    return evaluate(req, {d: person.get(str(d)) for d in departments_needed(req)})


def test_shared_examples_give_the_expected_outcome() -> None:
    people = {p["id_number"]: p for p in json.loads((EXAMPLES / "people.json").read_text("utf-8"))["people"]}
    expected = json.loads((EXAMPLES / "expected.json").read_text("utf-8"))
    outcomes = {}
    for application in json.loads((EXAMPLES / "applications.json").read_text("utf-8")):
        ev = _example_evaluation(application, people)
        outcomes[application["application_no"]] = (ev.accepted, set(ev.included_items), failing(ev))
    assert outcomes["EX-001"] == (True, {NORMAL, Item.EMPLOYMENT_FILING_END, MEDICAL}, set())
    assert outcomes["EX-002"] == (False, set(), {"E01"})
    assert outcomes["EX-003"] == (True, {RESIDENT, CARD_APPLY}, set())
    for no, (accepted, included, failed) in outcomes.items():
        assert accepted is expected[no]["accepted"]
        if accepted:
            assert {str(i) for i in included} == set(expected[no]["items"])
        else:
            assert failed == set(expected[no]["failing"])


@pytest.mark.parametrize(("scenario", "na"), [(S_SPECIAL, "E02"), (S_ILLNESS, "E01")])
def test_early_check_of_the_other_reason_is_not_applicable(scenario: dict[str, Any], na: str) -> None:
    ev = run(scenario, hrss={"special_work_type_filed": False, "labour_capacity": None})
    assert (ev.check(na).result, ev.check(na).code) == (Outcome.not_applicable, f"{na}_NA")
    assert failing(ev) == ({"E01", "E02"} - {na})
    assert run(scenario, hrss=UNAVAILABLE).check(na).result is Outcome.not_applicable


# --- special type of work / illness: the configured age informs, never refuses ---------------------

DELAYED = EarlyRetirementAges(delayed=True)
# (case, scenario, ages, warned). Today is 2026-12-03.
EARLY_AGE_CASES: list[tuple[str, dict[str, Any], EarlyRetirementAges | None, bool]] = [
    ("special man 55 reached", {**S_SPECIAL, "birth": date(1969, 8, 8)}, None, False),
    ("special man not 55 yet", {**S_SPECIAL, "birth": date(1975, 3, 1)}, None, True),
    ("illness man 50 reached", {**S_ILLNESS, "birth": date(1976, 11, 1)}, None, False),
    ("illness man not 50 yet", {**S_ILLNESS, "birth": date(1977, 1, 1)}, None, True),
    ("special woman 45 reached", {**S_SPECIAL, "gender": "female", "position": "worker", "birth": date(1981, 12, 3)},
     None, False),
    ("special woman not 45 yet", {**S_SPECIAL, "gender": "female", "position": "worker", "birth": date(1982, 1, 1)},
     None, True),
    # Man born 1971-09: 55 in 2026-09, but 55y6m (2027-03) with the municipal-reply delay (20 months after 1970-01).
    ("delay on, not reached", {**S_SPECIAL, "birth": date(1971, 9, 1)}, DELAYED, True),
    ("delay off, reached", {**S_SPECIAL, "birth": date(1971, 9, 1)}, EarlyRetirementAges(), False),
    ("configured 56", {**S_SPECIAL, "birth": date(1971, 9, 1)}, EarlyRetirementAges(special_work_type_male=Age(56)),
     True),
]


@pytest.mark.parametrize(("scenario", "ages", "warned"), [c[1:] for c in EARLY_AGE_CASES],
                         ids=[c[0] for c in EARLY_AGE_CASES])
def test_configured_early_age_gives_information_and_a_warning_never_a_refusal(
    scenario: dict[str, Any], ages: EarlyRetirementAges | None, warned: bool
) -> None:
    ev = evaluate(request(**scenario), answers(), ages)
    assert ev.accepted and failing(ev) == set()
    notes = [w for w in ev.warnings if w.startswith("EARLY_RETIREMENT_AGE_NOT_REACHED")]
    assert len(notes) == int(warned)
    if warned:
        assert "人社部门审批决定" in notes[0] and "不影响受理" in notes[0]
    key = "E01" if scenario["reason"] is SPECIAL else "E02"
    assert "提前退休参考年龄" in ev.check(key).reason and "以人社部门审批为准" in ev.check(key).reason


def test_delayed_special_type_age_is_reported_in_the_check() -> None:
    ev = evaluate(request(**{**S_SPECIAL, "birth": date(1971, 9, 1)}), answers(), DELAYED)
    assert "55岁6个月，2027-03达到" in ev.check("E01").reason


def test_early_age_warning_still_comes_when_hrss_cannot_be_asked() -> None:
    ev = evaluate(request(**{**S_SPECIAL, "birth": date(1975, 3, 1)}), answers(hrss=UNAVAILABLE))
    assert not ev.accepted  # hrss decides the initiating item
    assert any(w.startswith("EARLY_RETIREMENT_AGE_NOT_REACHED") for w in ev.warnings)


@pytest.mark.parametrize("scenario", [S_NORMAL, S_FLEXIBLE, S_RESIDENT])
def test_no_early_age_information_without_special_type_or_illness(scenario: dict[str, Any]) -> None:
    ev = evaluate(request(**{**scenario, "birth": date(1990, 1, 1), "today": date(2026, 12, 3)}), answers(),
                  EarlyRetirementAges(special_work_type_male=Age(70), illness_male=Age(70), delayed=True,
                                      delays={"illness_male": AgeDelay(1, 60)}))
    assert not any(w.startswith("EARLY_RETIREMENT_AGE") for w in ev.warnings)
