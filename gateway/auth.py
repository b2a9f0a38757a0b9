"""Signed requests: the platform (and each department's callbacks) prove who they are.

Headers: ``X-App-Key``, ``X-Timestamp`` (Unix seconds), ``X-Nonce`` (16–64 of
``A-Za-z0-9_-``), ``X-Content-SM3`` (hex SM3 of the body), ``X-Signature`` (hex HMAC over
the canonical string), optional ``X-Signature-Method`` (``HMAC-SM3``, the default, or
``HMAC-SHA256`` where configured). The canonical string is, one per line:
method, path, the query sorted by name, app key, timestamp, nonce, body SM3.

Refusals are 401 problem+json, decided before the body is parsed (only read, within the
size limit, to check its digest). Nonces are remembered in the store, so a replay is
refused by every replica.
"""

from __future__ import annotations

import hmac as std_hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from gateway.problems import Problem

log = structlog.get_logger("gateway.auth")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: "²".isdigit() is true


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison that a non-ASCII header cannot turn into an exception."""
    return std_hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))
METHODS = ("HMAC-SM3", "HMAC-SHA256")


def sm3_hex(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def _mac(method: str, secret: bytes, message: bytes) -> str:
    algorithm = hashes.SM3() if method == "HMAC-SM3" else hashes.SHA256()
    m = crypto_hmac.HMAC(secret, algorithm)
    m.update(message)
    return m.finalize().hex()


def canonical(
    method: str, path: str, query: Mapping[str, str], app_key: str, ts: str, nonce: str, digest: str
) -> bytes:
    return "\n".join(
        [method.upper(), path, urlencode(sorted(query.items())), app_key, ts, nonce, digest]
    ).encode("utf-8")


def sign(
    method: str, path: str, body: bytes, app_key: str, secret: str, *, query: Mapping[str, str] | None = None,
    signature_method: str = "HMAC-SM3", now: float | None = None, nonce: str | None = None,
) -> dict[str, str]:
    """The headers a caller adds (used by the sandbox departments, the demo and the tests)."""
    ts = str(int(now if now is not None else time.time()))
    nonce = nonce or secrets.token_urlsafe(18)
    digest = sm3_hex(body)
    message = canonical(method, path, query or {}, app_key, ts, nonce, digest)
    return {
        "X-App-Key": app_key, "X-Timestamp": ts, "X-Nonce": nonce, "X-Content-SM3": digest,
        "X-Signature": _mac(signature_method, secret.encode(), message), "X-Signature-Method": signature_method,
    }


def parse_keys(text: str | None) -> dict[str, str]:
    """``key1:secret1,key2:secret2`` (from the environment) → {app key: secret}. An entry
    that is not ``key:secret`` is an error, never silently dropped (a key that was meant
    to work would then be refused with "unknown key")."""
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, secret = part.strip().partition(":")
        if not (sep and key and secret):
            raise ValueError("each entry is appkey:secret, separated by commas")
        out[key] = secret
    return out


@dataclass(frozen=True)
class AuthSettings:
    enabled: bool = False
    window_seconds: float = 300.0
    methods: tuple[str, ...] = ("HMAC-SM3",)
    platform_keys: Mapping[str, str] = field(default_factory=dict)
    # department code → {app key: secret} for POST /api/v1/callbacks/{department}
    department_keys: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def _refuse(reason: str, detail: str, realm: str, count: Callable[[str, str], None]) -> Problem:
    count(realm, reason)
    log.warning("request_not_authenticated", realm=realm, reason=reason)
    return Problem(401, "unauthenticated", "Request not authenticated", detail, reason=reason,
                   headers={"WWW-Authenticate": 'HMAC-SM3 realm="gateway"'})


def auth_middleware(
    settings: AuthSettings,
    remember_nonce: Callable[[str, float], Awaitable[bool]],
    count: Callable[[str, str], None],
    clock: Callable[[], float] = time.time,
    body_limit: int = 0,
) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not settings.enabled or not path.startswith("/api/"):
            return await handler(request)  # operations endpoints and the admin API (own token)
        if path.startswith("/api/v1/callbacks/"):
            realm = "department"
            # From the path itself: match_info is empty when the method has no route (then 405).
            department = path[len("/api/v1/callbacks/"):].partition("/")[0]
            keys = settings.department_keys.get(department, {})
        else:
            realm, keys = "platform", settings.platform_keys
        h = request.headers
        missing = [n for n in ("X-App-Key", "X-Timestamp", "X-Nonce", "X-Content-SM3", "X-Signature") if not h.get(n)]
        if missing:
            raise _refuse("missing_headers", "missing signature headers: " + ", ".join(missing), realm, count)
        method = h.get("X-Signature-Method", "HMAC-SM3")
        if method not in settings.methods:
            raise _refuse("method", f"signature method must be one of {', '.join(settings.methods)}", realm, count)
        secret = keys.get(h["X-App-Key"])
        if secret is None:
            raise _refuse("unknown_key", "unknown app key for this endpoint", realm, count)
        ts = h["X-Timestamp"]
        if not _TIMESTAMP.fullmatch(ts) or abs(clock() - int(ts)) > settings.window_seconds:
            raise _refuse("timestamp", f"X-Timestamp must be Unix seconds within ±{settings.window_seconds:.0f} s",
                          realm, count)
        if not _NONCE.match(h["X-Nonce"]):
            raise _refuse("nonce_format", "X-Nonce: 16–64 characters of A-Za-z0-9_-", realm, count)
        try:
            body = await request.read()  # bounded by client_max_size; parsed only after this check
        except web.HTTPRequestEntityTooLarge as exc:
            raise Problem(413, "body-too-large", "Request body too large",
                          f"the limit is {body_limit} bytes") from exc
        except web.RequestPayloadError as exc:  # a Content-Encoding the body does not match
            raise Problem(400, "malformed-json", "Malformed body", "the body cannot be decoded as its "
                          "Content-Encoding says") from exc
        digest = sm3_hex(body)
        if not _same(digest, h["X-Content-SM3"].lower()):
            raise _refuse("digest", "X-Content-SM3 does not match the body", realm, count)
        message = canonical(request.method, path, request.query, h["X-App-Key"], ts, h["X-Nonce"], digest)
        if not _same(_mac(method, secret.encode(), message), h["X-Signature"].lower()):
            raise _refuse("signature", "signature does not match", realm, count)
        if not await remember_nonce(f"{realm}:{h['X-App-Key']}:{h['X-Nonce']}", settings.window_seconds):
            raise _refuse("replay", "this nonce was already used: a replayed request", realm, count)
        return await handler(request)

    return authenticate
