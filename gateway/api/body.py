"""Strict JSON for inbound bodies, the same rules on every endpoint that takes one.

What is refused, and how (every refusal is application/problem+json; where the rule is
about one value, ``errors`` names it by RFC 6901 pointer and never shows the value):

- no ``Content-Type``, or another media type than ``application/json``: 415
  ``unsupported-media-type``; a ``charset`` other than UTF-8: 415 as well — the body is
  UTF-8 only (RFC 8259 §8.1), a GBK body is never guessed at.
- more than the configured body limit: 413 ``body-too-large`` saying the limit.
- a Content-Encoding that cannot be decoded, bytes that are not UTF-8, a byte order mark
  (RFC 8259 §8.1: JSON senders must not add one; refusing it keeps one byte form per
  request for the signature digest and every parser behind us), an empty body, invalid
  syntax: 400 ``malformed-json``.
- what JSON allows but the gateway cannot carry faithfully, 400 ``malformed-json`` with
  the pointer: duplicate keys (which one wins differs between parsers); NaN, Infinity;
  integers of more than 20 digits, decimals of more than 20 significant digits, any number
  longer than 40 characters (a 5,000-digit integer used to be a 500: Python refuses to
  convert it), numbers that overflow to infinity or underflow to zero; nesting deeper than
  32 levels; lone surrogates; control characters other than tab, line feed and carriage
  return (NUL is refused by PostgreSQL text and, like the rest, cannot be written in XML 1.0
  for the SOAP departments).
- more than 100,000 values (counted by their separators before parsing): 400
  ``malformed-json``; a 20 MB body of numbers would hold the event loop for seconds.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from gateway.keys import CONFIG
from gateway.problems import Problem

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 20
MAX_NUMBER_LENGTH = 40
MAX_ERRORS = 20
# Values a body may hold, bounded before parsing by counting , : [ { (an upper bound: they
# may sit inside strings too). A joint application has a few hundred; a 20 MB body of
# ten million numbers would otherwise hold the event loop for seconds.
MAX_VALUES = 100_000
_TITLE = "Malformed JSON"
# Code points a decoded JSON string may hold that the gateway refuses to carry: C0 controls
# but tab/LF/CR, the two non-characters XML 1.0 excludes, and surrogates (any surrogate in
# a decoded str is a lone one: an escaped pair decodes to one character).
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Refused:
    """Stands in for a value the parse hooks refused, so the walk can name where it was."""

    __slots__ = ("rule",)

    def __init__(self, rule: str) -> None:
        self.rule = rule


class _DuplicateKeys(dict[str, Any]):
    __slots__ = ("duplicate",)
    duplicate: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            dup = _DuplicateKeys(out)
            dup.duplicate = k
            return dup
        out[k] = v
    return out


def _constant(name: str) -> Any:
    return _Refused(f"{name} is not valid JSON (numbers must be finite)")


def _int(text: str) -> Any:
    if len(text) > MAX_NUMBER_LENGTH or len(text.lstrip("-").lstrip("0")) > MAX_NUMBER_DIGITS:
        return _Refused(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _float(text: str) -> Any:
    if len(text) > MAX_NUMBER_LENGTH:
        return _Refused(f"a number is longer than {MAX_NUMBER_LENGTH} characters")
    mantissa = text.lower().partition("e")[0].lstrip("-").replace(".", "")
    significant = mantissa.lstrip("0").rstrip("0")
    if len(significant) > MAX_NUMBER_DIGITS:
        return _Refused(f"a number has more than {MAX_NUMBER_DIGITS} significant digits")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Refused("a number is too large: it overflows to infinity")
    if value == 0.0 and significant:
        return _Refused("a number is too small: it underflows to zero")
    return value


def _char_rule(ch: str) -> str:
    if "\ud800" <= ch <= "\udfff":
        return "contains a lone surrogate (not valid Unicode)"
    if ch in "\ufffe\uffff":
        return "contains a Unicode non-character (U+FFFE/U+FFFF)"
    return f"contains a control character (U+{ord(ch):04X}); only tab, line feed and carriage return are allowed"


def _segment(key: str) -> str | None:
    """A key as a pointer segment, or None when it is not safe to repeat (odd or long)."""
    if len(key) > 64 or _BAD_CHAR.search(key):
        return None
    return key.replace("~", "~0").replace("/", "~1")


_Path = tuple[Any, str] | None  # (parent path, segment): built into a pointer only for an error


def _pointer(path: _Path) -> str:
    segments: list[str] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    return "".join("/" + s for s in reversed(segments))


def _walk(data: Any) -> list[dict[str, str]]:
    """Every refused value, in document order, by pointer (at most MAX_ERRORS)."""
    errors: list[dict[str, str]] = []

    def refuse(path: _Path, detail: str) -> None:
        errors.append({"pointer": _pointer(path), "detail": detail})

    stack: list[tuple[Any, _Path, int]] = [(data, None, 1)]
    while stack and len(errors) < MAX_ERRORS:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            bad = _BAD_CHAR.search(value)
            if bad:
                refuse(path, _char_rule(bad.group()))
        elif isinstance(value, _Refused):
            refuse(path, value.rule)
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                refuse(path, f"nested deeper than {MAX_DEPTH} levels")
            else:
                stack.extend((v, (path, str(i)), depth + 1) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            if depth > MAX_DEPTH:
                refuse(path, f"nested deeper than {MAX_DEPTH} levels")
                continue
            if isinstance(value, _DuplicateKeys):
                name = value.duplicate if _FIELD_NAME.match(value.duplicate) else None
                refuse(path if name is None else (path, name), "duplicate key in an object")
            children: list[tuple[Any, _Path, int]] = []
            for k, v in value.items():
                seg = _segment(k)
                if seg is None:
                    bad = _BAD_CHAR.search(k)
                    if bad:
                        refuse(path, "a key " + _char_rule(bad.group()))
                        continue
                # a key of more than 64 characters is not repeated: what is inside it is
                # named by the object that holds it
                children.append((v, path if seg is None else (path, seg), depth + 1))
            stack.extend(reversed(children))
    return errors


def _charset_ok(request: web.Request) -> bool:
    charset = request.charset
    return charset is None or charset.lower().replace("-", "").replace("_", "") == "utf8"


def _media_type(request: web.Request) -> None:
    if "Content-Type" not in request.headers:
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      "no Content-Type: send Content-Type: application/json",
                      errors=[{"pointer": "header:Content-Type", "detail": "is required (application/json)"}])
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", "Unsupported media type", "send application/json",
                      errors=[{"pointer": "header:Content-Type", "detail": "must be application/json"}])
    if not _charset_ok(request):
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      "the body must be UTF-8: send application/json without a charset or with charset=utf-8",
                      errors=[{"pointer": "header:Content-Type", "detail": "charset must be utf-8"}])


async def read_json(request: web.Request) -> Any:
    _media_type(request)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[CONFIG].max_body_bytes
        raise Problem(413, "body-too-large", "Request body too large", f"the limit is {limit} bytes") from exc
    except web.RequestPayloadError as exc:  # a Content-Encoding that does not decode
        raise Problem(400, "malformed-json", _TITLE,
                      "the body could not be read: its Content-Encoding does not decode") from exc
    if not raw.strip():
        raise Problem(400, "malformed-json", _TITLE, "the body is empty")
    separators = raw.count(b",") + raw.count(b":") + raw.count(b"[") + raw.count(b"{")
    if separators > MAX_VALUES:
        raise Problem(400, "malformed-json", _TITLE,
                      f"the body has more than {MAX_VALUES} values (counted by their separators , : [ {{)")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise Problem(400, "malformed-json", _TITLE,
                      "the body starts with a byte order mark: send UTF-8 without one (RFC 8259 §8.1)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "malformed-json", _TITLE, f"the body is not UTF-8 (invalid byte at offset {exc.start})") \
            from exc
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int,
                          parse_float=_float)
    except json.JSONDecodeError as exc:
        raise Problem(400, "malformed-json", _TITLE, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:  # deeper than the interpreter's stack: well past MAX_DEPTH
        raise Problem(400, "malformed-json", _TITLE, f"nested deeper than {MAX_DEPTH} levels",
                      errors=[{"pointer": "", "detail": f"nested deeper than {MAX_DEPTH} levels"}]) from exc
    errors = _walk(data)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Problem(400, "malformed-json", _TITLE, f"{first['pointer'] or '/'}: {first['detail']}{more}",
                      errors=errors)
    return data
