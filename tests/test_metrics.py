"""/metrics from the real gateway: every documented family, closed label sets, no personal
data, and counters that moved exactly as one application's journey says they should.

One scenario runs once for the module (real sockets, sandbox departments, signed
requests): DEMO-001 is accepted and followed to the end while medical insurance (nhsa)
answers every submission with 503, so that item is retried once, opens nhsa's breaker
and is dead-lettered; around it the platform replays, reuses the number, sends an
invalid body and an unsigned request, and someone tries the admin API with a wrong token.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import platform
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics as vocab
from gateway.app import build_app
from gateway.auth import sign
from gateway.config import GatewayConfig, RetrySettings, load_config
from gateway.demo import running_gateway
from gateway.intake import IntakeOutcome
from gateway.logs import configure_logging
from gateway.metrics import Metrics, _version
from gateway.status import FINAL_STATUSES
from gateway.store.models import JobKind, JobState
from sandbox.faults import Faults
from sandbox.people import DEFAULT_PEOPLE
from tests.conftest import ROOT, demo_application

ADMIN = "metrics-test-admin-token"
SUBMIT = "/api/v1/joint-applications"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"


@dataclass
class Scrape:
    text: str
    families: dict[str, Any]  # family name (counters without _total) → parsed family
    config: GatewayConfig
    view: dict[str, Any]  # GET of DEMO-001 once completed
    applications: list[dict[str, Any]]  # every body sent
    dead_letter_api: list[dict[str, Any]]

    def value(self, family: str, **labels: str) -> float:
        """The sample of ``family`` with exactly these labels (0 when absent)."""
        suffix = {"counter": "_total", "histogram": "_count"}.get(self.families[family].type, "")
        for s in self.families[family].samples:
            if s.name == family + suffix and s.labels == labels:
                return float(s.value)
        return 0.0

    def series(self, family: str, zeros: bool = False) -> dict[tuple[tuple[str, str], ...], float]:
        """Label set → value; series at 0 are left out unless ``zeros`` (primed series are 0)."""
        suffix = {"counter": "_total", "histogram": "_count"}.get(self.families[family].type, "")
        return {
            tuple(sorted(s.labels.items())): float(s.value)
            for s in self.families[family].samples if s.name == family + suffix and (zeros or s.value)
        }


def _scenario_config() -> GatewayConfig:
    cfg = load_config()
    nhsa = replace(cfg.departments["nhsa"], retry=RetrySettings(attempts=2, max_age=60, base=0.01, cap=0.05))
    return replace(cfg, departments={**cfg.departments, "nhsa": nhsa}, breaker_threshold=2, admin_token=ADMIN)


async def _run_scenario(workdir: Path) -> Scrape:
    async with running_gateway(_scenario_config(), workdir, DEFAULT_PEOPLE, decision_delay=0.05, auth=True) as (
        url, sandbox, cfg
    ):
        # Every medical-insurance submission (infno 2501) fails with 503; its query still works.
        sandbox.state.faults["nhsa"] = Faults(error_rate=1.0, match='"infno": "2501"')
        key, secret = next(iter(cfg.auth.platform_keys.items()))
        sent: list[dict[str, Any]] = []
        async with aiohttp.ClientSession() as http:

            async def post(body: dict[str, Any], headers: dict[str, str] | None = None, signed: bool = True) -> int:
                sent.append(body)
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                h = {"Content-Type": "application/json"} | (sign("POST", SUBMIT, data, key, secret) if signed else {})
                async with http.post(url + SUBMIT, data=data, headers=h | (headers or {})) as resp:
                    return resp.status

            app = demo_application("DEMO-001")
            changed = copy.deepcopy(app)
            changed["applicant"]["phone"] = "13900000000"
            invalid = copy.deepcopy(app)
            invalid["application_no"] = "METRICS-BAD-0001"
            invalid["applicant"].pop("id_number")
            statuses = [
                await post(app),  # accepted
                await post(app, {"Idempotency-Key": "metrics-key-1"}),  # same number, same content: replayed
                await post(app, {"Idempotency-Key": "metrics-key-1"}),  # the key's first answer replayed
                await post(changed, {"Idempotency-Key": "metrics-key-1"}),  # key reused, other body: 422
                await post(changed),  # number reused with other content: 409
                await post(invalid),  # schema error: 400
                await post(app, signed=False),  # no signature: 401
            ]
            assert statuses == [202, 202, 202, 422, 409, 400, 401], statuses
            async with http.get(url + "/admin/v1/dead-letters", headers={"Authorization": "Bearer wrong"}) as resp:
                assert resp.status == 401

            path = f"{SUBMIT}/{app['application_no']}"
            view: dict[str, Any] = {}
            for _ in range(300):  # bounded: 30 s at most, ~1 s in practice
                async with http.get(url + path, headers=sign("GET", path, b"", key, secret)) as resp:
                    view = await resp.json()
                if view["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
            assert view["status"] == "completed", view
            async with http.get(url + "/admin/v1/dead-letters", headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
                dead = (await resp.json())["dead_letters"]
            async with http.get(url + "/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
    return Scrape(text, parse_families(text), cfg, view, sent, dead)


def parse_families(text: str) -> dict[str, Any]:
    """Families by name. The text format carries prometheus-client's ``X_created``
    timestamps as families of their own: they belong to X and are left out."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {n: f for n, f in families.items() if not (n.endswith("_created") and n[: -len("_created")] in families)}


