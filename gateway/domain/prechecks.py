"""Pre-checks (前置校验) and item matching, decided from department answers.

Implements docs/eligibility.md (the rule table) over domain.md §3 and §5 and
seed §八. Pure: the caller queries the departments (``departments_needed``)
and passes their answers; ``evaluate`` decides.

A department answer is a record (facts), ``None`` ("no record": judged as an
empty record — flags false, counts 0), or ``UNAVAILABLE`` (timeout, outage,
malformed reply: every check of that department is ``unverifiable``, never
``pass`` or ``fail``). A fact of the wrong type makes its check unverifiable.

Every check result carries its ``source`` (the seed row, or the national text for
ages and years: gateway/domain/sources.py) and the department ``query`` (the facts)
it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from typing import Any, Final

from gateway.domain.idcard import luhn_valid
from gateway.domain.items import (
    AUTOMATIC_BY_INITIATING,
    INITIATING_ITEMS,
    ITEM_ORDER,
    ITEMS,
    OPTIONAL_BY_INITIATING,
    PROVINCE_FUND_CENTER,
    Department,
    EarlyReason,
    Item,
    Mode,
)
from gateway.domain.retirement_age import (
    EarlyRetirementAge,
    EarlyRetirementAges,
    RetirementPolicy,
    YearMonth,
    category_for,
    early_retirement_age,
    hunan_medical_min_province_years,
    min_contribution_months,
    retirement_policy,
)
from gateway.domain.sources import IDENTITY_SOURCE, check_source

__all__ = [
    "UNAVAILABLE",
    "Applicant",
    "CheckResult",
    "DeptAnswer",
    "Evaluation",
    "ItemDecision",
    "Outcome",
    "Request",
    "Unavailable",
    "departments_needed",
    "evaluate",
    "planned_check_keys",
]


class Outcome(StrEnum):
    """Result of one check (eligibility.md, Check table)."""

    pass_ = "pass"
    fail = "fail"
    not_applicable = "not_applicable"
    unverifiable = "unverifiable"


class Unavailable(Enum):
    """Type of the ``UNAVAILABLE`` sentinel (a one-member enum: a true singleton)."""

    UNAVAILABLE = "unavailable"

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE: Final = Unavailable.UNAVAILABLE
DeptAnswer = Mapping[str, Any] | None | Unavailable
"""A department's answer: a record, ``None`` (no record) or ``UNAVAILABLE``."""

_EMPLOYEE = (Item.RETIRE_NORMAL, Item.RETIRE_EARLY)


@dataclass(frozen=True, slots=True)
class Applicant:
    """What the application says about the person (the ID number is already validated)."""

    gender: str  # "male" | "female"
    birth_date: date
    position: str | None  # "cadre" | "worker"; decides a woman's category
    household: str  # "urban" | "rural" (reported only: H01–H03 use the health record's `urban`)
    provident_fund_center: str | None


@dataclass(frozen=True, slots=True)
class Request:
    """One joint application as the rules see it. Invalid combinations raise ValueError."""

    initiating: Item
    early_reason: EarlyReason | None
    optional_items: tuple[Item, ...]
    all_or_nothing: bool
    applicant: Applicant
    today: date  # the application's submitted_at date
    requested_retirement_month: YearMonth | None = None  # flexible early only; None: next month
    bank_card_number: str | None = None
    bank_card_edited: bool = False

    def __post_init__(self) -> None:
        _validate_combination(self.initiating, self.early_reason, self.optional_items)
        if self.initiating in _EMPLOYEE:
            category_for(self.applicant.gender, self.applicant.position)  # raises for a woman without position
        if Item.PROVIDENT_FUND_WITHDRAWAL in self.optional_items and not self.applicant.provident_fund_center:
            # The schema refuses this with a 400 on /applicant/provident_fund_center.
            raise ValueError("provident_fund_withdrawal needs the applicant's provident_fund_center")

    @property
    def flexible(self) -> bool:
        return self.early_reason is EarlyReason.FLEXIBLE

    @property
    def retirement_month_requested(self) -> YearMonth:
        """The month a flexible early retiree asks for; by default the month after today's."""
        return self.requested_retirement_month or YearMonth.of(self.today).plus_months(1)


def _validate_combination(initiating: Item, early_reason: EarlyReason | None, optional: Iterable[Item]) -> None:
    if initiating not in INITIATING_ITEMS:
        raise ValueError(f"{initiating!s} is not an initiating item")
    if (initiating is Item.RETIRE_EARLY) != (early_reason is not None):
        raise ValueError("early_reason is required with retire_early and forbidden otherwise")
    chosen = list(optional)
    if len(set(chosen)) != len(chosen):
        raise ValueError("optional_items lists an item twice")
    if not_allowed := sorted(set(chosen) - OPTIONAL_BY_INITIATING[initiating]):
        raise ValueError(f"optional items not allowed with {initiating!s}: {', '.join(not_allowed)}")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's result with its stable code (``<KEY>_PASS|_FAIL|_NA|_UNVERIFIABLE``)."""

    key: str
    item: Item
    department: Department
    result: Outcome
    code: str
    reason: str  # Chinese, for the applicant
    source: str = ""  # the seed row, or the national/provincial text (sources.py)
    query: str = ""  # the department query and the facts the check reads

    def to_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "item": str(self.item),
            "department": str(self.department),
            "result": str(self.result),
            "code": self.code,
            "reason": self.reason,
            "source": self.source,
            "query": self.query,
        }


