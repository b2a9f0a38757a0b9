"""The sandbox's synthetic people (platform-contract.md, "The sandbox's people file")."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PEOPLE = Path(__file__).with_name("people.json")


@dataclass
class People:
    by_id: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> People:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls({p["id_number"]: p for p in data["people"]})

    def section(self, id_number: str, department: str) -> dict[str, Any] | None:
        """The department's record of the person; None means "no record"."""
        person = self.by_id.get(id_number)
        return None if person is None else person.get(department)

    def decision(self, id_number: str, item: str) -> tuple[bool, str]:
        """How the department decides a submitted item: (approved, reason)."""
        person = self.by_id.get(id_number)
        if person is None:
            return False, "查无此人"
        raw = str(person.get("decisions", {}).get(item, "approve"))
        if raw.startswith("reject"):
            return False, raw.partition(":")[2] or "不予受理"
        return True, ""


@dataclass
class Ledger:
    """What each sandbox department received: one case per delivery id, and re-sends counted."""

    cases: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def record(self, department: str, delivery_id: str, item: str, request_id: str = "") -> bool:
        """Record a submission; True when it is new (a re-send returns False). ``request_id``:
        the X-Request-Id it came with, so tests can follow a platform request to here."""
        dept = self.cases.setdefault(department, {})
        case = dept.get(delivery_id)
        if case is not None:
            case["received"] += 1
            return False
        dept[delivery_id] = {"item": item, "received": 1, "decided": None, "received_at": time.time(),
                             "request_id": request_id}
        return True
