"""The load generator: ``python -m gateway.benchmark.load`` reads one scenario (JSON) on
stdin, drives it from this process's own event loop, and prints the result as JSON.

Closed loop: ``concurrency`` workers each send the next request as soon as the previous
one is answered, for ``warmup`` seconds (not counted) then ``duration`` seconds. A request
counts when its answer arrives inside the measured window. CPU of the named processes
(gateway, sandbox, this one) is read from /proc at the window's start and end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from gateway.benchmark.procs import cpu_seconds, machine_cpu, status_kib
from gateway.benchmark.stats import latency_summary
from gateway.benchmark.workload import Bodies, accepted_templates, fanout_requests, submit_adapter_kinds
from gateway.config import load_config

Call = Callable[[int], Awaitable[tuple[bool, str]]]
JSON_HEADERS = {"Content-Type": "application/json"}
DELIVERED = ("approved", "rejected")


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    machine = {f"machine_{k}": v for k, v in machine_cpu().items()}
    return {name: cpu_seconds(pid) for name, pid in pids.items()} | machine


def cpu_report(start: dict[str, float], end: dict[str, float], seconds: float) -> dict[str, Any]:
    """CPU seconds per process over a window, in cores, and what others on the machine used
    meanwhile (``background``: busy CPU not ours; other test runs share this machine)."""
    used = {k: end[k] - start[k] for k in start}
    ours = sum(v for k, v in used.items() if not k.startswith("machine_"))
    cores = {k: round(v / seconds, 3) for k, v in used.items() if not k.startswith("machine_")}
    cores["background"] = round(max(used["machine_busy"] - ours, 0.0) / seconds, 3)
    cores["steal"] = round(used["machine_steal"] / seconds, 3)
    return {"cpu_s": {k: round(v, 3) for k, v in used.items() if not k.startswith("machine_")}, "cpu_cores": cores}


async def closed_loop(call: Call, concurrency: int, warmup: float, duration: float,
                      pids: dict[str, int]) -> dict[str, Any]:
    pids = pids | {"load": os.getpid()}
    began = time.perf_counter()
    window = (began + warmup, began + warmup + duration)
    counter = itertools.count()
    samples: list[tuple[float, float, bool, str]] = []
    cpu: dict[str, dict[str, float]] = {}

    async def mark() -> None:
        await asyncio.sleep(max(window[0] - time.perf_counter(), 0))
        cpu["start"] = _cpu(pids)
        await asyncio.sleep(max(window[1] - time.perf_counter(), 0))
        cpu["end"] = _cpu(pids)

    async def worker() -> None:
        while time.perf_counter() < window[1]:
            n = next(counter)
            started = time.perf_counter()
            try:
                ok, status = await call(n)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                ok, status = False, type(exc).__name__
            samples.append((started, time.perf_counter(), ok, status))

    await asyncio.gather(mark(), *(worker() for _ in range(concurrency)))
    counted = [s for s in samples if window[0] <= s[1] <= window[1]]
    ok = [s for s in counted if s[2]]
    statuses: dict[str, int] = {}
    for s in counted:
        statuses[s[3]] = statuses.get(s[3], 0) + 1
    return {
        "concurrency": concurrency,
        "duration_s": duration,
        "ok": len(ok),
        "not_ok": len(counted) - len(ok),
        "statuses": statuses,
        "rate_per_s": round(len(ok) / duration, 2),
        "latency": latency_summary([s[1] - s[0] for s in ok]),
        "window": window,
    } | cpu_report(cpu["start"], cpu["end"], duration)


_INTERESTING = ("gateway_store_commit_duration_seconds", "gateway_department_call_duration_seconds",
                "gateway_http_request_duration_seconds")


async def scrape(http: aiohttp.ClientSession, base_url: str) -> dict[str, float]:
    """The gateway's own histograms (``_sum``/``_count`` lines of /metrics)."""
    async with http.get(base_url + "/metrics") as resp:
        text = await resp.text()
    out = {}
    for line in text.splitlines():
        if line.startswith(_INTERESTING) and ("_sum" in line or "_count" in line):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def histogram_means(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Mean seconds (as ms) and count per histogram series between two scrapes."""
    means = {}
    for key, total in after.items():
        if "_sum" not in key:
            continue
        count_key = key.replace("_sum", "_count", 1)
        n = after.get(count_key, 0) - before.get(count_key, 0)
        if n > 0:
            short = key.replace("gateway_", "").replace("_duration_seconds_sum", "")
            means[short] = {"n": int(n), "mean_ms": round((total - before.get(key, 0.0)) * 1000 / n, 3)}
    return means


def _session(limit: int = 0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), cookie_jar=aiohttp.DummyCookieJar())


async def post_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    """POST unique applications to one gateway route (acceptance or pre-check)."""
    bodies = Bodies(accepted_templates(), spec["tag"])
    url, expected = spec["base_url"] + spec["path"], int(spec["expect"])
    async with _session() as http:

        async def call(n: int) -> tuple[bool, str]:
            _, data = bodies.body(n)
            async with http.post(url, data=data, headers=JSON_HEADERS) as resp:
                await resp.read()
                return resp.status == expected, str(resp.status)

        async def scraped() -> dict[str, float]:
            await asyncio.sleep(spec["warmup"])
            return await scrape(http, spec["base_url"])

        before_task = asyncio.create_task(scraped())
        result = await closed_loop(call, spec["concurrency"], spec["warmup"], spec["duration"], spec["pids"])
        result["gateway_metrics"] = histogram_means(await before_task, await scrape(http, spec["base_url"]))
    result.pop("window")
    return result


async def floor_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    """The bare fan-out: per "application", the same department queries the gateway would
    send, in parallel, from a plain aiohttp script (no validation, no store, no parsing)."""
    fanouts = fanout_requests(load_config(Path(spec["config"])), accepted_templates())
    per_dept: dict[str, list[tuple[float, float]]] = {}
    async with _session() as http:

        async def one(req: Any) -> bool:
            started = time.perf_counter()
            async with http.post(req.url, data=req.body, headers=req.headers) as resp:
                await resp.read()
                ok = resp.status == 200
            done = time.perf_counter()
            per_dept.setdefault(req.department, []).append((done, done - started))
            return ok

        async def call(n: int) -> tuple[bool, str]:
            oks = await asyncio.gather(*(one(r) for r in fanouts[n % len(fanouts)]))
            return all(oks), "200" if all(oks) else "error"

        result = await closed_loop(call, spec["concurrency"], spec["warmup"], spec["duration"], spec["pids"])
    lo, hi = result.pop("window")
    result["departments"] = {
        d: latency_summary([lat for done, lat in v if lo <= done <= hi]) for d, v in sorted(per_dept.items())
    }
    result["fanout_width"] = round(sum(len(f) for f in fanouts) / len(fanouts), 2)
    return result


class StoreReader:
    """Read-only look at the gateway's store from outside the gateway (after or beside a
    run): SQLite through its own read-only connection, PostgreSQL through asyncpg."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def __aenter__(self) -> StoreReader:
        if self.url.startswith("sqlite:///"):
            path = self.url[len("sqlite:///"):]
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        else:
            import asyncpg

            parts = urlsplit(self.url)
            query = dict(parse_qsl(parts.query))
            schema = query.pop("schema", None)
            dsn = urlunsplit(parts._replace(query=urlencode(query)))
            self._pg = await asyncpg.connect(dsn, server_settings={"search_path": schema} if schema else None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    async def fetch(self, sql: str, arg: str) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return list(self._sqlite.execute(sql, (arg,)).fetchall())
        rows = await self._pg.fetch(sql.replace("?", "$1"), arg)
        return [tuple(r) for r in rows]


async def dispatch_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    """Submit a batch, then follow it with GET until every application is completed; the
    store says when each item became final and which department (adapter kind) it went to."""
    config = load_config(Path(spec["config"]))
    kinds = submit_adapter_kinds(config)
    bodies = Bodies(accepted_templates(), spec["tag"])
    prefix = bodies.number(0).rsplit("-", 1)[0] + "-%"
    base, count, gw = spec["base_url"], int(spec["count"]), int(spec["pids"]["gateway"])
    accepted: list[str] = []
    statuses: dict[str, int] = {}
    peak = {"in_flight": 0}
    async with _session() as http, StoreReader(spec["database_url"]) as store:
        cpu0, wall0, t0 = cpu_seconds(gw), time.time(), time.perf_counter()
        counter = itertools.count()

        async def submit() -> None:
            while (n := next(counter)) < count:
                number, data = bodies.body(n)
                try:
                    async with http.post(base + "/api/v1/joint-applications", data=data, headers=JSON_HEADERS) as r:
                        await r.read()
                        status = str(r.status)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status = type(exc).__name__
                statuses[status] = statuses.get(status, 0) + 1
                if status == "202":
                    accepted.append(number)

        async def watch_in_flight() -> None:
            sql = "SELECT COUNT(*) FROM applications WHERE application_no LIKE ? AND status <> 'completed'"
            while True:
                rows = await store.fetch(sql, prefix)
                peak["in_flight"] = max(peak["in_flight"], int(rows[0][0]))
                await asyncio.sleep(0.25)

        watcher = asyncio.create_task(watch_in_flight())
        try:
            await asyncio.gather(*(submit() for _ in range(int(spec["concurrency"]))))
            submitted = time.perf_counter() - t0
            deadline = t0 + float(spec["timeout"])
            i = 0
            while i < len(accepted) and time.perf_counter() < deadline:
                async with http.get(f"{base}/api/v1/joint-applications/{accepted[i]}") as r:
                    view = await r.json()
                if view.get("status") == "completed":
                    i += 1
                    continue
                await asyncio.sleep(0.05)
            finished = time.perf_counter() - t0
        finally:
            watcher.cancel()
        cpu1 = cpu_seconds(gw)
        rows = await store.fetch(
            "SELECT i.department, i.status, i.updated_at, a.created_at FROM items i"
            " JOIN applications a ON a.application_no = i.application_no WHERE i.application_no LIKE ?", prefix
        )
    result: dict[str, Any] = {
        "applications": count,
        "concurrency": spec["concurrency"],
        "accepted": len(accepted),
        "statuses": statuses,
        "all_final": i == len(accepted),
        "submit_s": round(submitted, 3),
        "accept_rate_per_s": round(len(accepted) / submitted, 2) if submitted else None,
        "all_final_s": round(finished, 3),
        "peak_in_flight": peak["in_flight"],
        "gateway_cpu_s": round(cpu1 - cpu0, 3),
        "gateway_vmhwm_mib": round(status_kib(gw, "VmHWM") / 1024, 1),
        "gateway_vmrss_mib": round(status_kib(gw, "VmRSS") / 1024, 1),
    }
    by_kind: dict[str, dict[str, Any]] = {}
    item_statuses: dict[str, int] = {}
    to_final: dict[str, list[float]] = {}
    for department, status, updated_at, created_at in rows:
        item_statuses[status] = item_statuses.get(status, 0) + 1
        if status not in DELIVERED:
            continue
        kind = kinds.get(department, "?")
        k = by_kind.setdefault(kind, {"items": 0, "last_final_s": 0.0, "departments": set()})
        k["items"] += 1
        k["departments"].add(department)
        k["last_final_s"] = max(k["last_final_s"], float(updated_at) - wall0)
        to_final.setdefault(kind, []).append(float(updated_at) - float(created_at))
    for kind, k in by_kind.items():
        k["last_final_s"] = round(k["last_final_s"], 3)
        k["rate_per_s"] = round(k["items"] / k["last_final_s"], 2) if k["last_final_s"] > 0 else None
        k["departments"] = sorted(k["departments"])
        # From the application's acceptance to the item's final status (waits for the
        # initiating item's approval, polling and file pickup included).
        lat = latency_summary(to_final[kind])
        k["accepted_to_final_p50_s"] = round(lat["p50_ms"] / 1000, 3)
        k["accepted_to_final_p90_s"] = round(lat["p90_ms"] / 1000, 3)
    delivered = sum(k["items"] for k in by_kind.values())
    result |= {
        "item_statuses": item_statuses,
        "delivered_items": delivered,
        "deliveries_per_s": round(delivered / finished, 2) if finished else None,
        "by_kind": by_kind,
        "gateway_cpu_ms_per_delivery": round((cpu1 - cpu0) * 1000 / delivered, 3) if delivered else None,
    }
    return result


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec["kind"]
    if kind == "post":
        return await post_scenario(spec)
    if kind == "floor":
        return await floor_scenario(spec)
    if kind == "dispatch":
        return await dispatch_scenario(spec)
    if kind == "soap":
        from gateway.benchmark.soapbench import soap_scenario

        return await soap_scenario(spec)
    raise SystemExit(f"unknown scenario {kind!r}")


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_main(spec))), flush=True)


if __name__ == "__main__":
    main()
