"""Strict JSON for inbound bodies: duplicate keys, NaN/Infinity and lone surrogates refused."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.keys import CONFIG
from gateway.problems import Problem


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise Problem(400, "malformed-json", "Malformed JSON", f"duplicate key {k[:64]!r} in an object")
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise Problem(400, "malformed-json", "Malformed JSON", f"{name} is not valid JSON")


def _check_text(value: Any) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise Problem(400, "malformed-json", "Malformed JSON", "a string contains a lone surrogate") from exc
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


async def read_json(request: web.Request) -> Any:
    if request.content_type not in ("application/json", ""):
        raise Problem(415, "unsupported-media-type", "Unsupported media type", "send application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[CONFIG].max_body_bytes
        raise Problem(413, "body-too-large", "Request body too large", f"the limit is {limit} bytes") from exc
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", "the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise Problem(400, "malformed-json", "Malformed JSON", where) from exc
    except RecursionError as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", "nested too deeply") from exc
    _check_text(data)
    return data
