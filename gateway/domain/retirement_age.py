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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

__all__ = [
    "EARLY_AGE_NAMES",
    "MUNICIPAL_REPLY_DELAYS",
    "Age",
    "AgeDelay",
    "Category",
    "EarlyRetirementAge",
    "EarlyRetirementAges",
    "FlexibleBound",
    "RetirementPolicy",
    "YearMonth",
    "category_for",
    "early_retirement_age",
    "hunan_medical_min_province_years",
    "min_contribution_months",
    "retirement_policy",
]


class Category(StrEnum):
    """Retirement category: decides original age, delay pace and cap (retirement-age.md, Categories)."""

    male = "male"
    female_cadre = "female_cadre"  # original age 55 (cadres, management/technical posts)
    female_worker = "female_worker"  # original age 50 (workers)


_YEAR_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII only: \d and int() take any Unicode digit


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


# The reform's first delayed retirement month: an age reached from 2025-01 on is delayed.
REFORM_FROM = YearMonth(2025, 1)

EARLY_REASONS = ("special_work_type", "illness")  # the early reasons with a configured age
EARLY_AGE_NAMES = ("special_work_type_male", "special_work_type_female", "illness_male", "illness_female")


@dataclass(frozen=True, slots=True)
class AgeDelay:
    """An early-retirement age delayed by birth month like the statutory age: +1 month of age
    per ``step`` birth months, at most ``max_months``, from the first birth month whose base
    age is reached in 2025-01 (the reform's rule for the statutory ages, retirement-age.md)."""

    step: int
    max_months: int

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise ValueError("step must be a whole number of birth months ≥ 1")
        if isinstance(self.max_months, bool) or not isinstance(self.max_months, int) or self.max_months < 0:
            raise ValueError("max_months must be a whole number ≥ 0")


# retirement-age.md, "Special type of work and illness": one municipal reply says special-type
# ages are delayed the same way as the statutory ones: men 55→58 by 1 month per 4 birth months,
# women 45→50 by 1 month per 2. Not national text: off unless ``delayed`` is set.
MUNICIPAL_REPLY_DELAYS: dict[str, AgeDelay] = {
    "special_work_type_male": AgeDelay(step=4, max_months=36),
    "special_work_type_female": AgeDelay(step=2, max_months=60),
}


