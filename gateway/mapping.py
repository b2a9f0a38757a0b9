"""Declarative department mappings: unified application ⇄ department dialect.

A mapping file (``mappings/<dept>.<version>.toml``) says, per operation, which fields the
department message has and where each comes from, and how the department's replies and
results read back into unified facts and statuses. It is data, validated when loaded: a
bad mapping stops start-up with the file, the line and the rule that failed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import Operation, OutboundMessage, PermanentError
from gateway.status import ItemStatus
from gateway.transforms import TRANSFORMS, TransformError

OPERATIONS = ("query", "submit", "status")
RESULT_MODES = ("sync", "callback", "poll", "file")
_RULE_KEYS = {"path", "default", "concat", "sep"} | set(TRANSFORMS)
_RESERVED_OP_KEYS = {"endpoint", "request", "reply", "items", "result"}
_REPLY_KEYS = {
    "ok_path", "ok_values", "no_record_values", "error_message_path", "record_path", "fields", "status_path",
    "reason_path", "id_path", "document_path",
}


class MappingError(ValueError):
    """A mapping file is invalid. The message names the file, the line and the rule."""


class ReplyError(ValueError):
    """A department reply does not have the shape the mapping expects (malformed)."""


def get_path(data: Any, path: str) -> Any:
    """Read a dotted path (``a.b.0.c``) from nested dicts/lists; None when absent."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
        if cur is None:
            return None
    return cur


@dataclass(frozen=True, slots=True)
class FieldRule:
    target: str
    spec: Any  # a dotted path string, or a table of one transform plus path/default

    def evaluate(self, context: Mapping[str, Any], tables: Mapping[str, Mapping[str, str]]) -> Any:
        if isinstance(self.spec, str):
            return get_path(context, self.spec)
        spec: Mapping[str, Any] = self.spec
        if "concat" in spec:
            parts = [get_path(context, p) for p in spec["concat"]]
            return str(spec.get("sep", "")).join("" if p is None else str(p) for p in parts)
        value = get_path(context, spec["path"]) if "path" in spec else None
        if value is None:
            value = spec.get("default")
        for name, fn in TRANSFORMS.items():
            if name in spec:
                value = fn(value, spec[name], tables)
        return value


@dataclass(frozen=True, slots=True)
class ReplyRules:
    ok_path: str | None = None
    ok_values: tuple[str, ...] = ()
    no_record_values: tuple[str, ...] = ()
    error_message_path: str | None = None
    record_path: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    status_path: str | None = None
    reason_path: str | None = None
    id_path: str | None = None
    document_path: str | None = None


@dataclass(frozen=True, slots=True)
class OperationMapping:
    operation: Operation
    request: tuple[FieldRule, ...]
    per_item: Mapping[str, tuple[FieldRule, ...]]
    reply: ReplyRules
    result: str | None  # for submit: how the decision comes back (RESULT_MODES)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """A department's answer about one item, in the unified vocabulary."""

    status: ItemStatus
    reason_code: str
    message: str
    delivery_id: str | None = None
    raw_code: str | None = None
    known: bool = True
    document: str | None = None  # e.g. the retirement approval number, passed to dependent items


