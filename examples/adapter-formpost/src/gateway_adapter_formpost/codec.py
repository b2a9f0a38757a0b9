"""The wire format of a form-post department: pure functions, no I/O.

Outbound, the message body the mapping built becomes form fields::

    {"sfzh": "4301…", "xx": {"xb": "1"}, "cl": ["a", "b"], "bz": None, "hy": True}
    →  sfzh=4301…&xx.xb=1&cl=a&cl=b&hy=1

Nested tables become dotted names, lists repeat the field, ``None`` leaves the field out
and booleans are ``1``/``0`` (as the gateway's ``string`` transform writes them).

Inbound, a reply is JSON or ``key=value`` lines; in lines, dotted keys nest again
(``out.jg=1`` → ``{"out": {"jg": "1"}}``), so a mapping reads both the same way.

Errors name a field or a line number, never a value: values are personal data.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote_plus

REPLY_MODES = ("auto", "json", "lines")


class FormError(ValueError):
    """The message cannot be written as a form (the mapping or the charset does not fit)."""


class ReplyFormatError(ValueError):
    """The reply cannot be read. The message says why, without quoting the reply."""


def form_fields(body: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Flatten a message body into ``(name, value)`` pairs, in the body's order."""
    for key, value in body.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from form_fields(value, prefix=f"{name}.")
        elif isinstance(value, list | tuple):
            for element in value:
                if element is not None:
                    yield name, _scalar(name, element)
        elif value is not None:
            yield name, _scalar(name, value)


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int | float):
        return str(value)
    raise FormError(f"field {name}: a form value is text, a number or a flag, not {type(value).__name__}")


def encode_form(fields: list[tuple[str, str]], encoding: str) -> bytes:
    """``application/x-www-form-urlencoded`` in the department's charset (often GBK)."""
    parts = []
    for name, value in fields:
        try:
            parts.append(f"{quote_plus(name, encoding=encoding)}={quote_plus(value, encoding=encoding)}")
        except UnicodeEncodeError:
            raise FormError(f"field {name}: a character cannot be written in {encoding}") from None
    return "&".join(parts).encode("ascii")


def decoder_for(charset: str) -> str:
    """GBK replies are read as GB18030 (its superset): rare name characters still decode."""
    name = codecs.lookup(charset).name
    return "gb18030" if name in ("gbk", "gb2312") else name


def decode_reply(raw: bytes, content_type: str, charset: str, mode: str = "auto") -> Any:
    """A department reply → plain data (``dict`` for lines, any JSON value for JSON).

    ``mode`` ``auto``: JSON when the Content-Type says so or the text starts with ``{``
    or ``[`` (older systems send JSON as ``text/html``), otherwise ``key=value`` lines.
    An empty reply reads as ``{}``: what it must contain is the mapping's business.
    """
    try:
        text = raw.decode(decoder_for(charset)).lstrip("\ufeff")
    except (LookupError, UnicodeDecodeError):
        raise ReplyFormatError(f"reply is not {charset} text") from None
    if not text.strip():
        return {}
    json_type = content_type == "application/json" or content_type.endswith("+json")
    if mode == "json" or (mode == "auto" and (json_type or text.lstrip()[:1] in ("{", "["))):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReplyFormatError(f"reply is not JSON (line {exc.lineno})") from None
    return parse_lines(text)


def parse_lines(text: str) -> dict[str, Any]:
    """``key=value`` lines → a dict. Blank lines and ``#`` comments are skipped.

    A line without ``=``, an empty key or a key given twice makes the reply unreadable:
    for a decision, guessing which of two ``jg=`` lines counts is not an option.
    """
    out: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ReplyFormatError(f"reply line {number} is not key=value")
        _put(out, key.split("."), value.strip(), number)
    return out


def _put(out: dict[str, Any], parts: list[str], value: str, number: int) -> None:
    if not all(parts):
        raise ReplyFormatError(f"reply line {number}: key {'.'.join(parts)} has an empty part")
    cur = out
    for part in parts[:-1]:
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ReplyFormatError(f"reply line {number}: {'.'.join(parts)} clashes with an earlier key")
        cur = nxt
    if parts[-1] in cur:
        raise ReplyFormatError(f"reply line {number}: key {'.'.join(parts)} is repeated")
    cur[parts[-1]] = value
