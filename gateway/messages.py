"""The unified context a mapping reads from: the application, one item, its delivery id."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any


def delivery_id_for(application_no: str, item: str) -> str:
    """Stable per (application, item) and the same on every attempt: departments de-duplicate by it.

    Derived, not random, so even a lost write cannot give one item two ids. 32 hex chars fit
    every department's serial-number field and are safe as a file name.
    """
    return "D" + hashlib.sha256(f"{application_no}\x1f{item}".encode()).hexdigest()[:31].upper()


def query_id() -> str:
    return "Q" + uuid.uuid4().hex[:31].upper()


def build_context(
    body: Mapping[str, Any],
    *,
    item: str | None,
    delivery_id: str,
    callback_url: str | None = None,
    retirement_approval: str | None = None,
) -> dict[str, Any]:
    return {
        "application": {**body, "early_reason": body.get("early_retirement_reason")},
        "applicant": body.get("applicant", {}),
        "materials": {m["code"]: m for m in body.get("materials", [])},
        "item": item,
        "delivery_id": delivery_id,
        "callback_url": callback_url,
        "retirement_approval": retirement_approval,
    }
