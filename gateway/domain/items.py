"""The eleven government-service items, who handles them, and how they combine.

Source: the provincial plan (seed §二, §八) restated in docs domain.md §1–§4.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Department(StrEnum):
    HRSS = "hrss"  # 人社 — 省人社业务一体化平台
    NHSA = "nhsa"  # 医保 — 湖南省医疗保障信息平台
    HEALTH = "health"  # 卫健 — 城镇独生子女父母奖励信息管理系统
    HPF = "hpf"  # 省直住房公积金信息系统 (省机关事务局)
    JUSTICE = "justice"  # 司法 — queries only
    POLICE = "police"  # 公安 — queries only


class Item(StrEnum):
    RETIRE_NORMAL = "retire_normal"
    RETIRE_EARLY = "retire_early"
    RESIDENT_PENSION = "resident_pension"
    SSCARD_APPLY = "sscard_apply"
    SSCARD_ACTIVATE = "sscard_activate"
    INJURY_BENEFIT_CHANGE = "injury_benefit_change"
    EMPLOYMENT_FILING_END = "employment_filing_end"
    UNEMPLOYMENT_BENEFIT_END = "unemployment_benefit_end"
    MEDICAL_RETIREE_REGISTRATION = "medical_retiree_registration"
    ONE_CHILD_PARENT_REWARD = "one_child_parent_reward"
    PROVIDENT_FUND_WITHDRAWAL = "provident_fund_withdrawal"


class Mode(StrEnum):
    INITIATING = "initiating"
    OPTIONAL = "optional"
    AUTOMATIC = "automatic"


class EarlyReason(StrEnum):
    SPECIAL_WORK_TYPE = "special_work_type"
    ILLNESS = "illness"
    FLEXIBLE = "flexible"


@dataclass(frozen=True, slots=True)
class ItemInfo:
    item: Item
    name: str
    department: Department
    code: str | None
    # True: sent only after the initiating item is approved (domain.md §4 step 2).
    after_initiating: bool


ITEMS: dict[Item, ItemInfo] = {
    i.item: i
    for i in (
        ItemInfo(Item.RETIRE_NORMAL, "职工正常退休（职）申请", Department.HRSS, "002014006001", False),
        ItemInfo(Item.RETIRE_EARLY, "职工提前退休（职）申请", Department.HRSS, "002014006001", False),
        ItemInfo(Item.RESIDENT_PENSION, "城乡居民养老保险待遇申领", Department.HRSS, "002014006002", False),
        ItemInfo(Item.SSCARD_APPLY, "社会保障卡（电子社保卡）申领", Department.HRSS, "002014010001", False),
        ItemInfo(
            Item.SSCARD_ACTIVATE, "社会保障卡（社会保障功能）启用", Department.HRSS, "002014010002", False
        ),
        ItemInfo(Item.INJURY_BENEFIT_CHANGE, "工伤保险待遇变更申请", Department.HRSS, "002014007029", True),
        ItemInfo(Item.EMPLOYMENT_FILING_END, "劳动用工备案终止", Department.HRSS, "002014301001", True),
        ItemInfo(Item.UNEMPLOYMENT_BENEFIT_END, "失业待遇终止", Department.HRSS, None, True),
        ItemInfo(
            Item.MEDICAL_RETIREE_REGISTRATION,
            "职工基本医疗保险参保登记（在职转退休）",
            Department.NHSA,
            None,
            True,
        ),
        ItemInfo(Item.ONE_CHILD_PARENT_REWARD, "城镇独生子女父母奖励对象申请", Department.HEALTH, None, True),
        ItemInfo(Item.PROVIDENT_FUND_WITHDRAWAL, "住房公积金提取（退休提取）", Department.HPF, None, True),
    )
}

INITIATING_ITEMS: tuple[Item, ...] = (Item.RETIRE_NORMAL, Item.RETIRE_EARLY, Item.RESIDENT_PENSION)
AUTOMATIC_ITEMS: tuple[Item, ...] = (
    Item.EMPLOYMENT_FILING_END,
    Item.INJURY_BENEFIT_CHANGE,
    Item.UNEMPLOYMENT_BENEFIT_END,
)

# domain.md §3: which optional and automatic items each initiating item allows.
OPTIONAL_BY_INITIATING: dict[Item, frozenset[Item]] = {
    Item.RETIRE_NORMAL: frozenset(
        {
            Item.SSCARD_APPLY,
            Item.SSCARD_ACTIVATE,
            Item.MEDICAL_RETIREE_REGISTRATION,
            Item.ONE_CHILD_PARENT_REWARD,
            Item.PROVIDENT_FUND_WITHDRAWAL,
        }
    ),
    Item.RETIRE_EARLY: frozenset(
        {Item.SSCARD_APPLY, Item.SSCARD_ACTIVATE, Item.ONE_CHILD_PARENT_REWARD, Item.PROVIDENT_FUND_WITHDRAWAL}
    ),
    Item.RESIDENT_PENSION: frozenset({Item.SSCARD_APPLY, Item.SSCARD_ACTIVATE, Item.ONE_CHILD_PARENT_REWARD}),
}

AUTOMATIC_BY_INITIATING: dict[Item, frozenset[Item]] = {
    Item.RETIRE_NORMAL: frozenset(AUTOMATIC_ITEMS),
    Item.RETIRE_EARLY: frozenset(AUTOMATIC_ITEMS),
    Item.RESIDENT_PENSION: frozenset({Item.INJURY_BENEFIT_CHANGE, Item.UNEMPLOYMENT_BENEFIT_END}),
}

# The canonical order items are listed and planned in (initiating first, then §4 order).
ITEM_ORDER: tuple[Item, ...] = tuple(ITEMS)

PROVINCE_FUND_CENTER = "430000"  # 省直: the only provident fund centre connected now


def department_of(item: Item) -> Department:
    return ITEMS[item].department


def depends_on_initiating(item: Item) -> bool:
    """True when the item may be sent only after the initiating item is approved."""
    return ITEMS[item].after_initiating