class ReasonCode(StrEnum):
    """Why an item is, or is not, in the plan."""

    INITIATING = "INITIATING"
    CHOSEN = "CHOSEN"
    NOT_NEEDED = "NOT_NEEDED"
    PRECHECK_FAILED = "PRECHECK_FAILED"
    PRECHECK_UNVERIFIABLE = "PRECHECK_UNVERIFIABLE"
    HPF_CENTER_NOT_CONNECTED = "HPF_CENTER_NOT_CONNECTED"
    BANK_CARD_NOT_OWNED = "BANK_CARD_NOT_OWNED"
    BANK_CARD_TYPE_NOT_ALLOWED = "BANK_CARD_TYPE_NOT_ALLOWED"
    EMPLOYEE_RETIREMENT = "EMPLOYEE_RETIREMENT"
    RECEIVING_BENEFITS = "RECEIVING_BENEFITS"
    NOT_RECEIVING_BENEFITS = "NOT_RECEIVING_BENEFITS"
    IDENTITY_NOT_VERIFIED = "IDENTITY_NOT_VERIFIED"
    IDENTITY_UNVERIFIABLE = "IDENTITY_UNVERIFIABLE"
    ALL_OR_NOTHING = "ALL_OR_NOTHING"
    APPLICATION_REFUSED = "APPLICATION_REFUSED"


