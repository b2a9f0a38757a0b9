"""How the gateway proves who it is to a department: a token, an HMAC signature, a client
certificate. Shared by the REST and SOAP adapters; one endpoint's settings choose.

Endpoint settings (secrets are never in configuration files, only the names of the
environment variables that hold them):

==========================  ================================================================
``token_env``               variable holding a static token, sent as ``token_header``
``token_header``            default ``Authorization``
``token_scheme``            default ``Bearer`` (``""``: the bare token)
``hmac_key_env``            variable holding the HMAC secret (its UTF-8 bytes are the key)
``hmac_key_id``             the key's public id, sent as ``X-Ca-Key``
``hmac_algorithm``          ``HMAC-SHA256`` (default) or ``HMAC-SM3``
``client_cert``             PEM client certificate (mutual TLS); may also hold the key
``client_key``              PEM private key, when not in ``client_cert``
``client_key_password_env`` variable holding the key's passphrase, for an encrypted key
``ca_file``                 PEM bundle that signs the department's server certificate
                            (default: the system's trust store)
==========================  ================================================================

HMAC headers: ``X-Ca-Key``, ``X-Ca-Timestamp`` (Unix seconds), ``X-Ca-Nonce`` (32 hex),
``X-Ca-Signature-Method``, ``X-Ca-Signature`` — lowercase hex HMAC over, one per line::

    METHOD
    /path?query            (the request target exactly as sent; no "?" without a query)
    timestamp
    nonce
    hex SHA-256 (HMAC-SHA256) or SM3 (HMAC-SM3) of the body bytes

Environment variables and certificate files are read when the adapter opens, so a
missing secret stops start-up with the variable's name (never its value), and a rotated
secret takes a restart. The TLS context is passed per request (``ssl=``): the session is
shared by every department, each with its own certificates.
"""

from __future__ import annotations

import os
import secrets
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from adapters.base import PermanentError

HMAC_ALGORITHMS = ("HMAC-SHA256", "HMAC-SM3")
# Keys that would put a secret into a configuration file.
_SECRET_KEYS = ("token", "secret", "password", "hmac_key", "api_key", "client_key_password")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-auth-token"})
_TLS_KEYS = ("client_cert", "client_key", "client_key_password_env", "ca_file")
AUTH_SETTINGS = frozenset({"token_env", "token_header", "token_scheme", "hmac_key_env", "hmac_key_id",
                           "hmac_algorithm", *_TLS_KEYS})


def refuse_unknown(name: str, kind: str, settings: Mapping[str, Any], known: frozenset[str]) -> None:
    """A misspelt setting (``tokn_env``) must stop start-up, not silently send no token."""
    unknown = set(settings) - known - AUTH_SETTINGS
    if unknown:
        raise ValueError(f"endpoint {name}: {kind} adapter has no setting {', '.join(sorted(unknown))}")


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    return hashes.SM3() if algorithm == "HMAC-SM3" else hashes.SHA256()


def body_digest(algorithm: str, body: bytes) -> str:
    h = hashes.Hash(_hash(algorithm))
    h.update(body)
    return h.finalize().hex()


