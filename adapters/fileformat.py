"""What goes inside a dropped file: XML or CSV, in the endpoint's character set.

Writing. ``encode_message`` checks every field (name and value) against the endpoint's
encoding *before* serialising, so a refusal can name the field and the rule but never the
value, which may be a person's name. With ``encoding = "gbk"`` and ``gb18030_fallback``, a
message holding a character outside GBK (e.g. 𠮷, U+20BB7) is written entirely in GB18030
and its XML declaration says GB18030, so a parser that trusts the declaration reads it
right. ``utf-8-sig`` writes a BOM and declares UTF-8. Control characters that XML 1.0
forbids are refused for XML (the department's parser would reject the whole file).

CSV (RFC 4180): a header row of the message's field names, nested fields flattened with
dots (``applicant.name``), then one data row; CRLF line ends; a field holding a comma,
quote, CR or LF is quoted and its quotes doubled. Values starting with ``=``, ``+``, ``-``
or ``@`` are written as they are: these files go machine to machine and are never opened
in a spreadsheet, so CSV-injection escaping would only corrupt data (a phone number
``+86…``).

Reading. The endpoint's encoding is authoritative, as external charset information is for
XML over HTTP (RFC 7303 §3.2): GBK is read as GB18030 (its superset), a UTF-8 BOM is
stripped (and means UTF-8 whatever the endpoint says: the three bytes EF BB BF cannot begin
a GBK XML or CSV file). An XML declaration is honoured only as a cross-check: when it names
an encoding outside the endpoint's family (UTF-8 vs GBK/GB2312/GB18030; ASCII fits both),
the file is refused as ``encoding_mismatch`` rather than decoded either way, because one of
the two is wrong and a misread name or reason must never be applied as a result. CSV
results: the header and exactly one data row; more rows are refused, never dropped.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from adapters.base import PermanentError

ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030")
FORMATS = ("xml", "csv")
_DECLARED = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
_FAMILY = {"utf-8": "utf", "utf-8-sig": "utf", "gbk": "gb", "gb2312": "gb", "gb18030": "gb", "ascii": "any"}
_BOM = codecs.BOM_UTF8
_XML_DECL = re.compile(rb"""\A\s*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class UnreadableResult(Exception):
    """A result file that cannot be read. ``reason`` is a fixed code, never file content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_encoding(name: str) -> str:
    """The codec name for an endpoint's ``encoding`` setting; ValueError if not supported."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        canonical = ""
    if canonical not in ENCODINGS:
        raise ValueError(f"encoding {name!r} is not supported; use one of {', '.join(ENCODINGS)}")
    return canonical


@dataclass(frozen=True, slots=True)
class FileFormat:
    """How one endpoint's files look. ``root``: the XML root element of a request."""

    format: str = "xml"
    encoding: str = "utf-8"
    root: str = "request"
    gb18030_fallback: bool = False

    @property
    def suffix(self) -> str:
        return "." + self.format


def flatten(body: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted field name, leaf value) for every leaf of a nested message."""
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, path + ".")
        else:
            yield path, value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as xmltodict writes them
    return str(value)


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False  # not re-raised: the error object carries the whole text
    return True


def _choose_encoding(fmt: FileFormat, fields: list[tuple[str, str]]) -> str:
    """The encoding to write in; PermanentError naming the first field that cannot be."""
    if fmt.format == "xml":
        for path, text in fields:
            if _XML_FORBIDDEN.search(path) or _XML_FORBIDDEN.search(text):
                raise PermanentError(f"field {path}: holds a control character that XML does not allow")
    encoding = fmt.encoding
    for path, text in fields:
        if _encodable(path, encoding) and _encodable(text, encoding):
            continue
        if encoding == "gbk" and fmt.gb18030_fallback and _encodable(path + text, "gb18030"):
            encoding = "gb18030"  # the whole file then, and its declaration (see module doc)
            continue
        hint = " (gb18030_fallback = true would send it as GB18030)" if encoding == "gbk" else ""
        raise PermanentError(f"field {path}: holds a character that {_DECLARED[encoding]} cannot encode{hint}")
    return encoding


def encode_message(fmt: FileFormat, body: Mapping[str, Any]) -> bytes:
    """The file's bytes for one message, or PermanentError naming the offending field."""
    fields = list(flatten(body))
    checked = [(p, _text(v)) for p, v in fields]
    encoding = _choose_encoding(fmt, [(fmt.root, ""), *checked] if fmt.format == "xml" else checked)
    if fmt.format == "csv":
        for path, value in fields:
            if isinstance(value, list | tuple):
                raise PermanentError(f"field {path}: a list cannot be written as one CSV cell")
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([p for p, _ in fields])
        writer.writerow([_text(v) for _, v in fields])
        text = buf.getvalue()
    else:
        text = xmltodict.unparse({fmt.root: dict(body)}, pretty=True, encoding=_DECLARED[encoding])
    return text.encode(encoding)  # utf-8-sig adds the BOM


def decode_result(fmt: FileFormat, data: bytes) -> dict[str, Any]:
    """A result file's content as nested data; UnreadableResult with a reason code if not."""
    text = _decode(fmt, data)
    return _parse_csv(text) if fmt.format == "csv" else _parse_xml(text)


def _decode(fmt: FileFormat, data: bytes) -> str:
    if data.startswith(_BOM):
        codec, data = "utf-8", data[len(_BOM):]
    else:
        codec = "gb18030" if fmt.encoding in ("gbk", "gb18030") else "utf-8"
    if fmt.format == "xml":
        declared = _XML_DECL.match(data)
        if declared:
            family = _FAMILY.get(_canonical(declared.group(1).decode("ascii")))
            if family != "any" and family != _FAMILY[codec]:
                raise UnreadableResult("encoding_mismatch")
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        raise UnreadableResult("encoding") from None  # the error would quote file bytes


def _canonical(label: str) -> str:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return label.lower()
    return "gbk" if name == "gb2312" else name


def _parse_xml(text: str) -> dict[str, Any]:
    try:
        doc = xmltodict.parse(text, disable_entities=True)
    except (ExpatError, ValueError):
        raise UnreadableResult("xml") from None
    if not isinstance(doc, dict):
        raise UnreadableResult("xml")
    return doc


def _parse_csv(text: str) -> dict[str, Any]:
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if any(c.strip() for c in r)]
    except csv.Error:
        raise UnreadableResult("csv") from None
    if len(rows) != 2:
        raise UnreadableResult("csv_rows")  # no data row, or several: never drop a result
    header, row = rows
    if len(header) != len(row) or len(set(header)) != len(header) or not all(header):
        raise UnreadableResult("csv_header")
    return _unflatten(dict(zip(header, row, strict=True)))


def _unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UnreadableResult("csv_header")  # both "a" and "a.b"
            node = child
        if leaf in node:
            raise UnreadableResult("csv_header")
        node[leaf] = value
    return out
