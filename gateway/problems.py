"""RFC 9457 problem details: every refusal the gateway gives, in one shape."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

TYPE_BASE = "https://gateway.retirement.hunan.gov.cn/problems/"


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
            out["instance"] = instance
        if self.errors:
            out["errors"] = self.errors
        out.update(self.extra)
        return out


def problem_response(problem: Problem, instance: str | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        body=json.dumps(problem.body(instance), ensure_ascii=False).encode("utf-8"),
        content_type="application/problem+json",
        charset="utf-8",
        headers=problem.headers,
    )


def validation_problem(errors: Sequence[Mapping[str, str]]) -> Problem:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(
        400,
        "validation-error",
        "Request does not match the joint-application schema",
        f"{first['pointer'] or '/'}: {first['detail']}{more}",
        errors=errors,
    )
