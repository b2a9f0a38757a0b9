"""RFC 9457 problem details: every refusal the gateway gives, in one shape."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

TYPE_BASE = "https://gateway.retirement.hunan.gov.cn/problems/"
_KIND = re.compile(r"^[a-z0-9-]+$")
MAX_INSTANCE = 256  # characters of the decoded path


class Problem(Exception):
    """Raise from a handler; the middleware renders it as application/problem+json."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        if not _KIND.match(kind) or not 400 <= status <= 599:
            raise ValueError(f"a problem needs a 4xx/5xx status and a kind of a-z0-9-, not {status} {kind!r}")
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            out["instance"] = instance_reference(instance)
        if self.errors:
            out["errors"] = self.errors
        out.update(self.extra)
        return out


def instance_reference(path: str) -> str:
    """The request path as ``instance``: a URI reference (RFC 9457 §3.1.5), so the decoded
    path is percent-encoded again (spaces, Chinese, ``%``). Paths longer than MAX_INSTANCE
    characters are cut there and end in ``...``."""
    cut = path[:MAX_INSTANCE]
    encoded = quote(cut, safe="/:@!$&'()*+,;=-._~", errors="backslashreplace")
    return encoded if len(cut) == len(path) else encoded + "..."


def render(problem: Problem, instance: str | None = None) -> bytes:
    """The problem as UTF-8 JSON. Never fails on what a caller managed to put in a member:
    a lone surrogate is written as its JSON escape, anything else not JSON as its text."""
    text = json.dumps(problem.body(instance), ensure_ascii=False, default=str)
    return text.encode("utf-8", "backslashreplace")


def problem_response(problem: Problem, instance: str | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        body=render(problem, instance),
        content_type="application/problem+json",
        charset="utf-8",
        headers=problem.headers,
    )


MAX_ERRORS = 50  # listed in one problem; the detail still counts them all


def validation_problem(errors: Sequence[Mapping[str, str]]) -> Problem:
    """``errors`` lists the first MAX_ERRORS failures: a body of 10,000 empty materials
    fails 20,000 rules, and listing them all made a 40 kB request a 1.5 MB answer."""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(
        400,
        "validation-error",
        "Request does not match the joint-application schema",
        f"{first['pointer'] or '/'}: {first['detail']}{more}",
        errors=errors[:MAX_ERRORS],
    )
