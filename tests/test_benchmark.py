"""The benchmark's building blocks at a tiny size: every field of the document is there with
a sane type. Nothing here asserts a speed (a loaded CI machine must not fail a test)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from gateway.benchmark import profile
from gateway.benchmark.stats import latency_summary, percentile, spread
from gateway.cli import main

Number = int | float


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert math.isnan(percentile([], 50))


def test_spread_is_median_with_min_and_max_and_skips_missing_runs() -> None:
    assert spread([3.0, 1.0, 2.0, None]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": [3.0, 1.0, 2.0]}  # type: ignore[list-item]
    assert spread([])["median"] is None
    summary = latency_summary([0.001, 0.002, 0.003])
    assert summary["n"] == 3 and summary["p50_ms"] == 2.0


def test_profile_summary_names_the_innermost_known_cost() -> None:
    raw = [
        "main (gateway/cli.py:178);schema_errors (gateway/validation.py:87);descend (jsonschema/validators.py:431) 3",
        "main (gateway/cli.py:178);_dumps (gateway/logs.py:65);iterencode (json/encoder.py:258) 1",
    ]
    summary = profile.summarise(profile.parse_raw(raw))
    shares = {c["name"]: c["share_pct"] for c in summary["categories"]}
    assert summary["samples"] == 4
    assert shares["schema validation (jsonschema)"] == 75.0
    assert shares["logging (structlog, masking, JSON lines)"] == 25.0  # JSON inside a log call is logging


def _spread_ok(value: Any) -> None:
    assert set(value) == {"median", "min", "max", "runs"}, value
    assert isinstance(value["median"], Number) and value["min"] <= value["median"] <= value["max"], value
    assert all(isinstance(r, Number) for r in value["runs"])


def test_quick_bench_writes_every_field_with_sane_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A real but tiny run: sandbox, gateway and load generator in their own processes."""
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)  # SQLite only: keep it small
    out = tmp_path / "bench.json"
    code = main(["--log-level", "WARNING", "bench", "--quick", "--duration", "0.5", "--warmup", "0.2",
                 "--repeat", "1", "--dispatch-batch", "8", "--in-flight", "16", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Targets" in printed and "accepted applications/s" in printed
    doc = json.loads(out.read_text(encoding="utf-8"))

    for key in ("schema_version", "started_at", "elapsed_s", "command", "options", "machine", "software", "code",
                "auth", "acceptance", "floor", "ratio_acceptance_to_floor", "precheck", "dispatch", "memory", "soap",
                "targets", "background", "profile"):
        assert key in doc, key
    assert doc["auth"]["enabled"] is False
    assert isinstance(doc["machine"]["nproc"], int) and isinstance(doc["machine"]["cpu_model"], str)
    assert all(isinstance(doc["machine"][k], Number) for k in ("calibration_start", "calibration_end"))
    assert isinstance(doc["software"]["python"], str) and doc["software"]["aiohttp"]

    acc = doc["acceptance"]["sqlite"]
    assert doc["acceptance"]["postgres"] is None
    for key in ("accepted_per_s", "p50_ms", "p99_ms", "gateway_cpu_ms_per_application", "store_commit_mean_ms"):
        _spread_ok(acc[key])
    assert acc["statuses"].get("202", 0) > 0 and set(acc["statuses"]) == {"202"}, acc["statuses"]
    assert {"gateway", "sandbox", "load", "background"} <= set(acc["cores"])

    _spread_ok(doc["floor"]["fanouts_per_s"])
    _spread_ok(doc["ratio_acceptance_to_floor"])
    assert 3 <= doc["floor"]["mean_fanout_width"] <= 6

    pre = doc["precheck"]
    for key in ("precheck_p50_ms", "precheck_p99_ms", "slowest_p50_ms", "slowest_p99_ms", "added_p50_ms",
                "added_p99_ms"):
        _spread_ok(pre[key])
    assert set(pre["slowest_departments"]) <= {"police", "hrss", "nhsa", "health", "justice", "hpf"}

    disp = doc["dispatch"]
    assert disp["all_final_every_run"] is True
    _spread_ok(disp["deliveries_per_s"])
    assert set(disp["by_kind"]) <= {"rest", "soap", "filedrop"} and "rest" in disp["by_kind"]
    for kind in disp["by_kind"].values():
        _spread_ok(kind["rate_per_s"])

    mem = doc["memory"]
    assert mem["accepted"] == mem["sent_at_once"] == 16
    assert isinstance(mem["vmhwm_mb"], Number) and mem["vmhwm_mb"] > 0

    soap = doc["soap"]
    for path in ("adapter", "raw"):
        _spread_ok(soap[path]["calls_per_s"])
        _spread_ok(soap[path]["cpu_ms_per_call"])
        assert soap[path]["failed"] == 0
    assert soap["cpu_ratio_adapter_to_raw"] > 0
    assert soap["client_construction_first_ms"] > 0
    assert set(soap["offline_cpu_ms_per_call"]) == {"adapter_build_and_parse", "raw_template_and_xmltodict"}

    assert [t["target"][:10] for t in doc["targets"]] == ["acceptance", "pre-check ", "SOAP adapt", "RSS ≤ 200 "]
    for t in doc["targets"]:
        assert t["met"] in (True, False, None) and isinstance(t["limit"], Number)
    assert doc["targets"][3]["met"] is None  # 16 at once is not 1,000: not judged
