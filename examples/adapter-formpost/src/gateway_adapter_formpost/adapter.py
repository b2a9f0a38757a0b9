"""``formpost``: department systems that take HTML-form POSTs and answer lines or JSON."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Any

import aiohttp

# The gateway is installed next to this package: its error tree and its one mapping of
# aiohttp failures are reused, so this adapter classifies exactly as the built-ins do.
from adapters.base import OutboundMessage, PermanentError, Reply, TransientError, UnknownOutcome
from adapters.context import AdapterContext
from adapters.httperrors import classify_exception, classify_status

from gateway_adapter_formpost.codec import (
    REPLY_MODES,
    FormError,
    ReplyFormatError,
    decode_reply,
    encode_form,
    form_fields,
)

SETTINGS = frozenset({"base_url", "encoding", "delivery_id_field", "reply", "headers"})
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-auth-token", "x-token"})
_OWN_HEADERS = frozenset({"idempotency-key", "content-type"})


class FormPostAdapter:
    """One form-post department endpoint.

    Settings (the endpoint's table in the gateway configuration):

    - ``base_url`` (required): ``http://`` or ``https://`` address of the system.
    - ``encoding`` (``utf-8``): charset of the form, and of replies that name none.
    - ``delivery_id_field``: a form field that also carries the delivery id (e.g. ``lsh``).
    - ``reply`` (``auto``): ``json``, ``lines`` (``key=value``) or ``auto`` (decide per reply).
    - ``headers``: fixed, non-secret headers (a system code the department assigned).
      A credential never goes in configuration: the adapter refuses ``Authorization``
      and similar headers; read a secret from an environment variable instead.

    Operation options (from the mapping file): ``path``, appended to ``base_url``.
    The delivery id always travels as the ``Idempotency-Key`` header too.
    """

    kind = "formpost"

    def __init__(self, name: str, settings: Mapping[str, Any], context: AdapterContext) -> None:
        # Check everything now: a typo stops the gateway at start-up, naming the endpoint.
        unknown = set(settings) - SETTINGS
        if unknown:
            raise ValueError(f"endpoint {name}: formpost adapter has no setting {', '.join(sorted(unknown))}")
        base_url = settings.get("base_url")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {name}: formpost adapter needs base_url = 'http(s)://…'")
        encoding = str(settings.get("encoding", "utf-8"))
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"endpoint {name}: unknown encoding {encoding!r}") from None
        reply = str(settings.get("reply", "auto"))
        if reply not in REPLY_MODES:
            raise ValueError(f"endpoint {name}: reply must be one of {', '.join(REPLY_MODES)}")
        headers = {str(k): str(v) for k, v in dict(settings.get("headers", {})).items()}
        if _OWN_HEADERS & {h.lower() for h in headers}:
            raise ValueError(f"endpoint {name}: Idempotency-Key and Content-Type are set by the adapter")
        if _CREDENTIAL_HEADERS & {h.lower() for h in headers}:
            raise ValueError(f"endpoint {name}: a header that carries a credential does not belong in configuration")
        id_field = settings.get("delivery_id_field")
        if id_field is not None and (not isinstance(id_field, str) or not id_field):
            raise ValueError(f"endpoint {name}: delivery_id_field must be a field name")

        self.name = name
        self._base_url = base_url.rstrip("/")
        self._encoding = encoding
        self._reply = reply
        self._headers = headers
        self._id_field: str | None = id_field
        # The gateway's one shared session: pooled, no cookies, closed by the gateway.
        self._session = context.session

    async def open(self) -> None:
        """Nothing to prepare. Never contact the department here: one system that is
        down must not stop the gateway from starting."""
        return None

    async def close(self) -> None:
        return None  # the shared session belongs to the gateway

    async def call(self, message: OutboundMessage, timeout: float) -> Reply:
        """POST the message as a form; return the decoded reply or raise a classified error."""
        where = f"{self.name} {message.operation.name}"
        fields = self._fields(message, where)
        try:
            data = encode_form(fields, self._encoding)
        except FormError as exc:
            raise PermanentError(f"{where}: {exc}") from exc
        headers = {
            **self._headers,
            "Idempotency-Key": message.delivery_id,
            "Content-Type": f"application/x-www-form-urlencoded; charset={self._encoding}",
            "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
        }
        url = self._base_url + str(message.operation.options.get("path", ""))
        try:
            async with self._session.post(
                url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                raw = await resp.read()
                error = classify_status(resp.status, where, resp.headers.get("Retry-After"))
                if error is not None:
                    raise error
                content_type, charset = resp.content_type, resp.charset or self._encoding
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise classify_exception(exc, where) from exc
        try:
            body = decode_reply(raw, content_type, charset, self._reply)
        except ReplyFormatError as exc:
            if message.operation.name == "submit":
                # It arrived and was answered, but we cannot tell how: the re-send carries
                # the same delivery id, so the department recognises it.
                raise UnknownOutcome(f"{where}: {exc}") from exc
            raise TransientError(f"{where}: {exc}") from exc
        return Reply(body=body, status=resp.status)

    def _fields(self, message: OutboundMessage, where: str) -> list[tuple[str, str]]:
        try:
            fields = list(form_fields(message.body))
        except FormError as exc:
            raise PermanentError(f"{where}: {exc}") from exc
        if self._id_field is not None:
            fields = [(k, v) for k, v in fields if k != self._id_field]
            fields.append((self._id_field, message.delivery_id))
        return fields
