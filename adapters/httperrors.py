"""aiohttp failures → the gateway's error tree, in one place for REST and SOAP.

What decides the class is whether the request may have reached the department:

- nothing was sent (refused, DNS, connect timeout)        → TransientError
- sent, then the line broke or went quiet                 → UnknownOutcome
- it cannot work until someone changes something (TLS
  certificates, an invalid address, redirects)            → PermanentError

``EXCEPTION_TABLE`` lists every aiohttp client exception, most specific first; a test
walks aiohttp's exception classes and fails on any that is not listed, so a new aiohttp
release cannot slip an unclassified error past us. Details name the exception class,
never its text (a URL's query can hold personal data).
"""

from __future__ import annotations

import asyncio
import errno
import ssl

import aiohttp
from aiohttp import client_exceptions

from adapters.base import AdapterError, PermanentError, TransientError, UnknownOutcome

# Operations that only read: a malformed answer to these is safe to ask again.
READ_OPERATIONS = frozenset({"query", "status"})

EXCEPTION_TABLE: tuple[tuple[type[BaseException], type[AdapterError], str], ...] = (
    # TLS: a certificate or handshake problem does not heal by itself.
    (aiohttp.ClientConnectorCertificateError, PermanentError, "TLS certificate verify failed"),
    (aiohttp.ClientConnectorSSLError, PermanentError, "TLS handshake failed"),
    (aiohttp.ClientSSLError, PermanentError, "TLS error"),
    (aiohttp.ServerFingerprintMismatch, PermanentError, "TLS certificate fingerprint mismatch"),
    # Before anything was sent.
    (aiohttp.ClientConnectorDNSError, TransientError, "cannot resolve the host"),
    (aiohttp.ClientProxyConnectionError, TransientError, "cannot connect to the proxy"),
    (client_exceptions.UnixClientConnectorError, TransientError, "cannot connect"),
    (aiohttp.ClientConnectorError, TransientError, "cannot connect"),
    (aiohttp.ConnectionTimeoutError, TransientError, "no connection within the timeout"),
    (aiohttp.ClientHttpProxyError, TransientError, "the proxy refused the tunnel"),
    # Sent (or partly sent), then lost.
    (aiohttp.SocketTimeoutError, UnknownOutcome, "no answer within the timeout"),
    (aiohttp.ServerTimeoutError, UnknownOutcome, "no answer within the timeout"),
    (aiohttp.ServerDisconnectedError, UnknownOutcome, "connection lost after sending"),
    (aiohttp.ClientConnectionResetError, UnknownOutcome, "connection reset after sending"),
    (aiohttp.ClientOSError, UnknownOutcome, "connection lost after sending"),
    (aiohttp.ServerConnectionError, UnknownOutcome, "connection lost after sending"),
    (aiohttp.ClientConnectionError, UnknownOutcome, "connection lost after sending"),
    (aiohttp.ClientPayloadError, UnknownOutcome, "reply cut short"),
    (aiohttp.UploadAbortedError, UnknownOutcome, "request body not fully sent"),
    # Refused by the client before sending: a configuration error.
    (aiohttp.InvalidUrlRedirectClientError, PermanentError, "redirected to an invalid address"),
    (aiohttp.NonHttpUrlRedirectClientError, PermanentError, "redirected to a non-HTTP address"),
    (aiohttp.RedirectClientError, PermanentError, "invalid redirect"),
    (aiohttp.InvalidUrlClientError, PermanentError, "invalid address"),
    (aiohttp.NonHttpUrlClientError, PermanentError, "not an HTTP address"),
    (aiohttp.InvalidURL, PermanentError, "invalid address"),
    (aiohttp.TooManyRedirects, PermanentError, "too many redirects"),
    (aiohttp.WSServerHandshakeError, PermanentError, "unexpected WebSocket handshake"),
    # The adapters never raise for status nor call resp.json(): these mean an unreadable
    # response arrived after the request was sent.
    (aiohttp.ContentTypeError, UnknownOutcome, "unreadable reply"),
    (aiohttp.ClientResponseError, UnknownOutcome, "unreadable HTTP response"),
    (aiohttp.ClientError, UnknownOutcome, "client error"),
)

