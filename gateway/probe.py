"""`gateway departments …`: what department IT runs before going live.

``test CODE`` opens the department's endpoints as the gateway would (WSDL, SFTP login,
TLS material) and runs its pre-check query for a sandbox person through the mapping,
then says what came back — which facts, how long — without printing any personal data.
``list`` shows every binding in force (file or runtime); ``reset CODE`` drops a runtime
binding so the configuration file's applies again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from adapters.base import Verifiable
from adapters.context import AdapterContext
from gateway.bindings import DepartmentBindings
from gateway.config import GatewayConfig, load_config
from gateway.departments import DepartmentRuntime, close_departments, open_departments
from gateway.logs import mask_text
from gateway.messages import build_context, query_id
from gateway.store.audit import AuditRecord
from gateway.store.sql import store_for


async def _with_departments(config: GatewayConfig, work: Any) -> Any:
    """Run ``work(bindings)`` with the departments as the running gateway sees them."""
    store = store_for(config)
    await store.open()
    try:
        async with aiohttp.ClientSession() as session:
            context = AdapterContext(session, config.base_dir)
            departments = await open_departments(config, context)
            bindings = DepartmentBindings(config, store, departments, context)
            try:
                await bindings.load()
                return await work(bindings, departments, store)
            finally:
                await bindings.close()
                await close_departments(departments)
    finally:
        await store.close()


def _person(people: Path, code: str, id_number: str | None) -> dict[str, Any] | None:
    entries = json.loads(people.read_text(encoding="utf-8"))["people"]
    if id_number:
        return next((p for p in entries if p["id_number"] == id_number), None)
    return next((p for p in entries if code in p), None)


async def probe(runtime: DepartmentRuntime, person: dict[str, Any] | None) -> dict[str, Any]:
    """The department's pre-check query for ``person``, read through its mapping."""
    out: dict[str, Any] = {"department": runtime.code, "endpoints": dict.fromkeys(runtime.adapters, "opened")}
    for name, adapter in runtime.adapters.items():
        if isinstance(adapter, Verifiable):
            try:
                await adapter.verify()
                out["endpoints"][name] = "verified"
            except Exception as exc:  # e.g. the SFTP login was refused
                out["endpoints"][name] = f"error: {mask_text(getattr(exc, 'detail', None) or str(exc))}"
    if any(str(v).startswith("error") for v in out["endpoints"].values()):
        out["query"] = {"outcome": "error", "detail": "an endpoint does not work"}
        return out
    if not runtime.mapping.has("query"):
        out["query"] = {"outcome": "none", "detail": "this department has no pre-check query"}
        return out
    if person is None:
        out["query"] = {"outcome": "error", "detail": "no such person in the people file"}
        return out
    applicant = {"id_number": person["id_number"], "name": person.get("name", "")}
    qid = query_id()
    started = time.perf_counter()
    try:
        message = runtime.build("query", build_context({"applicant": applicant}, item=None, delivery_id=qid), qid)
        reply = await runtime.call(message, runtime.config.query_timeout)
        record = runtime.mapping.read_record(reply.body)
    except Exception as exc:  # report any failure as the department's answer, never a trace
        out["query"] = {"outcome": "error", "error": type(exc).__name__,
                        "detail": mask_text(getattr(exc, "detail", None) or str(exc))}
        return out
    out["query"] = {
        "person": mask_text(person["id_number"]),
        "outcome": "no_record" if record is None else "found",
        "facts": sorted(record) if record else [],
        "seconds": round(time.perf_counter() - started, 3),
    }
    return out


async def _reset(config: GatewayConfig, code: str) -> int:
    """Drop a runtime binding straight in the store: works even when that binding no
    longer validates (which is when it is needed)."""
    if code not in config.departments:
        print(f"error: the configuration file has no binding for {code!r} to return to", file=sys.stderr)
        return 1
    store = store_for(config)
    await store.open()
    try:
        record = AuditRecord(time.time(), "admin:cli", "admin_action", "applied",
                             detail={"action": "remove_binding", "department": code})
        await store.save_binding(code, "remove", "active", None, "cli", record)
    finally:
        await store.close()
    print(json.dumps({"department": code, "binding": "configuration file"}))
    return 0


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "reset":
        if args.code is None:
            print("error: give the department code, e.g. hrss", file=sys.stderr)
            return 2
        return asyncio.run(_reset(config, args.code))

    async def work(bindings: DepartmentBindings, departments: dict[str, DepartmentRuntime], store: Any) -> int:
        if args.action == "list":
            print(json.dumps({"departments": bindings.views()}, ensure_ascii=False, indent=1))
            return 0
        if args.code is None:
            print("error: give the department code, e.g. hrss", file=sys.stderr)
            return 2
        if args.code not in departments:
            print(f"error: department {args.code!r} is not configured", file=sys.stderr)
            return 1
        report = await probe(departments[args.code], _person(args.people, args.code, args.id_number))
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0 if report["query"]["outcome"] in ("found", "no_record", "none") else 1

    return int(asyncio.run(_with_departments(config, work)))


def add_arguments(p: argparse.ArgumentParser, default_people: Path) -> None:
    p.add_argument("action", choices=["list", "test", "reset"])
    p.add_argument("code", nargs="?", help="department code (test, reset)")
    p.add_argument("--people", type=Path, default=default_people, help="test: the people file to pick from")
    p.add_argument("--id-number", help="test: this person (default: the first with a record there)")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=run)
