"""Real gateway and sandbox processes for the crash and replica tests."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from gateway.benchmark.procs import free_port_block
from tests.conftest import ROOT

DEPTS = ("police", "hrss", "nhsa", "health", "justice", "hpf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    def __init__(self, workdir: Path, faults: dict[str, Any] | None = None) -> None:
        self.base = free_port_block()
        self.hpf = workdir / "hpf"
        extra = []
        if faults:
            path = workdir / "faults.json"
            path.write_text(json.dumps(faults), encoding="utf-8")
            extra = ["--faults", str(path)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "sandbox", "--port-base", str(self.base),
             "--hpf-root", str(self.hpf), "--decision-delay", "0.05", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdout is not None
        json.loads(self.proc.stdout.readline())  # the ports line: the sandbox is up

    def port(self, dept: str) -> int:
        return self.base + DEPTS.index(dept)

    def cases(self, dept: str) -> dict[str, Any]:
        with urlopen(f"http://127.0.0.1:{self.port(dept)}/_sandbox/cases", timeout=5) as resp:
            return dict(json.loads(resp.read()))

    def set_faults(self, dept: str, faults: dict[str, Any]) -> None:
        request = Request(f"http://127.0.0.1:{self.port(dept)}/_sandbox/faults", data=json.dumps(faults).encode(),
                          method="PUT", headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def gateway_config(workdir: Path, sandbox: Sandbox, port: int, database_url: str, name: str) -> Path:
    """config/gateway.toml pointed at this sandbox, this port and this store."""
    text = (ROOT / "config" / "gateway.toml").read_text(encoding="utf-8")
    for i, dept in enumerate(DEPTS):
        text = text.replace(f"127.0.0.1:{18701 + i}", f"127.0.0.1:{sandbox.port(dept)}")
    text = text.replace("port = 8080", f"port = {port}").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    text = re.sub(r'url = "sqlite:///var/gateway.db".*', f'url = "{database_url}"', text)
    text = text.replace('"var/sandbox/hpf/', f'"{sandbox.hpf}/').replace('"var/gateway/hpf/', f'"{workdir}/{name}-')
    text = text.replace("lease_seconds = 30", "lease_seconds = 2")
    text = f'base_dir = "{ROOT}"\n' + text
    path = workdir / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Gateway:
    def __init__(self, config: Path, port: int, database_url: str) -> None:
        self.config, self.port, self.url = config, port, f"http://127.0.0.1:{port}"
        self.env = os.environ | {"GATEWAY_DATABASE_URL": database_url}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "serve", "--config", str(self.config)],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gateway did not start")

    def terminate(self, timeout: float) -> int:
        """SIGTERM, as an orchestrator stops a replica; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
