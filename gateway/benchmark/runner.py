"""``gateway bench``: the phases, in separate processes, and the published document.

Processes: the sandbox departments (zero decision delay), the gateway (``gateway serve``,
production config but pointed at the sandbox, its store in a temp dir), and a fresh
load-generator process per scenario. Phases, each repeated and reported as a median with
min–max:

1. acceptance — POST /api/v1/joint-applications, unique numbers, closed loop at
   ``--concurrency``; the gateway's dispatcher is off (``workers = 0``) so the figure is the
   front door's own (the dispatch phase measures the rest);
2. floor — the same department queries fanned out by a bare aiohttp script, same
   concurrency, same run; the ratio acceptance/floor pairs each repetition;
3. pre-check latency — POST /api/v1/prechecks at ``--latency-concurrency`` and, right after,
   the floor at that concurrency: gateway p50/p99 minus the slowest department's;
4. dispatch — a fresh gateway with its dispatcher: a batch until every item is final,
   deliveries per adapter kind; then 1,000 applications at once for peak RSS (VmHWM);
5. SOAP — the SOAP adapter against a raw templated POST + xmltodict, per call;
6. PostgreSQL acceptance, when GATEWAY_DATABASE_URL names a PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.benchmark import profile, report
from gateway.benchmark.procs import GatewayProcess, run_load, sandbox_process, write_config
from gateway.benchmark.stats import spread
from gateway.config import ROOT

DEFAULT_JSON = ROOT / "bench-results" / "last.json"


@dataclass(frozen=True)
class Options:
    duration: float = 4.0
    warmup: float = 1.0
    concurrency: int = 32
    latency_concurrency: int = 1
    latency_duration: float = 3.0
    repeat: int = 5
    dispatch_batch: int = 200
    dispatch_repeat: int = 3
    in_flight: int = 1000
    soap_duration: float = 2.0
    quick: bool = False
    profile_dir: str | None = None
    json: str | None = None
    keep_workdir: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        quick = bool(args.quick)
        base = cls(duration=1.5, warmup=0.5, latency_duration=1.0, repeat=1, dispatch_batch=40, dispatch_repeat=1,
                   in_flight=200, soap_duration=0.7, quick=True) if quick else cls()
        picked = {k: v for k, v in vars(args).items() if v is not None and k in cls.__dataclass_fields__}
        picked.pop("quick", None)
        opts = asdict(base) | picked
        opts["latency_duration"] = min(opts["latency_duration"], opts["duration"])
        if quick:
            opts["soap_duration"] = min(opts["soap_duration"], opts["duration"])
        return cls(**opts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="seconds measured per run (default 4; --quick 1.5)")
    p.add_argument("--concurrency", type=int, help="requests in flight for throughput runs (default 32)")
    p.add_argument("--repeat", type=int, help="repetitions; medians and min–max over them (default 5)")
    p.add_argument("--json", help=f"write the result document here (default {DEFAULT_JSON.relative_to(ROOT)})")
    p.add_argument("--quick", action="store_true", help="smoke run of about 30 s: one short repetition")
    p.add_argument("--warmup", type=float, help="seconds before each measured window (default 1)")
    p.add_argument("--latency-concurrency", dest="latency_concurrency", type=int,
                   help="requests in flight for the pre-check latency runs (default 1)")
    p.add_argument("--dispatch-batch", dest="dispatch_batch", type=int, help="applications per dispatch run (200)")
    p.add_argument("--in-flight", dest="in_flight", type=int, help="applications sent at once for peak RSS (1000)")
    p.add_argument("--profile", dest="profile_dir", metavar="DIR",
                   help="also sample the gateway with py-spy (if installed) in extra runs; raw stacks to DIR")
    p.add_argument("--keep-workdir", dest="keep_workdir", action="store_true", help="keep the temp dir (logs, db)")


def _pg_url() -> str | None:
    url = os.environ.get("GATEWAY_DATABASE_URL", "")
    return url if url.startswith(("postgresql://", "postgres://")) else None


def _with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {"schema": schema}
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k != "schema"}
    conn = await asyncpg.connect(urlunsplit(parts._replace(query=urlencode(query))))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


class Bench:
    def __init__(self, opts: Options, workdir: Path) -> None:
        self.o = opts
        self.workdir = workdir
        self.progress_started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.progress_started:6.1f} s] {text}", file=sys.stderr, flush=True)

    def load(self, spec: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        return run_load(spec, self.workdir, timeout)

    def _post(self, gw: GatewayProcess, pids: dict[str, int], tag: str, path: str, expect: int, concurrency: int,
              duration: float) -> dict[str, Any]:
        return self.load({"kind": "post", "tag": tag, "base_url": gw.url, "path": path, "expect": expect,
                          "concurrency": concurrency, "warmup": self.o.warmup, "duration": duration, "pids": pids})

    def _floor(self, gw: GatewayProcess, pids: dict[str, int], concurrency: int, duration: float) -> dict[str, Any]:
        return self.load({"kind": "floor", "config": str(gw.config), "concurrency": concurrency,
                          "warmup": self.o.warmup, "duration": duration, "pids": pids})

    def front_door(self, sandbox: tuple[int, int], database_url: str, name: str,
                   with_floor: bool) -> dict[str, Any]:
        """Acceptance (and, on the first store, floor and pre-check latency) repetitions."""
        o = self.o
        accept, floor, pre, direct = [], [], [], []
        with GatewayProcess(self.workdir, name, sandbox[1], database_url, workers=0) as gw:
            pids = {"gateway": gw.pid, "sandbox": sandbox[0]}
            for k in range(o.repeat):
                self.say(f"{name}: repetition {k + 1}/{o.repeat}: acceptance")
                accept.append(self._post(gw, pids, f"{name}{k}", "/api/v1/joint-applications", 202,
                                         o.concurrency, o.duration))
                if not with_floor:
                    continue
                self.say(f"{name}: repetition {k + 1}/{o.repeat}: bare fan-out floor")
                floor.append(self._floor(gw, pids, o.concurrency, o.duration))
                self.say(f"{name}: repetition {k + 1}/{o.repeat}: pre-check latency and direct department queries")
                pre.append(self._post(gw, pids, f"p{name}{k}", "/api/v1/prechecks", 200, o.latency_concurrency,
                                      o.latency_duration))
                direct.append(self._floor(gw, pids, o.latency_concurrency, o.latency_duration))
            startup = gw.started_in
        out: dict[str, Any] = {"acceptance": report.acceptance_summary(accept, o.concurrency, startup)}
        if with_floor:
            out["floor"] = report.floor_summary(floor, o.concurrency)
            out["ratio"] = spread([a["rate_per_s"] / f["rate_per_s"] for a, f in zip(accept, floor, strict=True)
                                   if f["rate_per_s"]], 4)
            out["precheck"] = report.precheck_summary(pre, direct, o.latency_concurrency)
        return out

    def dispatch(self, sandbox: tuple[int, int], database_url: str) -> dict[str, Any]:
        o = self.o
        runs = []
        with GatewayProcess(self.workdir, "dispatch", sandbox[1], database_url, workers=16) as gw:
            for k in range(o.dispatch_repeat):
                self.say(f"dispatch: batch {k + 1}/{o.dispatch_repeat} of {o.dispatch_batch} until every item is final")
                runs.append(self.load({
                    "kind": "dispatch", "tag": f"d{k}", "base_url": gw.url, "config": str(gw.config),
                    "database_url": database_url, "count": o.dispatch_batch, "concurrency": o.concurrency,
                    "timeout": 240, "pids": {"gateway": gw.pid},
                }))
        return report.dispatch_summary(runs, o.dispatch_batch, o.concurrency)

    def memory(self, sandbox: tuple[int, int], database_url: str) -> dict[str, Any]:
        o = self.o
        self.say(f"memory: {o.in_flight} applications at once into a fresh gateway, until every item is final")
        with GatewayProcess(self.workdir, "memory", sandbox[1], database_url, workers=16) as gw:
            run = self.load({
                "kind": "dispatch", "tag": "m", "base_url": gw.url, "config": str(gw.config),
                "database_url": database_url, "count": o.in_flight, "concurrency": o.in_flight,
                "timeout": 240, "pids": {"gateway": gw.pid},
            })
        return report.memory_summary(run, o.in_flight)

    def soap(self, sandbox: tuple[int, int]) -> dict[str, Any]:
        o = self.o
        self.say(f"SOAP: adapter vs raw templated POST, {o.repeat} interleaved repetitions")
        config = write_config(self.workdir, "soap", sandbox[1], 18080, workers=0)  # read for the addresses only
        result = self.load({"kind": "soap", "config": str(config), "concurrency": 32, "warmup": 0.5,
                            "duration": o.soap_duration, "repeat": o.repeat,
                            "offline_seconds": 0.5 if o.quick else 1.5})
        return report.soap_summary(result)

    def profile(self, sandbox: tuple[int, int], out_dir: Path) -> dict[str, Any]:
        """Extra, unmeasured runs with py-spy attached to the gateway (it slows what it samples)."""
        o = self.o
        if profile.py_spy() is None:
            return {"skipped": "py-spy is not installed (pip install py-spy into the venv)"}
        out_dir.mkdir(parents=True, exist_ok=True)
        result = {}
        seconds = max(o.duration, 3.0)
        with GatewayProcess(self.workdir, "profile", sandbox[1], f"sqlite:///{self.workdir / 'profile.db'}",
                            workers=0) as gw:
            pids = {"gateway": gw.pid, "sandbox": sandbox[0]}
            for name, path, expect in (("acceptance", "/api/v1/joint-applications", 202),
                                       ("precheck", "/api/v1/prechecks", 200)):
                self.say(f"profile: {name} with py-spy")
                raw = out_dir / f"{name}.raw"
                spy = profile.start_recording(gw.pid, seconds, raw)
                time.sleep(0.3)
                self._post(gw, pids, f"prof{name}", path, expect, o.concurrency, seconds)
                summary = profile.finish_recording(spy, raw)
                if summary is not None:
                    result[name] = summary
        database_url = f"sqlite:///{self.workdir / 'profile-dispatch.db'}"
        with GatewayProcess(self.workdir, "profile-dispatch", sandbox[1], database_url, workers=16) as gw:
            self.say(f"profile: dispatch of {o.dispatch_batch} applications with py-spy")
            raw = out_dir / "dispatch.raw"
            spy = profile.start_recording(gw.pid, 8 if not o.quick else 3, raw)
            time.sleep(0.3)
            self.load({"kind": "dispatch", "tag": "prof", "base_url": gw.url, "config": str(gw.config),
                       "database_url": database_url, "count": o.dispatch_batch, "concurrency": o.concurrency,
                       "timeout": 240, "pids": {"gateway": gw.pid}})
            summary = profile.finish_recording(spy, raw)
            if summary is not None:
                result["dispatch"] = summary
        return result

    def run(self) -> dict[str, Any]:
        o = self.o
        started = time.time()
        doc: dict[str, Any] = {"schema_version": 1, "started_at": report.iso(started), "options": asdict(o)}
        doc |= report.environment()
        doc["machine"]["calibration_start"] = report.calibrate()
        sqlite_url = f"sqlite:///{self.workdir / 'accept.db'}"
        pg = _pg_url()
        pg_schema = f"bench_{uuid.uuid4().hex[:10]}" if pg else None
        with sandbox_process(self.workdir) as sandbox:
            self.say(f"sandbox up (pid {sandbox[0]}); workdir {self.workdir}")
            front = self.front_door(sandbox, sqlite_url, "sqlite", with_floor=True)
            doc["acceptance"] = {"sqlite": front["acceptance"], "postgres": None}
            doc["floor"], doc["ratio_acceptance_to_floor"], doc["precheck"] = front["floor"], front["ratio"], front[
                "precheck"]
            doc["dispatch"] = self.dispatch(sandbox, f"sqlite:///{self.workdir / 'dispatch.db'}")
            doc["memory"] = self.memory(sandbox, f"sqlite:///{self.workdir / 'memory.db'}")
            doc["soap"] = self.soap(sandbox)
            if pg and pg_schema:
                try:
                    pg_front = self.front_door(sandbox, _with_schema(pg, pg_schema), "postgres", with_floor=False)
                    doc["acceptance"]["postgres"] = pg_front["acceptance"]
                finally:
                    asyncio.run(_drop_schema(pg, pg_schema))
            doc["profile"] = self.profile(sandbox, Path(o.profile_dir)) if o.profile_dir else None
        doc["machine"]["calibration_end"] = report.calibrate()
        doc["elapsed_s"] = round(time.time() - started, 1)
        doc["targets"] = report.targets(doc)
        doc["background"] = report.background(doc)
        return doc


def _raise_on_sigterm(signum: int, _: Any) -> None:
    raise SystemExit(128 + signum)  # run every finally: the servers are stopped on the way out


def run_from_args(args: argparse.Namespace) -> int:
    opts = Options.from_args(args)
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    try:
        doc = Bench(opts, workdir).run()
        doc["command"] = "gateway " + " ".join(sys.argv[1:])
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not opts.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    path = Path(opts.json) if opts.json else DEFAULT_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(report.table(doc))
    print(f"\nJSON: {path}")
    return 0
