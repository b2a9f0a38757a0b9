"""File-drop department endpoints: a local directory (an SFTP variant shares the naming).

Writing: the message goes to ``<inbox>/<delivery_id>.xml.tmp``, is fsynced, then renamed
into place, so the department never sees a half-written file and the name (the delivery
id) lets it drop a re-send. Reading: result files in ``outbox`` are taken once their size
has been stable for a moment, then moved to ``archive`` (or ``error`` if unreadable).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import xmltodict

from adapters.base import OutboundMessage, PermanentError, RawResult, Reply, TransientError
from adapters.context import AdapterContext

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def safe_file_name(stem: str, suffix: str) -> str:
    """A gateway-chosen name that cannot leave its directory."""
    if not _SAFE_NAME.match(stem) or ".." in stem:
        raise PermanentError("file name refused: only letters, digits, '_', '.', '-' are allowed")
    return stem + suffix


def encode_text(text: str, encoding: str, gb18030_fallback: bool) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        if gb18030_fallback and encoding.lower() in ("gbk", "gb2312"):
            return text.encode("gb18030")
        raise PermanentError(
            f"a character in the message cannot be written in {encoding} (position {exc.start})"
        ) from exc


class FileDropAdapter:
    """Settings: ``inbox``, ``outbox``, ``archive``, ``error`` (dirs), ``encoding`` (utf-8),
    ``root`` (XML root element), ``gb18030_fallback`` (false), ``stable_seconds`` (0.2).
    """

    kind = "filedrop"

    def __init__(self, name: str, settings: Mapping[str, Any], context: AdapterContext) -> None:
        self.name = name

        def folder(key: str) -> Path:
            if not isinstance(settings.get(key), str):
                raise ValueError(f"endpoint {name}: filedrop adapter needs {key}")
            p = Path(settings[key])
            return p if p.is_absolute() else context.base_dir / p

        self.inbox, self.outbox = folder("inbox"), folder("outbox")
        self.archive, self.error = folder("archive"), folder("error")
        self.encoding = str(settings.get("encoding", "utf-8"))
        self.root = str(settings.get("root", "request"))
        self.gb18030_fallback = bool(settings.get("gb18030_fallback", False))
        self.stable_seconds = float(settings.get("stable_seconds", 0.2))
        self._sizes: dict[str, tuple[int, float]] = {}

    async def open(self) -> None:
        for d in (self.inbox, self.outbox, self.archive, self.error):
            d.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        name = safe_file_name(message.delivery_id, ".xml")
        xml = xmltodict.unparse({self.root: dict(message.body)}, pretty=True, encoding=self.encoding)
        data = encode_text(xml, self.encoding, self.gb18030_fallback)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._write_atomic, name, data), timeout)
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"{self.name}: cannot write to the inbox ({type(exc).__name__})") from exc
        return Reply(body={"file": name})

    def _write_atomic(self, name: str, data: bytes) -> None:
        final = self.inbox / name
        tmp = self.inbox / (name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.inbox, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)

    async def results(self) -> AsyncIterator[RawResult]:
        for path in await asyncio.to_thread(self._ready_files):
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue  # picked up by another replica meanwhile
            try:
                text = raw.decode(self.encoding.replace("gbk", "gb18030"))
                body = xmltodict.parse(text.lstrip("\ufeff"), disable_entities=True)
            except (OSError, UnicodeDecodeError, ValueError, xmltodict.expat.ExpatError) as exc:
                # A result we cannot read goes aside for an operator, never in a loop.
                await asyncio.to_thread(self._move, path, self.error)
                yield RawResult(delivery_id="", body=None, source=f"{path.name}: unreadable ({type(exc).__name__})")
                continue
            stem = path.name.split(".", 1)[0]
            yield RawResult(delivery_id=stem, body=body, source=path.name)

    def _ready_files(self) -> list[Path]:
        now = time.monotonic()
        ready = []
        seen = set()
        for path in sorted(self.outbox.glob("*.xml")):
            seen.add(path.name)
            size = path.stat().st_size
            prev = self._sizes.get(path.name)
            if prev is None or prev[0] != size:
                self._sizes[path.name] = (size, now)
                if self.stable_seconds > 0:
                    continue
            elif now - prev[1] < self.stable_seconds:
                continue
            ready.append(path)
        for gone in set(self._sizes) - seen:
            del self._sizes[gone]
        return ready

    async def acknowledge(self, result: RawResult, ok: bool) -> None:
        if not result.source or result.body is None:
            return
        path = self.outbox / result.source
        await asyncio.to_thread(self._move, path, self.archive if ok else self.error)

    def _move(self, path: Path, folder: Path) -> None:
        # Another replica may have taken the same file first: that is fine, it is handled.
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, folder / path.name)
        self._sizes.pop(path.name, None)
