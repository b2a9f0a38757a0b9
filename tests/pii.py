"""The synthetic personal data the suite uses, and a scanner for it in any text."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def personal_values() -> frozenset[str]:
    values: set[str] = set()
    people = json.loads((ROOT / "sandbox" / "people.json").read_text(encoding="utf-8"))["people"]
    for p in people:
        values.add(p["id_number"])
        values.add(p["name"])
        values.update((p.get("hpf") or {}).get("bank_cards", []))
    apps = json.loads((ROOT / "sandbox" / "applications.json").read_text(encoding="utf-8"))
    for a in apps:
        values.update({a["applicant"]["phone"], a["applicant"].get("address", "")})
        values.add((a.get("bank_card") or {}).get("number", ""))
        values.add((a.get("delivery") or {}).get("address", ""))
    return frozenset(v for v in values if v and len(v) >= 2)


def leaks(text: str) -> list[str]:
    """Personal values found unmasked in ``text`` (shown masked, so the report leaks nothing)."""
    found = [v for v in personal_values() if v in text]
    return [v[:1] + "*" * (len(v) - 2) + v[-1:] for v in found]
