"""aiohttp failures → the gateway's error tree, in one function for REST and SOAP."""

from __future__ import annotations

import asyncio

import aiohttp

from adapters.base import AdapterError, PermanentError, TransientError, UnknownOutcome


def classify_exception(exc: BaseException, where: str) -> AdapterError:
    """Map a client-side exception. Whether the request may have arrived decides the class."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused or unreachable before anything was sent: safe to retry.
        return TransientError(f"{where}: cannot connect ({type(exc).__name__})")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UnknownOutcome(f"{where}: no answer within the timeout")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        return UnknownOutcome(f"{where}: connection lost after sending ({type(exc).__name__})")
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentError(f"{where}: invalid address")
    if isinstance(exc, aiohttp.ClientError):
        return TransientError(f"{where}: {type(exc).__name__}")
    raise exc


def classify_status(status: int, where: str, retry_after: str | None) -> AdapterError | None:
    """HTTP status → error, or None when the status is a success."""
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        delay = None
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after.strip())
        return TransientError(f"{where}: HTTP {status}", status=status, retry_after=delay)
    return PermanentError(f"{where}: HTTP {status}", status=status)
