"""What every adapter may share: the one tuned aiohttp client session and the base dir."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import aiohttp

# The one module-level variable: per task, not shared state. The gateway sets it to the
# platform request an application came in with; HTTP adapters send it as X-Request-Id so a
# department's logs can be matched with the gateway's.
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")


def trace_headers() -> dict[str, str]:
    request_id = REQUEST_ID.get()
    return {"X-Request-Id": request_id} if request_id else {}


@dataclass(frozen=True, slots=True)
class AdapterContext:
    session: aiohttp.ClientSession
    base_dir: Path


def new_client_session(limit: int = 256, limit_per_host: int = 64) -> aiohttp.ClientSession:
    """The gateway's single outbound HTTP session (see docs/decisions/0001).

    Keep-alive pooling per department host; DNS cached; no cookies (departments are
    stateless APIs and a shared cookie jar would leak one case's session into another).
    """
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=300, keepalive_timeout=30
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
        auto_decompress=True,
    )
