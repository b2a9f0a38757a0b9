"""Material checklists (材料清单) per initiating item and chosen items.

Source: seed §八 (the three numbered material tables), domain.md §6 and the
material codes of platform-contract.md. Each table below is the seed's table
row by row, with the seed's row number, its wording for that initiating item
(the same code is worded differently in different tables: 申请人身份证 / 身份证)
and its 说明; a row "无" (the card activation needs no material) is not a
material and is left out. Type counts follow domain.md §6, where the online
form counts with the auto-generated materials, and "the person submits" is
the online form plus every provided/verified material.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.items import AUTOMATIC_BY_INITIATING, INITIATING_ITEMS, OPTIONAL_BY_INITIATING, EarlyReason, Item

__all__ = [
    "MaterialCode",
    "MaterialSpec",
    "MaterialType",
    "checklist",
    "full_checklist",
    "missing_materials",
]


class MaterialType(StrEnum):
    """The seed's 材料类型."""

    online_form = "online_form"  # 在线填报
    provided = "provided"  # 申请时提供或核验
    system_fetched = "system_fetched"  # 系统获取
    auto_generated = "auto_generated"  # 自动生成


class MaterialCode(StrEnum):
    """Material codes of platform-contract.md."""

    APPLICATION_FORM = "application_form"
    ID_DOCUMENT = "id_document"
    OTHER_PROOF = "other_proof"
    SPECIAL_WORK_TYPE_PROOF = "special_work_type_proof"
    LABOUR_CAPACITY_CONCLUSION = "labour_capacity_conclusion"
    ID_PHOTO = "id_photo"
    APPLICANT_BASIC_INFO = "applicant_basic_info"
    MEDICAL_RETIREE_FORM = "medical_retiree_form"
    ONE_CHILD_REWARD_FORM = "one_child_reward_form"
    RESIDENT_ID_CARD = "resident_id_card"
    HOUSEHOLD_REGISTER = "household_register"
    ONE_CHILD_CERTIFICATE = "one_child_certificate"
    PHOTO_1INCH_X2 = "photo_1inch_x2"
    RETIREMENT_CERTIFICATE = "retirement_certificate"
    RETIREMENT_CERTIFICATE_OR_APPROVAL = "retirement_certificate_or_approval"
    MARRIAGE_CERTIFICATE = "marriage_certificate"
    NO_CHILD_CERTIFICATE = "no_child_certificate"
    CHILD_SUPPORT_PROOF = "child_support_proof"
    BANK_CARD = "bank_card"


@dataclass(frozen=True, slots=True)
class MaterialSpec:
    """One entry of a checklist: what, of which type, for which item, and whether the person must upload it."""

    code: MaterialCode
    name: str  # Chinese, as the seed's row for this initiating item words it
    type: MaterialType
    item: Item
    condition: str | None  # when or why (the seed's 说明, and the gateway's rule where the seed is silent)
    required_from_applicant: bool
    seed_row: int = 0  # the row number in the seed's material table for the initiating item

    @property
    def submitted_by_person(self) -> bool:
        """Counted in the seed's "最后只需在线填报或现场提交的材料" (online form + provided)."""
        return self.type in (MaterialType.online_form, MaterialType.provided)

    def to_json(self) -> dict[str, object]:
        return {
            "code": str(self.code),
            "name": self.name,
            "type": str(self.type),
            "item": str(self.item),
            "condition": self.condition,
            "required_from_applicant": self.required_from_applicant,
        }


class _Need(StrEnum):
    """When a provided material is required from the applicant."""

    ALWAYS = "always"
    NEVER = "never"  # passed on from the initiating item, verified by identity check, or only for some people
    UNLESS_CHILDLESS = "unless_childless"  # one-child certificate: not for the H03 category
    IF_CHILDLESS = "if_childless"  # no-child certificate: only for the H03 category
    IF_SPECIAL_WORK_TYPE = "if_special_work_type"  # seed §八(二) row 5: the special-type approval materials
    IF_WITHDRAWAL = "if_withdrawal"  # seed §八(二) row 2: the resident ID card with the fund withdrawal


@dataclass(frozen=True, slots=True)
class _Row:
    row: int  # the seed's row number
    code: MaterialCode
    name: str  # the seed's wording
    type: MaterialType
    item: Item
    need: _Need = _Need.NEVER
    condition: str | None = None
    reason: EarlyReason | None = None  # early retirement: only with this reason


