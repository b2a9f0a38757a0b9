"""Reading a py-spy profile of the gateway (``gateway bench --profile DIR``).

py-spy is an optional tool, not a dependency: ``pip install py-spy`` into the venv to use
``--profile``. It samples the gateway process from outside (no code change, no slowdown
of the measured process beyond the sampling), in py-spy's "raw" (collapsed-stack) format:
one line per distinct stack, ``frame;frame;… count``. This module turns that into the
share of busy samples spent under each category and function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Category: frames that put a sample in it. The innermost recognisable frame names the
# cost (JSON encoding under the store is JSON), except for owners whose whole work is one
# cost to fix: anything under a log call (its JSON rendering, masking, person tokens) is
# logging.
OWNERS = ("logging (structlog, masking, JSON lines)",)
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("schema validation (jsonschema)", ("jsonschema/", "referencing/", "rpds")),
    ("SOAP envelope/reply (zeep, lxml)", ("zeep/", "lxml", "adapters/soap.py")),
    ("logging (structlog, masking, JSON lines)", ("structlog/", "gateway/logs.py")),
    ("SQLite (writer and reader threads, commits)", ("gateway/store/sqlite", "sqlite3")),
    ("PostgreSQL (asyncpg)", ("asyncpg/",)),
    ("store SQL layer (gateway/store)", ("gateway/store/",)),
    ("JSON encode/decode", ("json/encoder.py", "json/decoder.py", "json/__init__.py")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("person tokens / signing (cryptography)", ("cryptography/",)),
    ("mapping & rules (gateway/mapping, domain)", ("gateway/mapping.py", "gateway/domain/", "gateway/transforms.py",
                                                   "gateway/messages.py")),
    ("validation rules (gateway/validation)", ("gateway/validation.py",)),
    ("outbound HTTP (aiohttp client)", ("aiohttp/client", "aiohttp/connector.py", "aiohttp/streams.py")),
    ("inbound HTTP (aiohttp server)", ("aiohttp/web", "aiohttp/http_", "aiohttp/_http")),
    ("event loop (asyncio)", ("asyncio/",)),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def parse_raw(lines: Iterable[str]) -> Counter[tuple[str, ...]]:
    """py-spy raw output → Counter of stacks (root first)."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _where(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m["file"]
    for marker in ("site-packages/", "python3.11/", "lib/python"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m['func']} ({file}{':' + m['line'] if m['line'] else ''})"


def categorise(stack: tuple[str, ...]) -> str:
    for name, markers in CATEGORIES:
        if name in OWNERS and any(mk in frame for frame in stack for mk in markers):
            return name
    for frame in reversed(stack):
        for name, markers in CATEGORIES:
            if any(mk in frame for mk in markers):
                return name
    return "other"


def summarise(stacks: Counter[tuple[str, ...]], top: int = 15) -> dict[str, Any]:
    """Shares of all samples: per category (innermost match), per function inclusive
    (on the stack anywhere) and self (the leaf)."""
    total = sum(stacks.values()) or 1
    cats: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for stack, n in stacks.items():
        cats[categorise(stack)] += n
        leaf[_where(stack[-1])] += n
        for frame in set(stack):
            inclusive[_where(frame)] += n

    def pct(c: Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"name": name, "share_pct": round(100 * n / total, 1)} for name, n in c.most_common(k)]

    gateway_inclusive = Counter({k: v for k, v in inclusive.items() if "(gateway/" in k or "(adapters/" in k})
    return {
        "samples": total,
        "categories": pct(cats, len(cats)),
        "gateway_functions_inclusive": pct(gateway_inclusive, top),
        "self": pct(leaf, top),
    }


def py_spy() -> str | None:
    """The py-spy binary beside this interpreter, or on PATH; None when not installed."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def start_recording(pid: int, duration: float, output: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    binary = py_spy()
    if binary is None:
        return None
    return subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--duration", str(max(int(duration), 1)), "--rate", str(rate),
         "--format", "raw", "--output", str(output), "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def finish_recording(proc: subprocess.Popen[bytes] | None, output: Path, timeout: float = 60) -> dict[str, Any] | None:
    if proc is None:
        return None
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if not output.exists():
        return None
    return summarise(parse_raw(output.read_text(encoding="utf-8", errors="replace").splitlines())) | {
        "raw": str(output)
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.benchmark.profile FILE.raw``: print the summary of a profile."""
    import json

    args = argv if argv is not None else sys.argv[1:]
    for path in args:
        print(json.dumps(summarise(parse_raw(Path(path).read_text(encoding="utf-8").splitlines())),
                         ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