# A reset or EOF in the middle of a TLS handshake: the server would not talk TLS with us
# (a client certificate missing or not accepted, no common protocol version).
_HANDSHAKE_CUT = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError)
# The TLS layer reporting a closed line, not a refusal: the same as any lost connection.
_TLS_LINE_LOST = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl`` module's error behind ``exc``, if any. aiohttp's own TLS classes inherit
    from ssl errors too but carry none of OpenSSL's detail: look behind them."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError) and not isinstance(cur, aiohttp.ClientError):
            return cur
        inner = None
        if isinstance(cur, aiohttp.ClientConnectorCertificateError):
            inner = getattr(cur, "certificate_error", None)
        elif isinstance(cur, aiohttp.ClientConnectorError):
            inner = getattr(cur, "os_error", None)
        cur = inner if isinstance(inner, BaseException) else (cur.__cause__ or cur.__context__)
    return None


def _was_reset(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionResetError) or isinstance(exc.__cause__, ConnectionResetError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNRESET)


def _tls_reason(err: ssl.SSLError) -> str:
    # ``reason`` is OpenSSL's constant (CERTIFICATE_VERIFY_FAILED, TLSV13_ALERT_CERTIFICATE_REQUIRED…)
    # and ``verify_message`` its explanation: precise and free of personal data.
    reason = str(getattr(err, "reason", None) or type(err).__name__)
    why = getattr(err, "verify_message", None)
    return f"{reason} ({why})" if why else reason


def classify_exception(exc: BaseException, where: str, *, tls: bool = False) -> AdapterError:
    """Map a client-side exception; re-raise anything that is not a transport failure.

    ``tls``: the endpoint is https, so a connection cut during connect is a TLS refusal.
    """
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(exc, aiohttp.ClientSSLError):
        cause = getattr(exc, "os_error", None)  # a property that needs a fully built exception
        if tls and isinstance(cause, _HANDSHAKE_CUT):
            return PermanentError(
                f"{where}: TLS handshake refused by the server ({type(cause).__name__}): "
                "a client certificate may be required or not accepted"
            )
    if isinstance(exc, aiohttp.ClientError | ssl.SSLError):
        tls_error = _ssl_cause(exc)
        if tls_error is not None and not isinstance(tls_error, _TLS_LINE_LOST):
            return PermanentError(f"{where}: TLS error {_tls_reason(tls_error)}")
    if isinstance(exc, aiohttp.ClientError):
        for cls, error, text in EXCEPTION_TABLE:
            if isinstance(exc, cls):
                if error is UnknownOutcome and _was_reset(exc):
                    text = "connection reset after sending"
                    if tls:  # TLS 1.3 servers check the client certificate after the handshake;
                        # refusing it (or its absence) resets the line just as a crash does.
                        text += "; on TLS this is also how a refused client certificate looks"
                return error(f"{where}: {text} ({type(exc).__name__})")
    if isinstance(exc, asyncio.TimeoutError):  # the ClientTimeout's total ran out
        return UnknownOutcome(f"{where}: no answer within the timeout")
    if isinstance(exc, ConnectionRefusedError) or (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return TransientError(f"{where}: cannot connect ({type(exc).__name__})")
    if isinstance(exc, OSError):  # aiohttp wraps these; a raw one after sending is a lost line
        return UnknownOutcome(f"{where}: connection lost after sending ({type(exc).__name__})")
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
    if 300 <= status < 400:
        return PermanentError(f"{where}: HTTP {status}: redirects are not followed; configure the final address",
                              status=status)
    return PermanentError(f"{where}: HTTP {status}", status=status)


def malformed_reply(operation: str, where: str, why: str, status: int | None = None) -> AdapterError:
    """An answer that cannot be read: a read can be asked again; a submission may have
    been processed, so it is an UnknownOutcome (re-sent with the same delivery id)."""
    if operation in READ_OPERATIONS:
        return TransientError(f"{where}: {why}", status=status)
    return UnknownOutcome(f"{where}: {why}", status=status)
