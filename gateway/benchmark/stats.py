"""Percentiles of one run and medians over repetitions, with their spread."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear between the closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50/p90/p99/max in milliseconds of one run's latencies."""
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p90_ms": round(percentile(seconds, 90) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3) if seconds else math.nan,
    }


def spread(runs: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median over repetitions with min–max: ``{"median", "min", "max", "runs"}``."""
    clean = [float(r) for r in runs if r is not None and not math.isnan(r)]
    if not clean:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {
        "median": round(statistics.median(clean), digits),
        "min": round(min(clean), digits),
        "max": round(max(clean), digits),
        "runs": [round(r, digits) for r in clean],
    }


def field_spread(runs: Sequence[dict[str, Any]], key: str, digits: int = 3) -> dict[str, Any]:
    """``spread`` of one numeric field across a list of per-run dicts."""
    return spread([r[key] for r in runs if r.get(key) is not None], digits)
