"""Request validation: the JSON Schema first, then rules a schema cannot say.

Every error is ``{"pointer": RFC 6901 pointer, "detail": what rule failed}`` and never
echoes the submitted value (it may be an ID number or a phone).

Formats are checked by the gateway's own functions (``FORMAT_CHECKS``), never by whatever
optional packages jsonschema happens to find installed: a plain ``pip install .`` and the
dev environment refuse exactly the same dates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from gateway.domain.idcard import IdNumberError, parse_id_number
from gateway.domain.items import OPTIONAL_BY_INITIATING, Item
from gateway.domain.retirement_age import YearMonth

SCHEMA_PATH = Path(__file__).with_name("schema") / "joint-application.schema.json"
MAX_JSON_DEPTH = 12

Error = dict[str, str]


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 §5.6 date-time: seconds required, optional fraction, offset Z or ±hh:mm.
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")


def _is_date(value: object) -> bool:
    """RFC 3339 full-date that is a real calendar day (2026-02-30 is not)."""
    if not isinstance(value, str):
        return True  # other types are the "type" keyword's business
    if _DATE.fullmatch(value) is None:
        return False
    date.fromisoformat(value)  # ValueError: not a real day
    return True


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time with an offset, every field in range (no 2026-02-30, no 24:00)."""
    if not isinstance(value, str):
        return True
    if _DATE_TIME.fullmatch(value) is None:
        return False
    return datetime.fromisoformat(value).tzinfo is not None  # ValueError: out of range


# Every "format" the request schema uses (a test walks the schema to keep this complete).
FORMAT_CHECKS: dict[str, Callable[[object], bool]] = {"date": _is_date, "date-time": _is_date_time}


def format_checker() -> jsonschema.FormatChecker:
    """A FormatChecker with the gateway's checks only (none of jsonschema's optional ones)."""
    checker = jsonschema.FormatChecker(formats=())
    for name, check in FORMAT_CHECKS.items():
        checker.checks(name, raises=ValueError)(check)
    return checker


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=format_checker())


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _describe(err: jsonschema.ValidationError) -> Error:
    """Say which rule failed in words, without the value that failed it."""
    pointer = _pointer(err.absolute_path)
    v, rule = err.validator, err.validator_value
    if v == "required":
        missing = [r for r in rule if isinstance(err.instance, dict) and r not in err.instance]
        name = missing[0] if missing else "?"
        because = err.schema.get("$comment") if isinstance(err.schema, dict) else None  # conditional branches
        return {"pointer": f"{pointer}/{name}", "detail": f"is required ({because})" if because else "is required"}
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return {"pointer": f"{pointer}/{extra[0] if extra else ''}", "detail": "is not a field of this object"}
    if v == "not" and isinstance(rule, dict) and isinstance(err.instance, dict):
        # {"not": {"required": [...]}}: name the field that must not be there.
        present = [r for r in rule.get("required", []) if r in err.instance]
        if present:
            return {"pointer": f"{pointer}/{present[0]}", "detail": "is allowed only with initiating_item retire_early"}
    detail = {
        "type": f"must be of type {rule}",
        "enum": "must be one of: " + ", ".join(map(str, rule)) if isinstance(rule, list) else "not allowed",
        "const": f"must be {rule!r}",
        "pattern": f"does not match the required format {rule}",
        "minLength": f"must be at least {rule} characters",
        "maxLength": f"must be at most {rule} characters",
        "maxItems": f"must have at most {rule} entries",
        "uniqueItems": "entries must not repeat",
        "format": _FORMAT_DETAIL.get(str(rule), f"must be a valid {rule}"),
        "oneOf": "needs exactly one of content_base64 or uri",
        "not": "is not allowed here (early_retirement_reason goes only with retire_early)",
    }.get(str(v), f"fails the {v} rule")
    return {"pointer": pointer, "detail": detail}


_FORMAT_DETAIL = {
    "date": "must be a real calendar date, YYYY-MM-DD",
    "date-time": "must be a real RFC 3339 date-time with seconds and an offset, e.g. 2026-12-03T10:00:00+08:00",
}


