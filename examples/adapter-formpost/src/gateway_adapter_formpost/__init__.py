"""A third-party adapter for the retirement gateway: form-post department systems.

The gateway finds it through the ``retirement_gateway.adapters`` entry point declared in
this package's ``pyproject.toml``; a department endpoint uses it with ``adapter = "formpost"``.
"""

from gateway_adapter_formpost.adapter import FormPostAdapter

__all__ = ["FormPostAdapter"]
