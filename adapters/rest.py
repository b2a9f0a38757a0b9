"""REST/JSON department endpoints over the shared aiohttp session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from adapters.base import OutboundMessage, Reply, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.httperrors import classify_exception, classify_status


class RestAdapter:
    """Settings: ``base_url``; optional ``headers`` (e.g. a static token).

    Operation options from the mapping: ``method`` (POST), ``path``. The delivery id
    travels as the ``Idempotency-Key`` header so the department can drop re-sends.
    """

    kind = "rest"

    def __init__(self, name: str, settings: Mapping[str, Any], context: AdapterContext) -> None:
        if not isinstance(settings.get("base_url"), str):
            raise ValueError(f"endpoint {name}: rest adapter needs base_url")
        self.name = name
        self._base_url = settings["base_url"].rstrip("/")
        self._headers = {str(k): str(v) for k, v in settings.get("headers", {}).items()}
        self._session = context.session

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None  # the shared session is closed by the gateway

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        options = message.operation.options
        url = self._base_url + str(options.get("path", ""))
        where = f"{self.name} {message.operation.name}"
        headers = {"Idempotency-Key": message.delivery_id, **self._headers}
        body = json.dumps(message.body, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self._session.request(
                str(options.get("method", "POST")),
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                raw = await resp.read()
                error = classify_status(resp.status, where, resp.headers.get("Retry-After"))
                if error is not None:
                    raise error
                charset = resp.charset or "utf-8"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_exception(exc, where) from exc
        try:
            # Some departments answer GBK JSON and say so in Content-Type.
            return Reply(body=json.loads(raw.decode(charset)), status=resp.status)
        except (UnicodeDecodeError, LookupError, json.JSONDecodeError) as exc:
            if message.operation.name == "query":
                raise TransientError(f"{where}: malformed reply") from exc
            raise UnknownOutcome(f"{where}: malformed reply to a submission") from exc
