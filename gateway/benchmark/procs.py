"""The benchmark's processes: sandbox, gateway and load generator, each on its own.

Every process started here is stopped by the ``with`` block that started it (also on
Ctrl-C), and asks the kernel to send it SIGTERM if the benchmark itself dies, so no
server outlives a run. CPU time and peak memory are read from ``/proc/<pid>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.error import URLError
from urllib.request import urlopen

from gateway.config import ROOT, load_config

DEPTS = ("police", "hrss", "nhsa", "health", "justice", "hpf")  # the sandbox's port order
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A benchmark process did not start or a phase did not finish."""


# --- /proc ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # fields 14 and 15: utime, stime


def machine_cpu() -> dict[str, float]:
    """Machine-wide CPU seconds since boot from /proc/stat: busy (all but idle and iowait)
    and steal (time the hypervisor gave to someone else)."""
    with open("/proc/stat", encoding="ascii") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    steal = ticks[7] if len(ticks) > 7 else 0
    guest = sum(ticks[8:10])  # already counted in user/nice
    return {"busy": (sum(ticks) - guest - idle - steal) / _CLK_TCK, "steal": steal / _CLK_TCK}


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, e.g. ``VmHWM`` (peak RSS) or ``VmRSS``."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


# --- ports and children --------------------------------------------------------------------


def free_port_block(n: int = 6) -> int:
    """The first of ``n`` consecutive free loopback ports."""
    for _ in range(200):
        base = random.randint(20000, 40000)
        socks: list[socket.socket] = []
        try:
            for i in range(n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise BenchError("no block of free loopback ports")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this child when the benchmark dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: list[str], *, env: Mapping[str, str] | None = None, stdout: Any = subprocess.DEVNULL,
          stderr: IO[bytes] | int = subprocess.DEVNULL, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """A child in its own session (Ctrl-C reaches only the benchmark, which stops it in order)."""
    return subprocess.Popen(
        args, cwd=ROOT, env=dict(env) if env is not None else None, stdin=stdin, stdout=stdout, stderr=stderr,
        # preexec_fn is unsafe once threads exist; the benchmark starts children from its only thread.
        start_new_session=True, preexec_fn=_die_with_parent,
    )


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """SIGTERM, wait, then SIGKILL: the child is gone when this returns."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_DATABASE_URL", "GATEWAY_CONFIG")}
    return env | extra


# --- sandbox -------------------------------------------------------------------------------


@contextlib.contextmanager
def sandbox_process(workdir: Path) -> Iterator[tuple[int, int]]:
    """The six sandbox departments in their own process, zero decision delay.
    Yields (pid, first port); ports follow DEPTS."""
    base = free_port_block()
    log = open(workdir / "sandbox.log", "wb")  # closed in finally, after the sandbox has stopped
    proc = None
    try:
        proc = spawn(
            [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "sandbox", "--port-base", str(base),
             "--hpf-root", str(workdir / "hpf"), "--decision-delay", "0"],
            stdout=subprocess.PIPE, stderr=log, env=_clean_env(),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise BenchError(f"the sandbox did not start; see {workdir / 'sandbox.log'}")
        json.loads(line)  # the ports line: every department is listening
        yield proc.pid, base
    finally:
        stop(proc)
        if proc is not None and proc.stdout:
            proc.stdout.close()
        log.close()


# --- gateway -------------------------------------------------------------------------------


def write_config(workdir: Path, name: str, sandbox_base: int, port: int, workers: int) -> Path:
    """config/gateway.toml pointed at this sandbox and port, with ``workers`` dispatch workers
    (0: the dispatcher claims nothing). Checked by loading it back."""
    text = (ROOT / "config" / "gateway.toml").read_text(encoding="utf-8")
    for i in range(len(DEPTS)):
        text = text.replace(f"127.0.0.1:{18701 + i}", f"127.0.0.1:{sandbox_base + i}")
    text = re.sub(r"(?m)^port = \d+", f"port = {port}", text).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    text = re.sub(r"(?m)^workers = \d+", f"workers = {workers}", text)
    text = text.replace('"var/sandbox/hpf/', f'"{workdir / "hpf"}/').replace('"var/gateway/hpf/', f'"{workdir}/{name}-')
    path = workdir / f"{name}.toml"
    path.write_text(f'base_dir = "{ROOT}"\n' + text, encoding="utf-8")
    cfg = load_config(path)
    ports = {str(sandbox_base + i) for i in range(len(DEPTS))}
    for code, dept in cfg.departments.items():
        for ep_name, ep in dept.endpoints.items():
            where = str(ep.settings.get("base_url") or ep.settings.get("address") or ep.settings.get("inbox"))
            if not (any(f":{p}" in where for p in ports) or where.startswith(str(workdir))):
                raise BenchError(f"{path}: {code}.{ep_name} still points at {where}: config/gateway.toml changed shape")
    if cfg.port != port or cfg.workers != workers or cfg.auth.enabled:
        raise BenchError(f"{path}: port/workers/auth not as the benchmark needs (config/gateway.toml changed shape)")
    return path


class GatewayProcess:
    """``gateway serve`` in its own process (INFO logs, as in production, to a file)."""

    def __init__(self, workdir: Path, name: str, sandbox_base: int, database_url: str, workers: int) -> None:
        self.port = free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = write_config(workdir, name, sandbox_base, self.port, workers)
        self.database_url = database_url
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> GatewayProcess:
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = spawn(
                [sys.executable, "-m", "gateway.cli", "--log-level", "INFO", "serve", "--config", str(self.config)],
                env=_clean_env(GATEWAY_DATABASE_URL=self.database_url), stderr=log,
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"the gateway exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    with urlopen(self.url + "/readyz", timeout=2) as resp:
                        if resp.status == 200:
                            self.started_in = time.monotonic() - started
                            return self
                except (URLError, OSError):
                    time.sleep(0.1)
            raise BenchError(f"the gateway was not ready within 60 s; see {self.log_path}")
        except BaseException:
            stop(self.proc)
            raise

    def __exit__(self, *exc: object) -> None:
        stop(self.proc, timeout=30)


# --- load generator ------------------------------------------------------------------------


def run_load(spec: dict[str, Any], workdir: Path, timeout: float) -> dict[str, Any]:
    """One scenario in a fresh load-generator process (``python -m gateway.benchmark.load``):
    its own interpreter, event loop and CPU. The spec goes in on stdin, the result comes
    back as JSON on stdout."""
    with open(workdir / "load.log", "ab") as log:
        proc = spawn([sys.executable, "-m", "gateway.benchmark.load"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=log, env=_clean_env())
        try:
            out, _ = proc.communicate(json.dumps(spec).encode("utf-8"), timeout=timeout)
        except BaseException:
            stop(proc, timeout=5)
            raise
    if proc.returncode != 0:
        tail = (workdir / "load.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise BenchError(f"load generator ({spec.get('kind')}) exited with {proc.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(out)
    return result
