"""Material checklists: the seed's totals, the rules on who provides what, the shared examples."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

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
    ("reason", "fetched"),
    [
        (EarlyReason.SPECIAL_WORK_TYPE, ["special_work_type_proof"]),
        (EarlyReason.ILLNESS, ["labour_capacity_conclusion"]),
        (EarlyReason.FLEXIBLE, []),
    ],
)
def test_early_retirement_fetches_the_proof_of_its_reason_only(reason: EarlyReason, fetched: list[str]) -> None:
    specs = checklist(EARLY, reason, [EARLY])
    assert [str(s.code) for s in specs if s.type is T.system_fetched] == fetched
    assert required(specs) == {"id_document", "other_proof"}


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
    always = {"id_document", "resident_id_card", "household_register", "photo_1inch_x2", "marriage_certificate"}
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
    assert codes(missing_materials(doubled, set())) == ["id_document", "other_proof", "id_photo", "bank_card"]


def test_missing_materials_ignores_generated_fetched_and_optional_materials() -> None:
    specs = checklist(NORMAL, None, [Item.MEDICAL_RETIREE_REGISTRATION, Item.EMPLOYMENT_FILING_END, ONE_CHILD])
    missing = {str(s.code) for s in missing_materials(specs, set())}
    assert not missing & {"application_form", "medical_retiree_form", "applicant_basic_info", "child_support_proof"}


def test_material_json_shape() -> None:
    spec = checklist(RESIDENT, None, [Item.SSCARD_APPLY])[-1]
    assert spec.to_json() == {
        "code": "id_photo",
        "name": "本人证件照片",
        "type": "provided",
        "item": "sscard_apply",
        "condition": spec.condition,
        "required_from_applicant": True,
    }


# --- the shared examples ---------------------------------------------------------------------------

EXAMPLES = Path(os.environ.get("GATEWAY_EXAMPLES_DIR", Path(__file__).resolve().parents[2] / "shared" / "examples"))


@pytest.mark.parametrize(
    ("initiating", "items", "needed"),
    [
        (NORMAL, [Item.MEDICAL_RETIREE_REGISTRATION, Item.EMPLOYMENT_FILING_END], {"id_document", "other_proof"}),
        (RESIDENT, [Item.SSCARD_APPLY], {"id_document", "id_photo"}),
    ],
)
def test_sample_applications_need_exactly_these_materials(
    initiating: Item, items: list[Item], needed: set[str]
) -> None:
    specs = checklist(initiating, None, items)
    assert required(specs) == needed
    assert missing_materials(specs, needed) == ()


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"shared examples not found at {EXAMPLES}")
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
