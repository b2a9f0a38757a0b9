"""Material checklists: the seed's totals, the rules on who provides what, the shared examples."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest

from gateway.domain.items import EarlyReason, Item
from gateway.domain.materials import (
    MaterialCode,
    MaterialSpec,
    MaterialType,
    checklist,
    full_checklist,
    missing_materials,
)
from tests.conftest import EXAMPLES, Running, demo_application

NORMAL, EARLY, RESIDENT = Item.RETIRE_NORMAL, Item.RETIRE_EARLY, Item.RESIDENT_PENSION
ONE_CHILD, FUND = Item.ONE_CHILD_PARENT_REWARD, Item.PROVIDENT_FUND_WITHDRAWAL
T = MaterialType


def codes(specs: tuple[MaterialSpec, ...]) -> list[str]:
    return [str(s.code) for s in specs]


def required(specs: tuple[MaterialSpec, ...]) -> set[str]:
    return {str(s.code) for s in specs if s.required_from_applicant}


@pytest.mark.parametrize(
    ("initiating", "total", "generated", "provided", "fetched", "submits"),
    [(NORMAL, 18, 3, 12, 3, 13), (EARLY, 20, 2, 13, 5, 14), (RESIDENT, 15, 2, 10, 3, 11)],
)
def test_full_checklist_reproduces_the_seed_counts(
    initiating: Item, total: int, generated: int, provided: int, fetched: int, submits: int
) -> None:
    specs = full_checklist(initiating)
    by_type = Counter(s.type for s in specs)
    assert len(specs) == total
    assert by_type[T.auto_generated] + by_type[T.online_form] == generated  # domain.md §6: incl. the form
    assert by_type[T.online_form] == 1
    assert (by_type[T.provided], by_type[T.system_fetched]) == (provided, fetched)
    assert sum(s.submitted_by_person for s in specs) == submits


@pytest.mark.parametrize("initiating", [NORMAL, EARLY, RESIDENT])
def test_only_provided_materials_can_be_required_from_the_applicant(initiating: Item) -> None:
    for spec in full_checklist(initiating):
        assert not spec.required_from_applicant or spec.type is T.provided, spec.code


@pytest.mark.parametrize("initiating", [NORMAL, EARLY, RESIDENT])
def test_every_material_has_a_chinese_name_and_a_contract_code(initiating: Item) -> None:
    for spec in full_checklist(initiating):
        assert any("\u4e00" <= ch <= "\u9fff" for ch in spec.name)
        assert MaterialCode(spec.code) is spec.code


def test_initiating_item_alone_needs_the_form_and_identity_document() -> None:
    assert codes(checklist(NORMAL, None, [])) == ["application_form", "id_document", "other_proof"]
    assert codes(checklist(RESIDENT, None, [])) == ["application_form", "id_document", "applicant_basic_info"]


def test_checklist_grows_only_with_the_chosen_items() -> None:
    base = checklist(NORMAL, None, [NORMAL])
    with_fund = checklist(NORMAL, None, [NORMAL, FUND])
    assert codes(with_fund) == codes(base) + ["bank_card"]
    assert "medical_retiree_form" in codes(checklist(NORMAL, None, [Item.MEDICAL_RETIREE_REGISTRATION]))


def test_automatic_items_bring_only_system_fetched_data() -> None:
    specs = checklist(NORMAL, None, [Item.EMPLOYMENT_FILING_END, Item.UNEMPLOYMENT_BENEFIT_END])
    extra = [s for s in specs if s.item not in (NORMAL,)]
    assert [(s.code, s.type) for s in extra] == [(MaterialCode.APPLICANT_BASIC_INFO, T.system_fetched)] * 2
    assert not any(s.required_from_applicant for s in extra)


@pytest.mark.parametrize(
    ("reason", "fetched", "needed"),
    [
        # Seed §八(二) row 5: "有特殊工种工作经历申请提前退休的人员需要提供相应的审批材料".
        (EarlyReason.SPECIAL_WORK_TYPE, ["special_work_type_proof"], {"other_proof"}),
        (EarlyReason.ILLNESS, ["labour_capacity_conclusion"], set()),
        (EarlyReason.FLEXIBLE, [], set()),
    ],
)
def test_early_retirement_fetches_the_proof_of_its_reason_and_asks_approvals_only_for_special_type(
    reason: EarlyReason, fetched: list[str], needed: set[str]
) -> None:
    specs = checklist(EARLY, reason, [EARLY])
    assert [str(s.code) for s in specs if s.type is T.system_fetched] == fetched
    assert required(specs) == needed
    other = next(s for s in specs if s.code == "other_proof")
    assert other.condition is not None and "特殊工种" in other.condition and "档案材料" in other.condition


@pytest.mark.parametrize(
    ("initiating", "reason", "items", "needed"),
    [
        (NORMAL, None, [NORMAL], False),
        (NORMAL, None, [NORMAL, ONE_CHILD, FUND], False),  # one-child asks its own resident_id_card row
        (RESIDENT, None, [RESIDENT], False),
        (EARLY, EarlyReason.ILLNESS, [EARLY], False),
        (EARLY, EarlyReason.ILLNESS, [EARLY, FUND], True),  # seed §八(二) row 2: withdrawal needs the ID card
        (EARLY, EarlyReason.SPECIAL_WORK_TYPE, [EARLY, FUND], True),
    ],
)
def test_identity_document_is_verified_by_the_identity_check_unless_the_seed_asks_for_the_card(
    initiating: Item, reason: EarlyReason | None, items: list[Item], needed: bool
) -> None:
    spec = next(s for s in checklist(initiating, reason, items) if s.code == "id_document")
    assert spec.required_from_applicant is needed
    assert spec.condition is not None and "身份核验" in spec.condition


@pytest.mark.parametrize(
    ("childless", "needed"),
    [
        (False, {"one_child_certificate"}),
        (True, {"no_child_certificate"}),
        (None, set()),  # not known yet: neither conditional certificate is demanded
    ],
)
def test_one_child_certificates_follow_the_childless_category(childless: bool | None, needed: set[str]) -> None:
    specs = checklist(RESIDENT, None, [ONE_CHILD], childless=childless)
    always = {"resident_id_card", "household_register", "photo_1inch_x2", "marriage_certificate"}
    assert required(specs) == always | needed
    assert {"one_child_certificate", "no_child_certificate", "child_support_proof"} <= set(codes(specs))


@pytest.mark.parametrize("childless", [True, False, None])
def test_child_support_proof_is_never_required(childless: bool | None) -> None:
    specs = checklist(NORMAL, None, [ONE_CHILD], childless=childless)
    assert "child_support_proof" not in required(specs)


@pytest.mark.parametrize(
    ("initiating", "reason", "items", "code"),
    [
        (NORMAL, None, [ONE_CHILD], "retirement_certificate"),
        (EARLY, EarlyReason.ILLNESS, [ONE_CHILD, FUND], "retirement_certificate"),
        (EARLY, EarlyReason.ILLNESS, [ONE_CHILD, FUND], "retirement_certificate_or_approval"),
    ],
)
def test_retirement_certificate_is_passed_on_not_asked_from_the_applicant(
    initiating: Item, reason: EarlyReason | None, items: list[Item], code: str
) -> None:
    spec = next(s for s in checklist(initiating, reason, items, childless=False) if s.code == code)
    assert not spec.required_from_applicant
    assert spec.condition is not None and "发起事项" in spec.condition


@pytest.mark.parametrize(
    ("initiating", "reason", "items"),
    [
        (RESIDENT, None, [Item.MEDICAL_RETIREE_REGISTRATION]),
        (RESIDENT, None, [FUND]),
        (RESIDENT, None, [Item.EMPLOYMENT_FILING_END]),
        (EARLY, None, []),
        (NORMAL, EarlyReason.ILLNESS, []),
        (Item.SSCARD_APPLY, None, []),
    ],
)
def test_checklist_refuses_items_or_reasons_that_do_not_fit(
    initiating: Item, reason: EarlyReason | None, items: list[Item]
) -> None:
    with pytest.raises(ValueError):
        checklist(initiating, reason, items)


def test_missing_materials_lists_required_codes_not_submitted_once_each() -> None:
    specs = checklist(NORMAL, None, [Item.SSCARD_APPLY, FUND])
    assert codes(missing_materials(specs, {"id_document"})) == ["other_proof", "id_photo", "bank_card"]
    assert missing_materials(specs, {"id_document", "other_proof", "id_photo", "bank_card"}) == ()
    doubled = specs + specs
    assert codes(missing_materials(doubled, set())) == ["other_proof", "id_photo", "bank_card"]


def test_missing_materials_ignores_generated_fetched_and_optional_materials() -> None:
    specs = checklist(NORMAL, None, [Item.MEDICAL_RETIREE_REGISTRATION, Item.EMPLOYMENT_FILING_END, ONE_CHILD])
    missing = {str(s.code) for s in missing_materials(specs, set())}
    assert not missing & {"application_form", "medical_retiree_form", "applicant_basic_info", "child_support_proof"}


def test_material_json_shape() -> None:
    spec = checklist(RESIDENT, None, [Item.SSCARD_APPLY])[-1]
    assert spec.to_json() == {
        "code": "id_photo",
        "name": "申请人证件照片",  # the resident table's wording (seed §八(三) row 4)
        "type": "provided",
        "item": "sscard_apply",
        "condition": spec.condition,
        "required_from_applicant": True,
    }


# --- the shared examples ---------------------------------------------------------------------------




@pytest.mark.parametrize(
    ("initiating", "items", "needed"),
    [
        (NORMAL, [Item.MEDICAL_RETIREE_REGISTRATION, Item.EMPLOYMENT_FILING_END], {"other_proof"}),
        (RESIDENT, [Item.SSCARD_APPLY], {"id_photo"}),
    ],
)
def test_sample_applications_need_exactly_these_materials(
    initiating: Item, items: list[Item], needed: set[str]
) -> None:
    specs = checklist(initiating, None, items)
    assert required(specs) == needed
    assert missing_materials(specs, needed) == ()


def test_shared_example_applications_miss_no_material() -> None:
    # The items each accepted example goes ahead with (expected.json).
    going_ahead = {
        "EX-001": [NORMAL, Item.EMPLOYMENT_FILING_END, Item.MEDICAL_RETIREE_REGISTRATION],
        "EX-002": [EARLY, Item.EMPLOYMENT_FILING_END],  # refused by E01, but its materials are complete
        "EX-003": [RESIDENT, Item.SSCARD_APPLY],
    }
    for application in json.loads((EXAMPLES / "applications.json").read_text("utf-8")):
        reason = application.get("early_retirement_reason")
        specs = checklist(
            Item(application["initiating_item"]),
            EarlyReason(reason) if reason else None,
            going_ahead[application["application_no"]],
        )
        submitted = {m["code"] for m in application["materials"]}
        assert missing_materials(specs, submitted) == (), application["application_no"]


# --- the seed's material tables, transcribed here row by row (not imported from the module) ------

ONLINE, PROVIDED, FETCHED, GENERATED = "在线填报", "申请时提供或核验", "系统获取", "自动生成"
_TYPE = {ONLINE: T.online_form, PROVIDED: T.provided, FETCHED: T.system_fetched, GENERATED: T.auto_generated}
NONE = None  # a row "无 / 无": the card activation needs no material
FORM = "《我要办理“退休一件事一次办”申请表》"
# (row, 材料名称, 材料类型). Transcription notes: the seed prints "（结婚证/离婚证)" with a half-width
# closing parenthesis; it is written full-width here. Types "申请时核验或提供", "申请时提供" and
# "申请时核验" are one type, provided/verified (domain.md §6).
SEED_NORMAL = [
    (1, FORM, ONLINE), (2, "有效身份证件", PROVIDED), (3, "非个人档案材料的其他证明材料", PROVIDED),
    (4, "本人证件照片", PROVIDED), (5, NONE, NONE), (6, "申请人基本信息", FETCHED), (7, "申请人基本信息", FETCHED),
    (8, "申请人基本信息", FETCHED), (9, "《湖南省退休人员基本医疗保险管理登记表》", GENERATED),
    (10, "《湖南省城镇独生子女父母奖励对象申请表》", GENERATED), (11, "申请人身份证", PROVIDED),
    (12, "申请人户口本", PROVIDED), (13, "独生子女证/独生子女父母光荣证（生育状况证明）", PROVIDED),
    (14, "一寸免冠近照两张", PROVIDED), (15, "退休证", PROVIDED), (16, "婚姻状况证明（结婚证/离婚证）", PROVIDED),
    (17, "无子女证明", PROVIDED), (18, "子女抚养证明材料（再婚对象）", PROVIDED),
    (19, "申请人社保卡或银行一类储蓄卡", PROVIDED),
]
SEED_EARLY = [
    (1, FORM, ONLINE), (2, "有效身份证件", PROVIDED), (3, "特殊工种工作经历证明", FETCHED),
    (4, "《劳动能力鉴定（确认）结论书》", FETCHED), (5, "其他证明材料", PROVIDED), (6, "本人证件照片", PROVIDED),
    (7, NONE, NONE), (8, "申请人基本信息", FETCHED), (9, "申请人基本信息", FETCHED), (10, "申请人基本信息", FETCHED),
    (11, "《湖南省城镇独生子女父母奖励对象申请表》", GENERATED), (12, "身份证", PROVIDED), (13, "户口本", PROVIDED),
    (14, "独生子女证/独生子女父母光荣证（生育状况证明）", PROVIDED), (15, "一寸免冠近照两张", PROVIDED),
    (16, "退休证", PROVIDED), (17, "婚姻状况证明（结婚证/离婚证）", PROVIDED), (18, "无子女证明", PROVIDED),
    (19, "子女抚养证明材料（再婚对象）", PROVIDED), (20, "申请人银行一类储蓄卡", PROVIDED),
    (21, "退休证或退休批文", PROVIDED),
]
SEED_RESIDENT = [
    (1, FORM, ONLINE), (2, "有效身份证件", PROVIDED), (3, "申请人基本信息", FETCHED), (4, "申请人证件照片", PROVIDED),
    (5, NONE, NONE), (6, "申请人基本信息", FETCHED), (7, "申请人基本信息", FETCHED),
    (8, "《湖南省城镇独生子女父母奖励对象申请表》", GENERATED), (9, "身份证", PROVIDED), (10, "户口本", PROVIDED),
    (11, "独生子女证/独生子女父母光荣证（生育状况证明）", PROVIDED), (12, "一寸免冠近照两张", PROVIDED),
    (13, "退休证", PROVIDED), (14, "婚姻状况证明（结婚证/离婚证）", PROVIDED), (15, "无子女证明", PROVIDED),
    (16, "子女抚养证明材料（再婚对象）", PROVIDED),
]
SEED_TABLES = {NORMAL: SEED_NORMAL, EARLY: SEED_EARLY, RESIDENT: SEED_RESIDENT}


@pytest.mark.parametrize("initiating", [NORMAL, EARLY, RESIDENT])
def test_checklist_names_and_types_follow_the_seed_row_by_row(initiating: Item) -> None:
    seed = [(row, name, _TYPE[kind]) for row, name, kind in SEED_TABLES[initiating] if name is not None]
    ours = [(s.seed_row, s.name, s.type) for s in full_checklist(initiating)]
    for expected, got in zip(seed, ours, strict=True):
        assert got == expected
    assert len(seed) == {NORMAL: 18, EARLY: 20, RESIDENT: 15}[initiating]


@pytest.mark.parametrize(
    ("initiating", "reason", "name", "allowed", "not_allowed"),
    [
        (NORMAL, None, "申请人社保卡或银行一类储蓄卡", "社保卡或一类储蓄卡", None),
        (EARLY, EarlyReason.ILLNESS, "申请人银行一类储蓄卡", "一类储蓄卡", "社保卡"),  # seed §八(二) row 20
    ],
)
def test_bank_card_material_follows_the_seed_of_the_initiating_item(
    initiating: Item, reason: EarlyReason | None, name: str, allowed: str, not_allowed: str | None
) -> None:
    card = next(s for s in checklist(initiating, reason, [FUND]) if s.code == "bank_card")
    assert card.name == name and card.required_from_applicant
    assert card.condition is not None and card.condition.endswith(f"修改后的卡号需校验为提取人{allowed}")
    if not_allowed:
        assert not_allowed not in card.condition


# --- over HTTP: 422 materials-missing lists the missing codes ----------------------------------------


async def test_missing_materials_are_refused_with_422_listing_each_missing_code(gw: Running) -> None:
    app = copy.deepcopy(demo_application("DEMO-001")) | {"application_no": "MAT-MISSING-1"}
    app["materials"] = [m for m in app["materials"] if m["code"] not in ("id_photo", "bank_card", "other_proof")]
    status, problem, headers = await gw.post("/api/v1/joint-applications", app)
    assert status == 422, problem
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["type"].endswith("/materials-missing")
    assert [m["code"] for m in problem["missing"]] == ["other_proof", "id_photo", "bank_card"]  # checklist order
    assert {m["item"] for m in problem["missing"]} == {"retire_normal", "sscard_apply", "provident_fund_withdrawal"}
    for m in problem["missing"]:
        assert f"{m['name']}（{m['code']}）" in problem["detail"]
    assert (await gw.get("/api/v1/joint-applications/MAT-MISSING-1"))[0] == 404  # nothing stored
    complete = copy.deepcopy(demo_application("DEMO-001")) | {"application_no": "MAT-MISSING-2"}
    assert (await gw.post("/api/v1/joint-applications", complete))[0] == 202