C, T = MaterialCode, MaterialType
_FORM = "《我要办理“退休一件事一次办”申请表》"
_IN_FORM = f"所需要素信息已包含在{_FORM}中"
_GENERATED = f"可选择办理事项，该表内容已包含在{_FORM}中，系统将自动生成"
_NO_FILE = "如退休审批过程中需要个人提供档案材料时，不能通过线上方式申请办理退休事项"
_PASSED_ON = "由发起事项办结后产生，系统转交，无需申请人提交"
# Decision (docs/eligibility.md, Materials): the seed lets the platform's identity check stand for
# the identity document (可利用受理平台身份核验功能); every application passes the 公安 check first.
_ID_VERIFIED = "可利用受理平台身份核验功能（公安身份核验通过即已核验，无需上传）"


def _fetched(row: int, item: Item, note: str) -> _Row:
    return _Row(row, C.APPLICANT_BASIC_INFO, "申请人基本信息", T.system_fetched, item, condition=note)


_FILING_END = f"自动办理，无需个人申请，{_IN_FORM}"
_INJURY = f"正在领取工伤保险待遇人员可能需要在退休待遇申请办理完成后办理变更，无需个人申请，{_IN_FORM}"
_UNEMPLOYMENT = f"正在领取失业保险金人员在退休待遇申请办理完成后停发，无需个人申请，{_IN_FORM}"


def _one_child_rows(first: int, id_card: str, household: str) -> tuple[_Row, ...]:
    """The one-child reward block: the generated form + 8 provided materials (seed rows first…first+8).

    The seed gives no 说明 for rows 2–9 of the block; the conditions on the two certificates
    follow the H01–H03 categories (prechecks.Evaluation.childless), the rest are the gateway's.
    """
    i, n = Item.ONE_CHILD_PARENT_REWARD, first
    return (
        _Row(n, C.ONE_CHILD_REWARD_FORM, "《湖南省城镇独生子女父母奖励对象申请表》", T.auto_generated, i,
             condition=_GENERATED),
        _Row(n + 1, C.RESIDENT_ID_CARD, id_card, T.provided, i, _Need.ALWAYS),
        _Row(n + 2, C.HOUSEHOLD_REGISTER, household, T.provided, i, _Need.ALWAYS),
        _Row(n + 3, C.ONE_CHILD_CERTIFICATE, "独生子女证/独生子女父母光荣证（生育状况证明）", T.provided, i,
             _Need.UNLESS_CHILDLESS, "持证人提供；未生育也未收养子女者免交"),
        _Row(n + 4, C.PHOTO_1INCH_X2, "一寸免冠近照两张", T.provided, i, _Need.ALWAYS),
        _Row(n + 5, C.RETIREMENT_CERTIFICATE, "退休证", T.provided, i, _Need.NEVER, _PASSED_ON),
        _Row(n + 6, C.MARRIAGE_CERTIFICATE, "婚姻状况证明（结婚证/离婚证）", T.provided, i, _Need.ALWAYS),
        _Row(n + 7, C.NO_CHILD_CERTIFICATE, "无子女证明", T.provided, i, _Need.IF_CHILDLESS,
             "仅未生育也未收养子女的申请人提供"),
        _Row(n + 8, C.CHILD_SUPPORT_PROOF, "子女抚养证明材料（再婚对象）", T.provided, i, _Need.NEVER,
             "仅再婚对象涉及时提供"),
    )


