"""The file-store seam of the file-drop adapter, and its local-directory implementation.

A ``FileStore`` is the few operations a file exchange needs, addressed as (folder, name):
the adapter decides *what* to write, read and move; a store decides *how* on its transport.
``LocalFileStore`` works on directories of this machine (or a mounted share);
``adapters.sftp.SftpFileStore`` on a department's SFTP server. Both map their library's
errors into ``adapters.base``'s tree, once, here at the boundary:

- a missing file is not an error: ``read``/``stat`` return None, ``rename`` says
  ``SOURCE_GONE`` (another replica took the file first);
- permission refused → ``PermanentError`` (the same call with the same rights cannot work;
  an operator fixes the rights and replays the dead letter);
- anything else (disk full, I/O error, lost connection) → ``TransientError``.

Atomicity, locally: ``write_atomic`` writes a unique temporary name in the target folder,
fsyncs the file, ``os.replace``s it into place and fsyncs the folder so the rename itself
survives a power cut. ``rename`` never overwrites: it hard-links the new name (which fails
if it exists) and unlinks the old one; on a file system without hard links it falls back to
check-then-rename, which is safe here because names in one outbox are unique.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar

from adapters.base import AdapterError, PermanentError, TransientError
from adapters.filenames import TEMP_SUFFIX, check_plain

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One regular file in a folder: what pickup needs to judge whether it is complete."""

    name: str
    size: int
    mtime: float


class RenameOutcome(StrEnum):
    DONE = "done"
    SOURCE_GONE = "source_gone"  # someone (another replica) moved it first
    TARGET_EXISTS = "target_exists"  # nothing was changed; pick another name


class FileStore(Protocol):
    """Where a file-drop endpoint's folders live. Opened once, reused, closed once."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def mkdir(self, folder: str) -> None:
        """Create ``folder`` and its parents; an existing folder is fine."""

    async def list(self, folder: str) -> list[FileInfo]:
        """The regular files directly in ``folder``: no sub-folders, and no symbolic links
        (one could point at any file the gateway may read)."""

    async def stat(self, folder: str, name: str) -> FileInfo | None: ...

    async def read(self, folder: str, name: str, limit: int) -> bytes | None:
        """The whole file, or None if it is gone. More than ``limit`` bytes: PermanentError."""

    async def write_atomic(self, folder: str, name: str, data: bytes) -> None:
        """Write under a temporary name, flush to disk, then rename into place, so that a
        reader never sees a partial file under ``name``."""

    async def touch(self, folder: str, name: str) -> None:
        """Create an empty file (a done marker: its existence is the whole message)."""

    async def rename(self, folder: str, name: str, to_folder: str, to_name: str) -> RenameOutcome:
        """Move a file without ever replacing one that is already at the target."""

    async def remove(self, folder: str, name: str) -> bool:
        """Delete a file; False if it was already gone."""


def temp_name(name: str) -> str:
    """``X.xml`` → ``X.xml.<random>.tmp``: unique, so two writers never share a temp file,
    and ending in ``.tmp``, which departments' pickers (and ours) skip."""
    return f"{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


class TooLarge(PermanentError):
    """A file bigger than the endpoint accepts; pickup sets it aside."""


def map_os_error(exc: OSError, action: str) -> AdapterError:
    """The one translation of local file-system errors. ``action`` is a fixed phrase, never
    a path: folder names are configuration, but file contents never reach a message."""
    detail = f"cannot {action} ({type(exc).__name__}, errno {exc.errno})"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermanentError(detail)
    return TransientError(detail)


class LocalFileStore:
    """Folders on this machine. ``base_dir`` anchors relative folder names."""

    def __init__(self, base_dir: Path) -> None:
        self._base = base_dir

    def _dir(self, folder: str) -> Path:
        p = Path(folder)
        return p if p.is_absolute() else self._base / p

    def _path(self, folder: str, name: str) -> Path:
        return self._dir(folder) / check_plain(name)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def _run(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except OSError as exc:
            raise map_os_error(exc, action) from exc

    async def mkdir(self, folder: str) -> None:
        await self._run("create a folder", lambda: self._dir(folder).mkdir(parents=True, exist_ok=True))

    async def list(self, folder: str) -> list[FileInfo]:
        def scan() -> list[FileInfo]:
            out = []
            with os.scandir(self._dir(folder)) as it:
                for entry in it:
                    with contextlib.suppress(FileNotFoundError):  # removed while we looked
                        if entry.is_file(follow_symlinks=False):
                            st = entry.stat()
                            out.append(FileInfo(entry.name, st.st_size, st.st_mtime))
            return sorted(out, key=lambda f: f.name)

        return await self._run("list a folder", scan)

    async def stat(self, folder: str, name: str) -> FileInfo | None:
        def stat() -> FileInfo | None:
            try:
                st = self._path(folder, name).stat()
            except FileNotFoundError:
                return None
            return FileInfo(name, st.st_size, st.st_mtime)

        return await self._run("inspect a file", stat)

    async def read(self, folder: str, name: str, limit: int) -> bytes | None:
        def read() -> bytes | None:
            try:
                fd = os.open(self._path(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                return None
            with open(fd, "rb") as fh:
                data = fh.read(limit + 1)
            if len(data) > limit:
                raise TooLarge(f"file larger than {limit} bytes")
            return data

        return await self._run("read a file", read)

    async def write_atomic(self, folder: str, name: str, data: bytes) -> None:
        def write() -> None:
            self._write_atomic(self._path(folder, name), data)

        await self._run("write a file", write)

    @staticmethod
    def _write_atomic(final: Path, data: bytes) -> None:
        tmp = final.with_name(temp_name(final.name))
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(final.parent)  # the rename itself must survive a power cut

    async def touch(self, folder: str, name: str) -> None:
        def touch() -> None:
            path = self._path(folder, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            _fsync_dir(path.parent)

        await self._run("write a marker", touch)

    async def rename(self, folder: str, name: str, to_folder: str, to_name: str) -> RenameOutcome:
        def rename() -> RenameOutcome:
            src, dst = self._path(folder, name), self._path(to_folder, to_name)
            try:
                os.link(src, dst)
            except FileNotFoundError:
                return RenameOutcome.SOURCE_GONE
            except FileExistsError:
                return RenameOutcome.TARGET_EXISTS
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if dst.exists():  # no hard links here: check, then rename (see module doc)
                    return RenameOutcome.TARGET_EXISTS
                try:
                    os.rename(src, dst)
                except FileNotFoundError:
                    return RenameOutcome.SOURCE_GONE
            else:
                with contextlib.suppress(FileNotFoundError):  # a second mover got there first
                    os.unlink(src)
            _fsync_dir(dst.parent)
            return RenameOutcome.DONE

        return await self._run("move a file", rename)

    async def remove(self, folder: str, name: str) -> bool:
        def remove() -> bool:
            try:
                self._path(folder, name).unlink()
            except FileNotFoundError:
                return False
            return True

        return await self._run("remove a file", remove)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
