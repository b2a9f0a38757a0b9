"""What the platform reads about an application: the GET body, also POSTed to callback_url."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.store.models import StoredApplication

# China Standard Time, the platform's own clock (its submitted_at values carry +08:00),
# whatever zone the gateway's host is set to.
CST = timezone(timedelta(hours=8), "CST")


def application_view(stored: StoredApplication) -> dict[str, Any]:
    """The GET body (platform-contract.md, Responses)."""
    return {
        "application_no": stored.application_no,
        "initiating_item": stored.initiating_item,
        "status": stored.status,
        "items": [
            {
                "item": i["item"],
                "department": i["department"],
                "mode": i["mode"],
                "status": i["status"],
                "reason_code": i["reason_code"],
                "message": i["message"],
                "delivery": i["delivery_id"],
                "updated_at": datetime.fromtimestamp(i["updated_at"], CST).isoformat(timespec="seconds"),
            }
            for i in stored.items
        ],
    }
