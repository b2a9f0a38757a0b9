"""Resident identity numbers (GB 11643-1999) and bank card Luhn checks.

Error messages are shown to applicants and may be logged: they NEVER contain
the number itself. ``IdNumber``'s repr hides the value for the same reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

__all__ = [
    "IdErrorCode",
    "IdNumber",
    "IdNumberError",
    "PROVINCE_CODES",
    "check_digit",
    "convert_15_to_18",
    "luhn_valid",
    "parse_id_number",
]

# GB 11643-1999 §8.2: ISO 7064 MOD 11-2 weights for positions 1..17, and the
# check character for each remainder 0..10.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

# GB/T 2260 province-level divisions (incl. 71 Taiwan, 81 Hong Kong, 82 Macao).
PROVINCE_CODES: frozenset[str] = frozenset(
    [str(n) for n in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47))]
    + [str(n) for n in (*range(50, 55), *range(61, 66), 71, 81, 82)]
)

# ASCII only: str.isdigit() would also accept full-width and other Unicode digits.
_DIGITS_15 = re.compile(r"[0-9]{15}")
_DIGITS_17 = re.compile(r"[0-9]{17}")
_ID_18 = re.compile(r"[0-9]{17}[0-9X]")


class IdErrorCode(StrEnum):
    """Stable machine codes for a refused ID number."""

    ID_LENGTH = "ID_LENGTH"
    ID_FORMAT = "ID_FORMAT"
    ID_CHECK_DIGIT = "ID_CHECK_DIGIT"
    ID_BIRTH_DATE = "ID_BIRTH_DATE"
    ID_BIRTH_FUTURE = "ID_BIRTH_FUTURE"
    ID_PROVINCE = "ID_PROVINCE"
    ID_LEGACY_15 = "ID_LEGACY_15"


_MESSAGES: dict[IdErrorCode, str] = {
    IdErrorCode.ID_LENGTH: "身份证号码应为18位 (ID number must have 18 characters)",
    IdErrorCode.ID_FORMAT: "身份证号码前17位应为数字，末位为数字或大写X "
    "(first 17 characters must be digits, the last a digit or uppercase X)",
    IdErrorCode.ID_CHECK_DIGIT: "身份证号码校验位不正确，请核对 (check digit does not match)",
    IdErrorCode.ID_BIRTH_DATE: "身份证号码中的出生日期不是有效日期 (birth date is not a valid date)",
    IdErrorCode.ID_BIRTH_FUTURE: "身份证号码中的出生日期晚于申请提交日期 "
    "(birth date is after the date the application was submitted)",
    IdErrorCode.ID_PROVINCE: "身份证号码前两位不是有效的省级行政区划代码 "
    "(first two digits are not a province-level division code)",
    IdErrorCode.ID_LEGACY_15: "15位旧身份证号码须转换为18位后再提交 "
    "(a 15-digit legacy number must be converted to 18 digits)",
}


class IdNumberError(ValueError):
    """An ID number that cannot be accepted; ``code`` is stable, ``message`` is for people.

    ``suggestion`` (only for ``ID_LEGACY_15``) is the 18-digit form; it is personal
    data, so it is kept out of the message, ``str()`` and ``repr()``.
    """

    def __init__(self, code: IdErrorCode, message: str | None = None, *, suggestion: str | None = None):
        self.code = code
        self.message = message if message is not None else _MESSAGES[code]
        self.suggestion = suggestion
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A valid 18-character ID number and what it encodes."""

    value: str = field(repr=False)  # personal data: not in repr
    birth_date: date
    gender: str  # "male" | "female" (digit 17 odd → male)
    division: str  # 6-digit administrative division of registration
    province: str  # its first two digits

    @property
    def masked(self) -> str:
        """First 6 and last 4 characters, for logs and messages."""
        return f"{self.value[:6]}********{self.value[-4:]}"


def check_digit(first17: str) -> str:
    """The GB 11643 check character (``0``–``9`` or uppercase ``X``) for 17 digits."""
    if not isinstance(first17, str) or _DIGITS_17.fullmatch(first17) is None:
        raise ValueError("check_digit needs exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def convert_15_to_18(value: str) -> str:
    """Convert a 15-digit (pre-1999) number: insert century ``19`` and append the check digit."""
    if not isinstance(value, str) or _DIGITS_15.fullmatch(value) is None:
        raise ValueError("a legacy ID number has exactly 15 ASCII digits")
    first17 = value[:6] + "19" + value[6:]
    return first17 + check_digit(first17)


def parse_id_number(value: str, today: date) -> IdNumber:
    """Validate an 18-character ID number and decode it; raise ``IdNumberError`` otherwise.

    Checks, in order: length (15 digits → ``ID_LEGACY_15``), characters, province,
    birth date (real, not after ``today``), then the check digit. ``today`` is the
    reference date: for an application, the date of its ``submitted_at`` (the gateway
    evaluates every date rule at that moment), hence the message's "申请提交日期".
    """
    if not isinstance(value, str):
        raise IdNumberError(IdErrorCode.ID_FORMAT)
    if _DIGITS_15.fullmatch(value):
        raise IdNumberError(IdErrorCode.ID_LEGACY_15, suggestion=convert_15_to_18(value))
    if len(value) != 18:
        raise IdNumberError(IdErrorCode.ID_LENGTH)
    if _ID_18.fullmatch(value) is None:
        if _DIGITS_17.fullmatch(value[:17]) and value[17] == "x":
            raise IdNumberError(
                IdErrorCode.ID_FORMAT,
                "身份证号码末位须为大写X，不能用小写x (the last character must be uppercase X)",
            )
        raise IdNumberError(IdErrorCode.ID_FORMAT)
    if value[:2] not in PROVINCE_CODES:
        raise IdNumberError(IdErrorCode.ID_PROVINCE)
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise IdNumberError(IdErrorCode.ID_BIRTH_DATE) from None  # `from None`: the digits are personal data
    if birth > today:
        raise IdNumberError(IdErrorCode.ID_BIRTH_FUTURE)
    if check_digit(value[:17]) != value[17]:
        raise IdNumberError(IdErrorCode.ID_CHECK_DIGIT)
    return IdNumber(
        value=value,
        birth_date=birth,
        gender="male" if int(value[16]) % 2 else "female",
        division=value[:6],
        province=value[:2],
    )


def luhn_valid(number: str) -> bool:
    """True when ``number`` is at least 2 ASCII digits and passes the Luhn (mod 10) check."""
    if not isinstance(number, str) or re.fullmatch(r"[0-9]{2,}", number) is None:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