@pytest.fixture(scope="module")
def scrape() -> Scrape:
    configure_logging("INFO")
    with tempfile.TemporaryDirectory(prefix="metrics-") as tmp:
        return asyncio.run(_run_scenario(Path(tmp)))


# --- the documented list ------------------------------------------------------------------

_ROW = re.compile(r"^\|\s*`((?:gateway|process)_[a-z_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|([^|]*)\|", re.M)


def documented() -> dict[str, tuple[str, set[str]]]:
    """docs/operations.md's metric table: exposition name → (type, label names)."""
    rows = {m[1]: (m[2], set(re.findall(r"`([a-z_]+)`", m[3]))) for m in _ROW.finditer(OPERATIONS_DOC.read_text())}
    assert len(rows) > 15, "the metric table in docs/operations.md was not found"
    return rows


def _family(name: str, kind: str) -> str:
    if kind == "counter":
        assert name.endswith("_total"), f"{name}: counters are documented under their exposed _total name"
        return name[: -len("_total")]
    return name


def test_every_documented_metric_family_is_in_the_scrape(scrape: Scrape) -> None:
    missing = {n for n, (kind, _) in documented().items() if _family(n, kind) not in scrape.families}
    assert not missing


def test_every_exported_family_is_documented_with_its_type(scrape: Scrape) -> None:
    docs = {_family(n, kind): kind for n, (kind, _) in documented().items()}
    exported = {name: f.type for name, f in scrape.families.items()}
    assert exported == docs


def test_documented_labels_are_the_declared_label_names() -> None:
    metrics = Metrics()
    declared = {
        m._name: set(m._labelnames) for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)
    }
    docs = {_family(n, kind): labels for n, (kind, labels) in documented().items() if n.startswith("gateway_")}
    assert docs == declared


def test_every_gateway_metric_has_the_prefix_and_a_unit_or_total_suffix() -> None:
    for m in vars(Metrics()).values():
        if isinstance(m, MetricWrapperBase):
            assert m._name.startswith("gateway_")
            if m._type in ("histogram", "gauge") and not m._name.endswith("_info"):
                # a gauge that counts things (jobs) says so; a duration or age says seconds
                assert m._name.endswith(("_seconds", "_jobs", "_state")), m._name


# --- closed label sets -------------------------------------------------------------------