# Seed §八(一) 职工正常退休, rows 1–19, row 5 "无" (card activation) left out → 18 materials.
#   auto-generated incl. online form: rows 1, 9, 10                          = 3
#   provided/verified: rows 2, 3, 4, 11–18 (8), 19                           = 12
#   system-fetched: rows 6, 7, 8                                             = 3
#   the person submits: online form (1) + provided (12)                      = 13
_N = Item.RETIRE_NORMAL
_NORMAL: tuple[_Row, ...] = (
    _Row(1, C.APPLICATION_FORM, _FORM, T.online_form, _N, condition="在线填报，根据申请信息生成"),
    _Row(2, C.ID_DOCUMENT, "有效身份证件", T.provided, _N, _Need.NEVER,
         _ID_VERIFIED + "；选择办理城镇独生子女父母奖励扶助金申领需提供申请人居民身份证"),
    _Row(3, C.OTHER_PROOF, "非个人档案材料的其他证明材料", T.provided, _N, _Need.ALWAYS, "发起事项，" + _NO_FILE),
    _Row(4, C.ID_PHOTO, "本人证件照片", T.provided, Item.SSCARD_APPLY, _Need.ALWAYS,
         "可选择办理事项，未办理社会保障卡人员需办理"),
    _fetched(6, Item.EMPLOYMENT_FILING_END, _FILING_END),
    _fetched(7, Item.INJURY_BENEFIT_CHANGE, _INJURY),
    _fetched(8, Item.UNEMPLOYMENT_BENEFIT_END, _UNEMPLOYMENT),
    _Row(9, C.MEDICAL_RETIREE_FORM, "《湖南省退休人员基本医疗保险管理登记表》", T.auto_generated,
         Item.MEDICAL_RETIREE_REGISTRATION, condition=_GENERATED),
    *_one_child_rows(10, "申请人身份证", "申请人户口本"),  # 10–18
    _Row(19, C.BANK_CARD, "申请人社保卡或银行一类储蓄卡", T.provided, Item.PROVIDENT_FUND_WITHDRAWAL, _Need.ALWAYS,
         "填报的社保卡或银行卡号默认系统获取，允许手动修改，修改后的卡号需校验为提取人社保卡或一类储蓄卡"),
)

# Seed §八(二) 职工提前退休, rows 1–21, row 7 "无" (card activation) left out → 20 materials.
#   auto-generated incl. online form: rows 1, 11                             = 2
#   provided/verified: rows 2, 5, 6, 12–19 (8), 20, 21                       = 13
#   system-fetched: rows 3, 4, 8, 9, 10                                      = 5
#   the person submits: online form (1) + provided (13)                      = 14
_E = Item.RETIRE_EARLY
_EARLY: tuple[_Row, ...] = (
    _Row(1, C.APPLICATION_FORM, _FORM, T.online_form, _E, condition="在线填报，根据申请信息生成"),
    _Row(2, C.ID_DOCUMENT, "有效身份证件", T.provided, _E, _Need.IF_WITHDRAWAL,
         _ID_VERIFIED + "；选择办理住房公积金提取（退休提取）需提供申请人居民身份证"),
    _Row(3, C.SPECIAL_WORK_TYPE_PROOF, "特殊工种工作经历证明", T.system_fetched, _E,
         condition="发起事项，有特殊工种工作经历申请提前退休的人员提供，需要申请人特殊工种工作期间的单位"
         "在国家特殊工种信息库进行报备，通过审批并公示5个工作日",
         reason=EarlyReason.SPECIAL_WORK_TYPE),
    _Row(4, C.LABOUR_CAPACITY_CONCLUSION, "《劳动能力鉴定（确认）结论书》", T.system_fetched, _E,
         condition="申请病退人员提供", reason=EarlyReason.ILLNESS),
    _Row(5, C.OTHER_PROOF, "其他证明材料", T.provided, _E, _Need.IF_SPECIAL_WORK_TYPE,
         "有特殊工种工作经历申请提前退休的人员需要提供相应的审批材料；" + _NO_FILE),
    _Row(6, C.ID_PHOTO, "本人证件照片", T.provided, Item.SSCARD_APPLY, _Need.ALWAYS,
         "可选择办理事项，未办理社会保障卡人员可申请办理"),
    _fetched(8, Item.EMPLOYMENT_FILING_END, _FILING_END),
    _fetched(9, Item.INJURY_BENEFIT_CHANGE, _INJURY),
    _fetched(10, Item.UNEMPLOYMENT_BENEFIT_END, _UNEMPLOYMENT),
    *_one_child_rows(11, "身份证", "户口本"),  # 11–19
    _Row(20, C.BANK_CARD, "申请人银行一类储蓄卡", T.provided, Item.PROVIDENT_FUND_WITHDRAWAL, _Need.ALWAYS,
         "填报的银行卡号默认系统获取，允许手动修改，修改后的卡号需校验为提取人一类储蓄卡"),
    _Row(21, C.RETIREMENT_CERTIFICATE_OR_APPROVAL, "退休证或退休批文", T.provided, Item.PROVIDENT_FUND_WITHDRAWAL,
         _Need.NEVER, "申请时提供扫描图片；" + _PASSED_ON),
)