@dataclass(frozen=True, slots=True)
class DepartmentMapping:
    department: str
    version: str
    source: Path
    tables: Mapping[str, Mapping[str, str]]
    operations: Mapping[str, OperationMapping]
    results: ReplyRules
    status_codes: Mapping[str, ItemStatus]
    unknown_status: ItemStatus
    endpoint_lines: Mapping[str, int] = field(default_factory=dict)  # operation → line of its endpoint

    def has(self, operation: str) -> bool:
        return operation in self.operations

    def build(self, operation: str, context: Mapping[str, Any], delivery_id: str) -> OutboundMessage:
        """Build the department message for ``operation`` from the unified context."""
        op = self.operations[operation]
        rules = op.request + tuple(op.per_item.get(str(context.get("item")), ()))
        body: dict[str, Any] = {}
        for rule in rules:
            try:
                value = rule.evaluate(context, self.tables)
            except TransformError as exc:
                raise PermanentError(f"{self.source.name}: field {rule.target}: {exc}") from exc
            _set_path(body, rule.target, value)
        return OutboundMessage(operation=op.operation, delivery_id=delivery_id, body=body)

    def _check_envelope(self, rules: ReplyRules, body: Any) -> str | None:
        """Return the business code; raise PermanentError for a refusal, ReplyError if malformed."""
        if not isinstance(body, Mapping):
            raise ReplyError("reply is not an object")
        if rules.ok_path is None:
            return None
        code = get_path(body, rules.ok_path)
        if code is None:
            raise ReplyError(f"reply has no {rules.ok_path}")
        code = str(code)
        if code in rules.ok_values or code in rules.no_record_values:
            return code
        message = get_path(body, rules.error_message_path) if rules.error_message_path else None
        raise PermanentError(f"department refused the message: code {code}: {message or ''}".strip())

    def check_reply(self, operation: str, body: Any) -> None:
        """An acknowledgement with a business code (HTTP 200 carrying a refusal): raise
        PermanentError for a refusal, ReplyError if the reply lacks its code."""
        rules = self.operations[operation].reply
        if rules.ok_path is not None:
            self._check_envelope(rules, body)

    def read_record(self, body: Any) -> Mapping[str, Any] | None:
        """A query reply → unified facts, or None for "no record"."""
        rules = self.operations["query"].reply
        code = self._check_envelope(rules, body)
        if code is not None and code in rules.no_record_values:
            return None
        record = get_path(body, rules.record_path) if rules.record_path else body
        if record is None or record == {}:
            return None
        if not isinstance(record, Mapping):
            raise ReplyError("record is not an object")
        if not rules.fields:
            return dict(record)
        return {fact: _read_field(record, spec) for fact, spec in rules.fields.items()}

    def read_status(self, body: Any) -> ItemResult | None:
        """A status reply → the item's result, or None when the department has no such
        case (it never received the delivery): then it is safe to send it again."""
        rules = self.operations["status"].reply
        code = self._check_envelope(rules, body)
        if code is not None and code in rules.no_record_values:
            return None
        status_path = rules.status_path or self.results.status_path
        raw = get_path(body, status_path) if status_path else None
        if raw is not None and str(raw) in rules.no_record_values:
            return None
        return self.read_result(body, "status")

    def read_result(self, body: Any, operation: str | None = None) -> ItemResult:
        """A sync reply, callback, status reply or result file → unified item result."""
        rules = self.operations[operation].reply if operation else self.results
        if operation:
            self._check_envelope(rules, body)
        status_path = rules.status_path or self.results.status_path
        reason_path = rules.reason_path or self.results.reason_path
        id_path = rules.id_path or self.results.id_path
        if status_path is None:
            raise ReplyError("mapping names no status path")
        raw = get_path(body, status_path)
        if raw is None:
            raise ReplyError(f"result has no {status_path}")
        raw = str(raw)
        reason = get_path(body, reason_path) if reason_path else None
        delivery_id = get_path(body, id_path) if id_path else None
        doc_path = rules.document_path or self.results.document_path
        document = get_path(body, doc_path) if doc_path else None
        status = self.status_codes.get(raw)
        known = status is not None
        if status is None:
            status = self.unknown_status
        return ItemResult(
            status=status,
            reason_code=f"{self.department.upper()}_{status.name if known else 'UNKNOWN_CODE'}",
            message="" if reason is None else str(reason),
            delivery_id=None if delivery_id is None else str(delivery_id),
            raw_code=raw,
            known=known,
            document=None if document is None else str(document),
        )


def _read_field(record: Mapping[str, Any], spec: Any) -> Any:
    """A reply field rule: a dotted path, or ``{path, equals}`` for a department's flag codes."""
    if isinstance(spec, str):
        return get_path(record, spec)
    value = get_path(record, spec["path"])
    if "equals" in spec:
        return None if value is None else str(value) == str(spec["equals"])
    if spec.get("number") and value is not None:  # text replies (key=value, XML) carry numbers as text
        try:
            return float(value) if "." in str(value) else int(str(value))
        except ValueError as exc:
            raise ReplyError(f"{spec['path']}: not a number") from exc
    return value