@dataclass(frozen=True, slots=True)
class ItemDecision:
    """Whether an item goes into the dispatch plan, and why."""

    item: Item
    mode: Mode
    included: bool
    reason_code: str
    reason: str  # Chinese

    def to_json(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "mode": str(self.mode),
            "included": self.included,
            "reason_code": self.reason_code,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decision before anything is stored or sent."""

    accepted: bool
    refusal_code: str | None  # identity_not_verified | identity_unverifiable | precheck_failed | all_or_nothing
    checks: tuple[CheckResult, ...]
    items: tuple[ItemDecision, ...]
    warnings: tuple[str, ...] = ()
    unverified_departments: tuple[Department, ...] = ()

    @property
    def included_items(self) -> tuple[Item, ...]:
        return tuple(d.item for d in self.items if d.included)

    @property
    def checks_withheld(self) -> bool:
        """True when identity was not verified: only the ``ID`` entry is reported, nothing else is judged."""
        return self.refusal_code in _IDENTITY_REFUSALS

    def check(self, key: str) -> CheckResult:
        return next(c for c in self.checks if c.key == key)

    @property
    def childless(self) -> bool | None:
        """True when the one-child reward qualifies only by H03 (no child): decides its materials."""
        results = {c.key: c.result for c in self.checks if c.key in ("H01", "H02", "H03")}
        if Outcome.pass_ in (results.get("H01"), results.get("H02")):
            return False
        return True if results.get("H03") is Outcome.pass_ else None

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "refusal_code": self.refusal_code,
            "checks_withheld": self.checks_withheld,
            "checks": [c.to_json() for c in self.checks],
            "items": [d.to_json() for d in self.items],
            "warnings": list(self.warnings),
            "unverified_departments": [str(d) for d in self.unverified_departments],
        }


# ---------------------------------------------------------------------------------------------
# Facts and checks
# ---------------------------------------------------------------------------------------------


class _Malformed(Exception):
    """A fact has the wrong type: the check that reads it is unverifiable."""


@dataclass(frozen=True, slots=True)
class _Facts:
    """Typed reads of one department record; missing reads as false / 0 / absent (eligibility.md)."""

    data: Mapping[str, Any]

    def flag(self, name: str) -> bool:
        value = self.data.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        raise _Malformed(name)

    def count(self, name: str) -> int:
        value = self.data.get(name)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Malformed(name)
        return value

    def text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None or isinstance(value, str):
            return value
        raise _Malformed(name)

    def day(self, name: str) -> date | None:
        value = self.text(name)
        try:
            return None if value is None else date.fromisoformat(value)
        except ValueError:
            raise _Malformed(name) from None


@dataclass(frozen=True, slots=True)
class _Context:
    req: Request
    employee_policy: RetirementPolicy | None  # None for resident pension
    early_age: EarlyRetirementAge | None = None  # special type of work / illness: the configured age

    @property
    def policy(self) -> RetirementPolicy:
        """The statutory-age policy; only P/E checks (employee retirement) read it."""
        if self.employee_policy is None:
            raise AssertionError("retirement policy is only defined for employee retirement")
        return self.employee_policy

    @property
    def reference_year(self) -> int:
        """P12's year (annex 4 goes by the year of retirement; docs/eligibility.md, "P12/P13 reference year").

        Normal retirement: the year the statutory age is reached. Flexible early: the year of
        the requested month. Special type of work / illness: the person retires when the HR
        system approves, so the year of retirement is the application's year.
        """
        if self.req.flexible:
            return self.req.retirement_month_requested.year
        if self.req.initiating is Item.RETIRE_EARLY:
            return self.req.today.year
        return self.policy.retirement_month.year

    @property
    def early_age_text(self) -> str | None:
        """E01/E02's information: the configured age; never decides the check."""
        if self.early_age is None:
            return None
        what = "特殊工种" if self.early_age.reason == EarlyReason.SPECIAL_WORK_TYPE else "病退"
        age, month = self.early_age.age, self.early_age.month
        return f"配置的{what}提前退休参考年龄{age}，{month}达到；是否符合以人社部门审批为准"

    @property
    def min_months(self) -> int:
        return min_contribution_months(self.reference_year)

    @property
    def policy_text(self) -> str:
        return f"法定退休年龄{self.policy.statutory_age}，{self.policy.retirement_month}达到"


_Verdict = tuple[Outcome, str | None]
_Judge = Callable[[_Facts, _Context], _Verdict]


def _ok(passed: bool, detail: str | None = None) -> _Verdict:
    return (Outcome.pass_ if passed else Outcome.fail), detail


def _no(name: str) -> _Judge:
    return lambda f, c: _ok(not f.flag(name))


def _yes(name: str) -> _Judge:
    return lambda f, c: _ok(f.flag(name))


def _years(months: int) -> str:
    return f"{months // 12}年" + (f"{months % 12}个月" if months % 12 else "")


def _gaps(minimum: Callable[[_Context], int]) -> _Judge:
    """P13 / R10: gaps are judged only when the contribution months are under the minimum."""
    return lambda f, c: (
        (Outcome.not_applicable, "缴费年限已达最低要求，无需判断断缴情况")
        if f.count("contribution_months") >= minimum(c)
        else _ok(not f.flag("gaps"))
    )


def _p12(f: _Facts, c: _Context) -> _Verdict:
    minimum = c.min_months
    return _ok(f.count("contribution_months") >= minimum, f"{c.reference_year}年标准为{_years(minimum)}")


def _e04(f: _Facts, c: _Context) -> _Verdict:
    p, wanted, submitted = c.policy, c.req.retirement_month_requested, _this_month(c)
    if p.flexible_earliest is None:
        return Outcome.fail, "法定退休时间早于2025年1月，不适用弹性提前退休"
    if wanted < submitted:
        return Outcome.fail, f"申请的退休时间{wanted}早于提交申请的月份{submitted}，不能申请以往月份退休"
    window = f"可选{p.flexible_earliest.month}至{p.retirement_month.plus_months(-1)}，申请{wanted}"
    return _ok(p.flexible_earliest.month <= wanted < p.retirement_month, window)


def _m07(f: _Facts, c: _Context) -> _Verdict:
    total = 360 if c.req.applicant.gender == "male" else 300  # men 30 / women 25 years
    province = hunan_medical_min_province_years(c.req.today.year)
    passed = f.count("contribution_months") >= total and f.count("province_contribution_months") >= province * 12
    return _ok(passed, f"{c.req.today.year}年标准：累计{total // 12}年，其中本省实际缴费{province}年")


def _h01(f: _Facts, c: _Context) -> _Verdict:
    issued = f.day("certificate_date")
    return _ok(f.flag("urban") and issued is not None and issued < date(2016, 3, 30))


def _h03(f: _Facts, c: _Context) -> _Verdict:
    birth, cutoff = c.req.applicant.birth_date, date(2015, 12, 31)
    age = cutoff.year - birth.year - ((cutoff.month, cutoff.day) < (birth.month, birth.day))
    needed = 40 if c.req.applicant.gender == "male" else 35
    return _ok(f.flag("urban") and f.count("children_born_or_adopted") == 0 and age >= needed)


def _r01(f: _Facts, c: _Context) -> _Verdict:
    b, t = c.req.applicant.birth_date, c.req.today
    return _ok(t.year - b.year - ((t.month, t.day) < (b.month, b.day)) >= 60)


def _this_month(c: _Context) -> YearMonth:
    return YearMonth.of(c.req.today)


@dataclass(frozen=True, slots=True)
class _Spec:
    department: Department
    requirement: str  # the seed §八 wording, Chinese
    facts: str  # what the department query must return for this check ("query" in the result)
    judge: _Judge


_H, _J, _N, _W, _F = Department.HRSS, Department.JUSTICE, Department.NHSA, Department.HEALTH, Department.HPF
_AGE_FACTS = "answer required (its record decides the birth date); application: birth_date, gender, position"


def _e01(f: _Facts, c: _Context) -> _Verdict:
    return _ok(f.flag("special_work_type_filed"), c.early_age_text)


def _e02(f: _Facts, c: _Context) -> _Verdict:
    return _ok(f.text("labour_capacity") == "complete_loss_illness", c.early_age_text)


# eligibility.md "Check table"; requirement texts from seed §八. Dict order is the report order.
# Sources (seed rows, laws) are in sources.py, by key and initiating item.
_SPECS: dict[str, _Spec] = {
    "P01": _Spec(
        _H,
        "申请人是企业职工养老保险参保人员",
        "pension_scheme",
        lambda f, c: _ok(f.text("pension_scheme") == "employee"),
    ),
    "P02": _Spec(_H, "申请人未享受养老保险待遇", "receiving_pension", _no("receiving_pension")),
    "P03": _Spec(
        _H,
        "申请人达到法定退休年龄",
        _AGE_FACTS + ", submitted_at",
        lambda f, c: _ok(_this_month(c) >= c.policy.retirement_month, c.policy_text),
    ),
    "P04": _Spec(_H, "申请人没有违规的缴费情形", "irregular_contributions", _no("irregular_contributions")),
    "P05": _Spec(
        _H,
        "申请人在湖南省外没有需要转移接续的城镇职工基本养老保险关系",
        "out_of_province_transfer_pending",
        _no("out_of_province_transfer_pending"),
    ),
    "P06": _Spec(
        _H, "申请人没有需要转换的机关事业单位基本养老保险关系", "institution_relation", _no("institution_relation")
    ),
    "P07": _Spec(
        _H, "申请人没有需要城乡养老保险关系制度衔接", "urban_rural_linkage_pending", _no("urban_rural_linkage_pending")
    ),
    "P08": _Spec(
        _H, "申请人没有需要转移接续军地养老保险关系", "military_transfer_pending", _no("military_transfer_pending")
    ),
    "P09": _Spec(_H, "申请人没有多重养老保险关系个人账户", "multiple_accounts", _no("multiple_accounts")),
    "P10": _Spec(_H, "申请人没有社会保险费欠费情况", "arrears", _no("arrears")),
    "P11": _Spec(
        _H,
        "申请人没有视同缴费年限",
        "deemed_contribution_months",
        lambda f, c: _ok(f.count("deemed_contribution_months") == 0),
    ),
    "P12": _Spec(
        _H,
        "申请人缴费年限达到最低缴费年限",
        "contribution_months; application: birth_date, gender, position, submitted_at, requested_retirement_month",
        _p12,
    ),
    "P13": _Spec(
        _H,
        "申请人没有社会保险费断缴情况（缴费年限不满最低缴费年限时判断）",
        "contribution_months, gaps",
        _gaps(lambda c: c.min_months),
    ),
    "P03E": _Spec(
        _H,
        "申请人未达到法定正常退休年龄",
        _AGE_FACTS + ", submitted_at",
        lambda f, c: _ok(_this_month(c) < c.policy.retirement_month, c.policy_text),
    ),
    "E01": _Spec(_H, "特殊工种工作期间的单位已在国家特殊工种信息库报备", "special_work_type_filed", _e01),
    "E02": _Spec(_H, "劳动能力鉴定结论为“因病完全丧失劳动能力”", "labour_capacity", _e02),
    "E03": _Spec(
        _H,
        "特殊工种、病退审批通过后已在本单位与经办机构网络上各公示5个工作日",
        "publicity_working_days",
        lambda f, c: _ok(f.count("publicity_working_days") >= 5),
    ),
    "E04": _Spec(
        _H,
        "申请的退休时间在弹性提前退休范围内",
        _AGE_FACTS + ", submitted_at, requested_retirement_month",
        _e04,
    ),
    "J01": _Spec(
        _J, "申请人没有影响待遇的服刑经历", "prison_record_affecting_benefits", _no("prison_record_affecting_benefits")
    ),
    "J02": _Spec(_J, "申请人不处于服刑期", "serving_sentence", _no("serving_sentence")),
    "M01": _Spec(_N, "申请人是职工基本医疗保险参保人员", "insured", _yes("insured")),
    "M02": _Spec(_N, "申请人人员类别为在职", "category", lambda f, c: _ok(f.text("category") == "in_service")),
    "M03": _Spec(_N, "申请人没有需要转移接续的职工基本医疗保险关系", "transfer_pending", _no("transfer_pending")),
    "M04": _Spec(
        _N, "申请人没有需要转移接续的军地医疗保险关系", "military_transfer_pending", _no("military_transfer_pending")
    ),
    "M05": _Spec(
        _N, "申请人没有多个职工医疗保险账户", "employee_accounts", lambda f, c: _ok(f.count("employee_accounts") <= 1)
    ),
    "M06": _Spec(
        _N,
        "申请人没有职工医保视同缴费年限",
        "deemed_contribution_months",
        lambda f, c: _ok(f.count("deemed_contribution_months") == 0),
    ),
    "M07": _Spec(
        _N,
        "职工医保缴费年限男满30年、女满25年，其中本省实际缴费年限达到要求",
        "contribution_months, province_contribution_months; application: gender, submitted_at",
        _m07,
    ),
    "H01": _Spec(
        _W, "2016年3月30日前已领取《独生子女证》或《独生子女父母光荣证》的城镇居民", "urban, certificate_date", _h01
    ),
    "H02": _Spec(
        _W,
        "2016年1月1日以前符合领取《独生子女证》或《独生子女父母光荣证》领证条件的城镇居民",
        "urban, eligible_before_2016",
        lambda f, c: _ok(f.flag("urban") and f.flag("eligible_before_2016")),
    ),
    "H03": _Spec(
        _W,
        "2015年12月31日前年满35周岁的女性或年满40周岁的男性，未生育也未收养子女的城镇居民",
        "urban, children_born_or_adopted; application: birth_date, gender",
        _h03,
    ),
    # F01: a fund account must exist, so "no record" fails (eligibility.md); F02/F03 follow the facts.
    "F01": _Spec(
        _F,
        "住房公积金账户未被法院冻结",
        "center, frozen_by_court (a record must exist)",
        lambda f, c: _ok(bool(f.data) and not f.flag("frozen_by_court")),
    ),
    "F02": _Spec(_F, "无未结清的住房公积金贷款", "center, loan_outstanding", _no("loan_outstanding")),
    "F03": _Spec(
        _F,
        "个人公积金账户状态为封存",
        "center, account_status",
        lambda f, c: _ok(f.text("account_status") == "sealed"),
    ),
    "R01": _Spec(_H, "申请人年满60周岁", "answer required; application: birth_date, submitted_at", _r01),
    "R02": _Spec(
        _H, "申请人通过领取待遇资格认证", "benefit_authentication_passed", _yes("benefit_authentication_passed")
    ),
    "R03": _Spec(
        _H,
        "申请人没有领取其他基本养老保险保障待遇",
        "receiving_other_basic_pension",
        _no("receiving_other_basic_pension"),
    ),
    "R04": _Spec(
        _H,
        "申请人没有需要转移接续的城乡居民基本养老保险关系",
        "out_of_province_transfer_pending",
        _no("out_of_province_transfer_pending"),
    ),
    "R05": _Spec(
        _H,
        "申请人没有城乡居民基本养老保险关系转移和城乡养老保险制度衔接",
        "urban_rural_linkage_pending",
        _no("urban_rural_linkage_pending"),
    ),
    "R06": _Spec(_H, "申请人没有多重养老保险关系个人账户", "multiple_accounts", _no("multiple_accounts")),
    "R07": _Spec(
        _H,
        "申请人没有不能缴费期间的缴费情形",
        "contributions_in_ineligible_period",
        _no("contributions_in_ineligible_period"),
    ),
    "R08": _Spec(_H, "申请人没有社会保险费欠费情况", "arrears", _no("arrears")),
    "R09": _Spec(
        _H,
        "申请人缴费年限满15年",
        "contribution_months",
        lambda f, c: _ok(f.count("contribution_months") >= 180),
    ),
    "R10": _Spec(
        _H,
        "申请人没有社会保险费断缴情况（缴费年限不满15年时判断）",
        "contribution_months, gaps",
        _gaps(lambda c: 180),
    ),
}
_ORDER: dict[str, int] = {key: i for i, key in enumerate(_SPECS)}
# The item a check belongs to, by key letter; any other letter belongs to the initiating item.
_CHECKED_ITEM = {
    "M": Item.MEDICAL_RETIREE_REGISTRATION,
    "H": Item.ONE_CHILD_PARENT_REWARD,
    "F": Item.PROVIDENT_FUND_WITHDRAWAL,
}

_DEPT_NAMES = {
    Department.HRSS: "人社",
    Department.NHSA: "医保",
    Department.HEALTH: "卫健",
    Department.HPF: "省直公积金中心",
    Department.JUSTICE: "司法",
    Department.POLICE: "公安",
}
_PREFIX = {
    Outcome.pass_: ("PASS", "通过"),
    Outcome.fail: ("FAIL", "未通过"),
    Outcome.not_applicable: ("NA", "不适用"),
    Outcome.unverifiable: ("UNVERIFIABLE", "无法核验"),
}
# Seed §八(二) lists E01–E03 for every early application: the one that does not match the
# reason is reported not_applicable, so the totals are 24 (flexible: E04 alone, 22).
_EARLY_KEYS = {
    EarlyReason.SPECIAL_WORK_TYPE: ("E01", "E02", "E03"),
    EarlyReason.ILLNESS: ("E01", "E02", "E03"),
    EarlyReason.FLEXIBLE: ("E04",),
}
_ONLY_FOR_REASON = {
    "E01": (EarlyReason.SPECIAL_WORK_TYPE, "仅特殊工种提前退休需要"),
    "E02": (EarlyReason.ILLNESS, "仅病退需要"),
}
_OPTIONAL_KEYS = {
    Item.MEDICAL_RETIREE_REGISTRATION: ("M01", "M02", "M03", "M04", "M05", "M06", "M07"),
    Item.ONE_CHILD_PARENT_REWARD: ("H01", "H02", "H03"),
    Item.PROVIDENT_FUND_WITHDRAWAL: ("F01", "F02", "F03"),
}
_P_KEYS = tuple(f"P{n:02d}" for n in range(1, 14))
_R_KEYS = tuple(f"R{n:02d}" for n in range(1, 11))


def planned_check_keys(
    initiating: Item, early_reason: EarlyReason | None, optional_items: Iterable[Item]
) -> tuple[str, ...]:
    """The check keys an application runs, in report order (eligibility.md: 28 / 24 or 22 / 14 at most)."""
    chosen = tuple(optional_items)
    _validate_combination(initiating, early_reason, chosen)
    keys: list[str] = []
    if initiating is Item.RETIRE_NORMAL:
        keys += [*_P_KEYS, "J01", "J02"]
    elif initiating is Item.RETIRE_EARLY:
        assert early_reason is not None
        keys += [k for k in _P_KEYS if k != "P03"] + ["P03E", *_EARLY_KEYS[early_reason], "J01", "J02"]
    else:
        keys += [*_R_KEYS, "J02"]
    for item in chosen:
        keys += _OPTIONAL_KEYS.get(item, ())
    return tuple(sorted(keys, key=_ORDER.__getitem__))


def _fund_connected(req: Request) -> bool:
    return req.applicant.provident_fund_center == PROVINCE_FUND_CENTER


def departments_needed(req: Request) -> frozenset[Department]:
    """Departments to query, each once (eligibility.md, Department answers)."""
    needed = {Department.POLICE, Department.HRSS, Department.JUSTICE}
    if Item.MEDICAL_RETIREE_REGISTRATION in req.optional_items:
        needed.add(Department.NHSA)
    if Item.ONE_CHILD_PARENT_REWARD in req.optional_items:
        needed.add(Department.HEALTH)
    if Item.PROVIDENT_FUND_WITHDRAWAL in req.optional_items and _fund_connected(req):
        needed.add(Department.HPF)
    return frozenset(needed)


def _result(key: str, ctx: _Context, item: Item, outcome: Outcome, detail: str | None) -> CheckResult:
    spec = _SPECS[key]
    suffix, word = _PREFIX[outcome]
    if outcome is Outcome.not_applicable and detail:
        reason = f"{word}：{detail}"  # the requirement itself does not apply: say why
    else:
        reason = f"{word}：{spec.requirement}" + (f"（{detail}）" if detail else "")
    source = check_source(key, ctx.req.initiating)
    query = f"{spec.department}: {spec.facts}"
    return CheckResult(key, item, spec.department, outcome, f"{key}_{suffix}", reason, source, query)


def _record_center_elsewhere(answer: DeptAnswer) -> str | None:
    """The hpf record's own ``center`` when it names another centre than the province's (the record wins)."""
    if not isinstance(answer, Mapping) or answer.get("center") is None:
        return None
    center = answer["center"]
    if not isinstance(center, str):
        raise _Malformed("center")
    return None if center == PROVINCE_FUND_CENTER else center


def _judge(key: str, ctx: _Context, answers: Mapping[Department, DeptAnswer]) -> CheckResult:
    spec = _SPECS[key]
    item = _CHECKED_ITEM.get(key[0], ctx.req.initiating)
    # Not applicable by the request alone, whatever the department answered:
    if item is Item.PROVIDENT_FUND_WITHDRAWAL and not _fund_connected(ctx.req):
        return _result(key, ctx, item, Outcome.not_applicable, "该公积金中心暂未接入，未查询")
    if key in _ONLY_FOR_REASON and ctx.req.early_reason is not _ONLY_FOR_REASON[key][0]:
        return _result(key, ctx, item, Outcome.not_applicable, _ONLY_FOR_REASON[key][1])
    answer = answers.get(spec.department, UNAVAILABLE)  # a missing answer was never verified
    if answer is UNAVAILABLE:
        return _result(key, ctx, item, Outcome.unverifiable, f"{_DEPT_NAMES[spec.department]}数据暂时无法获取")
    try:
        if item is Item.PROVIDENT_FUND_WITHDRAWAL and (other := _record_center_elsewhere(answer)):
            return _result(key, ctx, item, Outcome.not_applicable, _center_elsewhere_text(other) + "，未判断")
        outcome, detail = spec.judge(_Facts(answer or {}), ctx)
    except _Malformed:
        return _result(key, ctx, item, Outcome.unverifiable, f"{_DEPT_NAMES[spec.department]}返回的数据不完整")
    return _result(key, ctx, item, outcome, detail)


def _center_elsewhere_text(center: str) -> str:
    return f"省直公积金中心的记录显示该账户属于其他公积金中心（{center}），该中心暂未接入"


# ---------------------------------------------------------------------------------------------
# Item decisions and the evaluation
# ---------------------------------------------------------------------------------------------

_Decision = tuple[bool, ReasonCode, str]

_SSCARD_NOT_NEEDED = {
    "has_card": "已有社会保障卡，无需申领",
    "no_card": "尚未办理社会保障卡，无需启用（请选择社会保障卡申领）",
    "active": "社会保障卡的社会保障功能已启用，无需办理",
}
_BENEFIT_FLAGS = {
    Item.INJURY_BENEFIT_CHANGE: ("receiving_injury_benefits", "工伤保险待遇"),
    Item.UNEMPLOYMENT_BENEFIT_END: ("receiving_unemployment_benefits", "失业保险金"),
}


def _keys(checks: Iterable[CheckResult], outcome: Outcome) -> list[str]:
    return [c.key for c in checks if c.result is outcome]


def _from_checks(checks: list[CheckResult], ok: _Decision) -> _Decision:
    """An item with pre-checks: any fail drops it, else any unverifiable drops it (eligibility.md, Decisions)."""
    if failed := _keys(checks, Outcome.fail):
        return False, ReasonCode.PRECHECK_FAILED, f"前置校验未通过：{'、'.join(failed)}"
    if unverifiable := _keys(checks, Outcome.unverifiable):
        return False, ReasonCode.PRECHECK_UNVERIFIABLE, f"前置校验无法核验：{'、'.join(unverifiable)}，请稍后再试"
    return ok


def _one_child(checks: list[CheckResult]) -> _Decision:
    """H01–H03 are alternatives: one pass qualifies; otherwise unverifiable beats fail."""
    if passed := _keys(checks, Outcome.pass_):
        return True, ReasonCode.CHOSEN, f"申请人选择办理，符合奖励对象条件（{'、'.join(passed)}）"
    if unverifiable := _keys(checks, Outcome.unverifiable):
        return False, ReasonCode.PRECHECK_UNVERIFIABLE, f"前置校验无法核验：{'、'.join(unverifiable)}，请稍后再试"
    return False, ReasonCode.PRECHECK_FAILED, "前置校验未通过：H01、H02、H03均不符合"


def _hrss_facts(answers: Mapping[Department, DeptAnswer]) -> _Facts | None:
    answer = answers.get(Department.HRSS, UNAVAILABLE)
    return None if answer is UNAVAILABLE else _Facts(answer or {})


_HRSS_UNVERIFIABLE: _Decision = (False, ReasonCode.PRECHECK_UNVERIFIABLE, "人社数据暂时无法获取，无法判断")


def _sscard(item: Item, hrss: _Facts | None) -> _Decision:
    """Card items need their own precondition (eligibility.md, Decisions)."""
    if hrss is None:
        return _HRSS_UNVERIFIABLE
    try:
        has_card, active = hrss.flag("has_sscard"), hrss.flag("sscard_social_function_active")
    except _Malformed:
        return _HRSS_UNVERIFIABLE
    if item is Item.SSCARD_APPLY:
        if has_card:
            return False, ReasonCode.NOT_NEEDED, _SSCARD_NOT_NEEDED["has_card"]
    elif not has_card or active:
        return False, ReasonCode.NOT_NEEDED, _SSCARD_NOT_NEEDED["active" if has_card else "no_card"]
    return True, ReasonCode.CHOSEN, "申请人选择办理"


def _withdrawal(req: Request, checks: list[CheckResult], hpf: DeptAnswer) -> _Decision:
    if not _fund_connected(req):
        return False, ReasonCode.HPF_CENTER_NOT_CONNECTED, "该公积金中心暂未接入，请到所属中心办理"
    try:
        if other := _record_center_elsewhere(hpf):  # the department's record wins over the declared centre
            return False, ReasonCode.HPF_CENTER_NOT_CONNECTED, _center_elsewhere_text(other) + "，请到所属中心办理"
    except _Malformed:
        pass  # F01–F03 are unverifiable then, and say so below
    decision = _from_checks(checks, (True, ReasonCode.CHOSEN, "申请人选择办理，前置校验通过"))
    if not decision[0] or not req.bank_card_edited:
        return decision
    return _edited_card(req, hpf) or decision


# Seed §八(一) row 19 and §八(二) row 20: an edited card must be the applicant's own
# social-security card or class-I savings card (normal retirement), or class-I savings card (early).
CARD_TYPES = {"social_security_card": "社会保障卡", "class_1_savings": "一类储蓄卡"}
_ALLOWED_CARDS: dict[Item, tuple[str, ...]] = {
    Item.RETIRE_NORMAL: ("social_security_card", "class_1_savings"),
    Item.RETIRE_EARLY: ("class_1_savings",),
}


def _owned_cards(cards: Any) -> dict[str, str | None]:
    """hpf ``bank_cards``: numbers, or ``{"number", "type"}`` objects → number → type (None: not stated)."""
    if not isinstance(cards, list | tuple):
        raise _Malformed("bank_cards")
    owned: dict[str, str | None] = {}
    for card in cards:
        if isinstance(card, str):
            owned[card] = None
        elif (
            isinstance(card, Mapping)
            and isinstance(card.get("number"), str)
            and isinstance(card.get("type"), str | None)
        ):
            owned[card["number"]] = card.get("type")
        else:
            raise _Malformed("bank_cards")
    return owned


def _edited_card(req: Request, hpf: DeptAnswer) -> _Decision | None:
    """An edited card must be in the hpf record's cards, of an allowed type when the record says the type.

    A record without ``bank_cards`` cannot tell whose card it is: unverifiable, never "not the applicant's".
    """
    allowed = _ALLOWED_CARDS[req.initiating]
    wanted = "或".join(CARD_TYPES[t] for t in allowed)
    cards = hpf.get("bank_cards") if isinstance(hpf, Mapping) else None
    if cards is None:
        return (
            False,
            ReasonCode.PRECHECK_UNVERIFIABLE,
            "公积金中心未返回申请人的银行卡信息，无法核验修改后的卡号（可使用系统提供的卡号）",
        )
    try:
        owned = _owned_cards(cards)
    except _Malformed:
        return False, ReasonCode.PRECHECK_UNVERIFIABLE, "公积金中心返回的银行卡数据不完整，无法核验修改后的卡号"
    if req.bank_card_number is None or req.bank_card_number not in owned:
        return False, ReasonCode.BANK_CARD_NOT_OWNED, f"修改后的卡号不是申请人本人的{wanted}"
    kind = owned[req.bank_card_number]
    if kind is not None and kind not in allowed:
        return False, ReasonCode.BANK_CARD_TYPE_NOT_ALLOWED, f"修改后的卡号是申请人本人的卡，但不是{wanted}"
    return None


def _automatic(item: Item, hrss: _Facts | None) -> _Decision:
    """Automatic items come from hrss facts (domain.md §3; eligibility.md, Decisions)."""
    if item is Item.EMPLOYMENT_FILING_END:
        return True, ReasonCode.EMPLOYEE_RETIREMENT, "职工退休，自动办理劳动用工备案终止"
    if hrss is None:
        return _HRSS_UNVERIFIABLE
    flag, benefit = _BENEFIT_FLAGS[item]
    try:
        receiving = hrss.flag(flag)
    except _Malformed:
        return _HRSS_UNVERIFIABLE
    if receiving:
        return True, ReasonCode.RECEIVING_BENEFITS, f"正在领取{benefit}，自动办理"
    return False, ReasonCode.NOT_RECEIVING_BENEFITS, f"未领取{benefit}，无需办理"


def _identity(answers: Mapping[Department, DeptAnswer]) -> ReasonCode | None:
    """公安 identity comes before every check: only ``identity_verified is True`` passes."""
    answer = answers.get(Department.POLICE, UNAVAILABLE)
    if answer is UNAVAILABLE:
        return ReasonCode.IDENTITY_UNVERIFIABLE
    verified = (answer or {}).get("identity_verified")
    if verified is True:
        return None
    return ReasonCode.IDENTITY_NOT_VERIFIED if verified in (None, False) else ReasonCode.IDENTITY_UNVERIFIABLE


def _candidates(req: Request) -> list[tuple[Item, Mode]]:
    modes = {req.initiating: Mode.INITIATING}
    modes |= {i: Mode.OPTIONAL for i in req.optional_items}
    modes |= {i: Mode.AUTOMATIC for i in AUTOMATIC_BY_INITIATING[req.initiating]}
    return [(i, modes[i]) for i in ITEM_ORDER if i in modes]


def _warnings(req: Request, early: EarlyRetirementAge | None) -> tuple[str, ...]:
    found = []
    if req.bank_card_number is not None and not luhn_valid(req.bank_card_number):
        found.append("BANK_CARD_LUHN: 银行卡号未通过校验位检查，请核对 (bank card number fails the Luhn check)")
    if early is not None and YearMonth.of(req.today) < early.month:
        what = "特殊工种" if early.reason == EarlyReason.SPECIAL_WORK_TYPE else "病退"
        found.append(
            f"EARLY_RETIREMENT_AGE_NOT_REACHED: 申请人尚未达到配置的{what}提前退休参考年龄{early.age}"
            f"（{early.month}达到）；是否符合条件由人社部门审批决定，本提示不影响受理 "
            "(younger than the configured early-retirement age: the HR department's approval decides; "
            "this does not refuse the application)"
        )
    return tuple(found)


_IDENTITY_REFUSALS = ("identity_not_verified", "identity_unverifiable")
_IDENTITY_TEXT = {
    ReasonCode.IDENTITY_NOT_VERIFIED: ("identity_not_verified", "身份核验未通过"),
    ReasonCode.IDENTITY_UNVERIFIABLE: ("identity_unverifiable", "公安身份核验暂时无法完成，请稍后再试"),
}
WITHHELD_TEXT = "其他前置校验未判断，也不予披露（身份未经核验的人员信息不公开）"


def _identity_check(req: Request, identity: ReasonCode) -> CheckResult:
    """The ``ID`` entry: the one result reported when 公安 identity is not verified."""
    if identity is ReasonCode.IDENTITY_NOT_VERIFIED:
        outcome, text = Outcome.fail, "未通过：公安身份核验未通过"
    else:
        outcome, text = Outcome.unverifiable, "无法核验：公安身份核验暂时无法完成，请稍后再试"
    code = f"ID_{_PREFIX[outcome][0]}"
    reason = f"{text}；{WITHHELD_TEXT}"
    return CheckResult(
        "ID", req.initiating, Department.POLICE, outcome, code, reason, IDENTITY_SOURCE, "police: identity_verified"
    )


def evaluate(
    req: Request, answers: Mapping[Department, DeptAnswer], early_ages: EarlyRetirementAges | None = None
) -> Evaluation:
    """Run the pre-checks and decide every item (docs/eligibility.md).

    ``answers`` holds one answer per department in ``departments_needed(req)``; a
    missing one counts as ``UNAVAILABLE``. When identity is not verified no check
    is judged: the only entry is ``ID`` (nothing else about the person is disclosed).
    ``early_ages`` are the configured special-type/illness ages (``[policy.early_retirement]``;
    default: the pre-reform ages): information and a warning, never a refusal.
    """
    needed = departments_needed(req)
    unverified = tuple(d for d in Department if d in needed and answers.get(d, UNAVAILABLE) is UNAVAILABLE)
    early = None
    if req.early_reason in (EarlyReason.SPECIAL_WORK_TYPE, EarlyReason.ILLNESS):
        birth = YearMonth.of(req.applicant.birth_date)
        early = early_retirement_age(birth, req.applicant.gender, str(req.early_reason), early_ages)
    warnings = _warnings(req, early)

    if (identity := _identity(answers)) is not None:
        refusal, text = _IDENTITY_TEXT[identity]
        refused = tuple(ItemDecision(i, m, False, identity, text) for i, m in _candidates(req))
        return Evaluation(False, refusal, (_identity_check(req, identity),), refused, warnings, unverified)

    policy = None
    if req.initiating in _EMPLOYEE:
        category = category_for(req.applicant.gender, req.applicant.position)
        policy = retirement_policy(YearMonth.of(req.applicant.birth_date), category)
    ctx = _Context(req, policy, early)
    checks = tuple(
        _judge(k, ctx, answers) for k in planned_check_keys(req.initiating, req.early_reason, req.optional_items)
    )
    by_item: dict[Item, list[CheckResult]] = {}
    for c in checks:
        by_item.setdefault(c.item, []).append(c)
    hrss = _hrss_facts(answers)

    decisions: dict[Item, tuple[Mode, _Decision]] = {}
    for item, mode in _candidates(req):
        own = by_item.get(item, [])
        if mode is Mode.INITIATING:
            decision = _from_checks(own, (True, ReasonCode.INITIATING, "发起事项"))
        elif item in (Item.SSCARD_APPLY, Item.SSCARD_ACTIVATE):
            decision = _sscard(item, hrss)
        elif item is Item.ONE_CHILD_PARENT_REWARD:
            decision = _one_child(own)
        elif item is Item.PROVIDENT_FUND_WITHDRAWAL:
            decision = _withdrawal(req, own, answers.get(Department.HPF, UNAVAILABLE))
        elif mode is Mode.OPTIONAL:
            decision = _from_checks(own, (True, ReasonCode.CHOSEN, "申请人选择办理，前置校验通过"))
        else:
            decision = _automatic(item, hrss)
        decisions[item] = (mode, decision)

    refusal_code: str | None = None
    if not decisions[req.initiating][1][0]:
        refusal_code = "precheck_failed"
    elif req.all_or_nothing:
        # A chosen item that cannot be included refuses the whole application; an item
        # the person turns out not to need (NOT_NEEDED) does not.
        dropped = [
            i
            for i, (mode, (ok, code, _)) in decisions.items()
            if mode is Mode.OPTIONAL and not ok and code is not ReasonCode.NOT_NEEDED
        ]
        if dropped:
            refusal_code = "all_or_nothing"
            text = f"已选择“全部办理或全部不办理”，{'、'.join(ITEMS[i].name for i in dropped)}未能纳入，整件不予受理"
            decisions[req.initiating] = (Mode.INITIATING, (False, ReasonCode.ALL_OR_NOTHING, text))

    items = []
    for item, (mode, (ok, code, text)) in decisions.items():
        if refusal_code is not None and ok:
            ok, code, text = False, ReasonCode.APPLICATION_REFUSED, "申请未受理，本事项不办理"
        items.append(ItemDecision(item, mode, ok, code, text))
    return Evaluation(refusal_code is None, refusal_code, checks, tuple(items), warnings, unverified)
