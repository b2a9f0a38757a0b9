"""File-drop department endpoints: messages as files in the department's inbox, results as
files in its outbox, on a local directory or an SFTP server (``transport``).

Sending: the message (``adapters.fileformat``: XML or CSV, the endpoint's encoding) is
written to ``<inbox>/<delivery_id>.<format>`` through the store's ``write_atomic`` (a
temporary ``*.tmp`` name, flushed, renamed), so the department never sees half a file and
the name lets it drop a re-send. With ``done_marker = ".done"`` an empty
``<delivery_id>.xml.done`` follows once the file is in place.

Pickup never reads a half-written file: a result is taken when its done marker
(``<name><marker>``) exists if ``require_done_marker``, otherwise once its size and mtime
have not changed for ``stable_seconds`` of our own observations. Temporary names
(``*.tmp``, dot-files) are never touched; names that fail ``result_name_ok`` are left
alone and reported once. A taken file is yielded to the intake, which applies it and then
acknowledges: applied → ``archive``; unreadable or not applicable → ``error``. A name
already in the target folder gets a number (``X.result.1.xml``), so no file is lost.

Restarts: a file applied but not yet moved when the process died is still in the outbox,
is applied again (the store sees the same status and reports a duplicate) and archived.
The marker is removed after its file has moved; a marker whose file has gone (a crash
between the two) is removed on the next pass, so that a later file of the same name is not
taken as complete before it is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.base import AdapterError, OutboundMessage, RawResult, Reply, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.fileformat import FORMATS, FileFormat, UnreadableResult, decode_result, encode_message, normalise_encoding
from adapters.filenames import is_temporary, numbered, result_name_ok, safe_file_name, suffix_ok
from adapters.filestore import FileInfo, FileStore, LocalFileStore, RenameOutcome, TooLarge
from adapters.sftp import SftpFileStore, SftpSettings

__all__ = ["FileDropAdapter", "FileDropSettings", "StabilityGate", "safe_file_name"]
log = structlog.get_logger("adapters.filedrop")
_MAX_COLLISIONS = 1000


@dataclass(frozen=True, slots=True)
class FileDropSettings:
    """One file-drop endpoint's settings (see the table in docs/decisions/0005)."""

    inbox: str
    outbox: str
    archive: str
    error: str
    transport: str = "local"
    file_format: FileFormat = FileFormat()
    done_marker: str = ""
    require_done_marker: bool = False
    stable_seconds: float = 0.2
    max_result_bytes: int = 10 * 1024 * 1024
    sftp: SftpSettings | None = None

    @property
    def marker(self) -> str:
        """The marker suffix pickup looks for (and removes with its file)."""
        return self.done_marker or (".done" if self.require_done_marker else "")

    @classmethod
    def from_settings(cls, name: str, s: Mapping[str, Any], context: AdapterContext) -> FileDropSettings:
        # A misspelt setting, or a secret written where only its variable's name belongs,
        # stops start-up (and is refused by the admin API) rather than being ignored.
        unknown = set(s) - SETTINGS - {"adapter"}
        if unknown:
            raise ValueError(f"endpoint {name}: filedrop adapter has no setting {', '.join(sorted(unknown))}")
        folders = {}
        for key in ("inbox", "outbox", "archive", "error"):
            if not isinstance(s.get(key), str) or not s[key]:
                raise ValueError(f"endpoint {name}: filedrop adapter needs {key}")
            folders[key] = s[key]
        transport = str(s.get("transport", "local"))
        if transport not in ("local", "sftp"):
            raise ValueError(f"endpoint {name}: transport must be 'local' or 'sftp'")
        fmt = str(s.get("format", "xml"))
        if fmt not in FORMATS:
            raise ValueError(f"endpoint {name}: format must be one of {', '.join(FORMATS)}")
        marker = str(s.get("done_marker", ""))
        if marker and not suffix_ok(marker):
            raise ValueError(f"endpoint {name}: done_marker is a suffix such as '.done'")
        try:
            encoding = normalise_encoding(str(s.get("encoding", "utf-8")))
        except ValueError as exc:
            raise ValueError(f"endpoint {name}: {exc}") from exc
        return cls(
            **folders,
            transport=transport,
            file_format=FileFormat(
                fmt, encoding, str(s.get("root", "request")), s.get("gb18030_fallback", False) is True
            ),
            done_marker=marker,
            require_done_marker=s.get("require_done_marker", False) is True,
            stable_seconds=float(s.get("stable_seconds", 0.2)),
            max_result_bytes=int(s.get("max_result_bytes", 10 * 1024 * 1024)),
            sftp=SftpSettings.from_settings(name, s, context.base_dir) if transport == "sftp" else None,
        )


