"""Statutory retirement age, flexible windows and minimum contribution years.

Pure functions over month-granular values. Sources (restated in
shared/docs/retirement-age.md):

- 全国人大常委会关于实施渐进式延迟法定退休年龄的决定 (in force 2025-01-01) and
  the State Council 办法 with its four annexed tables: the per-category delay;
- 实施弹性退休制度暂行办法 (人社部发〔2024〕94号): the flexible window;
- annex 4: minimum contribution years by year;
- 湖南省职工基本医疗保险实施办法 art. 26: the Hunan in-province medical minimum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

__all__ = [
    "Age",
    "Category",
    "EarlyRetirementAges",
    "FlexibleBound",
    "RetirementPolicy",
    "YearMonth",
    "category_for",
    "hunan_medical_min_province_years",
    "min_contribution_months",
    "retirement_policy",
]


class Category(StrEnum):
    """Retirement category: decides original age, delay pace and cap (retirement-age.md, Categories)."""

    male = "male"
    female_cadre = "female_cadre"  # original age 55 (cadres, management/technical posts)
    female_worker = "female_worker"  # original age 50 (workers)


_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True, slots=True)
class YearMonth:
    """A calendar month; ordering is chronological."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, got {self.month}")
        if not 1 <= self.year <= 9999:
            raise ValueError(f"year must be 1..9999, got {self.year}")

    @classmethod
    def parse(cls, text: str) -> YearMonth:
        """Parse exactly ``YYYY-MM``; anything else raises ValueError."""
        match = _YEAR_MONTH.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"expected YYYY-MM, got {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> YearMonth:
        """The month a date falls in."""
        return cls(day.year, day.month)

    @property
    def index(self) -> int:
        """Months since year 0, month 1 (for arithmetic)."""
        return self.year * 12 + self.month - 1

    @classmethod
    def _from_index(cls, index: int) -> YearMonth:
        return cls(index // 12, index % 12 + 1)

    def plus_months(self, n: int) -> YearMonth:
        """The month ``n`` months later (earlier when negative)."""
        return self._from_index(self.index + n)

    def months_until(self, other: YearMonth) -> int:
        """Months from this month to ``other`` (negative when ``other`` is earlier)."""
        return other.index - self.index

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, order=True, slots=True)
class Age:
    """An age or a duration in whole years and months (months 0..11)."""

    years: int
    months: int = 0

    def __post_init__(self) -> None:
        if self.years < 0 or not 0 <= self.months <= 11:
            raise ValueError(f"invalid age {self.years}y{self.months}m")

    @property
    def total_months(self) -> int:
        return self.years * 12 + self.months

    @classmethod
    def from_months(cls, n: int) -> Age:
        if n < 0:
            raise ValueError(f"age cannot be negative: {n} months")
        return cls(n // 12, n % 12)

    def to_json(self) -> dict[str, int]:
        return {"years": self.years, "months": self.months}

    def __str__(self) -> str:
        return f"{self.years}岁" + (f"{self.months}个月" if self.months else "")


@dataclass(frozen=True, slots=True)
class _Rule:
    original_years: int
    first_delayed: YearMonth
    step: int  # +1 month of age per `step` birth months
    max_delay: int  # months


# retirement-age.md, Categories table (the 办法's annexes 1–3).
_RULES: dict[Category, _Rule] = {
    Category.male: _Rule(60, YearMonth(1965, 1), 4, 36),
    Category.female_cadre: _Rule(55, YearMonth(1970, 1), 4, 36),
    Category.female_worker: _Rule(50, YearMonth(1975, 1), 2, 60),
}

FLEXIBLE_SPAN_MONTHS = 36  # 人社部发〔2024〕94号: at most 3 years before or after
FLEXIBLE_FROM = YearMonth(2025, 1)  # flexible rules apply from the reform's entry into force


@dataclass(frozen=True, slots=True)
class FlexibleBound:
    """One end of the flexible retirement window: the age and the month it is reached."""

    age: Age
    month: YearMonth

    def to_json(self) -> dict[str, Any]:
        return {"age": self.age.to_json(), "month": str(self.month)}


@dataclass(frozen=True, slots=True)
class RetirementPolicy:
    """Everything the reform decides for one birth month and category."""

    category: Category
    birth: YearMonth
    statutory_age: Age
    retirement_month: YearMonth  # the month the statutory age is reached
    original_age: Age
    flexible_earliest: FlexibleBound | None  # None: statutory month before 2025-01
    flexible_latest: FlexibleBound | None
    min_contribution: Age  # for the reference year = year of retirement_month

    @property
    def delay_months(self) -> int:
        return self.statutory_age.total_months - self.original_age.total_months

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /api/v1/policy/retirement-age``."""
        return {
            "category": str(self.category),
            "birth": str(self.birth),
            "statutory_age": self.statutory_age.to_json(),
            "retirement_month": str(self.retirement_month),
            "original_age": self.original_age.to_json(),
            "flexible_earliest": self.flexible_earliest.to_json() if self.flexible_earliest else None,
            "flexible_latest": self.flexible_latest.to_json() if self.flexible_latest else None,
            "min_contribution": self.min_contribution.to_json(),
        }


POLICY_YEARS = range(1900, 2101)  # birth years the policy look-up answers for


def parse_birth_month(text: str) -> YearMonth:
    """A birth month for the policy look-up: ``YYYY-MM`` with a year in POLICY_YEARS."""
    month = YearMonth.parse(text)
    if month.year not in POLICY_YEARS:
        raise ValueError(f"the year must be from {POLICY_YEARS.start} to {POLICY_YEARS.stop - 1}")
    return month


def retirement_policy(birth: YearMonth, category: Category) -> RetirementPolicy:
    """Statutory age, retirement month, flexible window and minimum years (retirement-age.md, Algorithm).

    ``delay = 0 if k < 0 else min(k // step + 1, max_delay)`` where k counts months
    from the category's first delayed birth month; the day of birth does not matter.
    """
    rule = _RULES[Category(category)]
    k = rule.first_delayed.months_until(birth)
    delay = 0 if k < 0 else min(k // rule.step + 1, rule.max_delay)
    original = Age(rule.original_years)
    age = Age.from_months(original.total_months + delay)
    retire = birth.plus_months(age.total_months)

    earliest: FlexibleBound | None = None
    latest: FlexibleBound | None = None
    if retire >= FLEXIBLE_FROM:
        # Early: never before the original age; late: at most 36 months after.
        early_age = Age.from_months(max(original.total_months, age.total_months - FLEXIBLE_SPAN_MONTHS))
        late_age = Age.from_months(age.total_months + FLEXIBLE_SPAN_MONTHS)
        earliest = FlexibleBound(early_age, birth.plus_months(early_age.total_months))
        latest = FlexibleBound(late_age, birth.plus_months(late_age.total_months))

    return RetirementPolicy(
        category=Category(category),
        birth=birth,
        statutory_age=age,
        retirement_month=retire,
        original_age=original,
        flexible_earliest=earliest,
        flexible_latest=latest,
        min_contribution=Age.from_months(min_contribution_months(retire.year)),
    )


def min_contribution_months(reference_year: int) -> int:
    """Minimum employee-pension contribution, in months, for a reference year (annex 4).

    15 years up to 2029, then +6 months a year from 2030, reaching 20 years in 2039.
    """
    return min(180 + 6 * max(0, reference_year - 2029), 240)


def hunan_medical_min_province_years(year: int) -> int:
    """Hunan's minimum in-province medical contribution years for the year of handling.

    湖南省职工基本医疗保险实施办法 art. 26: 10 in 2023, one more each year, 15 from 2028.
    Years before 2023 use the 2023 value (the seed's 10).
    """
    return min(max(10 + (year - 2023), 10), 15)


@dataclass(frozen=True, slots=True)
class EarlyRetirementAges:
    """Ages for special-type-of-work and illness early retirement (configuration).

    Defaults are the pre-reform values (国发〔1978〕104号 as restated in
    retirement-age.md): special type of work men 55 / women 45, illness men 50 /
    women 45. How the reform moves them was not found in national text, so they
    are configuration; the HR system's approval decides, and the pre-checks only
    report them (E01/E02 check the filing and the appraisal, not the age).
    """

    special_work_type_male: Age = field(default_factory=lambda: Age(55))
    special_work_type_female: Age = field(default_factory=lambda: Age(45))
    illness_male: Age = field(default_factory=lambda: Age(50))
    illness_female: Age = field(default_factory=lambda: Age(45))

    def age_for(self, reason: str, gender: str) -> Age:
        """The configured age for ``reason`` (``special_work_type`` or ``illness``) and gender."""
        male = _gender_is_male(gender)
        if reason == "special_work_type":
            return self.special_work_type_male if male else self.special_work_type_female
        if reason == "illness":
            return self.illness_male if male else self.illness_female
        raise ValueError(f"no configured early-retirement age for reason {reason!r}")


def _gender_is_male(gender: str) -> bool:
    if gender not in ("male", "female"):
        raise ValueError(f"gender must be 'male' or 'female', got {gender!r}")
    return gender == "male"


def category_for(gender: str, position: str | None) -> Category:
    """The retirement category from gender and, for women, the HR ``position`` (cadre / worker)."""
    if _gender_is_male(gender):
        return Category.male
    if position is None:
        raise ValueError("position ('cadre' or 'worker') is required for a woman: it decides her statutory age")
    if position == "cadre":
        return Category.female_cadre
    if position == "worker":
        return Category.female_worker
    raise ValueError(f"position must be 'cadre' or 'worker', got {position!r}")
