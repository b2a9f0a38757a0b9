"""SOAP 1.1/1.2 department endpoints: zeep builds and parses, aiohttp carries.

zeep's own transports are synchronous (requests) or httpx-based; both cost far more per
call than the shared aiohttp session (docs/decisions/0001). So zeep is used for what it
is good at — the WSDL, the envelope, the reply's values — and the bytes go over aiohttp.
The client is built once per adapter, from local files (adapters/wsdlfiles.py), off the
event loop, when the adapter opens; every call reuses it.

Endpoint settings:

=====================  ======================================================================
``wsdl``               local path of the WSDL copy; its imports and includes beside it
``address``            where calls go; always wins over the WSDL's (often intranet) address,
                       which is never contacted
``service``/``port``   which service and port of the WSDL (default: the first); a WSDL that
                       has SOAP 1.1 and 1.2 ports picks the version here
``transient_faults``   fault codes a retry can cure, e.g. ``["Server"]`` for "系统繁忙"
auth and TLS           ``token_env``…, ``hmac_key_env``…, ``client_cert``… — adapters/auth.py
=====================  ======================================================================

Operation options (keys of ``[operations.<op>]`` in the mapping):

=====================  ======================================================================
``soap_operation``     required: the WSDL operation (document/literal or rpc, any style)
``transient_faults``   more fault codes a retry can cure, for this operation only
``soap_params``        constant parameters added to every call, e.g. a transaction code
                       ``{ in0 = "QRY001" }`` beside the XML string
``xml_in``             the string parameter that carries business XML (``arg0``, ``in0``,
                       ``xml``…): the mapped body is rendered as XML text (xmltodict) and
                       passed as that one parameter
``xml_root``           root element of that XML (default: the body's single top-level key)
``xml_declaration``    start the XML with ``<?xml version="1.0" encoding="UTF-8"?>`` (true)
``xml_out``            the reply's string element that carries business XML (``return``,
                       ``invokeReturn``…): it is parsed (no DTD, no entities) and the reply
                       body becomes that document, root included: ``{"response": {...}}``
``xml_force_list``     element names in that XML that are always lists
=====================  ======================================================================

How a reply is judged, in order:

1. Transport failures (refused, reset, timeout, TLS): adapters/httperrors.py.
2. Not SOAP — an empty body, an HTML page from a reverse proxy, text — is a transport
   error by HTTP status: 5xx/429 transient, 4xx/3xx permanent, and a 2xx is a malformed
   reply (TransientError for a query, UnknownOutcome for a submission). Such a body is
   never taken for a fault.
3. XML that declares a DTD (entity bombs, external entities): PermanentError, nothing
   expanded. A department does not send one; a person has to look.
4. A SOAP fault, 1.1 or 1.2 (adapters/soapfaults.py): TransientError when its code or a
   subcode is in ``transient_faults``, else PermanentError; the detail holds the code and
   a short, masked reason.
5. Otherwise zeep reads the values; a reply that does not fit the WSDL is malformed.
   ``Reply.body`` holds them by name: the children of the response element (document
   style) or the output parts (rpc), e.g. ``{"receiptNo": "WJ1"}`` or
   ``{"invokeReturn": "<response>…"}``, however many there are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import zeep.exceptions
from lxml import etree
from yarl import URL
from zeep import Client, Settings
from zeep.helpers import serialize_object

from adapters.auth import AuthConfig, OutboundAuth, refuse_unknown
from adapters.base import OutboundMessage, PermanentError, Reply, TransientError
from adapters.context import AdapterContext, trace_headers
from adapters.httperrors import classify_exception, classify_status, malformed_reply
from adapters.safexml import NotXml, UnsafeXml, dict_to_xml_text, parse_document, starts_like_envelope
from adapters.safexml import xml_text_to_dict as _xml_text_to_dict
from adapters.soapfaults import ENVELOPES, find_fault
from adapters.wsdlfiles import OfflineTransport, RemoteSchemaError
from gateway.logs import mask_text

# WSDL loading: no DTDs or entities; network access is refused by OfflineTransport (which
# also serves the bundled well-known schemas, so zeep's own external check stays off).
_SETTINGS = Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=False)
SETTINGS = frozenset({"wsdl", "address", "service", "port", "transient_faults"})
_XML_MEDIA = ("text/xml", "application/soap+xml", "application/xml")


class SoapAdapter:
    """A department's SOAP endpoint (settings and options: see the module docstring)."""

    kind = "soap"

    def __init__(self, name: str, settings: Mapping[str, Any], context: AdapterContext) -> None:
        for key in ("wsdl", "address"):
            if not isinstance(settings.get(key), str):
                raise ValueError(f"endpoint {name}: soap adapter needs {key}")
        self.name = name
        self._wsdl = Path(settings["wsdl"])
        if not self._wsdl.is_absolute():
            self._wsdl = context.base_dir / self._wsdl
        self._address = URL(settings["address"])
        self._tls = self._address.scheme == "https"
        self._service = settings.get("service")
        self._port = settings.get("port")
        self._transient_faults = frozenset(str(c) for c in settings.get("transient_faults", ()))
        self._auth_config = AuthConfig.from_settings(name, settings, context.base_dir, settings["address"])
        refuse_unknown(name, "soap", settings, SETTINGS)
        if not self._wsdl.is_file():  # found by check-config and the admin API, not at first use
            raise ValueError(f"endpoint {name}: wsdl {settings['wsdl']} is not a file (keep a local copy in config/)")
        self._auth: OutboundAuth | None = None
        self._session = context.session
        self._client: Client | None = None
        self._binding: Any = None

    async def open(self) -> None:
        if self._client is not None:
            return
        auth = self._auth_config.open()
        # WSDL parsing is synchronous and slow: do it once, off the event loop.
        try:
            client = await asyncio.to_thread(self._build_client)
            binding = client.bind(self._service, self._port)._binding
        except RemoteSchemaError as exc:
            raise PermanentError(
                f"{self.name}: {self._wsdl.name} refers to {exc.url}, which is not a local file; "
                "save that document beside the WSDL and point the import's location at the copy "
                "(the gateway never fetches a WSDL or schema from the network)"
            ) from exc
        except (OSError, etree.XMLSyntaxError, zeep.exceptions.Error, ValueError, LookupError) as exc:
            raise PermanentError(f"{self.name}: cannot load WSDL {self._wsdl}: {type(exc).__name__}: {exc}") from exc
        self._auth, self._client, self._binding = auth, client, binding

    def _build_client(self) -> Client:
        return Client(str(self._wsdl), transport=OfflineTransport(), settings=_SETTINGS)

    async def close(self) -> None:
        self._client = self._binding = self._auth = None

    @property
    def soap_version(self) -> str:
        """``1.1`` or ``1.2``, from the bound port (after open)."""
        return "1.2" if self._binding is not None and "soap12" in type(self._binding).__name__.lower() else "1.1"

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        if self._client is None or self._auth is None:
            raise TransientError(f"{self.name}: adapter not open")
        options = message.operation.options
        op_name = str(options.get("soap_operation") or "")
        where = f"{self.name} {op_name or message.operation.name}"
        if not op_name:
            raise PermanentError(f"{where}: the mapping names no soap_operation")
        try:
            operation = self._binding.get(op_name)
        except ValueError as exc:
            raise PermanentError(f"{where}: the WSDL has no operation {op_name}") from exc
        try:
            args = _arguments(message.body, options)
            envelope, headers = self._binding._create(
                op_name, (), args, client=self._client, options={"address": str(self._address)}
            )
        except (ValueError, TypeError, LookupError, zeep.exceptions.Error) as exc:
            # zeep names the element; a value in the text (an ID number that is no int) is masked.
            raise PermanentError(f"{where}: message does not fit the WSDL: {mask_text(str(exc))}") from exc
        payload = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
        headers = {str(k): str(v) for k, v in headers.items()}
        headers["X-Delivery-Id"] = message.delivery_id
        headers.update(trace_headers())
        headers |= self._auth.headers("POST", self._address.raw_path_qs, payload)
        try:
            async with self._session.post(
                self._address, data=payload, headers=headers, ssl=self._auth.ssl_param, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                content = await resp.read()
                status, content_type = resp.status, resp.headers.get("Content-Type", "")
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            raise classify_exception(exc, where, tls=self._tls) from exc
        transient = self._transient_faults | {str(c) for c in options.get("transient_faults", ())}
        body = self._read(operation, message.operation.name, where, transient, status, content_type, content,
                          retry_after)
        if options.get("xml_out"):
            body = _xml_out(body, options, message.operation.name, where, status)
        return Reply(body=body, status=status)

    def _read(
        self, operation: Any, op: str, where: str, transient: frozenset[str], status: int, content_type: str,
        content: bytes, retry_after: str | None,
    ) -> dict[str, Any]:
        media = content_type.partition(";")[0].strip().lower()
        envelope = None
        xml_media = media in _XML_MEDIA or (media.endswith("+xml") and media != "application/xhtml+xml")
        if content.strip() and (xml_media or starts_like_envelope(content)):
            try:
                root = parse_document(content)
            except UnsafeXml as exc:
                raise PermanentError(f"{where}: reply refused: it declares a DTD (nothing was expanded); "
                                     "the request may have been processed", status=status) from exc
            except NotXml:
                root = None
            if root is not None and etree.QName(root).localname == "Envelope" \
                    and etree.QName(root).namespace in ENVELOPES:
                envelope = root
        if envelope is None:
            # A proxy's error page, an empty body, text: judged by the HTTP status alone.
            error = classify_status(status, where, retry_after)
            raise error or malformed_reply(op, where, f"non-SOAP reply ({media or 'no type'}, HTTP {status})", status)
        fault = find_fault(envelope)
        if fault is not None:
            detail = f"{where}: {fault.summary()}"
            if fault.matches(transient):
                raise TransientError(detail, status=status)
            raise PermanentError(detail, status=status)
        error = classify_status(status, where, retry_after)
        if error is not None:
            raise error
        try:
            return _reply_values(operation, envelope)
        except (zeep.exceptions.Error, ValueError, TypeError, LookupError, AttributeError) as exc:
            raise malformed_reply(op, where, f"reply does not fit the WSDL ({type(exc).__name__})", status) from exc


def _arguments(body: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The operation's parameters: the mapped body, or one XML string built from it."""
    params = dict(options.get("soap_params") or {})
    xml_in = options.get("xml_in")
    if not xml_in:
        return {**params, **body}
    text = dict_to_xml_text(body, options.get("xml_root"), bool(options.get("xml_declaration", True)))
    return {**params, str(xml_in): text}


def _xml_out(body: Mapping[str, Any], options: Mapping[str, Any], op: str, where: str, status: int) -> dict[str, Any]:
    name = str(options["xml_out"])
    text = body.get(name)
    if not isinstance(text, str):
        raise malformed_reply(op, where, f"reply has no XML string in {name}", status)
    try:
        return _xml_text_to_dict(text, options.get("xml_force_list") or ())
    except UnsafeXml as exc:
        raise PermanentError(f"{where}: reply refused: the XML in {name} declares a DTD (nothing was expanded); "
                             "the request may have been processed", status=status) from exc
    except NotXml as exc:
        raise malformed_reply(op, where, f"the XML in {name} is not well-formed", status) from exc


def _reply_values(operation: Any, envelope: etree._Element) -> dict[str, Any]:
    """The reply's values by name: the response wrapper's children (document/literal) or
    the output parts (rpc). zeep's own ``process_reply`` would unwrap a one-child reply to
    the bare child, so the mapping's paths would depend on how many children a reply has;
    this reads one level below it (zeep 4.x message internals, pinned ``<5``)."""
    output = operation.output
    if output is None:  # a one-way operation
        return {}
    if envelope.tag != f"{{{operation.nsmap['soap-env']}}}Envelope":
        raise zeep.exceptions.XMLSyntaxError(f"expected a SOAP {operation.nsmap['soap-env']} envelope")
    body = envelope.find("soap-env:Body", namespaces=output.nsmap)
    if body is None:
        raise zeep.exceptions.XMLSyntaxError("the envelope has no Body")
    values = output.envelope(**output._deserialize_body(body)).body
    plain = _plain(serialize_object(values, dict))
    return plain if isinstance(plain, dict) else {}


def _plain(value: Any) -> Any:
    """zeep's ordered dicts and objects → plain JSON-able data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
