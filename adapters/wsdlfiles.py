"""WSDL and schema loading from local files only: start-up never reaches a department.

A department's WSDL is kept as a local copy (``config/wsdl/``), with every schema it
imports or includes beside it (relative ``schemaLocation``/``location`` attributes are
resolved against the importing file). Anything that would be fetched over the network
stops the adapter at open with the URL and the fix.

Two schemas are well known enough that WSDLs reference them by namespace alone, and zeep
then asks for them by URL: the SOAP 1.1 encoding schema (every Axis-era rpc/encoded
WSDL) and the ``xml:`` namespace schema (``xml:lang``). A minimal equivalent of each is
bundled here, so those WSDLs load offline too.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from zeep.transports import Transport

SOAP_ENCODING = "http://schemas.xmlsoap.org/soap/encoding/"
XML_SCHEMA = "https://www.w3.org/2001/xml.xsd"

# The XSD built-ins that SOAP encoding re-exports as soapenc:<name> (SOAP 1.1, §5).
_ENCODED_BUILTINS = (
    "string", "boolean", "float", "double", "decimal", "duration", "dateTime", "time", "date",
    "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth", "hexBinary", "base64Binary", "anyURI",
    "QName", "normalizedString", "token", "language", "Name", "NCName", "ID", "IDREF", "ENTITY",
    "integer", "nonPositiveInteger", "negativeInteger", "long", "int", "short", "byte",
    "nonNegativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte", "positiveInteger",
)

_SOAP_ENCODING_XSD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="{ns}" targetNamespace="{ns}">'
    '<xs:attribute name="root"><xs:simpleType><xs:restriction base="xs:boolean">'
    '<xs:pattern value="0|1"/></xs:restriction></xs:simpleType></xs:attribute>'
    '<xs:attribute name="arrayType" type="xs:string"/>'
    '<xs:attribute name="offset" type="xs:string"/>'
    '<xs:attribute name="position" type="xs:string"/>'
    '<xs:attributeGroup name="commonAttributes">'
    '<xs:attribute name="id" type="xs:ID"/><xs:attribute name="href" type="xs:anyURI"/>'
    '<xs:anyAttribute namespace="##other" processContents="lax"/></xs:attributeGroup>'
    '<xs:attributeGroup name="arrayAttributes">'
    '<xs:attribute ref="tns:arrayType"/><xs:attribute ref="tns:offset"/></xs:attributeGroup>'
    '<xs:complexType name="Array"><xs:sequence>'
    '<xs:any namespace="##any" minOccurs="0" maxOccurs="unbounded" processContents="lax"/></xs:sequence>'
    '<xs:attributeGroup ref="tns:arrayAttributes"/><xs:attributeGroup ref="tns:commonAttributes"/>'
    "</xs:complexType>"
    '<xs:complexType name="Struct"><xs:sequence>'
    '<xs:any namespace="##any" minOccurs="0" maxOccurs="unbounded" processContents="lax"/></xs:sequence>'
    '<xs:attributeGroup ref="tns:commonAttributes"/></xs:complexType>'
    + "".join(
        f'<xs:simpleType name="{t}"><xs:restriction base="xs:{t}"/></xs:simpleType>' for t in _ENCODED_BUILTINS
    )
    + "</xs:schema>"
).format(ns=SOAP_ENCODING)

_XML_XSD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'targetNamespace="http://www.w3.org/XML/1998/namespace" xml:lang="en">'
    '<xs:attribute name="lang" type="xs:language"/>'
    '<xs:attribute name="space"><xs:simpleType><xs:restriction base="xs:NCName">'
    '<xs:enumeration value="default"/><xs:enumeration value="preserve"/></xs:restriction></xs:simpleType>'
    "</xs:attribute>"
    '<xs:attribute name="base" type="xs:anyURI"/><xs:attribute name="id" type="xs:ID"/>'
    '<xs:attributeGroup name="specialAttrs"><xs:attribute ref="xml:base"/><xs:attribute ref="xml:lang"/>'
    '<xs:attribute ref="xml:space"/><xs:attribute ref="xml:id"/></xs:attributeGroup>'
    "</xs:schema>"
)

BUNDLED: dict[str, bytes] = {
    SOAP_ENCODING: _SOAP_ENCODING_XSD.encode("utf-8"),
    SOAP_ENCODING.rstrip("/"): _SOAP_ENCODING_XSD.encode("utf-8"),
    XML_SCHEMA: _XML_XSD.encode("utf-8"),
    "http://www.w3.org/2001/xml.xsd": _XML_XSD.encode("utf-8"),
}


class RemoteSchemaError(Exception):
    """The WSDL (or a schema it imports) points at a network location."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class OfflineTransport(Transport):
    """zeep's document loader, limited to local files and the bundled schemas.

    Only used to load the WSDL and its schemas; calls go over the shared aiohttp session.
    """

    def load(self, url: str) -> bytes:
        if url in BUNDLED:
            return BUNDLED[url]
        parsed = urlparse(url)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path)).read_bytes()
        if parsed.scheme and len(parsed.scheme) > 1:  # a one-letter "scheme" is a Windows drive
            raise RemoteSchemaError(url)
        return Path(url).expanduser().read_bytes()
