"""Request validation (gateway/validation.py): formats the gateway checks itself, pointers that
name the field, and the rules between fields. Table-driven over one valid demo application."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from gateway.validation import FORMAT_CHECKS, SCHEMA_PATH, _validator, format_checker, schema_errors, semantic_errors
from tests.conftest import Running, demo_application

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
BASE = demo_application("DEMO-001")  # retire_normal with every optional item, bank card and fund centre


def changed(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    change(body)
    return body


def errors(body: dict[str, Any]) -> list[dict[str, str]]:
    """Schema errors, then (only for a schema-valid body, as the gateway does) the semantic ones."""
    return schema_errors(body) or semantic_errors(body, now=NOW, allow_any_submitted_at=True)


def _formats(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("format"), str):
            yield node["format"]
        for v in node.values():
            yield from _formats(v)
    elif isinstance(node, list):
        for v in node:
            yield from _formats(v)


def test_base_application_is_valid() -> None:
    assert errors(BASE) == []


# --- formats: the gateway's own checks, never optional packages ---------------------------------

def test_every_format_the_schema_uses_has_a_check_of_the_gateways_own() -> None:
    used = set(_formats(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))))
    assert used and used <= set(FORMAT_CHECKS)
    assert set(_validator().format_checker.checkers) == set(FORMAT_CHECKS)  # type: ignore[attr-defined]


FORMAT_CASES: list[tuple[str, str, bool]] = [
    ("date-time", "2026-12-03T10:00:00+08:00", True),
    ("date-time", "2026-12-03T02:00:00Z", True),
    ("date-time", "2026-12-03T10:00:00.250+08:00", True),
    ("date-time", "2026-02-30T10:00:00+08:00", False),  # no such day: would be a 500 later
    ("date-time", "2026-12-03T24:00:00+08:00", False),
    ("date-time", "2026-12-03T10:61:00+08:00", False),
    ("date-time", "2026-12-03T10:00:00", False),  # no offset
    ("date-time", "2026-12-03 10:00:00+08:00", False),  # fromisoformat would take it; RFC 3339 does not
    ("date-time", "2026-12-03T10:00+08:00", False),  # RFC 3339 needs the seconds
    ("date", "1963-03-12", True),
    ("date", "1964-02-29", True),
    ("date", "1963-02-29", False),
    ("date", "1963-13-01", False),
    ("date", "19630312", False),  # fromisoformat would take it
    ("date", "1963-W11-2", False),
]


@pytest.mark.parametrize(("fmt", "value", "ok"), FORMAT_CASES)
def test_a_format_checker_with_only_the_gateways_checks_decides_each_value(fmt: str, value: str, ok: bool) -> None:
    checker = format_checker()
    assert set(checker.checkers) == {"date", "date-time"}
    validator = jsonschema.Draft202012Validator({"type": "string", "format": fmt}, format_checker=checker)
    assert validator.is_valid(value) is ok
    format_only = jsonschema.Draft202012Validator({"format": fmt}, format_checker=checker)
    assert format_only.is_valid(12) is True  # a non-string is the type keyword's business


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda b: b.__setitem__("submitted_at", "2026-02-30T10:00:00+08:00"), "/submitted_at"),
        (lambda b: b["applicant"].__setitem__("birth_date", "1963-02-30"), "/applicant/birth_date"),
    ],
)
def test_an_impossible_date_is_a_field_error_not_a_crash(change: Callable[[dict[str, Any]], Any], pointer: str) -> None:
    got = schema_errors(changed(change))
    assert [e["pointer"] for e in got] == [pointer]
    assert "real" in got[0]["detail"]


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for v in node.values():
            yield from _patterns(v)
    elif isinstance(node, list):
        for v in node:
            yield from _patterns(v)


def test_no_schema_pattern_uses_backslash_d() -> None:
    """Python's re (jsonschema) matches \\d for any Unicode digit; ECMA-262's \\d is ASCII only."""
    patterns = list(_patterns(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))))
    assert patterns and not [p for p in patterns if "\\d" in p]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda b: b.__setitem__("submitted_at", "٢٠٢٦-12-03T10:00:00+08:00"), "/submitted_at"),
        (lambda b: b["applicant"].__setitem__("birth_date", "１９６３-05-18"), "/applicant/birth_date"),
        (lambda b: b.__setitem__("application_no", "DEMO-００1"), "/application_no"),
    ],
)
def test_non_ascii_digits_are_refused(change: Callable[[dict[str, Any]], Any], pointer: str) -> None:
    assert {e["pointer"] for e in schema_errors(changed(change))} == {pointer}


def test_a_requested_month_in_non_ascii_digits_is_refused() -> None:
    flexible = copy.deepcopy(demo_application("DEMO-006")) | {"requested_retirement_month": "٢٠٢٦-12"}
    assert [e["pointer"] for e in schema_errors(flexible)] == ["/requested_retirement_month"]


# --- pointers name the field, in the order a person fixes them ------------------------------------

POINTER_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], list[str], str]] = [
    ("early reason with normal retirement", lambda b: b.__setitem__("early_retirement_reason", "illness"),
     ["/early_retirement_reason"], "retire_early"),
    ("early retirement without its reason", lambda b: b.__setitem__("initiating_item", "retire_early"),
     ["/early_retirement_reason"], "required"),
    ("a material that is a string", lambda b: b["materials"].__setitem__(0, "id.jpg"),
     ["/materials/0"], "must be of type object"),
    ("a material that is a number", lambda b: b["materials"].__setitem__(1, 7), ["/materials/1"], "object"),
    ("withdrawal without a fund centre", lambda b: b["applicant"].pop("provident_fund_center"),
     ["/applicant/provident_fund_center"], "provident_fund_withdrawal"),
    ("withdrawal without a bank card", lambda b: b.pop("bank_card"), ["/bank_card"], "provident_fund_withdrawal"),
    ("birth date not the ID number's", lambda b: b["applicant"].__setitem__("birth_date", "1963-05-19"),
     ["/applicant/birth_date"], "ID number"),
    ("gender not the ID number's", lambda b: b["applicant"].__setitem__("gender", "female"),
     ["/applicant/gender", "/applicant/position"], "ID number"),
]


@pytest.mark.parametrize(("change", "pointers", "words"), [c[1:] for c in POINTER_CASES],
                         ids=[c[0] for c in POINTER_CASES])
def test_each_error_names_the_field_that_breaks_the_rule(
    change: Callable[[dict[str, Any]], Any], pointers: list[str], words: str
) -> None:
    got = errors(changed(change))
    assert [e["pointer"] for e in got] == pointers, got
    assert words in got[0]["detail"]


def test_a_material_of_the_wrong_type_says_so_before_anything_about_its_content() -> None:
    got = schema_errors(changed(lambda b: b["materials"].__setitem__(0, "id.jpg")))
    assert got == [{"pointer": "/materials/0", "detail": "must be of type object"}]
    assert not any("content_base64" in e["detail"] for e in got)


def test_the_provident_fund_centre_is_not_required_without_the_withdrawal() -> None:
    def drop(b: dict[str, Any]) -> None:
        b["applicant"].pop("provident_fund_center")
        b["optional_items"].remove("provident_fund_withdrawal")
        b.pop("bank_card")

    assert errors(changed(drop)) == []


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("62220200000982", False),  # 14 digits
        ("622202000009827", True),  # 15
        ("6222020000098274301", True),  # 19
        ("62220200000982743010", False),  # 20
        ("622202000009827430X", False),
    ],
)
def test_bank_card_number_has_15_to_19_digits(number: str, ok: bool) -> None:
    got = errors(changed(lambda b: b["bank_card"].__setitem__("number", number)))
    assert (got == []) is ok, got
    if not ok:
        assert [e["pointer"] for e in got] == ["/bank_card/number"]
        assert number not in json.dumps(got)


# --- over HTTP ------------------------------------------------------------------------------------

SUBMIT = "/api/v1/joint-applications"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda b: b["applicant"].__setitem__("birth_date", "1963-05-19"), "/applicant/birth_date"),
        (lambda b: b.__setitem__("submitted_at", "2026-02-30T10:00:00+08:00"), "/submitted_at"),
        (lambda b: b["applicant"].pop("provident_fund_center"), "/applicant/provident_fund_center"),
        (lambda b: b.__setitem__("early_retirement_reason", "illness"), "/early_retirement_reason"),
    ],
)
async def test_gateway_answers_400_naming_the_field(
    gw: Running, change: Callable[[dict[str, Any]], Any], pointer: str
) -> None:
    body = changed(change) | {"application_no": "VAL-" + pointer.strip("/").replace("/", "-").replace("_", "-")}
    status, problem, headers = await gw.post(SUBMIT, body)
    assert status == 400, problem
    assert headers["Content-Type"].startswith("application/problem+json")
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert problem["detail"].startswith(pointer)
    assert (await gw.get(f"{SUBMIT}/{body['application_no']}"))[0] == 404


def test_an_attachment_over_its_own_limit_is_refused_before_it_is_decoded() -> None:
    import base64
    import hashlib

    content = b"%PDF-" + b"x" * 2000
    body = changed(lambda b: b.update(materials=[{
        "code": "id_document", "file_name": "a.pdf", "content_type": "application/pdf",
        "sha256": hashlib.sha256(content).hexdigest(), "content_base64": base64.b64encode(content).decode()}]))
    assert semantic_errors(body, now=NOW, allow_any_submitted_at=True, max_attachment_bytes=4096) == []
    [error] = semantic_errors(body, now=NOW, allow_any_submitted_at=True, max_attachment_bytes=1024)
    assert error["pointer"] == "/materials/0/content_base64" and "attachment limit of 1024" in error["detail"]


def test_the_same_application_spelt_differently_has_the_same_fingerprint() -> None:
    from gateway.validation import fingerprint

    spelt = changed(lambda b: b.update(all_or_nothing=False, optional_items=list(reversed(b["optional_items"]))))
    bare = changed(lambda b: b.pop("all_or_nothing", None))
    assert fingerprint(spelt) == fingerprint(bare) == fingerprint(dict(reversed(list(BASE.items()))))
    assert fingerprint(changed(lambda b: b.update(all_or_nothing=True))) != fingerprint(bare)
    assert fingerprint(changed(lambda b: b["applicant"].update(phone="13900000000"))) != fingerprint(bare)