def allowed_labels(config: GatewayConfig) -> dict[str, dict[str, set[str]]]:
    """Every gateway family and, for each of its labels, the closed set of values."""
    routes = {r.canonical for r in build_app(config).router.resources()} | {"unmatched"}
    depts = set(config.departments)
    endpoints = {ep for d in config.departments.values() for ep in d.endpoints}
    statuses = {str(s.value) for s in HTTPStatus}
    methods = {"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"}
    return {
        "gateway_build_info": {"version": {_version()}, "python": {platform.python_version()}},
        "gateway_http_requests": {"route": routes, "method": methods, "status": statuses},
        "gateway_http_request_duration_seconds": {"route": routes},
        "gateway_applications": {"outcome": set(vocab.APPLICATION_OUTCOMES)},
        "gateway_department_calls": {
            "department": depts, "operation": set(vocab.OPERATIONS), "outcome": set(vocab.CALL_OUTCOMES)
        },
        "gateway_department_call_duration_seconds": {"department": depts, "operation": set(vocab.OPERATIONS)},
        "gateway_department_retries": {"department": depts, "operation": set(vocab.OPERATIONS)},
        "gateway_dead_letters": {"department": depts | {"platform"}, "kind": {k.value for k in JobKind}},
        "gateway_items_final": {"department": depts | {"unknown"}, "status": {s.value for s in FINAL_STATUSES}},
        "gateway_department_results": {
            "department": depts, "channel": set(vocab.RESULT_CHANNELS), "outcome": set(vocab.RESULT_OUTCOMES)
        },
        "gateway_store_commit_duration_seconds": {},
        "gateway_precheck_duration_seconds": {},
        "gateway_circuit_breaker_state": {"department": depts, "endpoint": endpoints},
        "gateway_outbox_oldest_pending_age_seconds": {},
        "gateway_idempotency_outcomes": {"outcome": set(vocab.IDEMPOTENCY_OUTCOMES)},
        "gateway_auth_failures": {"realm": set(vocab.AUTH_REALMS), "reason": set(vocab.AUTH_REASONS)},
        "gateway_outbox_jobs": {"state": {s.value for s in JobState}},
    }


def _bucket_bound(value: str) -> float:
    return math.inf if value == "+Inf" else float(value)


def test_every_label_value_comes_from_its_closed_set(scrape: Scrape) -> None:
    allowed = allowed_labels(scrape.config)
    gateway_families = {n for n in scrape.families if n.startswith("gateway_")}
    assert gateway_families == set(allowed), "a new family needs its label vocabulary here"
    buckets = {float(b) for b in vocab._LATENCY} | {math.inf}
    outside = []
    for name in gateway_families:
        for s in scrape.families[name].samples:
            for label, value in s.labels.items():
                if label == "le":
                    ok = _bucket_bound(value) in buckets
                else:
                    ok = value in allowed[name].get(label, set())
                if not ok:
                    outside.append((s.name, label, value))
    assert not outside


_ID_NUMBER = re.compile(r"\d{17}[\dXx]|\d{15}")
_PHONE = re.compile(r"1[3-9]\d{9}")
_DELIVERY = re.compile(r"D[0-9A-F]{31}")
_APPLICATION_NO = re.compile(r"[A-Z]+-[A-Z]*-?\d{3,}")


def test_no_label_value_looks_like_an_id_phone_application_number_or_delivery_id(scrape: Scrape) -> None:
    values = {v for f in scrape.families.values() for s in f.samples for v in s.labels.values()}
    assert values, "the scrape has labelled samples"
    for pattern in (_ID_NUMBER, _PHONE, _DELIVERY, _APPLICATION_NO, re.compile(r"\d{6,}")):
        assert not [v for v in values if pattern.search(v)], pattern.pattern


def test_nothing_from_the_applications_appears_anywhere_in_the_exposition(scrape: Scrape) -> None:
    secrets = set()
    for body in scrape.applications:
        secrets.add(body["application_no"])
        secrets |= {str(v) for k, v in body["applicant"].items() if k in ("id_number", "phone", "name")}
    secrets |= {i["delivery"] for i in scrape.view["items"] if i["delivery"]}
    assert len(secrets) > 5
    assert not [s for s in secrets if s in scrape.text]


def _emitted(path: str, pattern: str) -> set[str]:
    found = re.findall(pattern, (ROOT / path).read_text(encoding="utf-8"))
    return {v for m in found for v in (m if isinstance(m, tuple) else (m,)) if v}


def _emitted_anywhere(pattern: str) -> set[str]:
    """Literal label values passed anywhere in the gateway package (metrics.py aside)."""
    return {
        v for path in (ROOT / "gateway").rglob("*.py") if path.name != "metrics.py"
        for v in _emitted(str(path.relative_to(ROOT)), pattern)
    }


