"""Connecting to a department's SFTP server: settings, credentials and host-key policy.

Host keys are always checked: against a ``known_hosts`` file, or pinned SHA-256
fingerprints (``SHA256:…`` as ``ssh-keygen -lf`` prints them). Turning the check off takes
the explicit setting ``insecure_skip_host_key_check = true`` and is logged as a warning on
every connection. The local ``~/.ssh`` (config, keys, agent, known_hosts) is never
consulted: an endpoint's settings are the whole truth about how it connects. Secrets are
read from the environment variables the settings name, at each connection, so a rotated
password needs no restart.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import structlog

from adapters.base import AdapterError, PermanentError, TransientError

log = structlog.get_logger("adapters.sftp")
_PERMANENT_DISCONNECTS = (
    asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable, asyncssh.IllegalUserName,
    asyncssh.KeyExchangeFailed, asyncssh.ProtocolNotSupported,
)


@dataclass(frozen=True, slots=True)
class SftpSettings:
    """Where and how to connect. Secrets stay in the environment, named here."""

    host: str
    username: str
    port: int = 22
    password_env: str | None = None
    client_key_path: Path | None = None
    client_key_env: str | None = None  # the private key's text itself (containers)
    client_key_passphrase_env: str | None = None
    known_hosts: Path | None = None
    host_key_fingerprints: tuple[str, ...] = ()
    insecure_skip_host_key_check: bool = False
    connect_timeout: float = 10.0
    io_timeout: float = 30.0
    keepalive_seconds: float = 15.0

    @classmethod
    def from_settings(cls, endpoint: str, s: Mapping[str, Any], base_dir: Path) -> SftpSettings:
        def path(key: str) -> Path | None:
            if s.get(key) is None:
                return None
            p = Path(str(s[key])).expanduser()
            return p if p.is_absolute() else base_dir / p

        if not s.get("host") or not s.get("username"):
            raise ValueError(f"endpoint {endpoint}: sftp transport needs host and username")
        pins = s.get("host_key_fingerprint", ())
        pins = (pins,) if isinstance(pins, str) else tuple(pins)
        if any(not str(p).startswith("SHA256:") for p in pins):
            raise ValueError(f"endpoint {endpoint}: host_key_fingerprint must look like 'SHA256:…'")
        skip = s.get("insecure_skip_host_key_check", False) is True
        if sum((bool(s.get("known_hosts")), bool(pins), skip)) != 1:
            raise ValueError(
                f"endpoint {endpoint}: set exactly one of known_hosts, host_key_fingerprint "
                "or insecure_skip_host_key_check = true"
            )
        if not (s.get("password_env") or s.get("client_key_path") or s.get("client_key_env")):
            raise ValueError(f"endpoint {endpoint}: sftp needs password_env, client_key_path or client_key_env")
        return cls(
            host=str(s["host"]), username=str(s["username"]), port=int(s.get("port", 22)),
            password_env=s.get("password_env"), client_key_path=path("client_key_path"),
            client_key_env=s.get("client_key_env"), client_key_passphrase_env=s.get("client_key_passphrase_env"),
            known_hosts=path("known_hosts"), host_key_fingerprints=tuple(str(p) for p in pins),
            insecure_skip_host_key_check=skip,
            connect_timeout=float(s.get("connect_timeout", 10)), io_timeout=float(s.get("io_timeout", 30)),
            keepalive_seconds=float(s.get("keepalive_seconds", 15)),
        )


class _PinnedHostKey(asyncssh.SSHClient):
    def __init__(self, fingerprints: tuple[str, ...]) -> None:
        self._fingerprints = fingerprints

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        return key.get_fingerprint("sha256") in self._fingerprints


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise PermanentError(f"environment variable {name} is not set")
    return value


def connect_error(exc: BaseException) -> AdapterError:
    """Why a connection could not be made: permanent if the settings or the server's
    identity are wrong, transient if the network or the server is."""
    name = type(exc).__name__
    if isinstance(exc, _PERMANENT_DISCONNECTS):
        return PermanentError(f"sftp connection refused: {name}")
    if isinstance(exc, asyncssh.ChannelOpenError) and exc.code != asyncssh.OPEN_RESOURCE_SHORTAGE:
        return PermanentError(f"sftp subsystem refused: {name}")
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError | FileNotFoundError | PermissionError):
        return PermanentError(f"sftp credentials or known_hosts unusable: {name}")
    return TransientError(f"sftp connection failed: {name}")


async def connect(endpoint: str, s: SftpSettings) -> asyncssh.SSHClientConnection:
    """One SSH connection as the settings say, and nothing from ~/.ssh. Raises asyncssh's
    and the OS's errors as they are: ``connect_error`` classifies them."""
    options: dict[str, Any] = {"client_keys": None, "password": None}
    if s.password_env:
        options["password"] = _env(s.password_env)
    passphrase = _env(s.client_key_passphrase_env) if s.client_key_passphrase_env else None
    if s.client_key_path:
        path = s.client_key_path
        options["client_keys"] = [await asyncio.to_thread(asyncssh.read_private_key, path, passphrase)]
    elif s.client_key_env:
        options["client_keys"] = [asyncssh.import_private_key(_env(s.client_key_env), passphrase)]
    factory: Callable[[], asyncssh.SSHClient] = asyncssh.SSHClient
    if s.known_hosts:
        options["known_hosts"] = await asyncio.to_thread(asyncssh.read_known_hosts, str(s.known_hosts))
    elif s.host_key_fingerprints:
        options["known_hosts"] = ([], [], [])  # trust nothing but what the pin accepts
        factory = lambda: _PinnedHostKey(s.host_key_fingerprints)  # noqa: E731 - a factory, called per connection
    else:
        log.warning("sftp_host_key_check_disabled", endpoint=endpoint, host=s.host)
        options["known_hosts"] = None
    return await asyncssh.connect(
        s.host, s.port, username=s.username, client_factory=factory, config=[], agent_path=None,
        connect_timeout=s.connect_timeout, keepalive_interval=s.keepalive_seconds, keepalive_count_max=3,
        **options,
    )
