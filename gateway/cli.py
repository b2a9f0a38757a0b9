"""`gateway` command line: serve, sandbox, demo, policy, check-config."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path

from gateway.config import ConfigError, load_config
from gateway.logs import configure_logging


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import build_app
    from gateway.tls import server_context

    config = load_config(args.config)
    context = server_context(config.tls) if config.tls else None
    # Bind first: a port in use is said in one line, before anything starts.
    sock = _listening_socket(config.host, config.port)
    web.run_app(build_app(config), sock=sock, access_log=None, print=None, ssl_context=context)
    return 0


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    return sock


class CommandError(Exception):
    """A start-up problem said in one line (exit 1)."""


def _sandbox(args: argparse.Namespace) -> int:
    from gateway.auth import parse_keys
    from sandbox.faults import Faults
    from sandbox.runner import DEFAULT_PORTS, run_sandbox

    faults = {}
    if args.faults:
        try:
            raw = json.loads(Path(args.faults).read_text(encoding="utf-8"))
            faults = {dept: Faults.from_json(f) for dept, f in raw.items()}
        except (OSError, ValueError, TypeError) as exc:
            print(f"error: {args.faults}: {exc}", file=sys.stderr)
            return 2
    offset = args.port_base - 18701
    ports = {k: v + offset for k, v in DEFAULT_PORTS.items()}

    # hrss signs its result callbacks with the key the gateway expects from it, when set.
    callback_keys = parse_keys(os.environ.get("GATEWAY_HRSS_CALLBACK_KEYS"))

    async def main() -> None:
        async with run_sandbox(
            args.people, hpf_root=Path(args.hpf_root), ports=ports, decision_delay=args.decision_delay, faults=faults
        ) as sb:
            sb.state.callback_key = next(iter(callback_keys.items()), None)
            print(json.dumps({"ports": sb.ports, "hpf": str(sb.hpf_root)}), flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # a port in use
        raise CommandError(f"the sandbox cannot start: {exc.strerror or exc}") from exc
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(args.people, args.applications, args.json, args.config)


def _policy(args: argparse.Namespace) -> int:
    from gateway.domain.retirement_age import Category, parse_birth_month, retirement_policy

    try:
        birth = parse_birth_month(args.birth)
    except ValueError as exc:
        print(f"error: --birth: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(retirement_policy(birth, Category(args.category)).to_json(), ensure_ascii=False))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Load the configuration and every mapping, and build (not open) every endpoint's
    adapter, so that a misspelt setting is found here rather than at start-up."""
    config = load_config(args.config)

    async def build() -> list[str]:
        import aiohttp

        from adapters.context import AdapterContext
        from adapters.registry import create_adapter

        errors = []
        async with aiohttp.ClientSession() as session:
            context = AdapterContext(session, config.base_dir)
            for code, dept in config.departments.items():
                for name, ep in dept.endpoints.items():
                    try:
                        create_adapter(ep.adapter, f"{code}.{name}", ep.settings, context)
                    except (ValueError, TypeError) as exc:
                        errors.append(str(exc))
        return errors

    bad = asyncio.run(build())
    for line in bad:
        print(f"error: {line}", file=sys.stderr)
    if not bad:
        print(f"ok: {len(config.departments)} departments, mappings and endpoint settings valid")
    return 1 if bad else 0


def _dlq(args: argparse.Namespace) -> int:
    """Work on the dead-letter queue straight in the store (the gateway may be running)."""
    from gateway.store.audit import AuditRecord
    from gateway.store.sql import store_for

    config = load_config(args.config)

    async def run() -> int:
        store = store_for(config)
        await store.open()
        try:
            if args.action == "list":
                rows = await store.dead_letters(include_replayed=args.all)
                print(json.dumps({"dead_letters": rows}, ensure_ascii=False, default=str, indent=1))
                return 0
            if args.job_id is None:
                print("error: give the job id (see `gateway dlq list`)", file=sys.stderr)
                return 2
            if args.action == "show":
                detail = await store.dead_letter_detail(args.job_id)
                if detail is None:
                    print(f"error: no dead letter with job id {args.job_id}", file=sys.stderr)
                    return 1
                print(json.dumps(detail, ensure_ascii=False, default=str, indent=1))
                return 0
            record = AuditRecord(time.time(), "admin:cli", "admin_action", "replayed",
                                 detail={"action": "replay_dead_letter", "job": args.job_id})
            if not await store.replay_dead_letter(args.job_id, record):
                print(f"error: no dead letter with job id {args.job_id} waiting for a replay", file=sys.stderr)
                return 1
            print(json.dumps({"job_id": args.job_id, "replayed": True}))
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def _bench(args: argparse.Namespace) -> int:
    from gateway.benchmark.runner import run_from_args

    return run_from_args(args)


