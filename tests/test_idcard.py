"""ID numbers (GB 11643) and Luhn: every error code, its message hygiene, the legacy conversion."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.domain.idcard import (
    IdErrorCode,
    IdNumberError,
    check_digit,
    convert_15_to_18,
    luhn_valid,
    parse_id_number,
)

TODAY = date(2026, 12, 3)
STANDARD_EXAMPLE = "11010519491231002X"  # the example printed in GB 11643-1999
EX_001 = "430102196303120719"  # shared/examples EX-001


def with_check(first17: str) -> str:
    return first17 + check_digit(first17)


@pytest.mark.parametrize(
    ("first17", "expected"),
    [("11010519491231002", "X"), ("43010219630312071", "9"), ("43012419641010082", "6")],
)
def test_check_digit_matches_published_numbers(first17: str, expected: str) -> None:
    assert check_digit(first17) == expected


@pytest.mark.parametrize("bad", ["1101051949123100", "1101051949123100a", "１１０１０５１９４９１２３１００２"])
def test_check_digit_needs_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        check_digit(bad)


def test_valid_number_decodes_birth_date_gender_and_division() -> None:
    parsed = parse_id_number(EX_001, TODAY)
    assert parsed.value == EX_001
    assert parsed.birth_date == date(1963, 3, 12)
    assert parsed.gender == "male"
    assert (parsed.division, parsed.province) == ("430102", "43")


def test_uppercase_x_check_digit_is_accepted_and_even_digit_17_is_female() -> None:
    parsed = parse_id_number(STANDARD_EXAMPLE, TODAY)
    assert parsed.gender == "female"
    assert parsed.birth_date == date(1949, 12, 31)


def test_id_number_repr_does_not_show_the_number() -> None:
    parsed = parse_id_number(EX_001, TODAY)
    assert EX_001 not in repr(parsed)
    assert parsed.masked == "430102********0719"


CASES = [
    ("43010219630312071", IdErrorCode.ID_LENGTH),  # 17
    ("4301021963031207190", IdErrorCode.ID_LENGTH),  # 19
    ("", IdErrorCode.ID_LENGTH),
    ("43010219630312O719", IdErrorCode.ID_FORMAT),  # letter O in the body
    ("11010519491231002x", IdErrorCode.ID_FORMAT),  # lowercase x
    ("43010219630312071Y", IdErrorCode.ID_FORMAT),
    ("４30102196303120719", IdErrorCode.ID_FORMAT),  # full-width digit
    ("430102196303120718", IdErrorCode.ID_CHECK_DIGIT),
    (with_check("43010219630230071"), IdErrorCode.ID_BIRTH_DATE),  # 1963-02-30
    (with_check("43010219631301071"), IdErrorCode.ID_BIRTH_DATE),  # month 13
    (with_check("43010220270101071"), IdErrorCode.ID_BIRTH_FUTURE),
    (with_check("20010219630312071"), IdErrorCode.ID_PROVINCE),  # 20 is no province
    (with_check("99010219630312071"), IdErrorCode.ID_PROVINCE),
    ("430102630312071", IdErrorCode.ID_LEGACY_15),
]


@pytest.mark.parametrize(("value", "code"), CASES)
def test_invalid_number_is_refused_with_its_stable_code(value: str, code: IdErrorCode) -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(value, TODAY)
    assert info.value.code is code


@pytest.mark.parametrize(("value", "code"), CASES)
def test_error_message_is_bilingual_and_never_contains_the_number(value: str, code: IdErrorCode) -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(value, TODAY)
    err = info.value
    for text in (err.message, str(err), repr(err)):
        assert value not in text or value == ""
        assert value[6:14] not in text or value == ""  # nor its birth-date digits
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.message)  # Chinese
    assert any(ch.isascii() and ch.isalpha() for ch in err.message)  # and English


def test_lowercase_x_message_asks_for_uppercase_x() -> None:
    with pytest.raises(IdNumberError, match="uppercase X") as info:
        parse_id_number("11010519491231002x", TODAY)
    assert "大写X" in info.value.message


def test_birth_today_is_accepted_but_tomorrow_is_future() -> None:
    parse_id_number(with_check("43010220261203071"), TODAY)
    with pytest.raises(IdNumberError) as info:
        parse_id_number(with_check("43010220261204071"), TODAY)
    assert info.value.code is IdErrorCode.ID_BIRTH_FUTURE


@pytest.mark.parametrize(
    "province", ["11", "15", "21", "23", "31", "37", "41", "46", "50", "54", "61", "65", "71", "81", "82"]
)
def test_every_province_range_edge_is_accepted(province: str) -> None:
    assert parse_id_number(with_check(province + "010219630312071"), TODAY).province == province


@pytest.mark.parametrize("province", ["10", "16", "24", "30", "38", "47", "55", "60", "66", "72", "83"])
def test_codes_just_outside_province_ranges_are_refused(province: str) -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number(with_check(province + "010219630312071"), TODAY)
    assert info.value.code is IdErrorCode.ID_PROVINCE


def test_legacy_15_digit_number_converts_to_the_standard_18_digit_form() -> None:
    assert convert_15_to_18("110105491231002") == STANDARD_EXAMPLE


def test_legacy_error_carries_the_18_digit_suggestion_outside_its_message() -> None:
    with pytest.raises(IdNumberError) as info:
        parse_id_number("110105491231002", TODAY)
    assert info.value.suggestion == STANDARD_EXAMPLE
    assert "18" in info.value.message
    assert STANDARD_EXAMPLE not in str(info.value) and STANDARD_EXAMPLE not in repr(info.value)


@pytest.mark.parametrize("bad", ["11010549123100", "11010549123100X", "1101054912310021"])
def test_convert_15_to_18_refuses_anything_but_15_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        convert_15_to_18(bad)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("79927398713", True),
        ("4111111111111111", True),
        ("6222021234567890128", True),
        ("79927398710", False),
        ("4111111111111112", False),
        ("", False),
        ("7", False),
        ("4111 1111 1111 1111", False),
        ("41111111111111１1", False),
    ],
)
def test_luhn_accepts_valid_card_numbers_only(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_future_birth_message_names_the_submission_date_not_today() -> None:
    """The reference date is the application's submitted_at date, so the message says so."""
    with pytest.raises(IdNumberError) as info:
        parse_id_number(with_check("43010220261204071"), TODAY)
    assert "申请提交日期" in info.value.message and "今天" not in info.value.message
    assert "submitted" in info.value.message
