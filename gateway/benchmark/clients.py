"""Client CPU per call, aiohttp against httpx (docs/decisions/0001): a standalone script.

httpx is not a dependency of the gateway, so run this from a throwaway venv that has
both clients, against a running sandbox REST endpoint::

    python3 -m venv /tmp/clients && /tmp/clients/bin/pip install "aiohttp==<the project's>" httpx
    /tmp/clients/bin/python gateway/benchmark/clients.py http://127.0.0.1:PORT/police/identity/verify 32 3 3

Arguments: URL, requests in flight, seconds per run, repetitions (interleaved). Prints
calls/s and the client process's CPU µs per call (time.process_time), median and range.
Imports nothing from the gateway.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

BODY = json.dumps({"sfzhm": "430102196305180133", "xm": "x"}).encode()  # a sandbox person; synthetic data
HEADERS = {"Content-Type": "application/json"}


async def closed_loop(
    call: Callable[[], Awaitable[bool]], concurrency: int, seconds: float
) -> tuple[float, float, int]:
    start = time.perf_counter() + 0.5  # half a second of warm-up
    end = start + seconds
    done, failed, cpu = 0, 0, {}

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < end:
            try:
                ok = await call()
            except Exception:  # a failed call is counted, and the run goes on
                ok = False
            if start <= time.perf_counter() <= end:
                done, failed = done + ok, failed + (not ok)

    async def mark() -> None:
        await asyncio.sleep(max(start - time.perf_counter(), 0))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(end - time.perf_counter(), 0))
        cpu["end"] = time.process_time()

    await asyncio.gather(mark(), *(worker() for _ in range(concurrency)))
    return done / seconds, (cpu["end"] - cpu["start"]) * 1e6 / max(done, 1), failed


async def main(url: str, concurrency: int, seconds: float, repeat: int) -> None:
    import aiohttp
    import httpx

    runs: dict[str, list[tuple[float, float, int]]] = {"aiohttp": [], "httpx": []}
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)  # as adapters/context.py
    async with aiohttp.ClientSession(connector=connector) as session, httpx.AsyncClient(
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64)
    ) as client:

        async def with_aiohttp() -> bool:
            async with session.post(url, data=BODY, headers=HEADERS) as resp:
                await resp.read()
                return resp.status == 200

        async def with_httpx() -> bool:
            resp = await client.post(url, content=BODY, headers=HEADERS)
            return bool(resp.status_code == 200)

        for _ in range(repeat):
            runs["aiohttp"].append(await closed_loop(with_aiohttp, concurrency, seconds))
            runs["httpx"].append(await closed_loop(with_httpx, concurrency, seconds))
    versions = {"aiohttp": aiohttp.__version__, "httpx": httpx.__version__}
    for name, r in runs.items():
        rates, cpus = [x[0] for x in r], [x[1] for x in r]
        print(f"{name} {versions[name]}: {statistics.median(rates):.0f} calls/s ({min(rates):.0f}–{max(rates):.0f}), "
              f"client CPU {statistics.median(cpus):.0f} µs/call ({min(cpus):.0f}–{max(cpus):.0f}), "
              f"failed {sum(x[2] for x in r)}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