SETTINGS = frozenset({
    "inbox", "outbox", "archive", "error", "transport", "format", "root", "encoding", "gb18030_fallback",
    "done_marker", "require_done_marker", "stable_seconds", "max_result_bytes",
    # SFTP (adapters/sshconnect.py)
    "host", "port", "username", "password_env", "client_key_path", "client_key_env", "client_key_passphrase_env",
    "known_hosts", "host_key_fingerprint", "insecure_skip_host_key_check", "connect_timeout", "io_timeout",
    "keepalive_seconds",
})


class StabilityGate:
    """Without done markers: a file is complete once its size and mtime have stayed the
    same for ``stable_seconds`` between our own looks (a clock of this process, so a server
    clock that is off does not matter; mtime catches a rewrite to the same length)."""

    def __init__(self, stable_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._stable = stable_seconds
        self._clock = clock
        self._seen: dict[str, tuple[tuple[int, float], float]] = {}

    def ready(self, files: list[FileInfo]) -> list[FileInfo]:
        now = self._clock()
        out = []
        for f in files:
            key = (f.size, f.mtime)
            prev = self._seen.get(f.name)
            if prev is None or prev[0] != key:
                self._seen[f.name] = (key, now)
                if self._stable > 0:
                    continue
            elif now - prev[1] < self._stable:
                continue
            out.append(f)
        names = {f.name for f in files}
        for gone in [n for n in self._seen if n not in names]:
            del self._seen[gone]
        return out

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)


