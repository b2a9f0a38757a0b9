"""The closed registry of value transforms a mapping file may use.

Each transform is ``(value, arg, tables) -> value``. Adding one means adding it here,
with a line in docs/onboarding.md; mapping files cannot run code.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

Tables = Mapping[str, Mapping[str, str]]
Transform = Callable[[Any, Any, Tables], Any]


class TransformError(ValueError):
    pass


def _date(value: Any, fmt: Any, _: Tables) -> Any:
    """ISO date (or datetime) → the department's format, e.g. ``%Y%m%d``."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed: date = (
            datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        )
    else:
        parsed = value
    return parsed.strftime(str(fmt))


def _code(value: Any, table: Any, tables: Tables) -> Any:
    """Unified code → department code through a named code table."""
    if value is None:
        return None
    codes = tables[str(table)]
    key = str(value)
    if key not in codes:
        # The value is not repeated: a code table may be applied to a person's data.
        raise TransformError(f"code table {table!r} has no entry for this value")
    return codes[key]


def _const(_: Any, arg: Any, __: Tables) -> Any:
    return arg


def _mask(value: Any, keep: Any, _: Tables) -> Any:
    """Keep the first and last ``keep`` characters (for departments that want a masked echo)."""
    if value is None:
        return None
    s, k = str(value), int(keep)
    return s if len(s) <= 2 * k else s[:k] + "*" * (len(s) - 2 * k) + s[-k:]


def _base64(value: Any, _: Any, __: Tables) -> Any:
    if value is None:
        return None
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def _upper(value: Any, _: Any, __: Tables) -> Any:
    return None if value is None else str(value).upper()


def _string(value: Any, _: Any, __: Tables) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


TRANSFORMS: dict[str, Transform] = {
    "date": _date,
    "code": _code,
    "const": _const,
    "mask": _mask,
    "base64": _base64,
    "upper": _upper,
    "string": _string,
}
