"""`gateway demo`: the sandbox departments, the gateway with a fresh embedded store, and a
batch of applications through them, until every item is final."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import build_app
from gateway.auth import AuthSettings, sign
from gateway.config import GatewayConfig, load_config
from sandbox.runner import RunningSandbox, run_sandbox


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def running_gateway(
    config: GatewayConfig, workdir: Path, people: Path, decision_delay: float = 0.2, auth: bool = False
) -> AsyncIterator[tuple[str, RunningSandbox, GatewayConfig]]:
    """Sandbox + gateway on free loopback ports, state under ``workdir``. Yields the base URL.

    ``auth``: switch signed requests on with keys made for this run (the platform's key
    is in the yielded config; hrss signs its callbacks with its own)."""
    async with run_sandbox(people, hpf_root=workdir / "hpf", decision_delay=decision_delay) as sandbox:
        if auth:
            platform = ("platform-demo", secrets.token_hex(16))
            hrss = ("hrss-demo", secrets.token_hex(16))
            sandbox.state.callback_key = hrss
            config = replace(
                config,
                auth=AuthSettings(
                    enabled=True, platform_keys=dict([platform]), department_keys={"hrss": dict([hrss])}
                ),
            )
        port = _free_port()
        cfg = sandbox.point_gateway(config)
        assert isinstance(cfg, GatewayConfig)
        cfg = cfg.with_endpoint("hpf", "files", archive=str(workdir / "hpf-archive"), error=str(workdir / "hpf-error"))
        cfg = replace(
            cfg,
            port=port,
            public_base_url=f"http://127.0.0.1:{port}",
            database_url=config.database_url if config.database_url.startswith("postgres")
            else f"sqlite:///{workdir / 'gateway.db'}",
        )
        runner = web.AppRunner(build_app(cfg), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield cfg.public_base_url, sandbox, cfg
        finally:
            await runner.cleanup()


Signer = Callable[[str, str, bytes], dict[str, str]]


def platform_signer(config: GatewayConfig) -> Signer | None:
    """Sign as the platform with the first configured key (None when auth is off)."""
    if not config.auth.enabled:
        return None
    key, secret = next(iter(config.auth.platform_keys.items()))
    return lambda method, path, body: sign(method, path, body, key, secret)


async def submit_and_follow(
    base_url: str, applications: list[dict[str, Any]], timeout: float = 60.0, concurrency: int = 8,
    signer: Signer | None = None,
) -> list[dict[str, Any]]:
    """Submit each application, then poll GET until every item is final (or time runs out)."""
    sem = asyncio.Semaphore(concurrency)

    def headers(method: str, path: str, body: bytes = b"") -> dict[str, str]:
        return signer(method, path, body) if signer else {}

    async with aiohttp.ClientSession() as http:

        async def one(app: dict[str, Any]) -> dict[str, Any]:
            path = "/api/v1/joint-applications"
            data = json.dumps(app, ensure_ascii=False).encode("utf-8")
            async with sem:
                async with http.post(
                    base_url + path, data=data,
                    headers={"Content-Type": "application/json"} | headers("POST", path, data),
                ) as resp:
                    status, body = resp.status, await resp.json(content_type=None)
            final = None
            if status == 202:
                deadline = time.monotonic() + timeout
                path = f"/api/v1/joint-applications/{app['application_no']}"
                while time.monotonic() < deadline:
                    async with http.get(base_url + path, headers=headers("GET", path)) as resp:
                        final = await resp.json()
                    if final["status"] == "completed":
                        break
                    await asyncio.sleep(0.2)
            return {"application_no": app["application_no"], "http_status": status, "response": body, "final": final}

        return list(await asyncio.gather(*(one(a) for a in applications)))


def render_table(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        head = f"{r['application_no']:<10} HTTP {r['http_status']}"
        if r["final"] is None:
            body = r["response"]
            failing = [c["key"] for c in body.get("checks", []) if c["result"] in ("fail", "unverifiable")]
            why = ", ".join(failing) or body.get("detail", "")
            lines.append(f"{head}  refused: {body.get('title', '')} — {why}")
            continue
        lines.append(f"{head}  {r['final']['initiating_item']}  [{r['final']['status']}]")
        for it in r["final"]["items"]:
            note = f"  {it['reason_code']} {it['message']}".rstrip() if it["status"] != "approved" else ""
            lines.append(f"    {it['item']:<30} {it['department']:<8} {it['status']:<10}{note}")
    accepted = sum(1 for r in results if r["http_status"] == 202)
    done = sum(1 for r in results if r["final"] and r["final"]["status"] == "completed")
    items = [it["status"] for r in results if r["final"] for it in r["final"]["items"]]
    summary = {s: items.count(s) for s in sorted(set(items))}
    lines.append("")
    lines.append(
        f"{len(results)} applications: {accepted} accepted ({done} with every item final), "
        f"{len(results) - accepted} refused; items: {summary}"
    )
    return "\n".join(lines)


def run_demo(people: Path, applications: Path, as_json: bool, config_path: Path | None = None) -> int:
    apps = json.loads(applications.read_text(encoding="utf-8"))
    config = load_config(config_path)
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp:  # a fresh store, gone afterwards
        results, elapsed = asyncio.run(_run(config, Path(tmp).resolve(), people, apps))
    if as_json:
        print(json.dumps({"applications": results}, ensure_ascii=False, indent=1))
    else:
        print(render_table(results))
        print(f"finished in {elapsed:.1f} s")
    unfinished = [r for r in results if r["http_status"] == 202 and r["final"]["status"] != "completed"]
    return 1 if unfinished else 0


async def _run(
    config: GatewayConfig, workdir: Path, people: Path, apps: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], float]:
    async with running_gateway(config, workdir, people, auth=True) as (base_url, _, cfg):
        started = time.monotonic()
        results = await submit_and_follow(base_url, apps, signer=platform_signer(cfg))
        return results, time.monotonic() - started
