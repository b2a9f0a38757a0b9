"""Statutory retirement age, flexible window and minimum years (shared/docs/retirement-age.md)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.domain.retirement_age import (
    Age,
    AgeDelay,
    Category,
    EarlyRetirementAges,
    YearMonth,
    category_for,
    early_retirement_age,
    hunan_medical_min_province_years,
    min_contribution_months,
    retirement_policy,
)

M, FC, FW = Category.male, Category.female_cadre, Category.female_worker

# retirement-age.md "Worked examples": category, birth, age (y, m), retires, earliest (y, m, month),
# latest (y, m, month).
WORKED_EXAMPLES = [
    (M, "1965-01", (60, 1), "2025-02", (60, 0, "2025-01"), (63, 1, "2028-02")),
    (M, "1965-05", (60, 2), "2025-07", (60, 0, "2025-05"), (63, 2, "2028-07")),
    (M, "1966-07", (60, 5), "2026-12", (60, 0, "2026-07"), (63, 5, "2029-12")),
    (M, "1976-08", (62, 11), "2039-07", (60, 0, "2036-08"), (65, 11, "2042-07")),
    (M, "1976-09", (63, 0), "2039-09", (60, 0, "2036-09"), (66, 0, "2042-09")),
    (FC, "1970-01", (55, 1), "2025-02", (55, 0, "2025-01"), (58, 1, "2028-02")),
    (FW, "1975-01", (50, 1), "2025-02", (50, 0, "2025-01"), (53, 1, "2028-02")),
    (FW, "1975-03", (50, 2), "2025-05", (50, 0, "2025-03"), (53, 2, "2028-05")),
    (FW, "1981-11", (53, 6), "2035-05", (50, 6, "2032-05"), (56, 6, "2038-05")),
    (FW, "1984-11", (55, 0), "2039-11", (52, 0, "2036-11"), (58, 0, "2042-11")),
]


@pytest.mark.parametrize(("category", "birth", "age", "retires", "earliest", "latest"), WORKED_EXAMPLES)
def test_worked_example_gives_published_age_month_and_flexible_window(
    category: Category,
    birth: str,
    age: tuple[int, int],
    retires: str,
    earliest: tuple[int, int, str],
    latest: tuple[int, int, str],
) -> None:
    policy = retirement_policy(YearMonth.parse(birth), category)
    assert policy.statutory_age == Age(*age)
    assert str(policy.retirement_month) == retires
    assert policy.flexible_earliest is not None and policy.flexible_latest is not None
    assert (policy.flexible_earliest.age, str(policy.flexible_earliest.month)) == (
        Age(earliest[0], earliest[1]),
        earliest[2],
    )
    assert (policy.flexible_latest.age, str(policy.flexible_latest.month)) == (
        Age(latest[0], latest[1]),
        latest[2],
    )


# Cohort boundaries: the last undelayed month, the first delayed one, and the cap.
BOUNDARIES = [
    (M, "1964-12", (60, 0), "2024-12"),
    (M, "1965-01", (60, 1), "2025-02"),
    (M, "1965-04", (60, 1), "2025-05"),
    (M, "1965-05", (60, 2), "2025-07"),
    (M, "1976-08", (62, 11), "2039-07"),
    (M, "1976-09", (63, 0), "2039-09"),
    (M, "1990-01", (63, 0), "2053-01"),
    (FC, "1969-12", (55, 0), "2024-12"),
    (FC, "1970-01", (55, 1), "2025-02"),
    (FC, "1981-08", (57, 11), "2039-07"),
    (FC, "1981-09", (58, 0), "2039-09"),
    (FC, "1995-06", (58, 0), "2053-06"),
    (FW, "1974-12", (50, 0), "2024-12"),
    (FW, "1975-01", (50, 1), "2025-02"),
    (FW, "1975-02", (50, 1), "2025-03"),
    (FW, "1984-10", (54, 11), "2039-09"),
    (FW, "1984-11", (55, 0), "2039-11"),
    (FW, "1999-01", (55, 0), "2054-01"),
]


@pytest.mark.parametrize(("category", "birth", "age", "retires"), BOUNDARIES)
def test_cohort_boundary_gets_its_statutory_age(
    category: Category, birth: str, age: tuple[int, int], retires: str
) -> None:
    policy = retirement_policy(YearMonth.parse(birth), category)
    assert (policy.statutory_age, str(policy.retirement_month)) == (Age(*age), retires)


@pytest.mark.parametrize(("category", "birth"), [(M, "1964-12"), (FC, "1969-12"), (FW, "1974-12")])
def test_person_retiring_before_2025_has_no_flexible_window(category: Category, birth: str) -> None:
    policy = retirement_policy(YearMonth.parse(birth), category)
    assert policy.flexible_earliest is None and policy.flexible_latest is None
    assert policy.statutory_age == policy.original_age


def test_flexible_earliest_never_goes_below_the_original_age() -> None:
    # Male 1965-01: 60y1m − 36 months would be 57y1m; the original age 60 wins.
    policy = retirement_policy(YearMonth(1965, 1), M)
    assert policy.flexible_earliest is not None
    assert policy.flexible_earliest.age == Age(60)


@pytest.mark.parametrize(
    ("year", "months"),
    [(2024, 180), (2029, 180), (2030, 186), (2031, 192), (2038, 234), (2039, 240), (2045, 240)],
)
def test_min_contribution_rises_six_months_a_year_from_2030_to_20_years(year: int, months: int) -> None:
    assert min_contribution_months(year) == months


def test_min_contribution_uses_the_year_the_statutory_age_is_reached() -> None:
    # Male 1969-08 reaches 61y2m in 2030-10: the 2030 minimum, 15y6m.
    policy = retirement_policy(YearMonth(1969, 8), M)
    assert str(policy.retirement_month) == "2030-10"
    assert policy.min_contribution == Age(15, 6)


@pytest.mark.parametrize(
    ("year", "years"),
    [(2020, 10), (2023, 10), (2024, 11), (2025, 12), (2026, 13), (2027, 14), (2028, 15), (2035, 15)],
)
def test_hunan_medical_province_minimum_rises_one_year_a_year(year: int, years: int) -> None:
    assert hunan_medical_min_province_years(year) == years


def test_policy_json_has_exactly_the_documented_shape() -> None:
    assert retirement_policy(YearMonth(1975, 3), FW).to_json() == {
        "category": "female_worker",
        "birth": "1975-03",
        "statutory_age": {"years": 50, "months": 2},
        "retirement_month": "2025-05",
        "original_age": {"years": 50, "months": 0},
        "flexible_earliest": {"age": {"years": 50, "months": 0}, "month": "2025-03"},
        "flexible_latest": {"age": {"years": 53, "months": 2}, "month": "2028-05"},
        "min_contribution": {"years": 15, "months": 0},
    }


def test_policy_json_without_flexible_window_has_nulls() -> None:
    body = retirement_policy(YearMonth(1964, 12), M).to_json()
    assert body["flexible_earliest"] is None and body["flexible_latest"] is None
    assert body["retirement_month"] == "2024-12"


@pytest.mark.parametrize(
    "text",
    ["1965-1", "1965-13", "1965-00", "65-01", "1965/01", "1965-01-01", "", " 1965-01",
     "１９６６-07", "١٩٦٦-07", "1966-٠٧"],  # fullwidth and Arabic-Indic digits: int() would read them
)
def test_year_month_parse_rejects_anything_but_yyyy_mm(text: str) -> None:
    with pytest.raises(ValueError):
        YearMonth.parse(text)


def test_year_month_arithmetic_crosses_years_and_prints_zero_padded() -> None:
    ym = YearMonth.parse("2024-11")
    assert ym.plus_months(3) == YearMonth(2025, 2)
    assert ym.plus_months(-11) == YearMonth(2023, 12)
    assert ym.months_until(YearMonth(2026, 1)) == 14
    assert YearMonth(2026, 1).months_until(ym) == -14
    assert str(YearMonth(987, 5)) == "0987-05"
    assert YearMonth.of(date(2026, 12, 3)) == YearMonth(2026, 12)
    assert YearMonth(2024, 12) < YearMonth(2025, 1)


def test_age_converts_to_and_from_months() -> None:
    assert Age.from_months(725) == Age(60, 5)
    assert Age(60, 5).total_months == 725
    assert Age(15, 6).to_json() == {"years": 15, "months": 6}
    with pytest.raises(ValueError):
        Age(60, 12)


@pytest.mark.parametrize(
    ("gender", "position", "category"),
    [("male", None, M), ("male", "worker", M), ("female", "cadre", FC), ("female", "worker", FW)],
)
def test_category_comes_from_gender_and_position(gender: str, position: str | None, category: Category) -> None:
    assert category_for(gender, position) is category


def test_category_for_a_woman_without_position_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="position"):
        category_for("female", None)


@pytest.mark.parametrize(("gender", "position"), [("female", "manager"), ("unknown", None)])
def test_category_for_unknown_values_is_refused(gender: str, position: str | None) -> None:
    with pytest.raises(ValueError):
        category_for(gender, position)


def test_early_retirement_ages_default_to_pre_reform_values_and_are_configurable() -> None:
    ages = EarlyRetirementAges()
    assert ages.age_for("special_work_type", "male") == Age(55)
    assert ages.age_for("special_work_type", "female") == Age(45)
    assert ages.age_for("illness", "male") == Age(50)
    assert ages.age_for("illness", "female") == Age(45)
    assert ages.delayed is False
    assert EarlyRetirementAges(special_work_type_male=Age(55, 4)).age_for("special_work_type", "male") == Age(55, 4)
    with pytest.raises(ValueError):
        ages.age_for("flexible", "male")


# The municipal reply's schedule (retirement-age.md): special type men 55→58 by 1 month per 4 birth
# months, women 45→50 by 1 month per 2, from the birth month reaching the base age in 2025-01.
DELAYED_SPECIAL = [
    ("male", "1969-12", (55, 0), "2024-12", False),  # reached 55 before 2025: not delayed
    ("male", "1970-01", (55, 1), "2025-02", True),
    ("male", "1970-04", (55, 1), "2025-05", True),
    ("male", "1970-05", (55, 2), "2025-07", True),
    ("male", "1981-08", (57, 11), "2039-07", True),
    ("male", "1981-09", (58, 0), "2039-09", True),  # the cap, 36 months
    ("male", "1990-01", (58, 0), "2048-01", True),
    ("female", "1979-12", (45, 0), "2024-12", False),
    ("female", "1980-01", (45, 1), "2025-02", True),
    ("female", "1980-02", (45, 1), "2025-03", True),
    ("female", "1980-03", (45, 2), "2025-05", True),
    ("female", "1989-10", (49, 11), "2039-09", True),
    ("female", "1989-11", (50, 0), "2039-11", True),  # the cap, 60 months
]


@pytest.mark.parametrize(("gender", "birth", "age", "month", "delayed"), DELAYED_SPECIAL)
def test_delayed_special_type_age_follows_the_municipal_reply_schedule(
    gender: str, birth: str, age: tuple[int, int], month: str, delayed: bool
) -> None:
    got = early_retirement_age(YearMonth.parse(birth), gender, "special_work_type", EarlyRetirementAges(delayed=True))
    assert (got.age, str(got.month), got.delayed) == (Age(*age), month, delayed)
    assert got.to_json() == {"reason": "special_work_type", "age": {"years": age[0], "months": age[1]},
                             "month": month, "delayed": delayed}


@pytest.mark.parametrize(("gender", "birth"), [("male", "1981-09"), ("female", "1989-11")])
def test_delay_is_off_by_default_and_never_touches_illness_ages(gender: str, birth: str) -> None:
    ym = YearMonth.parse(birth)
    base = {"male": Age(55), "female": Age(45)}[gender]
    assert early_retirement_age(ym, gender, "special_work_type").age == base
    illness = {"male": Age(50), "female": Age(45)}[gender]
    assert early_retirement_age(ym, gender, "illness", EarlyRetirementAges(delayed=True)).age == illness


def test_a_delayed_age_needs_the_birth_month() -> None:
    with pytest.raises(ValueError, match="birth month"):
        EarlyRetirementAges(delayed=True).age_for("special_work_type", "male")


SETTINGS_OK = [
    ({}, EarlyRetirementAges()),
    ({"special_work_type_male": 56}, EarlyRetirementAges(special_work_type_male=Age(56))),
    ({"illness_female": {"years": 45, "months": 6}}, EarlyRetirementAges(illness_female=Age(45, 6))),
    ({"delayed": True}, EarlyRetirementAges(delayed=True)),
    (
        {"delayed": True, "delay": {"illness_male": {"step": 2, "max_months": 12}}},
        EarlyRetirementAges(delayed=True, delays={"illness_male": AgeDelay(2, 12)}),
    ),
]


@pytest.mark.parametrize(("data", "expected"), SETTINGS_OK)
def test_settings_table_builds_the_ages(data: dict[str, Any], expected: EarlyRetirementAges) -> None:
    assert EarlyRetirementAges.from_settings(data) == expected


SETTINGS_BAD = [
    ({"special_work_type_man": 55}, "special_work_type_man"),
    ({"illness_male": "50"}, "illness_male"),
    ({"illness_male": True}, "illness_male"),
    ({"illness_male": 120}, "illness_male"),
    ({"illness_male": {"years": 50, "months": 12}}, "illness_male"),
    ({"illness_male": {"years": 50, "days": 3}}, "illness_male"),
    ({"delayed": "yes"}, "delayed"),
    ({"delay": 4}, "delay"),
    ({"delay": {"illness_men": {"step": 1, "max_months": 1}}}, "delay.illness_men"),
    ({"delay": {"illness_male": {"step": 0, "max_months": 1}}}, "delay.illness_male"),
    ({"delay": {"illness_male": {"step": 2}}}, "delay.illness_male"),
    ({"delay": {"illness_male": {"step": 2, "max_months": -1}}}, "delay.illness_male"),
]


@pytest.mark.parametrize(("data", "key"), SETTINGS_BAD, ids=[k for _, k in SETTINGS_BAD])
def test_a_bad_setting_is_refused_naming_its_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError) as info:
        EarlyRetirementAges.from_settings(data)
    assert str(info.value).startswith(f"{key}:"), info.value