class FileDropAdapter:
    """A department's file exchange. Settings: see ``FileDropSettings`` and the module doc."""

    kind = "filedrop"

    def __init__(
        self, name: str, settings: Mapping[str, Any], context: AdapterContext,
        *, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = FileDropSettings.from_settings(name, settings, context)
        sftp = self.settings.sftp
        self.store: FileStore = SftpFileStore(name, sftp) if sftp else LocalFileStore(context.base_dir)
        self._gate = StabilityGate(self.settings.stable_seconds, clock)
        self._refused: set[str] = set()
        self._folders_missing = {self.settings.inbox, self.settings.outbox, self.settings.archive, self.settings.error}
        self._folders_warned: set[str] = set()

    async def open(self) -> None:
        await self.store.open()
        await self._ensure_folders()

    async def _ensure_folders(self) -> None:
        """Create the folders once; if the store was unreachable at open(), on later use.
        A failure is logged (once per folder), not raised: the operation that needs the
        folder fails with its own, classified error."""
        for folder in sorted(self._folders_missing):
            try:
                await self.store.mkdir(folder)
            except AdapterError as exc:
                if folder not in self._folders_warned:
                    self._folders_warned.add(folder)
                    log.warning("filedrop_folder_unavailable", endpoint=self.name, detail=exc.detail)
                if exc.transient:
                    return  # the store is down: no use trying the other folders now
            else:
                self._folders_missing.discard(folder)

    async def verify(self) -> None:
        """Prove the exchange works now (log in, folders there): raises the classified error.
        open() only warns, so that a department's server being down cannot stop start-up;
        a binding registered at run time or `gateway departments test` asks for proof."""
        await self.store.mkdir(self.settings.inbox)
        for folder in (self.settings.outbox, self.settings.archive, self.settings.error):
            await self.store.mkdir(folder)
        self._folders_missing.clear()

    async def close(self) -> None:
        await self.store.close()

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        s = self.settings
        name = safe_file_name(message.delivery_id, s.file_format.suffix)
        data = encode_message(s.file_format, message.body)
        try:
            async with asyncio.timeout(timeout):
                if self._folders_missing:
                    await self._ensure_folders()
                await self.store.write_atomic(s.inbox, name, data)
                if s.done_marker:
                    await self.store.touch(s.inbox, name + s.done_marker)
        except TimeoutError as exc:
            raise UnknownOutcome(f"{self.name}: writing to the inbox timed out") from exc
        except AdapterError as exc:
            raise type(exc)(f"{self.name}: {exc.detail}") from exc
        return Reply(body={"file": name})

    async def results(self) -> AsyncIterator[RawResult]:
        for info in await self._ready():
            raw = await self._take(info)
            if raw is not None:
                yield raw

    async def _ready(self) -> list[FileInfo]:
        s = self.settings
        if self._folders_missing:
            await self._ensure_folders()
        files = await self.store.list(s.outbox)
        names = {f.name for f in files}
        marker = s.marker
        if marker:
            for orphan in [n for n in names if n.endswith(marker) and n[: -len(marker)] not in names]:
                if result_name_ok(orphan) and not is_temporary(orphan):
                    await self.store.remove(s.outbox, orphan)
        candidates = []
        for f in files:
            if is_temporary(f.name) or not f.name.lower().endswith(s.file_format.suffix):
                continue
            if not result_name_ok(f.name):
                if f.name not in self._refused:  # once per name and process: it stays put
                    self._refused.add(f.name)
                    log.warning("result_file_name_refused", endpoint=self.name, rule="letters, digits, _ . -")
                continue
            candidates.append(f)
        if s.require_done_marker:
            return [f for f in candidates if f.name + marker in names]
        return self._gate.ready(candidates)

    async def _take(self, info: FileInfo) -> RawResult | None:
        s = self.settings
        try:
            data = await self.store.read(s.outbox, info.name, s.max_result_bytes)
            if data is None:
                self._gate.forget(info.name)
                return None  # taken by another replica meanwhile
            body = decode_result(s.file_format, data)
        except (UnreadableResult, TooLarge) as exc:
            reason = exc.reason if isinstance(exc, UnreadableResult) else "too_large"
            # A result we cannot read goes aside for an operator, never round in a loop.
            await self._move(info.name, s.error, reason)
            return RawResult(delivery_id="", body=None, source=f"{info.name}: unreadable ({reason})")
        return RawResult(delivery_id=info.name.split(".", 1)[0], body=body, source=info.name)

    async def acknowledge(self, result: RawResult, ok: bool) -> None:
        if not result.source or result.body is None or not result_name_ok(result.source):
            return  # unreadable files were set aside when read
        s = self.settings
        await self._move(result.source, s.archive if ok else s.error, None if ok else "not_applied")

    async def _move(self, name: str, folder: str, reason: str | None) -> None:
        s = self.settings
        target = name
        for n in range(1, _MAX_COLLISIONS + 1):
            outcome = await self.store.rename(s.outbox, name, folder, target)
            if outcome is not RenameOutcome.TARGET_EXISTS:
                break
            target = numbered(name, n)
        else:
            raise TransientError(f"{self.name}: no free name for a result file in its target folder")
        if outcome is RenameOutcome.DONE:
            if reason:
                log.warning(
                    "result_file_set_aside", endpoint=self.name, file=name, folder="error", moved_to=target,
                    reason=reason,
                )
            elif target != name:
                log.info("result_file_archived_renamed", endpoint=self.name, file=name, moved_to=target)
        if s.marker:
            await self.store.remove(s.outbox, name + s.marker)
        self._gate.forget(name)
