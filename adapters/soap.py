"""SOAP 1.1/1.2 department endpoints: zeep builds and parses, aiohttp carries.

zeep's own transports are synchronous (requests) or httpx-based; both cost far more per
call than the shared aiohttp session (docs/decisions/0001). So zeep is used for what it
is good at — the WSDL, the envelope, the reply and faults — and the bytes go over aiohttp.
The client is built once per WSDL, from a local copy, when the adapter opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree
from zeep import Client, Settings
from zeep.exceptions import Fault, TransportError, XMLParseError, XMLSyntaxError
from zeep.helpers import serialize_object
from zeep.transports import Transport

from adapters.base import OutboundMessage, PermanentError, Reply, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.httperrors import classify_exception, classify_status

# Safe XML: no entity expansion, no external entities or DTDs, no huge trees.
_SETTINGS = Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)


@dataclass
class _HttpReply:
    """The slice of a requests.Response that zeep's reply processing reads."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]
    encoding: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)


class _OfflineTransport(Transport):  # type: ignore[misc]
    """Loads WSDL and schemas from local files only: start-up never reaches a department."""

    def load(self, url: str) -> bytes:
        if url.startswith(("http://", "https://")):
            raise PermanentError(f"WSDL import {url} is not a local copy; keep imported schemas beside the WSDL")
        return super().load(url)  # type: ignore[no-any-return]


class SoapAdapter:
    """Settings: ``wsdl`` (local path), ``address`` (overrides the WSDL's, often intranet,
    address); optional ``service``/``port``, ``transient_faults`` (fault codes a retry can cure).
    Operation options: ``soap_operation``.
    """

    kind = "soap"

    def __init__(self, name: str, settings: Mapping[str, Any], context: AdapterContext) -> None:
        for key in ("wsdl", "address"):
            if not isinstance(settings.get(key), str):
                raise ValueError(f"endpoint {name}: soap adapter needs {key}")
        self.name = name
        self._wsdl = Path(settings["wsdl"])
        if not self._wsdl.is_absolute():
            self._wsdl = context.base_dir / self._wsdl
        self._address = settings["address"]
        self._service = settings.get("service")
        self._port = settings.get("port")
        self._transient_faults = frozenset(settings.get("transient_faults", ()))
        self._session = context.session
        self._client: Client | None = None
        self._binding: Any = None

    async def open(self) -> None:
        # WSDL parsing is synchronous and slow: do it once, off the event loop.
        self._client = await asyncio.to_thread(self._build_client)
        if self._service and self._port:
            self._binding = self._client.bind(self._service, self._port)._binding
        else:
            self._binding = self._client.service._binding

    def _build_client(self) -> Client:
        return Client(str(self._wsdl), transport=_OfflineTransport(), settings=_SETTINGS)

    async def close(self) -> None:
        self._client = None

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        if self._client is None:
            raise TransientError(f"{self.name}: adapter not open")
        op_name = str(message.operation.options.get("soap_operation", ""))
        where = f"{self.name} {op_name}"
        try:
            operation = self._binding.get(op_name)
            envelope, headers = self._binding._create(
                op_name, (), dict(message.body), client=self._client, options={"address": self._address}
            )
        except (ValueError, TypeError, LookupError) as exc:
            raise PermanentError(f"{where}: message does not fit the WSDL: {exc}") from exc
        payload = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
        headers = {str(k): str(v) for k, v in headers.items()}
        headers["X-Delivery-Id"] = message.delivery_id
        try:
            async with self._session.post(
                self._address, data=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                content = await resp.read()
                status, resp_headers = resp.status, dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_exception(exc, where) from exc
        content_type = resp_headers.get("Content-Type", "")
        if "xml" not in content_type:
            # An HTML error page from a proxy is a transport problem, not a SOAP fault.
            error = classify_status(status, where, resp_headers.get("Retry-After")) if status != 200 else None
            raise error or UnknownOutcome(f"{where}: non-SOAP reply ({content_type or 'no type'})")
        try:
            result = self._binding.process_reply(
                self._client, operation, _HttpReply(status, content, resp_headers)
            )
        except Fault as exc:
            code = str(exc.code or "")
            detail = f"{where}: SOAP fault {code}: {exc.message}"
            transient = self._transient_faults | set(message.operation.options.get("transient_faults", ()))
            if any(code.endswith(t) for t in transient):
                raise TransientError(detail) from exc
            raise PermanentError(detail) from exc
        except (TransportError, XMLSyntaxError, XMLParseError, etree.XMLSyntaxError) as exc:
            error = classify_status(status, where, resp_headers.get("Retry-After"))
            raise error or UnknownOutcome(f"{where}: malformed SOAP reply") from exc
        body = _plain(serialize_object(result, dict))
        if not isinstance(body, dict):
            body = {_single_element(operation): body}  # zeep unwraps one-element replies: rewrap
        return Reply(body=body, status=status)


def _single_element(operation: Any) -> str:
    try:
        return str(operation.output.body.type.elements[0][0])
    except (AttributeError, IndexError, TypeError):
        return "result"


def _plain(value: Any) -> Any:
    """zeep's ordered dicts and objects → plain JSON-able data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