# Seed §八(三) 城乡居民养老保险待遇申领, rows 1–16, row 5 "无" (card activation) left out → 15 materials.
#   auto-generated incl. online form: rows 1, 8                              = 2
#   provided/verified: rows 2, 4, 9–16 (8)                                   = 10
#   system-fetched: rows 3, 6, 7                                             = 3
#   the person submits: online form (1) + provided (10)                      = 11
_R = Item.RESIDENT_PENSION
_RESIDENT: tuple[_Row, ...] = (
    _Row(1, C.APPLICATION_FORM, _FORM, T.online_form, _R, condition="在线填报，根据申请信息生成"),
    _Row(2, C.ID_DOCUMENT, "有效身份证件", T.provided, _R, _Need.NEVER, _ID_VERIFIED),
    _fetched(3, _R, f"发起事项，{_IN_FORM}"),
    _Row(4, C.ID_PHOTO, "申请人证件照片", T.provided, Item.SSCARD_APPLY, _Need.ALWAYS,
         "可选择办理事项，未办理社会保障卡人员可申请办理"),
    _fetched(6, Item.INJURY_BENEFIT_CHANGE, _INJURY),
    _fetched(7, Item.UNEMPLOYMENT_BENEFIT_END, _UNEMPLOYMENT),
    *_one_child_rows(8, "身份证", "户口本"),  # 8–16
)

_TABLES: dict[Item, tuple[_Row, ...]] = {
    Item.RETIRE_NORMAL: _NORMAL,
    Item.RETIRE_EARLY: _EARLY,
    Item.RESIDENT_PENSION: _RESIDENT,
}


def _required(row: _Row, childless: bool | None, early_reason: EarlyReason | None, items: Collection[Item]) -> bool:
    # childless None (not known): neither conditional certificate is demanded; the
    # caller should pass Evaluation.childless once H01–H03 are judged.
    need = row.need
    if need is _Need.ALWAYS:
        return True
    if need is _Need.UNLESS_CHILDLESS:
        return childless is False
    if need is _Need.IF_CHILDLESS:
        return childless is True
    if need is _Need.IF_SPECIAL_WORK_TYPE:
        return early_reason is EarlyReason.SPECIAL_WORK_TYPE
    if need is _Need.IF_WITHDRAWAL:
        return Item.PROVIDENT_FUND_WITHDRAWAL in items
    return False


def _spec(row: _Row, required: bool) -> MaterialSpec:
    return MaterialSpec(row.code, row.name, row.type, row.item, row.condition, required, row.row)


def checklist(
    initiating: Item, early_reason: EarlyReason | None, items: Iterable[Item], childless: bool | None = None
) -> tuple[MaterialSpec, ...]:
    """The materials for an application with these items (the initiating item is always in).

    ``items`` are the items going ahead (initiating, optional and automatic);
    ``childless`` is True for the one-child reward's H03 category (see
    ``prechecks.Evaluation.childless``). Raises ValueError for an item the
    initiating item does not allow, or an early reason that does not fit.
    """
    if initiating not in INITIATING_ITEMS:
        raise ValueError(f"{initiating!s} is not an initiating item")
    if (initiating is Item.RETIRE_EARLY) != (early_reason is not None):
        raise ValueError("early_reason is required with retire_early and forbidden otherwise")
    chosen = {initiating, *items}
    allowed = {initiating} | OPTIONAL_BY_INITIATING[initiating] | AUTOMATIC_BY_INITIATING[initiating]
    if not_allowed := sorted(chosen - allowed):
        raise ValueError(f"items not allowed with {initiating!s}: {', '.join(not_allowed)}")
    return tuple(
        _spec(row, _required(row, childless, early_reason, chosen))
        for row in _TABLES[initiating]
        if row.item in chosen and (row.reason is None or row.reason is early_reason)
    )


def full_checklist(initiating: Item) -> tuple[MaterialSpec, ...]:
    """The seed's whole table for an initiating item (every item, every early reason): 18 / 20 / 15."""
    if initiating not in INITIATING_ITEMS:
        raise ValueError(f"{initiating!s} is not an initiating item")
    rows = _TABLES[initiating]
    every = {row.item for row in rows}  # required flags as for every item chosen, nothing else known
    return tuple(_spec(row, _required(row, None, None, every)) for row in rows)


def missing_materials(specs: Iterable[MaterialSpec], submitted_codes: Collection[str]) -> tuple[MaterialSpec, ...]:
    """Required provided materials whose code was not submitted, each code once, in checklist order."""
    missing: dict[str, MaterialSpec] = {}
    for spec in specs:
        if spec.required_from_applicant and spec.code not in submitted_codes:
            missing.setdefault(spec.code, spec)
    return tuple(missing.values())
