"""XML from departments, read safely: no DTD, no entity, no network, no huge trees.

Two readers share one rule — a reply that declares a DTD (the carrier of "billion laughs"
entity bombs and of external entities such as ``file:///etc/passwd``) is refused, never
expanded:

- ``parse_document``: bytes → lxml root, for SOAP envelopes;
- ``xml_text_to_dict``: the business XML a department returns *inside a string element*
  → dict (xmltodict), for the ``xml_out`` operation option.

``dict_to_xml_text`` is the way back (the ``xml_in`` operation option).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from xml.parsers import expat

import xmltodict
from lxml import etree


class UnsafeXml(ValueError):
    """The document declares a DTD or entities: refused without expanding anything."""


class NotXml(ValueError):
    """The bytes are not a well-formed XML document."""


def _parser() -> etree.XMLParser:
    # One per document: lxml parsers are cheap and not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )


def parse_document(content: bytes) -> etree._Element:
    """Parse bytes into a root element; UnsafeXml for a DTD, NotXml when not well-formed."""
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        raise NotXml(str(exc)) from exc
    if root is None:
        raise NotXml("empty document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml("the document declares a DTD")
    return root


# A SOAP envelope served as text/html or text/plain (old Java/.NET stacks do that): the
# first element after an optional XML declaration is an Envelope. A DOCTYPE can never
# match, so an HTML error page is never taken for SOAP.
_ENVELOPE_FIRST = re.compile(rb"^\s*(<\?xml[^>]*\?>\s*)?<([A-Za-z_][\w.-]*:)?Envelope[\s>/]")


def starts_like_envelope(content: bytes) -> bool:
    return _ENVELOPE_FIRST.match(content.lstrip(b"\xef\xbb\xbf")) is not None


class _NoDoctypeExpat:
    """An ``expat`` stand-in for xmltodict whose parsers refuse any DOCTYPE or entity."""

    @staticmethod
    def ParserCreate(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the expat module's name
        parser = expat.ParserCreate(*args, **kwargs)

        def refuse(*_: Any) -> None:
            raise UnsafeXml("the document declares a DTD or entities")

        for handler in ("StartDoctypeDeclHandler", "EntityDeclHandler", "ExternalEntityRefHandler"):
            setattr(parser, handler, refuse)
        return parser


def xml_text_to_dict(text: str, force_list: Iterable[str] = ()) -> dict[str, Any]:
    """Business XML text → dict, root element included (``{"response": {...}}``).

    Repeating elements named in ``force_list`` are always lists, even with one child.
    The declared encoding of a string is ignored: it is text already.
    """
    if not text.strip():
        raise NotXml("empty document")
    try:
        parsed = xmltodict.parse(
            text, expat=_NoDoctypeExpat, disable_entities=True, force_list=tuple(force_list) or None
        )
    except UnsafeXml:
        raise
    except (expat.ExpatError, ValueError) as exc:
        raise NotXml(str(exc)) from exc
    return dict(parsed)


def dict_to_xml_text(body: Mapping[str, Any], root: str | None, declaration: bool = True) -> str:
    """A mapped message → business XML text. ``root`` wraps the body; without it the body
    must have exactly one top-level key, which is the root. Keys starting with ``@`` are
    attributes and ``#text`` is text, as in xmltodict."""
    if root:
        document: Mapping[str, Any] = {root: dict(body)}
    elif len(body) == 1:
        document = body
    else:
        raise ValueError("the message has several top-level fields: set xml_root to name the root element")
    return str(xmltodict.unparse(document, encoding="UTF-8", full_document=declaration))
