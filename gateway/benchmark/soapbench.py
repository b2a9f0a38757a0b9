"""SOAP per-call cost: the gateway's SOAP adapter (zeep builds and parses, aiohttp carries)
against a raw templated POST of the same envelope parsed with xmltodict.

Runs in the load-generator process against the sandbox 卫健 (health) SOAP service:
``QueryFamily``, one event loop, ``concurrency`` calls in flight. CPU per call is
``time.process_time`` over the measured window divided by the calls answered in it.
Also: the zeep client's construction (``SoapAdapter.open``) and the same two paths with
no network at all (a canned reply), which isolates zeep's own build + parse.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import xmltodict

from adapters.base import OutboundMessage
from adapters.context import AdapterContext, new_client_session
from adapters.registry import create_adapter
from gateway.benchmark.workload import accepted_templates, needed_departments, soap_client, soap_envelope
from gateway.config import load_config
from gateway.messages import build_context

_ID = "@@ID-NUMBER@@"


def _first_child(node: Any, suffix: str) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.split(":")[-1] == suffix:
                return value
    return None


def parse_raw_reply(content: bytes) -> dict[str, Any]:
    """What a hand-written client does with the reply: xmltodict, entities off, dig out the body."""
    doc = xmltodict.parse(content, disable_entities=True)
    body = _first_child(_first_child(doc, "Envelope"), "Body")
    if not isinstance(body, dict) or not body:
        raise ValueError("no SOAP body")
    payload = next(iter(body.values()))
    if not isinstance(payload, dict):
        raise ValueError("empty SOAP payload")
    return {k.split(":")[-1]: v for k, v in payload.items() if not k.startswith("@")}


class _CannedReply:
    def __init__(self, content: bytes, headers: dict[str, str]) -> None:
        self.status, self.headers, self._content = 200, headers, content

    async def read(self) -> bytes:
        return self._content

    async def __aenter__(self) -> _CannedReply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class CannedSession:
    """Stands in for the aiohttp session: every POST answers the same captured reply."""

    def __init__(self, content: bytes, headers: dict[str, str]) -> None:
        self._reply = _CannedReply(content, headers)

    def post(self, *args: Any, **kwargs: Any) -> _CannedReply:
        return self._reply


async def _timed_loop(call: Callable[[int], Awaitable[bool]], concurrency: int, warmup: float,
                      duration: float) -> dict[str, Any]:
    """Closed loop in this process; CPU by time.process_time over the window."""
    began = time.perf_counter()
    start, end = began + warmup, began + warmup + duration
    marks: dict[str, float] = {}
    done = {"ok": 0, "failed": 0}
    latencies: list[float] = []
    counter = iter(range(10**9))

    async def mark() -> None:
        await asyncio.sleep(max(start - time.perf_counter(), 0))
        marks["cpu0"] = time.process_time()
        await asyncio.sleep(max(end - time.perf_counter(), 0))
        marks["cpu1"] = time.process_time()

    async def worker() -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                ok = await call(next(counter))
            except Exception:  # a failed call is counted, not fatal: the figures say how many
                ok = False
            t1 = time.perf_counter()
            if start <= t1 <= end:
                done["ok" if ok else "failed"] += 1
                latencies.append(t1 - t0)

    await asyncio.gather(mark(), *(worker() for _ in range(concurrency)))
    cpu = marks["cpu1"] - marks["cpu0"]
    n = done["ok"]
    return {
        "calls": n,
        "failed": done["failed"],
        "calls_per_s": round(n / duration, 1),
        "cpu_ms_per_call": round(cpu * 1000 / n, 4) if n else None,
        "p50_ms": round(statistics.median(latencies) * 1000, 3) if latencies else None,
    }


def _offline(fn: Callable[[int], Any], seconds: float) -> float:
    """CPU ms per call of a synchronous or immediately-completing step, run for ``seconds``."""
    n, t0 = 0, time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        fn(n)
        n += 1
    return round((time.process_time() - t0) * 1000 / n, 4)


async def soap_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    config = load_config(Path(spec["config"]))
    dept = config.departments["health"]
    op = dept.mapping.operations["query"].operation
    ep = dept.endpoints[op.endpoint]
    templates = [t for t in accepted_templates() if "health" in needed_departments(t)]
    messages: list[OutboundMessage] = [
        dept.mapping.build("query", build_context(t, item=None, delivery_id=f"Q-{i}"), f"Q-{i}")
        for i, t in enumerate(templates)
    ]
    ids = [str(m.body["idNumber"]) for m in messages]
    wsdl = Path(ep.settings["wsdl"])
    wsdl = wsdl if wsdl.is_absolute() else config.base_dir / wsdl
    address = str(ep.settings["address"])
    warmup, duration, concurrency = float(spec["warmup"]), float(spec["duration"]), int(spec["concurrency"])
    result: dict[str, Any] = {"operation": f"health {op.options['soap_operation']}", "concurrency": concurrency}

    session = new_client_session()
    try:
        context = AdapterContext(session, config.base_dir)
        opens = []  # before anything else in this process touches zeep: the first one is cold
        for _ in range(int(spec.get("constructions", 4))):
            fresh = create_adapter(ep.adapter, "health.ws", ep.settings, context)
            t0 = time.perf_counter()
            await fresh.open()
            opens.append(time.perf_counter() - t0)
            await fresh.close()
        # The first build in a process pays for zeep's and lxml's first use; later ones are warm.
        result["client_construction_first_ms"] = round(opens[0] * 1000, 1)
        result["client_construction_ms"] = round(statistics.median(opens[1:] or opens) * 1000, 1)
        adapter = create_adapter(ep.adapter, "health.ws", ep.settings, context)
        await adapter.open()
        template, headers = soap_envelope(soap_client(wsdl), address, str(op.options["soap_operation"]),
                                          {"idNumber": _ID})

        def raw_body(n: int) -> bytes:
            return template.replace(_ID.encode(), escape(ids[n % len(ids)]).encode())

        async def adapter_call(n: int) -> bool:
            reply = await adapter.call(messages[n % len(messages)], 10.0)
            return isinstance(reply.body, dict) and "found" in reply.body

        async def raw_call(n: int) -> bool:
            async with session.post(address, data=raw_body(n), headers=headers) as resp:
                content = await resp.read()
                if resp.status != 200:
                    return False
            return "found" in parse_raw_reply(content)

        # A real reply, captured once, for the offline comparison.
        async with session.post(address, data=raw_body(0), headers=headers) as resp:
            canned, canned_headers = await resp.read(), {"Content-Type": resp.headers.get("Content-Type", "text/xml")}

        runs: dict[str, list[dict[str, Any]]] = {"adapter": [], "raw": []}
        for _ in range(int(spec.get("repeat", 1))):  # interleaved, so drift hits both alike
            runs["adapter"].append(await _timed_loop(adapter_call, concurrency, warmup, duration))
            runs["raw"].append(await _timed_loop(raw_call, concurrency, warmup, duration))
        result["live"] = runs
        await adapter.close()
    finally:
        await session.close()

    canned_context = AdapterContext(CannedSession(canned, canned_headers), config.base_dir)  # type: ignore[arg-type]
    offline_adapter = create_adapter(ep.adapter, "health.ws", ep.settings, canned_context)
    await offline_adapter.open()

    def adapter_offline(n: int) -> None:
        coro = offline_adapter.call(messages[n % len(messages)], 10.0)
        try:
            coro.send(None)  # completes without suspending: the canned session never waits
        except StopIteration:
            return
        raise RuntimeError("the canned call suspended")

    seconds = float(spec.get("offline_seconds", 1.0))
    result["offline_cpu_ms_per_call"] = {
        "adapter_build_and_parse": _offline(adapter_offline, seconds),
        "raw_template_and_xmltodict": _offline(lambda n: parse_raw_reply(canned) and raw_body(n), seconds),
    }
    await offline_adapter.close()
    return result
