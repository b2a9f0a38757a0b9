"""The benchmark's document: summaries of each phase, the targets, the machine, the table."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from gateway.benchmark.stats import field_spread, spread
from gateway.config import ROOT

LIBRARIES = ("aiohttp", "zeep", "lxml", "xmltodict", "jsonschema", "asyncpg", "structlog",
             "prometheus-client", "cryptography", "tenacity")
BACKGROUND_WARN = 0.2  # cores used by other processes during a measured window


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mib() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def calibrate(seconds: float = 0.3) -> float:
    """Single-core speed right now: million pure-Python loop iterations per second. On a
    shared VM this moves with the neighbours; two runs compare only at similar figures."""
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        for _ in range(10_000):
            n += 1
    return round(n / (time.process_time() - t0) / 1e6, 2)


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    dirty = [line for line in _git("status", "--porcelain").splitlines() if line.strip()]
    return {
        "machine": {
            "nproc": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu_model": _cpu_model(),
            "mem_total_mib": _mem_total_mib(),
            "kernel": platform.release(),
            "loadavg_at_start": list(os.getloadavg()),
        },
        "software": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version} | versions,
        "code": {"git_head": _git("rev-parse", "HEAD") or None, "uncommitted_paths": len(dirty)},
        "auth": {
            "enabled": False,
            "note": "the default config/gateway.toml has [auth] enabled = false: requests are unsigned, so no "
                    "signature check and no nonce write per request (production signs every request)",
        },
        "logging": "gateway at --log-level INFO (the production default), JSON lines to a file",
    }


def _values(runs: list[dict[str, Any]], *path: str) -> list[float]:
    out = []
    for r in runs:
        v: Any = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if isinstance(v, int | float):
            out.append(float(v))
    return out


def _statuses(runs: list[dict[str, Any]], key: str = "statuses") -> dict[str, int]:
    total: dict[str, int] = {}
    for r in runs:
        for k, v in r.get(key, {}).items():
            total[k] = total.get(k, 0) + v
    return total


def _cores(runs: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({k for r in runs for k in r.get("cpu_cores", {})})
    return {n: spread(_values(runs, "cpu_cores", n)) for n in names}


def acceptance_summary(runs: list[dict[str, Any]], concurrency: int, startup: float) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "dispatcher": "off (workers = 0): the front door alone",
        "accepted_per_s": field_spread(runs, "rate_per_s", 2),
        "p50_ms": spread(_values(runs, "latency", "p50_ms")),
        "p99_ms": spread(_values(runs, "latency", "p99_ms")),
        "gateway_cpu_ms_per_application": spread(
            [r["cpu_s"]["gateway"] * 1000 / r["ok"] for r in runs if r["ok"]]),
        "store_commit_mean_ms": spread(_values(runs, "gateway_metrics", "store_commit", "mean_ms")),
        "cores": _cores(runs),
        "statuses": _statuses(runs),
        "gateway_startup_s": round(startup, 2),
        "runs": runs,
    }


def floor_summary(runs: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "fanouts_per_s": field_spread(runs, "rate_per_s", 2),
        "p50_ms": spread(_values(runs, "latency", "p50_ms")),
        "p99_ms": spread(_values(runs, "latency", "p99_ms")),
        "mean_fanout_width": runs[0].get("fanout_width") if runs else None,
        "cores": _cores(runs),
        "statuses": _statuses(runs),
        "runs": runs,
    }


def precheck_summary(pre: list[dict[str, Any]], direct: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    per_rep = []
    for p, d in zip(pre, direct, strict=True):
        depts = d["departments"]
        slow50 = max(depts, key=lambda k: depts[k]["p50_ms"])
        slow99 = max(depts, key=lambda k: depts[k]["p99_ms"])
        per_rep.append({
            "precheck_p50_ms": p["latency"]["p50_ms"], "precheck_p99_ms": p["latency"]["p99_ms"],
            "slowest_p50_department": slow50, "slowest_p50_ms": depts[slow50]["p50_ms"],
            "slowest_p99_department": slow99, "slowest_p99_ms": depts[slow99]["p99_ms"],
            "fanout_p50_ms": d["latency"]["p50_ms"], "fanout_p99_ms": d["latency"]["p99_ms"],
            "added_p50_ms": round(p["latency"]["p50_ms"] - depts[slow50]["p50_ms"], 3),
            "added_p99_ms": round(p["latency"]["p99_ms"] - depts[slow99]["p99_ms"], 3),
        })
    keys = [k for k in per_rep[0] if k.endswith("_ms")] if per_rep else []
    return {
        "concurrency": concurrency,
        **{k: field_spread(per_rep, k) for k in keys},
        "slowest_departments": sorted({r["slowest_p99_department"] for r in per_rep}),
        "prechecks_per_s": field_spread(pre, "rate_per_s", 2),
        "statuses": _statuses(pre),
        "per_repetition": per_rep,
        "runs": {"precheck": pre, "direct": direct},
    }


def dispatch_summary(runs: list[dict[str, Any]], batch: int, concurrency: int) -> dict[str, Any]:
    kinds = sorted({k for r in runs for k in r["by_kind"]})
    return {
        "applications_per_batch": batch,
        "concurrency": concurrency,
        "all_final_every_run": all(r["all_final"] for r in runs),
        "deliveries_per_s": field_spread(runs, "deliveries_per_s", 2),
        "all_final_s": field_spread(runs, "all_final_s"),
        "accepted_per_s_with_dispatcher": field_spread(runs, "accept_rate_per_s", 2),
        "gateway_cpu_ms_per_delivery": field_spread(runs, "gateway_cpu_ms_per_delivery"),
        "by_kind": {
            k: {
                "departments": runs[0]["by_kind"].get(k, {}).get("departments"),
                "items_per_batch": spread(_values(runs, "by_kind", k, "items"), 0),
                "rate_per_s": spread(_values(runs, "by_kind", k, "rate_per_s"), 2),
                "last_final_s": spread(_values(runs, "by_kind", k, "last_final_s")),
                "accepted_to_final_p50_s": spread(_values(runs, "by_kind", k, "accepted_to_final_p50_s")),
                "accepted_to_final_p90_s": spread(_values(runs, "by_kind", k, "accepted_to_final_p90_s")),
            }
            for k in kinds
        },
        "item_statuses": _statuses(runs, "item_statuses"),
        "statuses": _statuses(runs),
        "runs": runs,
    }


def memory_summary(run: dict[str, Any], in_flight: int) -> dict[str, Any]:
    return {
        "sent_at_once": in_flight,
        "accepted": run["accepted"],
        "peak_in_flight": run["peak_in_flight"],
        "vmhwm_mib": run["gateway_vmhwm_mib"],
        "vmhwm_mb": round(run["gateway_vmhwm_mib"] * 1.048576, 1),
        "vmrss_after_mib": run["gateway_vmrss_mib"],
        "all_final": run["all_final"],
        "all_final_s": run["all_final_s"],
        "run": run,
    }


def soap_summary(result: dict[str, Any]) -> dict[str, Any]:
    live = result["live"]
    out: dict[str, Any] = {k: v for k, v in result.items() if k != "live"}
    for path in ("adapter", "raw"):
        out[path] = {
            "calls_per_s": field_spread(live[path], "calls_per_s", 1),
            "cpu_ms_per_call": field_spread(live[path], "cpu_ms_per_call", 4),
            "p50_ms": field_spread(live[path], "p50_ms"),
            "failed": sum(r["failed"] for r in live[path]),
        }
    a, r = out["adapter"]["cpu_ms_per_call"]["median"], out["raw"]["cpu_ms_per_call"]["median"]
    out["cpu_ratio_adapter_to_raw"] = round(a / r, 2) if a and r else None
    pairs = [x["cpu_ms_per_call"] / y["cpu_ms_per_call"] for x, y in zip(live["adapter"], live["raw"], strict=True)
             if x["cpu_ms_per_call"] and y["cpu_ms_per_call"]]
    out["cpu_ratio_per_repetition"] = spread(pairs, 2)
    ta, tr = out["adapter"]["calls_per_s"]["median"], out["raw"]["calls_per_s"]["median"]
    out["throughput_ratio_raw_to_adapter"] = round(tr / ta, 2) if ta and tr else None
    out["runs"] = live
    return out


def _target(name: str, value: float | None, limit: float, unit: str, at_most: bool,
            note: str = "") -> dict[str, Any]:
    value = None if value is None else round(value, 2)
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return {"target": name, "value": value, "limit": limit, "unit": unit, "met": met, "note": note}


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    ratio = doc["ratio_acceptance_to_floor"]["median"]
    memory = doc["memory"]
    # 1,000 requests in flight at once, all accepted (the store sampler's peak is a lower bound:
    # the first applications may already be final when the last are accepted).
    full = memory["sent_at_once"] >= 1000 and memory["accepted"] >= 1000
    return [
        _target("acceptance throughput ≥ 40 % of the bare fan-out floor", None if ratio is None else
                round(ratio * 100, 1), 40, "%", at_most=False, note="SQLite, dispatcher off, same run"),
        _target("pre-check adds ≤ 5 ms at p99 over the slowest department", doc["precheck"]["added_p99_ms"]["median"],
                5, "ms", at_most=True, note=f"at concurrency {doc['precheck']['concurrency']}"),
        _target("SOAP adapter ≤ 2× the raw templated POST per call", doc["soap"]["cpu_ratio_adapter_to_raw"], 2, "×",
                at_most=True, note="CPU per call, one loop, 32 concurrent"),
        _target("RSS ≤ 200 MB with 1,000 applications in flight", memory["vmhwm_mb"] if full else None, 200, "MB",
                at_most=True, note=f"{memory['sent_at_once']} sent at once, {memory['accepted']} accepted, "
                f"peak seen in flight {memory['peak_in_flight']}" + ("" if full else " (< 1,000: not judged)")),
    ]


def background(doc: dict[str, Any]) -> dict[str, Any]:
    """How much CPU other processes on the machine took during the measured windows."""
    seen = []
    for section in (doc["acceptance"]["sqlite"], doc["floor"]):
        seen += _values(section["runs"], "cpu_cores", "background")
    seen += _values(doc["precheck"]["runs"]["precheck"], "cpu_cores", "background")
    if not seen:
        return {"median_cores": None, "max_cores": None, "warning": None}
    worst = max(seen)
    return {
        "median_cores": round(statistics.median(seen), 3),
        "max_cores": round(worst, 3),
        "warning": (f"other processes used up to {worst:.2f} cores during measured windows: figures are lower "
                    "and noisier than on a quiet machine") if worst > BACKGROUND_WARN else None,
    }


# --- the table ---------------------------------------------------------------------------


def _s(sp: dict[str, Any] | None, digits: int = 1) -> str:
    if not sp or sp.get("median") is None:
        return "—"
    if len(sp["runs"]) == 1:
        return f"{sp['median']:.{digits}f}"
    return f"{sp['median']:.{digits}f}  ({sp['min']:.{digits}f}–{sp['max']:.{digits}f})"


def _rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    acc, floor, pre, disp, mem, soap = (doc["acceptance"]["sqlite"], doc["floor"], doc["precheck"], doc["dispatch"],
                                        doc["memory"], doc["soap"])
    rows: list[tuple[str, str]] = []

    def row(label: str, value: str) -> None:
        rows.append((label, value))

    row("accepted applications/s (SQLite)", _s(acc["accepted_per_s"]))
    row("  p50 / p99 latency, ms", f"{_s(acc['p50_ms'])} / {_s(acc['p99_ms'])}")
    row("  gateway CPU per accepted application, ms", _s(acc["gateway_cpu_ms_per_application"], 2))
    row("  acceptance transaction (gateway metric), mean ms", _s(acc["store_commit_mean_ms"]))
    cores = acc["cores"]
    row("  cores used: gateway / sandbox / load / others",
        " / ".join(_s(cores.get(k), 2).split("  ")[0] for k in ("gateway", "sandbox", "load", "background")))
    row("  accepted/s while the dispatcher also runs", _s(disp["accepted_per_s_with_dispatcher"]))
    if doc["acceptance"].get("postgres"):
        pg = doc["acceptance"]["postgres"]
        row("accepted applications/s (PostgreSQL)", _s(pg["accepted_per_s"]))
        row("  p50 / p99 latency, ms", f"{_s(pg['p50_ms'])} / {_s(pg['p99_ms'])}")
        row("  gateway CPU per accepted application, ms", _s(pg["gateway_cpu_ms_per_application"], 2))
    row(f"bare fan-out floor, fan-outs/s (mean width {floor['mean_fanout_width']})", _s(floor["fanouts_per_s"]))
    row("  p50 / p99 latency, ms", f"{_s(floor['p50_ms'])} / {_s(floor['p99_ms'])}")
    ratio = doc["ratio_acceptance_to_floor"]
    row("acceptance / floor", _s({k: (v * 100 if isinstance(v, float) else v) for k, v in ratio.items()
                                  if k != "runs"} | {"runs": ratio["runs"]}) + " %")
    row(f"pre-check p50 / p99, ms (concurrency {pre['concurrency']})",
        f"{_s(pre['precheck_p50_ms'], 2)} / {_s(pre['precheck_p99_ms'], 2)}")
    row("  slowest department p50 / p99, ms", f"{_s(pre['slowest_p50_ms'], 2)} / {_s(pre['slowest_p99_ms'], 2)}")
    row("  gateway adds p50 / p99, ms", f"{_s(pre['added_p50_ms'], 2)} / {_s(pre['added_p99_ms'], 2)}")
    row(f"dispatch: item deliveries/s ({disp['applications_per_batch']} applications)", _s(disp["deliveries_per_s"]))
    for kind, k in disp["by_kind"].items():
        row(f"  {kind} ({', '.join(k['departments'] or [])}): items in the batch, their deliveries/s",
            f"{_s(k['items_per_batch'], 0)}, {_s(k['rate_per_s'])}")
        row("    accepted → final p50 / p90, s",
            f"{_s(k['accepted_to_final_p50_s'], 2)} / {_s(k['accepted_to_final_p90_s'], 2)}")
    row("  every item final after, s", _s(disp["all_final_s"], 2))
    row("  gateway CPU per delivery, ms", _s(disp["gateway_cpu_ms_per_delivery"], 2))
    row(f"peak RSS (VmHWM), {mem['sent_at_once']} sent at once ({mem['peak_in_flight']} seen in flight)",
        f"{mem['vmhwm_mb']:.1f} MB")
    row("SOAP adapter: calls/s, CPU ms/call", f"{_s(soap['adapter']['calls_per_s'], 0)}, "
                                               f"{_s(soap['adapter']['cpu_ms_per_call'], 3)}")
    row("raw templated POST + xmltodict: calls/s, CPU ms/call", f"{_s(soap['raw']['calls_per_s'], 0)}, "
                                                                 f"{_s(soap['raw']['cpu_ms_per_call'], 3)}")
    off = soap["offline_cpu_ms_per_call"]
    row("  offline build+parse, CPU ms/call: zeep adapter / raw",
        f"{off['adapter_build_and_parse']:.3f} / {off['raw_template_and_xmltodict']:.3f}")
    row("  zeep client construction, ms: first / later",
        f"{soap['client_construction_first_ms']:.1f} / {soap['client_construction_ms']:.1f}")
    return rows


def table(doc: dict[str, Any]) -> str:
    m, o = doc["machine"], doc["options"]
    rows = _rows(doc)
    width = max(len(r[0]) for r in rows) + 2
    lines = [
        f"Gateway benchmark — {m['nproc']} cores {m['cpu_model']}, Python {doc['software']['python']}, "
        f"auth disabled (default config)",
        f"concurrency {o['concurrency']}, {o['repeat']} × {o['duration']} s measured (+{o['warmup']} s warm-up); "
        "median (min–max)",
        f"CPU calibration {m.get('calibration_start')} → {m.get('calibration_end')} M loop iterations/s "
        f"(start → end); git {str(doc['code']['git_head'])[:12]}"
        + (f" + {doc['code']['uncommitted_paths']} uncommitted paths" if doc["code"]["uncommitted_paths"] else ""),
        "",
    ]
    lines += [f"{label:<{width}}{value}" for label, value in rows]
    lines += ["", "Targets"]
    for t in doc["targets"]:
        verdict = {True: "met", False: "NOT MET", None: "not judged"}[t["met"]]
        value = "—" if t["value"] is None else f"{t['value']}{'' if t['unit'] == '×' else ' '}{t['unit']}"
        lines.append(f"  {t['target']:<60} {value:>10}   {verdict}")
    prof = doc.get("profile") or {}
    if prof.get("skipped"):
        lines += ["", f"profile: skipped — {prof['skipped']}"]
    elif prof:
        lines += ["", "Profile (py-spy --gil: share of samples holding the GIL, by innermost known cost)"]
        for name, summary in prof.items():
            top = ", ".join(f"{c['name'].split(' (')[0]} {c['share_pct']:.0f} %" for c in summary["categories"][:6])
            lines.append(f"  {name:<11} {top}")
    bg = doc["background"]
    if bg.get("warning"):
        lines += ["", "warning: " + bg["warning"]]
    return "\n".join(lines)


def markdown(doc: dict[str, Any]) -> str:
    """The results and targets as Markdown tables, for docs/benchmarks.md."""
    lines = ["| measurement | median (min–max) |", "|---|---|"]
    for label, value in _rows(doc):
        indent = "↳ " * ((len(label) - len(label.lstrip())) // 2)
        lines.append(f"| {indent}{label.strip()} | {value} |")
    lines += ["", "| target | measured | limit | verdict | note |", "|---|---|---|---|---|"]
    for t in doc["targets"]:
        verdict = {True: "met", False: "**not met**", None: "not judged"}[t["met"]]
        measured = "—" if t["value"] is None else f"{t['value']} {t['unit']}"
        lines.append(f"| {t['target']} | {measured} | {t['limit']} {t['unit']} | {verdict} | {t['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.benchmark.report FILE [--markdown]``: print a document's table."""
    import json
    import sys

    args = argv if argv is not None else sys.argv[1:]
    with open(args[0], encoding="utf-8") as fh:
        doc = json.load(fh)
    print(markdown(doc) if "--markdown" in args else table(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