def test_the_vocabularies_cover_every_value_the_call_sites_pass() -> None:
    """Drift guard: a value a call site passes must be in gateway/metrics.py's vocabulary
    (and in docs/operations.md); the vocabulary may name values no call site uses yet."""
    applications = _emitted_anywhere(r'applications\.labels\("(\w+)"\)')
    assert applications and applications <= vocab.APPLICATION_OUTCOMES
    keys = _emitted_anywhere(r'idempotency\.labels\("(\w+)"\)')
    assert keys and keys <= vocab.IDEMPOTENCY_OUTCOMES
    outcomes = _emitted_anywhere(r'\boutcome = "(\w+)"(?: if .* else "(\w+)")?')
    assert outcomes and outcomes <= vocab.CALL_OUTCOMES
    signature = _emitted("gateway/auth.py", r'_refuse\(\s*"(\w+)"')
    assert signature and signature <= vocab.SIGNATURE_REASONS
    reason_line = next(
        line for line in (ROOT / "gateway/api/admin.py").read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("reason = ")
    )
    assert set(re.findall(r'"(\w+)"', reason_line)) <= vocab.ADMIN_REASONS
    assert {o.value for o in IntakeOutcome} <= vocab.RESULT_OUTCOMES
    assert vocab.OUTBOX_STATES == tuple(s.value for s in JobState)


# --- what one application's journey moved ---------------------------------------------------


def test_inbound_requests_are_counted_by_route_method_and_status(scrape: Scrape) -> None:
    posts = {
        dict(k)["status"]: v for k, v in scrape.series("gateway_http_requests").items()
        if dict(k)["route"] == SUBMIT and dict(k)["method"] == "POST"
    }
    assert posts == {"202": 3, "422": 1, "409": 1, "400": 1, "401": 1}
    # the acceptance latency histogram is the request histogram of this route
    assert scrape.value("gateway_http_request_duration_seconds", route=SUBMIT) == 7
    assert scrape.value("gateway_store_commit_duration_seconds") == 1


def test_application_outcomes_and_idempotency_outcomes_are_counted(scrape: Scrape) -> None:
    apps = {dict(k)["outcome"]: v for k, v in scrape.series("gateway_applications").items()}
    assert apps == {"accepted": 1, "replayed": 1, "conflict": 1, "invalid": 1}
    keys = {dict(k)["outcome"]: v for k, v in scrape.series("gateway_idempotency_outcomes").items()}
    assert keys == {"replayed": 1, "mismatch": 1}


def test_authentication_failures_are_counted_by_realm_and_reason(scrape: Scrape) -> None:
    failures = {(dict(k)["realm"], dict(k)["reason"]): v for k, v in scrape.series("gateway_auth_failures").items()}
    assert failures == {("platform", "missing_headers"): 1, ("admin", "invalid"): 1}


def test_department_calls_follow_the_application(scrape: Scrape) -> None:
    calls = {
        (d["department"], d["operation"], d["outcome"]): v
        for d, v in ((dict(k), v) for k, v in scrape.series("gateway_department_calls").items())
    }
    queries = {k: v for k, v in calls.items() if k[1] == "query"}
    assert queries == {(d, "query", "found"): 1 for d in ("police", "hrss", "nhsa", "health", "justice", "hpf")}
    hrss_items = sum(1 for i in scrape.view["items"] if i["department"] == "hrss")
    submits = {k: v for k, v in calls.items() if k[1] == "submit"}
    assert submits == {
        ("hrss", "submit", "ok"): hrss_items,
        ("health", "submit", "ok"): 1,
        ("hpf", "submit", "ok"): 1,
        ("nhsa", "submit", "transient"): 2,  # attempts = 2, both 503
    }
    assert calls[("health", "status", "ok")] >= 1  # health's result is polled
    for (dept, op, _), n in calls.items():  # every call is also timed
        assert scrape.value("gateway_department_call_duration_seconds", department=dept, operation=op) >= n


def test_retries_breaker_and_dead_letter_record_the_failing_department(scrape: Scrape) -> None:
    assert scrape.series("gateway_department_retries") == {(("department", "nhsa"), ("operation", "submit")): 1}
    assert scrape.series("gateway_dead_letters") == {(("department", "nhsa"), ("kind", "submit")): 1}
    assert scrape.value("gateway_circuit_breaker_state", department="nhsa", endpoint="api") == 2
    assert scrape.value("gateway_outbox_jobs", state="dead") == 1
    assert [(d["department"], d["kind"]) for d in scrape.dead_letter_api] == [("nhsa", "submit")]


