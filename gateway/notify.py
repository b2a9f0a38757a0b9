"""Telling the platform: POST the application's state to its ``callback_url``.

The body is the GET body, read afresh for every attempt, so a retry never carries an
older state than the store holds. Each POST says which version of the state it carries
(``X-Notification-Version``, also the ``Idempotency-Key``): the platform keeps the highest
it has seen. Signed like the platform's own requests when a notification key is set.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from adapters.base import AdapterError, PermanentError
from adapters.httperrors import classify_exception, classify_status
from gateway.audit import AuditTrail
from gateway.auth import sign
from gateway.config import GatewayConfig, NotifySettings
from gateway.delivery import job_age
from gateway.retry import call_with_retry
from gateway.store.models import Job
from gateway.store.sql import SqlStore
from gateway.views import application_view

log = structlog.get_logger("gateway.notify")


def callback_url_problem(url: str, settings: NotifySettings) -> str | None:
    """Why the gateway will not POST to ``url`` (None: it may). Checked when the
    application arrives, so a bad address is a 400 rather than a dead letter later."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return "must be an absolute http(s) URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    if settings.allowed_hosts and host not in settings.allowed_hosts:
        return "names a host this gateway is not configured to call back"
    if settings.allow_insecure:
        return None
    if parts.scheme != "https":
        return "must use https"
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "must not name a local host"
    address = literal_address(host)
    if address is not None and not is_public(address):
        return "must not name a loopback, private or reserved address"
    return None  # a name: its addresses are checked again when the gateway connects


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as a number stands for, in every form a resolver takes:
    ``127.0.0.1``, ``127.1``, ``2130706433``, ``0x7f000001``, ``0``, ``[::1]``."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and not a private IPv4 address wrapped in IPv6 (mapped, 6to4, NAT64, Teredo)."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
        if address in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(e is None or e.is_global for e in embedded)
    return True


class PrivateAddress(OSError):
    """A callback host resolves to an address the gateway must not call."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves platform callback hosts, refusing any that resolve to a loopback, private or
    reserved address (a public name pointed at an intranet address, or rebinding)."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if any(not is_public(ipaddress.ip_address(r["host"])) for r in found):
            raise PrivateAddress(f"{host} resolves to a loopback, private or reserved address")
        return found

    async def close(self) -> None:
        await self._inner.close()


class Notifier:
    def __init__(
        self, config: GatewayConfig, store: SqlStore, session: aiohttp.ClientSession, trail: AuditTrail
    ) -> None:
        self._config = config
        self._store = store
        self._trail = trail
        # The sandbox may call back on loopback; production notifications get a session of
        # their own whose resolver refuses private addresses (departments' are intranet ones).
        self._shared = session
        self._guarded: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._config.notify.allow_insecure:
            return self._shared
        if self._guarded is None:
            self._guarded = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=PublicOnlyResolver(), limit=self._config.notify_workers * 4),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._guarded

    async def close(self) -> None:
        if self._guarded is not None:
            await self._guarded.close()

    async def run(self, job: Job) -> None:
        stored = await self._store.get_application(job.application_no, with_request=False)
        if stored is None or not stored.callback_url:
            await self._store.finish_job(job)
            return
        url = stored.callback_url
        sent_version = 0

        async def post() -> None:
            nonlocal sent_version
            current = await self._store.get_application(job.application_no, with_request=False)
            assert current is not None  # applications are never deleted
            sent_version = current.notify_version
            body = json.dumps(application_view(current), ensure_ascii=False).encode("utf-8")
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Notification-Version": str(sent_version),
                "Idempotency-Key": f"{job.application_no}:{sent_version}",
            }
            settings = self._config.notify
            if settings.signing_key is not None:
                headers |= sign("POST", urlsplit(url).path or "/", body, *settings.signing_key)
            try:
                async with self._session().post(
                    url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=settings.timeout),
                    allow_redirects=False,
                ) as resp:
                    await resp.read()
                    error = classify_status(resp.status, "platform callback", resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                if isinstance(exc.__cause__, PrivateAddress) or isinstance(getattr(exc, "os_error", None),
                                                                           PrivateAddress):
                    raise PermanentError("platform callback: the host resolves to a private address") from exc
                raise classify_exception(exc, "platform callback") from exc
            if error is not None:
                raise error

        async def on_attempt(n: int, error: BaseException | None) -> None:
            detail = error.detail if isinstance(error, AdapterError) else None
            outcome = "ok" if error is None else type(error).__name__
            self._trail.record("gateway", "platform_notification", outcome, job.application_no,
                               version=sent_version, attempt=job.attempts + n)
            await self._store.record_attempt(job, outcome, detail)
            if error is not None:
                log.warning("platform_callback_failed", attempt=job.attempts + n, detail=detail)

        await call_with_retry(
            self._config.notify_retry, post, on_attempt,
            elapsed_before=job_age(job),
            attempts_before=job.attempts,
            max_inline_wait=self._config.max_inline_wait,
        )
        await self._store.finish_notify(job, sent_version)
