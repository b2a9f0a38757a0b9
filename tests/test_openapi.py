"""The OpenAPI document (gateway/schema/openapi.yaml) against the spec, the routes and the code.

Schemas are resolved the way a client would: the document's URI is its file path, so the
relative ``$ref: joint-application.schema.json`` lands on the schema file next to it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import pytest
import yaml
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.api.routes import add_routes
from gateway.domain.items import Department, Item, Mode
from gateway.domain.materials import MaterialType
from gateway.domain.prechecks import Outcome
from gateway.domain.retirement_age import Category
from gateway.status import ApplicationStatus, ItemStatus
from tests.conftest import DEMO_APPLICATIONS, Running, demo_application

DOC_PATH = Path(__file__).resolve().parent.parent / "gateway" / "schema" / "openapi.yaml"
DOC_URI = DOC_PATH.as_uri()
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def document() -> dict[str, Any]:
    return yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))


def _retrieve(uri: str) -> Resource:
    """Only files next to the document are ever fetched (never the network)."""
    parts = urlsplit(uri)
    assert parts.scheme == "file", f"unexpected reference {uri}"
    path = Path(url2pathname(parts.path))
    text = path.read_text(encoding="utf-8")
    contents = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    return Resource.from_contents(contents, default_specification=DRAFT202012)


REGISTRY: Registry = Registry(retrieve=_retrieve)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def pointer(*segments: str) -> str:
    return "".join("/" + quote(_escape(s), safe="+~") for s in segments)


def validator_at(json_pointer: str) -> Draft202012Validator:
    """A validator for the schema at this pointer in the document, refs resolved from the file."""
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{json_pointer}"}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def errors_of(v: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(instance)]


def _deref(node: dict[str, Any], ptr: str) -> tuple[dict[str, Any], str]:
    """Follow a local ``$ref`` (to a component) once; return the node and its pointer."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = document()
        for seg in ref[2:].split("/"):
            target = target[seg.replace("~1", "/").replace("~0", "~")]
        return target, ref[1:]
    return node, ptr


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def response_schema(path: str, method: str, status: int, content_type: str) -> Draft202012Validator:
    responses = document()["paths"][path][method]["responses"]
    key = str(status) if str(status) in responses else "default"
    assert key in responses, f"{method.upper()} {path} does not document {status}"
    response, ptr = _deref(responses[key], pointer("paths", path, method, "responses", key))
    assert content_type in response.get("content", {}), f"{method.upper()} {path} {status}: no {content_type}"
    return validator_at(f"{ptr}{pointer('content', content_type, 'schema')}")


# --- the document itself -------------------------------------------------------------------


def test_document_is_valid_openapi_3_1_with_the_schema_file_resolved() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate_openapi(doc, base_uri=DOC_URI)
    # the request body is the repo's JSON Schema file, by a reference relative to the document
    for path in ("/api/v1/joint-applications", "/api/v1/prechecks"):
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "joint-application.schema.json"}
    resolved = REGISTRY.resolver(base_uri=DOC_URI).lookup("joint-application.schema.json").contents
    assert resolved["$id"].endswith("/joint-application.schema.json")


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    app = web.Application()
    add_routes(app)
    registered = {(r.method.lower(), r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    # aiohttp answers HEAD on every GET route by itself; the document lists the GETs.
    heads = {(m, p) for m, p in registered if m == "head"}
    assert all(("get", p) in registered for _, p in heads)
    documented = {(method, path) for path, method, _ in operations()}
    assert registered - heads == documented


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))


def test_enums_agree_with_the_code() -> None:
    schemas = document()["components"]["schemas"]
    assert schemas["ItemStatus"]["enum"] == [s.value for s in ItemStatus]
    assert schemas["Item"]["enum"] == [i.value for i in Item]
    assert schemas["Department"]["enum"] == [d.value for d in Department]
    assert schemas["Mode"]["enum"] == [m.value for m in Mode]
    assert schemas["Check"]["properties"]["result"]["enum"] == [o.value for o in Outcome]
    assert schemas["Material"]["properties"]["type"]["enum"] == [t.value for t in MaterialType]
    assert schemas["Application"]["properties"]["status"]["enum"] == [s.value for s in ApplicationStatus]
    assert schemas["RetirementAge"]["properties"]["category"]["enum"] == [c.value for c in Category]
    query = document()["paths"]["/api/v1/policy/retirement-age"]["get"]["parameters"]
    category = next(p for p in query if p.get("name") == "category")
    assert category["schema"]["enum"] == [c.value for c in Category]


# --- examples ------------------------------------------------------------------------------


def test_sandbox_applications_validate_against_the_request_schema_via_the_document() -> None:
    v = validator_at(pointer("paths", "/api/v1/joint-applications", "post", "requestBody", "content",
                             "application/json", "schema"))
    apps = json.loads(DEMO_APPLICATIONS.read_text(encoding="utf-8"))
    assert apps
    for app in apps:
        assert errors_of(v, app) == [], app["application_no"]
    broken = copy.deepcopy(apps[0])
    broken["channel"] = "fax"
    del broken["applicant"]
    assert len(errors_of(v, broken)) >= 2  # the reference really reaches the schema


