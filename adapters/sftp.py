"""A ``FileStore`` on a department's SFTP server (asyncssh), one connection per endpoint.

The connection is opened by ``open()`` and reused; when it is lost, the operation that
noticed fails with ``TransientError`` and the next operation connects again (no retry, no
sleep here: the dispatcher's retry policy and the pickup interval decide when "next" is).
Errors are classified once: connecting in ``adapters.sshconnect.connect_error`` (which
also holds the settings and the host-key policy), operations in ``_op_error``.

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
import stat
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import TypeVar

import asyncssh
import structlog

from adapters.base import AdapterError, PermanentError, TransientError
from adapters.filenames import check_plain
from adapters.filestore import FileInfo, RenameOutcome, TooLarge, temp_name
from adapters.sshconnect import SftpSettings, connect, connect_error

__all__ = ["SftpFileStore", "SftpSettings"]
log = structlog.get_logger("adapters.sftp")
T = TypeVar("T")


def _op_error(exc: BaseException, action: str) -> AdapterError:
    """A failed operation on an open connection. Server messages are not copied: they may
    quote paths, and only our fixed phrase and the error class are needed."""
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermanentError(f"sftp: cannot {action} (permission denied)")
    return TransientError(f"sftp: cannot {action} ({type(exc).__name__})")


class SftpFileStore:
    """Folders on one SFTP server; folder names are server paths (relative: to the login
    directory). Atomicity: the module doc; host keys: ``adapters.sshconnect``."""

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
                self._conn = await connect(self._endpoint, self._settings)
                self._sftp = await self._conn.start_sftp_client(path_errors="replace")
            except (asyncssh.Error, OSError, TimeoutError, ValueError) as exc:
                await self._drop()
                raise connect_error(exc) from exc
            self.connections += 1
            return self._sftp

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
            return data if isinstance(data, bytes) else data.encode()

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