def hmac_signature(algorithm: str, secret: bytes, method: str, target: str, ts: str, nonce: str, body: bytes) -> str:
    canonical = "\n".join([method.upper(), target, ts, nonce, body_digest(algorithm, body)]).encode("utf-8")
    mac = crypto_hmac.HMAC(secret, _hash(algorithm))
    mac.update(canonical)
    return mac.finalize().hex()


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The endpoint's auth settings, checked when the adapter is built (no I/O)."""

    name: str
    token_env: str | None = None
    token_header: str = "Authorization"
    token_scheme: str = "Bearer"
    hmac_key_env: str | None = None
    hmac_key_id: str | None = None
    hmac_algorithm: str = "HMAC-SHA256"
    client_cert: Path | None = None
    client_key: Path | None = None
    client_key_password_env: str | None = None
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any], base_dir: Path, url: str) -> AuthConfig:
        for key in settings:
            if key in _SECRET_KEYS:
                raise ValueError(f"endpoint {name}: {key} would put a secret in the configuration; put it in "
                                 "an environment variable and name the variable (token_env, hmac_key_env, "
                                 "client_key_password_env)")
        for header in settings.get("headers", {}) or {}:
            if str(header).lower() in _CREDENTIAL_HEADERS:
                raise ValueError(f"endpoint {name}: header {header} holds a credential; use token_env "
                                 f"(and token_header) so the secret stays in the environment")

        def text(key: str, default: str | None = None) -> str | None:
            value = settings.get(key, default)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"endpoint {name}: {key} must be text")
            return value

        def path(key: str) -> Path | None:
            value = text(key)
            if not value:
                return None
            p = Path(value)
            return p if p.is_absolute() else base_dir / p

        config = cls(
            name=name,
            token_env=text("token_env"),
            token_header=text("token_header", "Authorization") or "Authorization",
            token_scheme=text("token_scheme", "Bearer") or "",
            hmac_key_env=text("hmac_key_env"),
            hmac_key_id=text("hmac_key_id"),
            hmac_algorithm=text("hmac_algorithm", "HMAC-SHA256") or "HMAC-SHA256",
            client_cert=path("client_cert"),
            client_key=path("client_key"),
            client_key_password_env=text("client_key_password_env"),
            ca_file=path("ca_file"),
        )
        if config.hmac_algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"endpoint {name}: hmac_algorithm must be one of {', '.join(HMAC_ALGORITHMS)}")
        if bool(config.hmac_key_env) != bool(config.hmac_key_id):
            raise ValueError(f"endpoint {name}: HMAC signing needs both hmac_key_env and hmac_key_id")
        if config.client_key and not config.client_cert:
            raise ValueError(f"endpoint {name}: client_key needs client_cert")
        if any(settings.get(k) for k in _TLS_KEYS) and not url.lower().startswith("https://"):
            raise ValueError(f"endpoint {name}: client_cert/ca_file need an https:// address")
        return config

    def open(self, environ: Mapping[str, str] | None = None) -> OutboundAuth:
        """Read the secrets and certificates (at adapter open)."""
        env = os.environ if environ is None else environ

        def secret(var: str, setting: str) -> str:
            value = env.get(var)
            if not value:
                raise PermanentError(f"{self.name}: environment variable {var} ({setting}) is not set")
            return value

        token = None
        if self.token_env:
            raw = secret(self.token_env, "token_env")
            token = f"{self.token_scheme} {raw}" if self.token_scheme else raw
        hmac_key = secret(self.hmac_key_env, "hmac_key_env").encode("utf-8") if self.hmac_key_env else None
        return OutboundAuth(
            token_header=self.token_header,
            token=token,
            hmac_key_id=self.hmac_key_id,
            hmac_key=hmac_key,
            hmac_algorithm=self.hmac_algorithm,
            tls_context=self._ssl_context(secret),
        )

    def _ssl_context(self, secret: Callable[[str, str], str]) -> ssl.SSLContext | None:
        if not (self.client_cert or self.ca_file):
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.client_cert:
                password = (secret(self.client_key_password_env, "client_key_password_env")
                            if self.client_key_password_env else None)
                context.load_cert_chain(
                    str(self.client_cert), str(self.client_key) if self.client_key else None, password=password
                )
        except (OSError, ssl.SSLError) as exc:  # names the files, never their contents
            files = ", ".join(str(p) for p in (self.client_cert, self.client_key, self.ca_file) if p)
            raise PermanentError(f"{self.name}: cannot load TLS files ({files}): {type(exc).__name__}") from exc
        return context


@dataclass(frozen=True, slots=True)
class OutboundAuth:
    """Opened auth for one endpoint: the headers to add to a request and its TLS context."""

    token_header: str = "Authorization"
    token: str | None = field(default=None, repr=False)
    hmac_key_id: str | None = None
    hmac_key: bytes | None = field(default=None, repr=False)
    hmac_algorithm: str = "HMAC-SHA256"
    tls_context: ssl.SSLContext | None = None

    @property
    def ssl_param(self) -> ssl.SSLContext | bool:
        """The ``ssl=`` argument for aiohttp: this endpoint's context, or default verification."""
        return self.tls_context if self.tls_context is not None else True

    def headers(self, method: str, target: str, body: bytes, now: float | None = None) -> dict[str, str]:
        """Headers for one request; ``target`` is the path and query exactly as sent."""
        out: dict[str, str] = {}
        if self.token is not None:
            out[self.token_header] = self.token
        if self.hmac_key is not None and self.hmac_key_id is not None:
            ts = str(int(time.time() if now is None else now))
            nonce = secrets.token_hex(16)
            out |= {
                "X-Ca-Key": self.hmac_key_id,
                "X-Ca-Timestamp": ts,
                "X-Ca-Nonce": nonce,
                "X-Ca-Signature-Method": self.hmac_algorithm,
                "X-Ca-Signature": hmac_signature(self.hmac_algorithm, self.hmac_key, method, target, ts, nonce, body),
            }
        return out
