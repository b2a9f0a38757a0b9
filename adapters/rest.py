"""REST/JSON department endpoints over the shared aiohttp session.

Endpoint settings:

=======================  ====================================================================
``base_url``             required; ``https://`` for TLS
``headers``              static, non-secret headers (credential headers are refused: use
                         ``token_env``)
``reply_encoding``       the charset to try when a reply is not UTF-8 and says nothing
                         (e.g. ``gbk``); see below
``request_encoding``     charset of the JSON request body (default ``utf-8``); a character
                         it cannot hold is a PermanentError, never a ``?``
auth and TLS             ``token_env``…, ``hmac_key_env``…, ``client_cert``… — adapters/auth.py
=======================  ====================================================================

Operation options from the mapping: ``method`` (``POST``), ``path`` (appended to
``base_url``, may carry a query). The delivery id travels as the ``Idempotency-Key``
header so the department can drop re-sends. Redirects are not followed: a 3xx is a
PermanentError naming the status (a POST silently turned into a GET would lose the case).

Reply charset: the one in ``Content-Type`` first; then UTF-8 (JSON's own, a BOM
tolerated); then ``reply_encoding``. Many provincial systems answer GBK with a bare
``application/json``: UTF-8 rejects GBK's Chinese byte pairs, so the configured charset
decides, and a department that does send UTF-8 keeps working when it is set.

Business failures inside an HTTP 200 (``{"code": "9999"}``) are not the adapter's
business: it returns the body, and the mapping's ``ok_path``/``ok_values`` judge it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from adapters.auth import AuthConfig, OutboundAuth, refuse_unknown
from adapters.base import OutboundMessage, PermanentError, Reply
from adapters.context import AdapterContext, trace_headers
from adapters.httperrors import classify_exception, classify_status, malformed_reply

SETTINGS = frozenset({"base_url", "headers", "reply_encoding", "request_encoding"})


def _codec(name: str | None, setting: str, endpoint: str) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"endpoint {endpoint}: {setting} {name!r} is not a known charset") from None


def decode_reply(raw: bytes, declared: str | None, fallback: str | None) -> str:
    """Bytes → text: the declared charset, then UTF-8, then the endpoint's fallback."""
    tried: list[str] = []
    for label in (declared, "utf-8-sig", fallback):
        if not label:
            continue
        try:
            name = codecs.lookup(label).name
        except LookupError:
            continue  # an unknown label in Content-Type: try the others
        if name in tried:
            continue
        tried.append(name)
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("+".join(tried) or "none", raw[:1], 0, 1, "no configured charset decodes the reply")


class RestAdapter:
    """A department's REST/JSON endpoint (settings and options: see the module docstring)."""

    kind = "rest"

    def __init__(self, name: str, settings: Mapping[str, Any], context: AdapterContext) -> None:
        if not isinstance(settings.get("base_url"), str):
            raise ValueError(f"endpoint {name}: rest adapter needs base_url")
        self.name = name
        self._base_url = settings["base_url"].rstrip("/")
        self._tls = self._base_url.lower().startswith("https://")
        self._headers = {str(k): str(v) for k, v in (settings.get("headers") or {}).items()}
        self._reply_encoding = _codec(settings.get("reply_encoding"), "reply_encoding", name)
        self._request_encoding = _codec(settings.get("request_encoding"), "request_encoding", name) or "utf-8"
        self._auth_config = AuthConfig.from_settings(name, settings, context.base_dir, self._base_url)
        refuse_unknown(name, "rest", settings, SETTINGS)
        self._auth: OutboundAuth | None = None
        self._session = context.session

    async def open(self) -> None:
        if self._auth is None:
            self._auth = self._auth_config.open()

    async def close(self) -> None:
        self._auth = None  # the shared session is closed by the gateway

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        if self._auth is None:
            await self.open()  # opening only reads the environment and TLS files: cheap, so lazily too
        assert self._auth is not None
        options = message.operation.options
        method = str(options.get("method", "POST")).upper()
        where = f"{self.name} {message.operation.name}"
        url = URL(self._base_url + str(options.get("path", "")))
        try:
            body = json.dumps(message.body, ensure_ascii=False).encode(self._request_encoding)
        except UnicodeEncodeError as exc:  # a name outside GBK, say: never sent as "?"
            raise PermanentError(f"{where}: a character of the message cannot be written in "
                                 f"{self._request_encoding}") from exc
        except (TypeError, ValueError) as exc:
            raise PermanentError(f"{where}: the message is not JSON ({type(exc).__name__})") from exc
        headers = {
            **self._headers,
            "Idempotency-Key": message.delivery_id,
            **trace_headers(),
            "Content-Type": f"application/json; charset={self._request_encoding}",
            **self._auth.headers(method, url.raw_path_qs, body),
        }
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, ssl=self._auth.ssl_param, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                raw = await resp.read()
                status, declared = resp.status, resp.charset
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            raise classify_exception(exc, where, tls=self._tls) from exc
        error = classify_status(status, where, retry_after)
        if error is not None:
            raise error
        try:
            return Reply(body=json.loads(decode_reply(raw, declared, self._reply_encoding)), status=status)
        except UnicodeDecodeError as exc:
            raise malformed_reply(message.operation.name, where, "reply in an unknown charset (set reply_encoding)",
                                  status) from exc
        except json.JSONDecodeError as exc:
            raise malformed_reply(message.operation.name, where, "reply is not JSON", status) from exc
