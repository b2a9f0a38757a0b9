"""Material checklists (材料清单) per initiating item and chosen items.

Source: seed §八 (the three numbered material tables), domain.md §6 and the
material codes of platform-contract.md. Each table below is the seed's table
row by row; a row "无" (the card activation needs no material) is not a
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
    name: str  # Chinese, as in the seed
    type: MaterialType
    item: Item
    condition: str | None  # when or why (seed 说明), Chinese
    required_from_applicant: bool

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
    NEVER = "never"  # passed on from the initiating item, or only for some people
    UNLESS_CHILDLESS = "unless_childless"  # one-child certificate: not for the H03 category
    IF_CHILDLESS = "if_childless"  # no-child certificate: only for the H03 category


@dataclass(frozen=True, slots=True)
class _Row:
    code: MaterialCode
    type: MaterialType
    item: Item
    need: _Need = _Need.NEVER
    condition: str | None = None
    reason: EarlyReason | None = None  # early retirement: only with this reason


C, T = MaterialCode, MaterialType
_NAMES: dict[MaterialCode, str] = {
    C.APPLICATION_FORM: "《我要办理“退休一件事一次办”申请表》",
    C.ID_DOCUMENT: "有效身份证件",
    C.OTHER_PROOF: "非个人档案材料的其他证明材料",
    C.SPECIAL_WORK_TYPE_PROOF: "特殊工种工作经历证明",
    C.LABOUR_CAPACITY_CONCLUSION: "《劳动能力鉴定（确认）结论书》",
    C.ID_PHOTO: "本人证件照片",
    C.APPLICANT_BASIC_INFO: "申请人基本信息",
    C.MEDICAL_RETIREE_FORM: "《湖南省退休人员基本医疗保险管理登记表》",
    C.ONE_CHILD_REWARD_FORM: "《湖南省城镇独生子女父母奖励对象申请表》",
    C.RESIDENT_ID_CARD: "申请人居民身份证",
    C.HOUSEHOLD_REGISTER: "申请人户口本",
    C.ONE_CHILD_CERTIFICATE: "独生子女证/独生子女父母光荣证（生育状况证明）",
    C.PHOTO_1INCH_X2: "一寸免冠近照两张",
    C.RETIREMENT_CERTIFICATE: "退休证",
    C.RETIREMENT_CERTIFICATE_OR_APPROVAL: "退休证或退休批文",
    C.MARRIAGE_CERTIFICATE: "婚姻状况证明（结婚证/离婚证）",
    C.NO_CHILD_CERTIFICATE: "无子女证明",
    C.CHILD_SUPPORT_PROOF: "子女抚养证明材料（再婚对象）",
    C.BANK_CARD: "申请人社会保障卡或银行一类储蓄卡",
}

_FORM_NOTE = "所需信息已包含在申请表中"
_NO_FILE = "如退休审批需要个人档案材料，不能通过线上方式申请办理"
_PASSED_ON = "由发起事项办结后产生，系统转交，无需申请人提交"


def _initiating_rows(item: Item) -> tuple[_Row, ...]:
    """Seed rows 1–2 of every table: the online form and the identity document."""
    return (
        _Row(C.APPLICATION_FORM, T.online_form, item, condition="根据申请信息生成"),
        _Row(C.ID_DOCUMENT, T.provided, item, _Need.ALWAYS, "可利用受理平台身份核验功能"),
    )


def _one_child_rows() -> tuple[_Row, ...]:
    """The one-child reward block: form + 8 provided materials."""
    i = Item.ONE_CHILD_PARENT_REWARD
    return (
        _Row(C.ONE_CHILD_REWARD_FORM, T.auto_generated, i, condition=_FORM_NOTE + "，系统自动生成"),
        _Row(C.RESIDENT_ID_CARD, T.provided, i, _Need.ALWAYS),
        _Row(C.HOUSEHOLD_REGISTER, T.provided, i, _Need.ALWAYS),
        _Row(C.ONE_CHILD_CERTIFICATE, T.provided, i, _Need.UNLESS_CHILDLESS, "持证人提供；未生育也未收养子女者免交"),
        _Row(C.PHOTO_1INCH_X2, T.provided, i, _Need.ALWAYS),
        _Row(C.RETIREMENT_CERTIFICATE, T.provided, i, _Need.NEVER, _PASSED_ON),
        _Row(C.MARRIAGE_CERTIFICATE, T.provided, i, _Need.ALWAYS),
        _Row(C.NO_CHILD_CERTIFICATE, T.provided, i, _Need.IF_CHILDLESS, "仅未生育也未收养子女的申请人提供"),
        _Row(C.CHILD_SUPPORT_PROOF, T.provided, i, _Need.NEVER, "仅再婚对象涉及时提供"),
    )


def _fetched(item: Item) -> _Row:
    return _Row(C.APPLICANT_BASIC_INFO, T.system_fetched, item, condition=_FORM_NOTE + "，无需个人申请")


# Seed §八(一) 职工正常退休, rows 1–19, row 5 "无" left out → 18 materials.
#   auto-generated incl. online form: rows 1, 9, 10                          = 3
#   provided/verified: rows 2, 3, 4, 11–18 (8), 19                           = 12
#   system-fetched: rows 6, 7, 8                                             = 3
#   the person submits: online form (1) + provided (12)                      = 13
_NORMAL: tuple[_Row, ...] = (
    *_initiating_rows(Item.RETIRE_NORMAL),  # 1, 2
    _Row(C.OTHER_PROOF, T.provided, Item.RETIRE_NORMAL, _Need.ALWAYS, _NO_FILE),  # 3
    _Row(C.ID_PHOTO, T.provided, Item.SSCARD_APPLY, _Need.ALWAYS, "未办理社会保障卡的人员提供"),  # 4
    _fetched(Item.EMPLOYMENT_FILING_END),  # 6
    _fetched(Item.INJURY_BENEFIT_CHANGE),  # 7
    _fetched(Item.UNEMPLOYMENT_BENEFIT_END),  # 8
    _Row(
        C.MEDICAL_RETIREE_FORM,
        T.auto_generated,
        Item.MEDICAL_RETIREE_REGISTRATION,
        condition=_FORM_NOTE + "，系统自动生成",
    ),  # 9
    *_one_child_rows(),  # 10–18
    _Row(
        C.BANK_CARD, T.provided, Item.PROVIDENT_FUND_WITHDRAWAL, _Need.ALWAYS, "卡号默认系统获取；修改后须为本人卡"
    ),  # 19
)

# Seed §八(二) 职工提前退休, rows 1–21, row 7 "无" left out → 20 materials.
#   auto-generated incl. online form: rows 1, 11                             = 2
#   provided/verified: rows 2, 5, 6, 12–19 (8), 20, 21                       = 13
#   system-fetched: rows 3, 4, 8, 9, 10                                      = 5
#   the person submits: online form (1) + provided (13)                      = 14
_EARLY: tuple[_Row, ...] = (
    *_initiating_rows(Item.RETIRE_EARLY),  # 1, 2
    _Row(
        C.SPECIAL_WORK_TYPE_PROOF,
        T.system_fetched,
        Item.RETIRE_EARLY,
        condition="特殊工种提前退休：单位已在国家特殊工种信息库报备，审批通过并公示5个工作日",
        reason=EarlyReason.SPECIAL_WORK_TYPE,
    ),  # 3
    _Row(
        C.LABOUR_CAPACITY_CONCLUSION,
        T.system_fetched,
        Item.RETIRE_EARLY,
        condition="病退人员",
        reason=EarlyReason.ILLNESS,
    ),  # 4
    _Row(
        C.OTHER_PROOF, T.provided, Item.RETIRE_EARLY, _Need.ALWAYS, "特殊工种提前退休人员提供相应审批材料；" + _NO_FILE
    ),  # 5
    _Row(C.ID_PHOTO, T.provided, Item.SSCARD_APPLY, _Need.ALWAYS, "未办理社会保障卡的人员提供"),  # 6
    _fetched(Item.EMPLOYMENT_FILING_END),  # 8
    _fetched(Item.INJURY_BENEFIT_CHANGE),  # 9
    _fetched(Item.UNEMPLOYMENT_BENEFIT_END),  # 10
    *_one_child_rows(),  # 11–19
    _Row(
        C.BANK_CARD, T.provided, Item.PROVIDENT_FUND_WITHDRAWAL, _Need.ALWAYS, "卡号默认系统获取；修改后须为本人卡"
    ),  # 20
    _Row(
        C.RETIREMENT_CERTIFICATE_OR_APPROVAL, T.provided, Item.PROVIDENT_FUND_WITHDRAWAL, _Need.NEVER, _PASSED_ON
    ),  # 21
)

# Seed §八(三) 城乡居民养老保险待遇申领, rows 1–16, row 5 "无" left out → 15 materials.
#   auto-generated incl. online form: rows 1, 8                              = 2
#   provided/verified: rows 2, 4, 9–16 (8)                                   = 10
#   system-fetched: rows 3, 6, 7                                             = 3
#   the person submits: online form (1) + provided (10)                      = 11
_RESIDENT: tuple[_Row, ...] = (
    *_initiating_rows(Item.RESIDENT_PENSION),  # 1, 2
    _fetched(Item.RESIDENT_PENSION),  # 3
    _Row(C.ID_PHOTO, T.provided, Item.SSCARD_APPLY, _Need.ALWAYS, "未办理社会保障卡的人员提供"),  # 4
    _fetched(Item.INJURY_BENEFIT_CHANGE),  # 6
    _fetched(Item.UNEMPLOYMENT_BENEFIT_END),  # 7
    *_one_child_rows(),  # 8–16
)

_TABLES: dict[Item, tuple[_Row, ...]] = {
    Item.RETIRE_NORMAL: _NORMAL,
    Item.RETIRE_EARLY: _EARLY,
    Item.RESIDENT_PENSION: _RESIDENT,
}


def _required(need: _Need, childless: bool | None) -> bool:
    # childless None (not known): neither conditional certificate is demanded; the
    # caller should pass Evaluation.childless once H01–H03 are judged.
    if need is _Need.ALWAYS:
        return True
    if need is _Need.UNLESS_CHILDLESS:
        return childless is False
    if need is _Need.IF_CHILDLESS:
        return childless is True
    return False


def _spec(row: _Row, childless: bool | None) -> MaterialSpec:
    return MaterialSpec(row.code, _NAMES[row.code], row.type, row.item, row.condition, _required(row.need, childless))


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
        _spec(row, childless)
        for row in _TABLES[initiating]
        if row.item in chosen and (row.reason is None or row.reason is early_reason)
    )


def full_checklist(initiating: Item) -> tuple[MaterialSpec, ...]:
    """The seed's whole table for an initiating item (every item, every early reason): 18 / 20 / 15."""
    if initiating not in INITIATING_ITEMS:
        raise ValueError(f"{initiating!s} is not an initiating item")
    return tuple(_spec(row, None) for row in _TABLES[initiating])


def missing_materials(specs: Iterable[MaterialSpec], submitted_codes: Collection[str]) -> tuple[MaterialSpec, ...]:
    """Required provided materials whose code was not submitted, each code once, in checklist order."""
    missing: dict[str, MaterialSpec] = {}
    for spec in specs:
        if spec.required_from_applicant and spec.code not in submitted_codes:
            missing.setdefault(spec.code, spec)
    return tuple(missing.values())