def depth_of(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


MAX_SCHEMA_ERRORS = 200


def schema_errors(body: Any) -> list[Error]:
    if depth_of(body) > MAX_JSON_DEPTH:
        return [{"pointer": "", "detail": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}]
    # A value of the wrong type is reported by its type error alone: the other rules at that
    # place (e.g. "one of content_base64 or uri" for a string where an object belongs) follow from it.
    # The first MAX_SCHEMA_ERRORS are enough to say what is wrong; collecting every error of
    # a body with 10,000 bad entries would hold the event loop for seconds.
    errors = sorted(
        itertools.islice(_validator().iter_errors(body), MAX_SCHEMA_ERRORS),
        key=lambda e: (list(map(str, e.absolute_path)), e.validator != "type", str(e.validator)),
    )
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errors:
        if e.validator != "type" and tuple(e.absolute_path) in mistyped:
            continue
        d = _describe(e)
        key = (d["pointer"], d["detail"])
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def submitted_date(body: dict[str, Any]) -> date:
    return datetime.fromisoformat(body["submitted_at"]).date()


MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024  # one material, decoded ([server] max_attachment_bytes)


def semantic_errors(
    body: dict[str, Any], *, now: datetime, allow_any_submitted_at: bool,
    max_attachment_bytes: int = MAX_ATTACHMENT_BYTES,
) -> list[Error]:
    """Rules between fields; run only on a body that passed the schema."""
    errors: list[Error] = []
    submitted = datetime.fromisoformat(body["submitted_at"])
    if not allow_any_submitted_at and abs(submitted - now) > timedelta(hours=24):
        errors.append({"pointer": "/submitted_at", "detail": "must be within 24 hours of the gateway's clock"})
    applicant = body["applicant"]
    try:
        birth_declared = date.fromisoformat(applicant["birth_date"])
    except ValueError:
        errors.append({"pointer": "/applicant/birth_date", "detail": "is not a real calendar date"})
        birth_declared = None
    try:
        idn = parse_id_number(applicant["id_number"], submitted.date())
    except IdNumberError as exc:
        errors.append({"pointer": "/applicant/id_number", "detail": f"{exc.code}: {exc.message}"})
    else:
        if birth_declared is not None and birth_declared != idn.birth_date:
            errors.append({"pointer": "/applicant/birth_date", "detail": "does not agree with the ID number"})
        if applicant["gender"] != idn.gender:
            errors.append({"pointer": "/applicant/gender", "detail": "does not agree with the ID number"})
    initiating = Item(body["initiating_item"])
    if initiating != Item.RESIDENT_PENSION and applicant["gender"] == "female" and "position" not in applicant:
        errors.append(
            {"pointer": "/applicant/position", "detail": "is required for women applying for employee retirement"}
        )
    allowed = OPTIONAL_BY_INITIATING[initiating]
    for i, item in enumerate(body.get("optional_items", [])):
        if Item(item) not in allowed:
            errors.append({"pointer": f"/optional_items/{i}", "detail": f"{item} cannot be chosen with {initiating}"})
    month = body.get("requested_retirement_month")
    if month is not None and body.get("early_retirement_reason") != "flexible":
        errors.append({"pointer": "/requested_retirement_month", "detail": "only goes with flexible early retirement"})
    elif month is not None:
        YearMonth.parse(month)  # the schema pattern already guarantees the shape
    for i, m in enumerate(body.get("materials", [])):
        if "content_base64" in m:
            if len(m["content_base64"]) * 3 // 4 > max_attachment_bytes:  # judged before decoding it
                errors.append({"pointer": f"/materials/{i}/content_base64",
                               "detail": f"is larger than the attachment limit of {max_attachment_bytes} bytes"})
                continue
            try:
                content = base64.b64decode(m["content_base64"], validate=True)
            except (binascii.Error, ValueError):
                errors.append({"pointer": f"/materials/{i}/content_base64", "detail": "is not valid base64"})
                continue
            if hashlib.sha256(content).hexdigest() != m["sha256"]:
                errors.append({"pointer": f"/materials/{i}/sha256", "detail": "does not match the content"})
            elif m.get("content_type") and not _content_matches(content, m["content_type"]):
                errors.append({"pointer": f"/materials/{i}/content_type", "detail": "does not match the content"})
    return errors


_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",), "application/pdf": (b"%PDF-",)}


def _content_matches(content: bytes, content_type: str) -> bool:
    return any(content.startswith(m) for m in _MAGIC.get(content_type, (b"",)))


# Fields whose absence means their default: leaving one out is the same application.
_DEFAULTS: dict[str, Any] = {"all_or_nothing": False, "optional_items": [], "materials": []}


def fingerprint(body: Any) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, defaults filled in, the chosen
    items as a set): the same application, however it is spelt, has the same print."""
    if isinstance(body, dict):
        body = _DEFAULTS | body
        if isinstance(body.get("optional_items"), list) and all(isinstance(i, str) for i in body["optional_items"]):
            body["optional_items"] = sorted(body["optional_items"])
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
