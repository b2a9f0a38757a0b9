"""Adapter kinds: the built-ins plus any found in the ``retirement_gateway.adapters``
entry-point group (a department's own package can add one without touching this code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from adapters.base import Adapter
from adapters.context import AdapterContext

ENTRY_POINT_GROUP = "retirement_gateway.adapters"
AdapterFactory = Callable[[str, Mapping[str, Any], AdapterContext], Adapter]


def builtin_kinds() -> dict[str, AdapterFactory]:
    from adapters.filedrop import FileDropAdapter
    from adapters.rest import RestAdapter
    from adapters.soap import SoapAdapter

    return {"rest": RestAdapter, "soap": SoapAdapter, "filedrop": FileDropAdapter}


class AdapterConflict(ValueError):
    """Two installed packages offer an adapter under the same name."""


def available_kinds() -> dict[str, AdapterFactory]:
    """Built-ins first (a plug-in cannot replace one); two plug-ins under one name are an
    error naming both, never a silent choice of whichever was found first."""
    kinds = builtin_kinds()
    sources: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in kinds and ep.name not in sources:
            continue  # a built-in name
        if ep.name in sources and sources[ep.name] != ep.value:
            raise AdapterConflict(f"adapter {ep.name!r} is offered by both {sources[ep.name]} and {ep.value}")
        sources[ep.name] = ep.value
        kinds[ep.name] = ep.load()
    return kinds


def create_adapter(kind: str, name: str, settings: Mapping[str, Any], context: AdapterContext) -> Adapter:
    kinds = available_kinds()
    if kind not in kinds:
        raise ValueError(f"endpoint {name}: unknown adapter {kind!r}; available: {', '.join(sorted(kinds))}")
    return kinds[kind](name, settings, context)