def main(argv: list[str] | None = None) -> int:
    from gateway.benchmark.runner import add_arguments as add_bench_arguments
    from gateway.cli_audit import add_arguments as add_audit_arguments
    from gateway.cli_store import add_arguments as add_store_arguments
    from gateway.domain.retirement_age import Category
    from gateway.probe import add_arguments as add_department_arguments
    from sandbox.people import DEFAULT_PEOPLE

    parser = argparse.ArgumentParser(prog="gateway", description="退休一件事一次办 integration gateway")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=_serve)

    p = sub.add_parser("sandbox", help="run the sandbox departments on their default ports")
    p.add_argument("--people", type=Path, default=DEFAULT_PEOPLE)
    p.add_argument("--hpf-root", default="var/sandbox/hpf")
    p.add_argument("--port-base", type=int, default=18701, help="first of six consecutive ports")
    p.add_argument("--decision-delay", type=float, default=0.2, help="seconds before hrss decides")
    p.add_argument("--faults", help='JSON file: {"hrss": {"error_rate": 0.2, "reset_after_rate": 0.1}, ...}')
    p.set_defaults(fn=_sandbox)

    p = sub.add_parser("demo", help="sandbox + gateway + a batch of applications")
    p.add_argument("--people", type=Path, default=DEFAULT_PEOPLE)
    p.add_argument("--applications", type=Path, default=Path(__file__).parent.parent / "sandbox" / "applications.json")
    p.add_argument("--json", action="store_true", help="print the result document on stdout")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=_demo)

    p = sub.add_parser("policy", help="retirement policy look-ups")
    psub = p.add_subparsers(dest="policy", required=True)
    q = psub.add_parser("retirement-age", help="statutory retirement age (retirement-age.md)")
    q.add_argument("--birth", required=True, help="YYYY-MM")
    q.add_argument("--category", required=True, choices=[c.value for c in Category])
    q.set_defaults(fn=_policy)

    p = sub.add_parser("check-config", help="validate configuration and every mapping")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=_check_config)

    p = sub.add_parser("dlq", help="dead letters: list, show ID, replay ID (replay keeps the delivery id)")
    p.add_argument("action", choices=["list", "show", "replay"])
    p.add_argument("job_id", nargs="?", type=int)
    p.add_argument("--all", action="store_true", help="list: include replayed ones")
    p.add_argument("--config", type=Path)
    p.set_defaults(fn=_dlq)

    p = sub.add_parser("store", help="the store: migrate, status, reseal (after a store key rotation)")
    add_store_arguments(p)

    p = sub.add_parser("audit", help="audit trail: verify the chain, print its head, show an application's records")
    add_audit_arguments(p)

    p = sub.add_parser("departments", help="department bindings: list, test CODE (probe + pre-check query), reset CODE")
    add_department_arguments(p, DEFAULT_PEOPLE)

    p = sub.add_parser("bench", help="throughput, latency and memory, each process apart (docs/benchmarks.md)")
    add_bench_arguments(p)
    p.set_defaults(fn=_bench)

    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.fn(args))
    except ConfigError as exc:  # a bad file or setting: say which, no stack trace
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"error: {exc.filename}: no such file", file=sys.stderr)
        return 1
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from gateway.store.connectors import is_store_error

        if not is_store_error(exc):
            raise
        # The store cannot be opened (down, wrong name, wrong URL): one line, no trace.
        print(f"error: the store cannot be used: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