def _set_path(body: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = body
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def _line_of(text: str, key: str, section: str | None = None) -> int:
    """The line a key is on; within ``section`` (a dotted table name) when given, since the
    same key (``zjhm``) often appears under several operations."""
    start = 0
    if section:
        header = re.compile(rf"^\s*\[{re.escape(section)}\]\s*$", re.M).search(text)
        if header:
            start = header.end()
    pattern = re.compile(rf'^\s*(\[[^\]]*\b{re.escape(key)}\b[^\]]*\]|"?{re.escape(key)}"?\s*=)', re.M)
    m = pattern.search(text, start) or pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else 1


def load_mapping(path: Path) -> DepartmentMapping:
    """Load and validate one mapping file; every error names file, line and rule."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: {exc}") from exc

    def fail(key: str, why: str, near: str | None = None, section: str | None = None) -> MappingError:
        """``near``: the table to point at when the key itself is missing; ``section``:
        the table the key belongs to."""
        line = _line_of(text, key, section)
        if near and (line == 1 or f"{key} =" not in text):
            line = _line_of(text, near)
        return MappingError(f"{path}:{line}: {key}: {why}")

    for required in ("department", "version"):
        if not isinstance(data.get(required), str):
            raise fail(required, "required text value")
    tables = data.get("codes", {})
    if not all(isinstance(t, dict) and all(isinstance(v, str) for v in t.values()) for t in tables.values()):
        raise fail("codes", "code tables map text to text")

    def rules_of(section: Any, where: str) -> tuple[FieldRule, ...]:
        if not isinstance(section, dict):
            raise fail(where, "must be a table of field rules")
        out = []
        for target, spec in section.items():
            if isinstance(spec, dict):
                unknown = set(spec) - _RULE_KEYS
                if unknown:
                    raise fail(target, f"unknown transform {sorted(unknown)}; known: {sorted(TRANSFORMS)}",
                               section=where)
                if "code" in spec and spec["code"] not in tables:
                    raise fail(target, f"code table {spec['code']!r} is not defined under [codes]", section=where)
                if not ({"path", "const", "concat", "default"} & set(spec)):
                    raise fail(target, "needs a path, const, concat or default", section=where)
                if "concat" in spec and set(spec) - {"concat", "sep"}:
                    raise fail(target, "concat takes only sep: transform the parts in rules of their own",
                               section=where)
            elif not isinstance(spec, str):
                raise fail(target, "a field rule is a dotted path or a table", section=where)
            out.append(FieldRule(target, spec))
        return tuple(out)

    def reply_of(section: Any, where: str) -> ReplyRules:
        section = section or {}
        if not isinstance(section, dict):
            raise fail(where, "must be a table")
        for key in sorted(set(section) - _REPLY_KEYS):
            raise fail(key, f"not a reply rule; known: {', '.join(sorted(_REPLY_KEYS))}", section=where)
        for fact, spec in dict(section.get("fields", {})).items():
            if not isinstance(spec, str) and not (isinstance(spec, dict) and isinstance(spec.get("path"), str)
                                                  and set(spec) <= {"path", "equals", "number"}):
                raise fail(fact, "a reply field is a dotted path or {path, equals | number}",
                           section=f"{where}.fields")
        try:
            return ReplyRules(
                ok_path=section.get("ok_path"),
                ok_values=tuple(str(v) for v in section.get("ok_values", ())),
                no_record_values=tuple(str(v) for v in section.get("no_record_values", ())),
                error_message_path=section.get("error_message_path"),
                record_path=section.get("record_path"),
                fields=dict(section.get("fields", {})),
                status_path=section.get("status_path"),
                reason_path=section.get("reason_path"),
                id_path=section.get("id_path"),
                document_path=section.get("document_path"),
            )
        except (TypeError, ValueError) as exc:
            raise fail(where, str(exc)) from exc

    operations: dict[str, OperationMapping] = {}
    for name, op in data.get("operations", {}).items():
        if name not in OPERATIONS:
            raise fail(name, f"unknown operation; known: {', '.join(OPERATIONS)}")
        if not isinstance(op.get("endpoint"), str):
            raise fail(name, "operation needs an endpoint name", near=f"operations.{name}")
        result = op.get("result")
        if name == "submit" and result not in RESULT_MODES:
            raise fail("result", f"submit needs result = one of {', '.join(RESULT_MODES)}", near=f"operations.{name}")
        options = {k: v for k, v in op.items() if k not in _RESERVED_OP_KEYS}
        per_item = {item: rules_of(s.get("request", {}), item) for item, s in op.get("items", {}).items()}
        operations[name] = OperationMapping(
            operation=Operation(name=name, endpoint=op["endpoint"], options=options),
            request=rules_of(op.get("request", {}), f"operations.{name}.request"),
            per_item=per_item,
            reply=reply_of(op.get("reply"), f"operations.{name}.reply"),
            result=result,
        )
    if operations.get("submit") and operations["submit"].result == "poll" and "status" not in operations:
        raise fail("submit", "result = 'poll' needs a [operations.status]")

    results = data.get("results", {})
    for key in sorted(set(results) - _REPLY_KEYS - {"status", "unknown"}):
        raise fail(key, "not a results rule; known: status, unknown and the reply rules", section="results")
    codes: dict[str, ItemStatus] = {}
    for code, status in results.get("status", {}).items():
        try:
            codes[str(code)] = ItemStatus(status)
        except ValueError as exc:
            raise fail(str(code), f"unknown unified status {status!r}") from exc
    try:
        unknown_status = ItemStatus(results.get("unknown", "accepted"))
    except ValueError as exc:
        raise fail("unknown", "must be a unified status") from exc
    if "submit" in operations and not codes:
        raise fail("results", "a department that takes submissions needs [results.status]")
    return DepartmentMapping(
        department=data["department"],
        version=data["version"],
        source=path,
        endpoint_lines={name: _line_of(text, "endpoint", f"operations.{name}") for name in operations},
        tables=tables,
        operations=operations,
        results=reply_of({k: v for k, v in results.items() if k not in ("status", "unknown")}, "results"),
        status_codes=codes,
        unknown_status=unknown_status,
    )
