"""Sandbox 省直公积金 file exchange: reads GBK XML requests, writes GBK XML results."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import xmltodict

from sandbox.state import SandboxState


async def run_hpf_exchange(state: SandboxState, root: Path, interval: float = 0.05) -> None:
    """Watch ``root/inbox``; answer each request in ``root/outbox``; keep requests in ``done``."""
    inbox, outbox, done = root / "inbox", root / "outbox", root / "done"
    for d in (inbox, outbox, done):
        d.mkdir(parents=True, exist_ok=True)
    while True:
        for path in sorted(inbox.glob("*.xml")):  # *.xml.tmp is still being written
            with contextlib.suppress(OSError):
                _answer(state, path, outbox, done)
        await asyncio.sleep(interval)


def _answer(state: SandboxState, path: Path, outbox: Path, done: Path) -> None:
    serial = path.name[: -len(".xml")]
    doc = xmltodict.parse(path.read_bytes().decode("gb18030"), disable_entities=True)
    req = doc.get("tqsq") or {}
    os.replace(path, done / path.name)
    if not state.ledger.record("hpf", serial, "provident_fund_withdrawal"):
        return  # a re-sent file with the same serial: already answered
    approved, reason = state.people.decision(str(req.get("zjhm", "")), "provident_fund_withdrawal")
    result = {"tqjg": {"lsh": serial, "jgdm": "00" if approved else "01", "jgsm": reason or "提取成功"}}
    text = xmltodict.unparse(result, encoding="gbk", pretty=True)
    tmp = outbox / f"{serial}.result.xml.tmp"
    tmp.write_bytes(text.encode("gbk"))
    os.replace(tmp, outbox / f"{serial}.result.xml")