def test_items_by_final_status_match_the_application_view(scrape: Scrape) -> None:
    # Items skipped at acceptance never transition, so they are not counted (see the report).
    want = Counter((i["department"], i["status"]) for i in scrape.view["items"] if i["status"] != "skipped")
    assert ("nhsa", "failed") in want
    got = {(dict(k)["department"], dict(k)["status"]): v for k, v in scrape.series("gateway_items_final").items()}
    assert got == dict(want)


def test_department_results_are_counted_by_channel(scrape: Scrape) -> None:
    applied = {
        (dict(k)["department"], dict(k)["channel"]): v for k, v in scrape.series("gateway_department_results").items()
        if dict(k)["outcome"] == "applied"
    }
    hrss_items = sum(1 for i in scrape.view["items"] if i["department"] == "hrss")
    assert applied == {("hrss", "callback"): hrss_items, ("health", "poll"): 1, ("hpf", "file"): 1}


def test_build_info_names_the_version_and_python(scrape: Scrape) -> None:
    assert scrape.series("gateway_build_info") == {
        (("python", platform.python_version()), ("version", _version())): 1
    }
    assert _version() != "unknown", "the gateway is installed in the test venv"


def test_outbox_age_is_zero_once_nothing_is_pending(scrape: Scrape) -> None:
    assert scrape.value("gateway_outbox_oldest_pending_age_seconds") == 0


def test_the_pre_check_latency_is_observed(scrape: Scrape) -> None:
    assert scrape.value("gateway_precheck_duration_seconds") >= 1


def test_every_outbox_state_is_reported_even_when_empty(scrape: Scrape) -> None:
    states = {dict(k)["state"]: v for k, v in scrape.series("gateway_outbox_jobs", zeros=True).items()}
    assert set(states) == {s.value for s in JobState}
    assert states["pending"] == 0 and states["waiting"] == 0


# --- the helpers the call sites are to use ----------------------------------------------------


def test_observe_store_sets_every_state_and_zeroes_the_absent_ones() -> None:
    m = Metrics()
    m.observe_store({"jobs_pending": 4, "jobs_done": 2, "applications_completed": 1}, 12.5)
    m.observe_store({"jobs_done": 6}, 0.0)
    families = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    jobs = {s.labels["state"]: s.value for s in families["gateway_outbox_jobs"].samples}
    assert jobs == {"waiting": 0, "pending": 0, "done": 6, "dead": 0, "cancelled": 0}
    assert families["gateway_outbox_oldest_pending_age_seconds"].samples[0].value == 0


def test_breaker_states_map_to_their_levels() -> None:
    m = Metrics()
    m.set_breaker_states({"hrss.api": "open", "health.ws": "half_open", "hpf.files": "closed"})
    samples = {
        (s.labels["department"], s.labels["endpoint"]): s.value
        for f in text_string_to_metric_families(m.render().decode()) if f.name == "gateway_circuit_breaker_state"
        for s in f.samples
    }
    assert samples == {("hrss", "api"): 2, ("health", "ws"): 1, ("hpf", "files"): 0}


def test_prime_creates_the_known_counter_series_at_zero() -> None:
    m = Metrics()
    m.prime(["hrss", "hpf"])
    families = {f.name: f for f in text_string_to_metric_families(m.render().decode())}

    def labelsets(name: str) -> set[tuple[str, ...]]:
        return {tuple(s.labels.values()) for s in families[name].samples if s.name.endswith("_total")}

    assert {s.value for f in families.values() if f.name.startswith("gateway_") and f.type == "counter"
            for s in f.samples if s.name.endswith("_total")} == {0.0}
    assert ("hrss", "submit") in labelsets("gateway_dead_letters") and ("platform", "notify") in labelsets(
        "gateway_dead_letters"
    )
    assert ("hpf", "failed") in labelsets("gateway_items_final")
    assert len(labelsets("gateway_auth_failures")) == 2 * len(vocab.SIGNATURE_REASONS) + len(vocab.ADMIN_REASONS)
    assert labelsets("gateway_applications") == {(o,) for o in vocab.APPLICATION_OUTCOMES}