@dataclass(frozen=True, slots=True)
class EarlyRetirementAges:
    """Ages for special-type-of-work and illness early retirement (configuration).

    Defaults are the pre-reform values (国发〔1978〕104号 as restated in
    retirement-age.md): special type of work men 55 / women 45, illness men 50 /
    women 45. How the reform moves them was not found in national text, so they
    are configuration (``[policy.early_retirement]``); the HR system's approval
    decides, and the pre-checks only report them (E01/E02 check the filing and the
    appraisal, not the age): a younger applicant gets a warning, never a refusal.

    ``delayed`` switches on ``delays`` (by default the schedule of one municipal
    reply, for the special-type ages only); an age without a delay entry is fixed.
    """

    special_work_type_male: Age = Age(55)
    special_work_type_female: Age = Age(45)
    illness_male: Age = Age(50)
    illness_female: Age = Age(45)
    delayed: bool = False
    delays: dict[str, AgeDelay] = field(default_factory=lambda: dict(MUNICIPAL_REPLY_DELAYS))

    def __post_init__(self) -> None:
        for name in EARLY_AGE_NAMES:
            if not isinstance(getattr(self, name), Age):
                raise ValueError(f"{name}: must be an Age")
        if unknown := sorted(set(self.delays) - set(EARLY_AGE_NAMES)):
            raise ValueError(f"delay: unknown age(s) {', '.join(unknown)}; known: {', '.join(EARLY_AGE_NAMES)}")
        if not all(isinstance(d, AgeDelay) for d in self.delays.values()):
            raise ValueError("delay: every entry must be an AgeDelay")

    def age_for(self, reason: str, gender: str, birth: YearMonth | None = None) -> Age:
        """The configured age for ``reason`` (``special_work_type`` or ``illness``) and gender.

        With ``delayed`` on, an age that has a delay entry depends on the birth month,
        which is then required.
        """
        name = _early_age_name(reason, gender)
        base: Age = getattr(self, name)
        delay = self.delays.get(name) if self.delayed else None
        if delay is None:
            return base
        if birth is None:
            raise ValueError(f"{name} is delayed by birth month: the birth month is required")
        first = REFORM_FROM.plus_months(-base.total_months)  # the birth month reaching the base age in 2025-01
        k = first.months_until(birth)
        extra = 0 if k < 0 else min(k // delay.step + 1, delay.max_months)
        return Age.from_months(base.total_months + extra)

    @classmethod
    def from_settings(cls, data: Mapping[str, Any]) -> EarlyRetirementAges:
        """Build from the ``[policy.early_retirement]`` table; a ValueError names the key.

        Ages are whole years (``55``) or ``{years = 55, months = 4}``; ``delayed`` is a
        boolean; ``[policy.early_retirement.delay]`` maps an age name to
        ``{step = 4, max_months = 36}`` and replaces the municipal-reply default.
        """
        if unknown := sorted(set(data) - {*EARLY_AGE_NAMES, "delayed", "delay"}):
            raise ValueError(f"{unknown[0]}: unknown setting (known: {', '.join(EARLY_AGE_NAMES)}, delayed, delay)")
        ages = {name: _setting_age(data[name], name) for name in EARLY_AGE_NAMES if name in data}
        delayed = data.get("delayed", False)
        if not isinstance(delayed, bool):
            raise ValueError("delayed: must be true or false")
        delays = dict(MUNICIPAL_REPLY_DELAYS)
        if "delay" in data:
            table = data["delay"]
            if not isinstance(table, Mapping):
                raise ValueError("delay: must be a table of age name = {step, max_months}")
            delays = {}
            for name, entry in table.items():
                where = f"delay.{name}"
                if name not in EARLY_AGE_NAMES:
                    raise ValueError(f"{where}: unknown age (known: {', '.join(EARLY_AGE_NAMES)})")
                if not isinstance(entry, Mapping) or set(entry) != {"step", "max_months"}:
                    raise ValueError(f"{where}: must be {{step = N, max_months = M}}")
                try:
                    delays[name] = AgeDelay(entry["step"], entry["max_months"])
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
        return cls(**ages, delayed=delayed, delays=delays)


def _setting_age(value: Any, name: str) -> Age:
    if isinstance(value, int) and not isinstance(value, bool):
        years, months = value, 0
    elif isinstance(value, Mapping) and set(value) <= {"years", "months"} and "years" in value:
        years, months = value["years"], value.get("months", 0)
    else:
        raise ValueError(f"{name}: must be whole years (55) or {{years = 55, months = 4}}")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (years, months)):
        raise ValueError(f"{name}: years and months must be whole numbers")
    if not 16 <= years <= 70 or not 0 <= months <= 11:
        raise ValueError(f"{name}: years must be 16..70 and months 0..11")
    return Age(years, months)


@dataclass(frozen=True, slots=True)
class EarlyRetirementAge:
    """The configured special-type or illness age for one person, and the month it is reached."""

    reason: str
    age: Age
    month: YearMonth
    delayed: bool  # True when a birth-month delay applied (``age`` above the base age)

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "age": self.age.to_json(), "month": str(self.month), "delayed": self.delayed}


def early_retirement_age(
    birth: YearMonth, gender: str, reason: str, ages: EarlyRetirementAges | None = None
) -> EarlyRetirementAge:
    """The configured early-retirement age for a birth month, gender and reason (information only:
    the HR system's approval decides; retirement-age.md, "Special type of work and illness")."""
    ages = ages if ages is not None else EarlyRetirementAges()
    age = ages.age_for(reason, gender, birth)
    base: Age = getattr(ages, _early_age_name(reason, gender))
    return EarlyRetirementAge(reason, age, birth.plus_months(age.total_months), age != base)


def _early_age_name(reason: str, gender: str) -> str:
    if reason not in EARLY_REASONS:
        raise ValueError(f"no configured early-retirement age for reason {reason!r}")
    return f"{reason}_{'male' if _gender_is_male(gender) else 'female'}"


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
