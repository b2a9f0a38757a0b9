"""Sandbox 省直公积金 file exchange: reads requests from its inbox, writes results to its outbox.

By default it speaks what the real system does today: GBK XML (root ``tqsq``) in, GBK XML
(root ``tqjg``) out, one file per serial, written under ``*.tmp`` and renamed. ``HpfFiles``
switches on what other departments ask for, so the gateway's options can be exercised
against a counterpart: CSV instead of XML, and done markers in both directions.

It parses with the standard library and xmltodict directly, not with the gateway's
``adapters.fileformat``: a simulator that shared the gateway's code would agree with its bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmltodict

from sandbox.state import SandboxState


@dataclass(frozen=True, slots=True)
class HpfFiles:
    """``fmt``: "xml" or "csv"; ``encoding`` of both directions; ``done_marker``: when set,
    a request is read only once ``<name><marker>`` exists, and each result gets one."""

    fmt: str = "xml"
    encoding: str = "gbk"
    done_marker: str = ""


async def run_hpf_exchange(
    state: SandboxState, root: Path, interval: float = 0.05, files: HpfFiles | None = None
) -> None:
    """Watch ``root/inbox``; answer each request in ``root/outbox``; keep requests in ``done``."""
    files = files or HpfFiles()
    inbox, outbox, done = root / "inbox", root / "outbox", root / "done"
    for d in (inbox, outbox, done):
        d.mkdir(parents=True, exist_ok=True)
    while True:
        for path in sorted(inbox.glob(f"*.{files.fmt}")):  # *.tmp is still being written
            if files.done_marker and not path.with_name(path.name + files.done_marker).exists():
                continue
            with contextlib.suppress(OSError):
                _answer(state, path, outbox, done, files)
        await asyncio.sleep(interval)


def _read_request(data: bytes, files: HpfFiles) -> dict[str, Any]:
    text = data.decode("gb18030" if files.encoding == "gbk" else files.encoding)
    if files.fmt == "csv":
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
        return dict(zip(rows[0], rows[1], strict=True))
    doc = xmltodict.parse(text, disable_entities=True)
    req = doc.get("tqsq")
    return req if isinstance(req, dict) else {}


def _write_result(result: dict[str, str], files: HpfFiles) -> bytes:
    if files.fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([f"tqjg.{k}" for k in result])  # the mapping reads tqjg.lsh etc.
        writer.writerow(result.values())
        return buf.getvalue().encode(files.encoding)
    text: str = xmltodict.unparse({"tqjg": result}, encoding=files.encoding, pretty=True)
    return text.encode(files.encoding)


def _answer(state: SandboxState, path: Path, outbox: Path, done: Path, files: HpfFiles) -> None:
    suffix = f".{files.fmt}"
    serial = path.name[: -len(suffix)]
    req = _read_request(path.read_bytes(), files)
    os.replace(path, done / path.name)
    if files.done_marker:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.with_name(path.name + files.done_marker))
    if not state.ledger.record("hpf", serial, "provident_fund_withdrawal"):
        return  # a re-sent file with the same serial: already answered
    approved, reason = state.people.decision(str(req.get("zjhm", "")), "provident_fund_withdrawal")
    result = {"lsh": serial, "jgdm": "00" if approved else "01", "jgsm": reason or "提取成功"}
    name = f"{serial}.result{suffix}"
    tmp = outbox / f"{name}.tmp"
    tmp.write_bytes(_write_result(result, files))
    os.replace(tmp, outbox / name)
    if files.done_marker:
        (outbox / (name + files.done_marker)).touch()
