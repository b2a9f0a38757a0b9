"""SOAP faults, 1.1 and 1.2, read from the envelope by local names.

zeep's own fault reader looks children up by exact namespace, which misses faults that
real department stacks send: a ``<Fault xmlns="http://schemas.xmlsoap.org/soap/envelope/">``
whose ``faultcode``/``faultstring`` inherit the envelope namespace, unqualified 1.2
children, a 1.1 fault from a 1.2 service (``VersionMismatch``), subcodes with undeclared
prefixes. This reader takes:

- SOAP 1.1: ``faultcode``, ``faultstring``, ``detail``;
- SOAP 1.2: ``Code/Value``, nested ``Code/Subcode/Value``, ``Reason/Text``, ``Detail``;

in whatever namespace (or none) the children come. Codes are kept as their local part
(``soap:Server`` → ``Server``). What a department writes in a fault can echo the request,
ID numbers included, so the summary is masked (``gateway.logs.mask_text``) and shortened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from gateway.logs import mask_text

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
ENVELOPES = (SOAP11_ENV, SOAP12_ENV)
_REASON_CHARS = 200
_DETAIL_CHARS = 160
_DIGIT_RUN = re.compile(r"[0-9]{15,}")


@dataclass(frozen=True, slots=True)
class SoapFault:
    version: str  # "1.1" or "1.2": the namespace of the Fault element
    code: str  # local part: Server, Client, Receiver, Sender, VersionMismatch or the department's own
    subcodes: tuple[str, ...]
    reason: str  # already masked and shortened
    detail: str  # the text of the detail element, masked and shortened

    def matches(self, codes: Iterable[str]) -> bool:
        """Is this fault one of ``codes``? A code matches the fault code or any subcode,
        by local part (``"Server"`` matches ``soap:Server`` and ``SOAP-ENV:Server``)."""
        names = {self.code, *self.subcodes}
        return any(_local(str(c)) in names for c in codes)

    def summary(self) -> str:
        code = "/".join((self.code, *self.subcodes)) or "(no code)"
        text = f"SOAP fault {code}: {self.reason}" if self.reason else f"SOAP fault {code}"
        return f"{text} [{self.detail}]" if self.detail else text


def _local(name: str) -> str:
    return name.strip().rpartition(":")[2]


def _localname(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return next((c for c in el if _localname(c) == name), None)


def _text(el: etree._Element | None) -> str:
    # Texts of sibling elements stay apart: an ID number beside a phone number is two runs.
    return "" if el is None else " ".join(" ".join(el.itertext()).split())


def _short(text: str, limit: int) -> str:
    # Mask first (a cut ID number would no longer be recognised); then any digit run the
    # masker leaves because it is longer than an ID or card number.
    text = _DIGIT_RUN.sub(lambda m: "*" * len(m.group()), mask_text(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def body_of(envelope: etree._Element) -> etree._Element | None:
    ns = etree.QName(envelope).namespace
    return next((c for c in envelope if isinstance(c.tag, str) and c.tag == f"{{{ns}}}Body"), None)


def find_fault(envelope: etree._Element) -> SoapFault | None:
    """The envelope's fault, or None when its body carries none."""
    body = body_of(envelope)
    if body is None:
        return None
    fault = next((c for c in body if isinstance(c.tag, str) and etree.QName(c).namespace in ENVELOPES
                  and _localname(c) == "Fault"), None)
    if fault is None:
        return None
    version = "1.2" if etree.QName(fault).namespace == SOAP12_ENV else "1.1"
    code_el = _child(fault, "Code")
    if code_el is not None:  # 1.2 shape (also accepted inside a 1.1 envelope)
        code = _local(_text(_child(code_el, "Value")))
        subcodes = []
        sub = _child(code_el, "Subcode")
        while sub is not None:
            subcodes.append(_local(_text(_child(sub, "Value"))))
            sub = _child(sub, "Subcode")
        reason_el = _child(fault, "Reason")
        texts = [c for c in reason_el if _localname(c) == "Text"] if reason_el is not None else []
        zh = [t for t in texts if (t.get("{http://www.w3.org/XML/1998/namespace}lang") or "").startswith("zh")]
        reason = _text((zh or texts or [None])[0])
        detail = _text(_child(fault, "Detail"))
    else:
        code = _local(_text(_child(fault, "faultcode")))
        subcodes = []
        reason = _text(_child(fault, "faultstring"))
        detail = _text(_child(fault, "detail"))
    return SoapFault(
        version=version,
        code=code,
        subcodes=tuple(s for s in subcodes if s),
        reason=_short(reason, _REASON_CHARS),
        detail=_short(detail, _DETAIL_CHARS),
    )
