"""A ``FileStore`` on a department's SFTP server (asyncssh), one connection per endpoint.

The connection is opened by ``open()`` and reused; when it is lost, the operation that
noticed fails with ``TransientError`` and the next operation connects again (no retry, no
sleep here: the dispatcher's retry policy and the pickup interval decide when "next" is).
Errors are classified once, in ``_connect_error`` and ``_op_error``.

Host keys are always checked: against a ``known_hosts`` file, or pinned SHA-256
fingerprints (``SHA256:…`` as ``ssh-keygen -lf`` prints them). Turning the check off takes
the explicit setting ``insecure_skip_host_key_check = true`` and is logged as a warning on
every connection. The local ``~/.ssh`` (config, keys, agent, known_hosts) is never
consulted: an endpoint's settings are the whole truth about how it connects.

Atomic upload: write ``X.<random>.tmp``, fsync it (``fsync@openssh.com`` when offered),
then ``posix-rename@openssh.com``, which replaces a previous ``X`` atomically. A server
without that extension gets the plain SFTP rename, which is atomic but refuses to replace
an existing file; remove-then-rename would open a window in which ``X`` is missing or, on a
crash, lost, so instead an existing ``X`` is kept: it is a previous send of the same
delivery id that the department has not collected yet, and the temporary file is removed.
The folder itself cannot be fsynced over SFTP; the server's file system decides.

Archive moves use the plain rename (never replaces; see ``FileStore.rename``). Archive and
error folders are on the server, so a move is a rename there, not a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import asyncssh
import structlog

from adapters.base import AdapterError, PermanentError, TransientError
from adapters.filenames import check_plain
from adapters.filestore import FileInfo, RenameOutcome, TooLarge, temp_name

log = structlog.get_logger("adapters.sftp")
T = TypeVar("T")
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


def _connect_error(exc: BaseException) -> AdapterError:
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


def _op_error(exc: BaseException, action: str) -> AdapterError:
    """A failed operation on an open connection. Server messages are not copied: they may
    quote paths, and only our fixed phrase and the error class are needed."""
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermanentError(f"sftp: cannot {action} (permission denied)")
    return TransientError(f"sftp: cannot {action} ({type(exc).__name__})")


class SftpFileStore:
    """Folders on one SFTP server; folder names are server paths (relative: to the login
    directory). See the module doc for atomicity and host keys."""

    def __init__(self, endpoint: str, settings: SftpSettings) -> None:
        self._endpoint = endpoint
        self._settings = settings
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()
        self._posix_rename = True  # until the server says otherwise
        self._fsync = True
        self.connections = 0  # how many times a connection was made (for operators and tests)

    async def open(self) -> None:
        # A department's server being down or misconfigured must not stop the gateway from
        # starting: say so now, and the classified error surfaces on each use.
        try:
            await self._client()
        except AdapterError as exc:
            log.warning("sftp_connect_failed", endpoint=self._endpoint, transient=exc.transient, detail=exc.detail)

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.wait_closed()

    async def _client(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._sftp is not None and self._conn is not None and not self._conn.is_closed():
                return self._sftp
            await self._drop()
            try:
                self._conn = await self._connect()
                self._sftp = await self._conn.start_sftp_client(path_errors="replace")
            except (asyncssh.Error, OSError, TimeoutError, ValueError) as exc:
                await self._drop()
                raise _connect_error(exc) from exc
            self.connections += 1
            return self._sftp

    async def _connect(self) -> asyncssh.SSHClientConnection:
        s = self._settings
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
            log.warning("sftp_host_key_check_disabled", endpoint=self._endpoint, host=s.host)
            options["known_hosts"] = None
        return await asyncssh.connect(
            s.host, s.port, username=s.username, client_factory=factory, config=[], agent_path=None,
            connect_timeout=s.connect_timeout, keepalive_interval=s.keepalive_seconds, keepalive_count_max=3,
            **options,
        )

    async def _run(self, action: str, op: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        sftp = await self._client()
        try:
            async with asyncio.timeout(self._settings.io_timeout):
                return await op(sftp)
        except AdapterError:
            raise
        except asyncssh.SFTPError as exc:
            if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
                await self._drop()
            raise _op_error(exc, action) from exc
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            await self._drop()  # the connection is lost or hung: the next operation reconnects
            raise _op_error(exc, action) from exc

    @staticmethod
    def _path(folder: str, name: str) -> str:
        return str(PurePosixPath(folder) / check_plain(name))

    async def mkdir(self, folder: str) -> None:
        await self._run("create a folder", lambda sftp: sftp.makedirs(folder, exist_ok=True))

    async def list(self, folder: str) -> list[FileInfo]:
        async def scan(sftp: asyncssh.SFTPClient) -> list[FileInfo]:
            out = []
            for entry in await sftp.readdir(folder):
                a = entry.attrs
                # Only regular files; a link is not followed (it could point anywhere).
                if a.permissions is not None and not stat.S_ISREG(a.permissions):
                    continue
                if isinstance(entry.filename, str) and entry.filename not in (".", ".."):
                    out.append(FileInfo(entry.filename, a.size or 0, float(a.mtime or 0)))
            return sorted(out, key=lambda f: f.name)

        return await self._run("list a folder", scan)

    async def stat(self, folder: str, name: str) -> FileInfo | None:
        async def stat_(sftp: asyncssh.SFTPClient) -> FileInfo | None:
            try:
                a = await sftp.stat(self._path(folder, name))
            except asyncssh.SFTPNoSuchFile:
                return None
            return FileInfo(name, a.size or 0, float(a.mtime or 0))

        return await self._run("inspect a file", stat_)

    async def read(self, folder: str, name: str, limit: int) -> bytes | None:
        async def read(sftp: asyncssh.SFTPClient) -> bytes | None:
            try:
                async with sftp.open(self._path(folder, name), "rb") as fh:
                    data = await fh.read(limit + 1)
            except asyncssh.SFTPNoSuchFile:
                return None
            if len(data) > limit:
                raise TooLarge(f"file larger than {limit} bytes")
            return bytes(data)

        return await self._run("read a file", read)

    async def write_atomic(self, folder: str, name: str, data: bytes) -> None:
        final, tmp = self._path(folder, name), self._path(folder, temp_name(name))

        async def write(sftp: asyncssh.SFTPClient) -> None:
            try:
                async with sftp.open(tmp, "xb") as fh:
                    await fh.write(data)
                    await self._flush(fh)
                if not await self._replace(sftp, tmp, final):
                    log.info("sftp_kept_existing_file", endpoint=self._endpoint, file=name)
                    await sftp.remove(tmp)
            except Exception:
                # Not on cancellation: a hung connection would hang the clean-up too, and a
                # left-over "*.tmp" is skipped by every reader.
                with contextlib.suppress(Exception):
                    await sftp.remove(tmp)
                raise

        await self._run("write a file", write)

    async def _flush(self, fh: asyncssh.SFTPClientFile) -> None:
        if self._fsync:
            try:
                await fh.fsync()
            except asyncssh.SFTPOpUnsupported:
                self._fsync = False  # the server offers no fsync: its own write-back decides

    async def _replace(self, sftp: asyncssh.SFTPClient, tmp: str, final: str) -> bool:
        """Rename ``tmp`` to ``final``; False if ``final`` existed and was kept (module doc)."""
        if self._posix_rename:
            try:
                await sftp.posix_rename(tmp, final)
                return True
            except asyncssh.SFTPOpUnsupported:
                self._posix_rename = False
                log.info("sftp_no_posix_rename", endpoint=self._endpoint)
        return await self._rename_no_replace(sftp, tmp, final) is RenameOutcome.DONE

    async def _rename_no_replace(self, sftp: asyncssh.SFTPClient, src: str, dst: str) -> RenameOutcome:
        try:
            await sftp.rename(src, dst)
            return RenameOutcome.DONE
        except (asyncssh.SFTPFileAlreadyExists, asyncssh.SFTPFailure, asyncssh.SFTPNoSuchFile):
            # SFTP v3 has no "already exists" code: OpenSSH says FAILURE. Look before deciding.
            if await sftp.exists(dst):
                return RenameOutcome.TARGET_EXISTS
            if not await sftp.exists(src):
                return RenameOutcome.SOURCE_GONE
            raise

    async def touch(self, folder: str, name: str) -> None:
        async def touch(sftp: asyncssh.SFTPClient) -> None:
            async with sftp.open(self._path(folder, name), "wb") as fh:
                await self._flush(fh)

        await self._run("write a marker", touch)

    async def rename(self, folder: str, name: str, to_folder: str, to_name: str) -> RenameOutcome:
        src, dst = self._path(folder, name), self._path(to_folder, to_name)
        return await self._run("move a file", lambda sftp: self._rename_no_replace(sftp, src, dst))

    async def remove(self, folder: str, name: str) -> bool:
        async def remove(sftp: asyncssh.SFTPClient) -> bool:
            try:
                await sftp.remove(self._path(folder, name))
            except asyncssh.SFTPNoSuchFile:
                return False
            return True

        return await self._run("remove a file", remove)
