"""Inbound TLS, and mutual TLS when a client CA is configured: only callers holding a
certificate that CA issued (the platform, the departments' callback senders) get a
connection at all — before any HTTP is read.

``[server.tls]``: ``cert`` and ``key`` (PEM paths), optional ``key_password_env``,
optional ``client_ca`` (PEM path of the CA whose client certificates are accepted).
Often TLS ends at a load balancer instead; then leave this out and let the balancer
verify client certificates.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert: Path
    key: Path
    client_ca: Path | None = None
    key_password_env: str | None = None


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A TLS 1.2+ server context; client certificates required when ``client_ca`` is set."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    password = os.environ.get(settings.key_password_env) if settings.key_password_env else None
    context.load_cert_chain(settings.cert, settings.key, password=password)
    if settings.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(settings.client_ca))
    return context
