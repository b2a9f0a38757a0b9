"""Shared state of one running sandbox (people, ledger, the HTTP session for callbacks)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import aiohttp

from sandbox.faults import Faults
from sandbox.people import Ledger, People


@dataclass
class SandboxState:
    people: People
    session: aiohttp.ClientSession
    decision_delay: float = 0.2
    ledger: Ledger = field(default_factory=Ledger)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    faults: dict[str, Faults] = field(default_factory=dict)
    callback_key: tuple[str, str] | None = None  # (app key, secret) hrss signs its callbacks with
    drop_callbacks: bool = False  # hrss decides but never calls back (reconciliation tests)
    rng: random.Random = field(default_factory=lambda: random.Random(4301))

    def faults_of(self, department: str) -> Faults:
        return self.faults.get(department) or Faults()