def _media_examples() -> Iterator[tuple[str, str, Any]]:
    """(label, pointer of the schema, example value) for every example under a media type."""
    for path, method, op in operations():
        base = pointer("paths", path, method)
        media: list[tuple[str, dict[str, Any]]] = []
        body = op.get("requestBody")
        if body:
            for ctype, m in body.get("content", {}).items():
                media.append((f"{base}{pointer('requestBody', 'content', ctype)}", m))
        for status, response in op.get("responses", {}).items():
            resolved, ptr = _deref(response, f"{base}{pointer('responses', status)}")
            for ctype, m in resolved.get("content", {}).items():
                media.append((f"{ptr}{pointer('content', ctype)}", m))
        for ptr, m in media:
            where = "request" if "/requestBody/" in ptr else ptr.split("/")[-3]
            values = [("example", m["example"])] if "example" in m else []
            for name, ex in m.get("examples", {}).items():
                ex, _ = _deref(ex, "")
                values.append((name, ex["value"]))
            for name, value in values:
                yield f"{method.upper()} {path} {where} {name}", f"{ptr}/schema", value


EXAMPLES = list(_media_examples())


def test_the_document_has_examples_for_the_main_answers() -> None:
    labels = " ".join(label for label, _, _ in EXAMPLES)
    for status in ("202", "400", "409", "422"):
        assert status in labels


@pytest.mark.parametrize(("label", "schema_ptr", "value"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_example_validates_against_its_schema(label: str, schema_ptr: str, value: Any) -> None:
    assert errors_of(validator_at(schema_ptr), value) == []


def test_skipped_items_must_carry_a_reason_code() -> None:
    v = validator_at("/components/schemas/ApplicationItem")
    item = {"item": "sscard_apply", "department": "hrss", "mode": "optional", "status": "skipped",
            "reason_code": "NOT_NEEDED", "message": "已有社会保障卡，无需申领", "delivery": None,
            "updated_at": "2026-12-03T10:00:01+08:00"}
    assert errors_of(v, item) == []
    assert errors_of(v, item | {"reason_code": None}) != []
    assert errors_of(v, item | {"reason_code": ""}) != []
    assert errors_of(v, item | {"status": "planned", "reason_code": None}) == []


# --- the running gateway answers as documented ---------------------------------------------


async def test_live_answers_match_the_documented_schemas(gw: Running) -> None:
    def check(path: str, method: str, status: int, headers: Any, body: Any) -> None:
        ctype = headers["Content-Type"].split(";")[0].strip()
        assert errors_of(response_schema(path, method, status, ctype), body) == [], (method, path, status)

    submit = "/api/v1/joint-applications"
    app = demo_application("DEMO-006")  # flexible early retirement with requested_retirement_month
    status, body, headers = await gw.post(submit, app)
    assert status == 202
    check(submit, "post", status, headers, body)
    status, body, headers = await gw.post(submit, app)
    assert status == 202 and headers["Idempotent-Replayed"] == "true"
    check(submit, "post", status, headers, body)
    changed = copy.deepcopy(app)
    changed["applicant"]["phone"] = "13900000000"
    status, body, headers = await gw.post(submit, changed)
    assert status == 409
    check(submit, "post", status, headers, body)
    invalid = copy.deepcopy(app)
    invalid["application_no"] = "DEMO-006-INVALID"
    invalid["channel"] = "fax"
    status, body, headers = await gw.post(submit, invalid)
    assert status == 400
    check(submit, "post", status, headers, body)
    status, body, headers = await gw.post(submit, demo_application("DEMO-010"))
    assert status == 422
    check(submit, "post", status, headers, body)
    status, body, headers = await gw.post("/api/v1/prechecks", demo_application("DEMO-019"))
    assert status == 200
    check("/api/v1/prechecks", "post", status, headers, body)

    got = "/api/v1/joint-applications/{application_no}"
    async with gw.http.get(gw.base_url + submit + "/DEMO-006",
                           headers=gw.signed_headers("GET", submit + "/DEMO-006", b"", None)) as resp:
        check(got, "get", resp.status, resp.headers, await resp.json(content_type=None))
        assert resp.status == 200
    async with gw.http.get(gw.base_url + submit + "/NOPE-1",
                           headers=gw.signed_headers("GET", submit + "/NOPE-1", b"", None)) as resp:
        assert resp.status == 404
        check(got, "get", resp.status, resp.headers, await resp.json(content_type=None))

    policy = "/api/v1/policy/retirement-age"
    for query, expected in (("?birth=1966-07&category=male", 200), ("?birth=1966-07&category=boss", 400)):
        async with gw.http.get(gw.base_url + policy + query,
                               headers=gw.signed_headers("GET", policy + query, b"", None)) as resp:
            assert resp.status == expected
            check(policy, "get", resp.status, resp.headers, await resp.json(content_type=None))
    if gw.config.auth.enabled:  # an unsigned call is refused as documented
        async with gw.http.post(gw.base_url + "/api/v1/prechecks", json=app) as resp:
            assert resp.status == 401
            check("/api/v1/prechecks", "post", resp.status, resp.headers, await resp.json(content_type=None))
    for path in ("/healthz", "/readyz"):
        async with gw.http.get(gw.base_url + path) as resp:
            assert resp.status == 200
            check(path, "get", resp.status, resp.headers, await resp.json())
