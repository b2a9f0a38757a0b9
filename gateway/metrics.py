"""Prometheus metrics on an app-owned registry (one per application, never the global one).

Names carry the ``gateway_`` prefix and a unit suffix; prometheus-client appends
``_total`` to counters in the exposition. Labels come only from closed sets — route
template, method, status code, department, endpoint, operation, outcome, job kind or
state, item status, auth realm and reason — never an id, a number or personal data.
The vocabularies are spelled out below; tests/test_metrics.py checks a live scrape
against them and docs/operations.md ("Metrics") lists every family.

One process per replica (scale-out is more replicas on PostgreSQL), so the plain
in-process registry is right: prometheus-client's multiprocess mode is not used.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

from gateway.status import FINAL_STATUSES
from gateway.store.models import JobKind, JobState

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- closed label vocabularies (what each call site may pass) ---------------------------
APPLICATION_OUTCOMES = frozenset({"accepted", "refused", "invalid", "replayed", "conflict"})
#: dispatcher calls (submit, status) | pre-check queries (query)
CALL_OUTCOMES = frozenset({"ok", "transient", "unknown", "permanent", "found", "no_record", "timeout", "error"})
OPERATIONS = frozenset({"query", "submit", "status"})
IDEMPOTENCY_OUTCOMES = frozenset({"replayed", "mismatch", "in_progress"})
AUTH_REALMS = frozenset({"platform", "department", "admin"})
#: realms platform and department (gateway/auth.py) | realm admin (gateway/api/admin.py)
SIGNATURE_REASONS = frozenset(
    {"missing_headers", "method", "unknown_key", "timestamp", "nonce_format", "digest", "signature", "replay"}
)
ADMIN_REASONS = frozenset({"disabled", "missing", "invalid"})
AUTH_REASONS = SIGNATURE_REASONS | ADMIN_REASONS
RESULT_CHANNELS = frozenset({"callback", "poll", "file", "sync"})
#: gateway.intake.IntakeOutcome
RESULT_OUTCOMES = frozenset({"applied", "duplicate", "unknown_delivery", "wrong_department", "malformed"})
#: gateway_circuit_breaker_state values
BREAKER_LEVELS: Mapping[str, int] = {"closed": 0, "half_open": 1, "open": 2}
OUTBOX_STATES = tuple(s.value for s in JobState)


def _version() -> str:
    try:
        return metadata.version("hunan-retirement-gateway")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


class Metrics:
    """Every metric the gateway exports, on ``self.registry``; ``render()`` is /metrics."""

    def __init__(self, version: str | None = None) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # Standard process_* families (CPU, resident memory, open fds, start time). Reads
        # /proc on each scrape; on a platform without /proc it exports nothing.
        ProcessCollector(registry=r)
        self.build_info = Gauge(
            "gateway_build_info", "Always 1; the running gateway's version and Python", ["version", "python"],
            registry=r,
        )
        self.build_info.labels(version or _version(), platform.python_version()).set(1)
        self.requests = Counter(
            "gateway_http_requests", "Inbound requests by route template, method and status code",
            ["route", "method", "status"], registry=r,
        )
        # route="/api/v1/joint-applications" is the acceptance latency: the whole POST
        # handling, signature check and body read included (the middleware times it).
        self.request_seconds = Histogram(
            "gateway_http_request_duration_seconds", "Inbound request latency by route template", ["route"],
            buckets=_LATENCY, registry=r,
        )
        self.applications = Counter(
            "gateway_applications", "Joint applications by outcome", ["outcome"], registry=r
        )
        self.calls = Counter(
            "gateway_department_calls", "Department calls by outcome", ["department", "operation", "outcome"],
            registry=r,
        )
        self.call_seconds = Histogram(
            "gateway_department_call_duration_seconds", "Department call latency (one attempt)",
            ["department", "operation"], buckets=_LATENCY, registry=r,
        )
        self.retries = Counter(
            "gateway_department_retries", "Department call attempts after the first (retries)",
            ["department", "operation"], registry=r,
        )
        self.dead_letters = Counter(
            "gateway_dead_letters", "Jobs dead-lettered by this process (department 'platform': callbacks)",
            ["department", "kind"], registry=r,
        )
        self.item_final = Counter(
            "gateway_items_final", "Items reaching a final status", ["department", "status"], registry=r
        )
        self.results = Counter(
            "gateway_department_results", "Department results received", ["department", "channel", "outcome"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "gateway_store_commit_duration_seconds", "Durable acceptance commit latency", buckets=_LATENCY,
            registry=r,
        )
        self.precheck_seconds = Histogram(
            "gateway_precheck_duration_seconds", "Pre-check fan-out latency (all departments' queries)",
            buckets=_LATENCY, registry=r,
        )
        self.breaker = Gauge(
            "gateway_circuit_breaker_state", "Circuit breaker per department endpoint: 0 closed, 1 half-open, 2 open",
            ["department", "endpoint"], registry=r,
        )
        self.oldest_pending = Gauge(
            "gateway_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox job (store-wide)",
            registry=r,
        )
        self.idempotency = Counter(
            "gateway_idempotency_outcomes", "Idempotency-Key outcomes", ["outcome"], registry=r
        )
        self.auth_failures = Counter(
            "gateway_auth_failures", "Refused credentials by realm and reason", ["realm", "reason"], registry=r
        )
        self.outbox = Gauge("gateway_outbox_jobs", "Outbox jobs by state (store-wide)", ["state"], registry=r)

    def department_call(self, department: str, operation: str, outcome: str, seconds: float) -> None:
        self.calls.labels(department, operation, outcome).inc()
        self.call_seconds.labels(department, operation).observe(seconds)

    def prime(self, departments: Iterable[str]) -> None:
        """Create at 0 every counter series whose labels are all known at start-up, so the
        first event after a start shows in ``rate()``/``increase()`` (a series that is born
        at 1 has no earlier sample to differ from, and the first dead letter would be missed)."""
        for outcome in APPLICATION_OUTCOMES:
            self.applications.labels(outcome)
        for outcome in IDEMPOTENCY_OUTCOMES:
            self.idempotency.labels(outcome)
        for realm in ("platform", "department"):
            for reason in SIGNATURE_REASONS:
                self.auth_failures.labels(realm, reason)
        for reason in ADMIN_REASONS:
            self.auth_failures.labels("admin", reason)
        self.dead_letters.labels("platform", JobKind.NOTIFY.value)
        for department in departments:
            for kind in (JobKind.SUBMIT, JobKind.POLL):
                self.dead_letters.labels(department, kind.value)
            for operation in ("submit", "status"):
                self.retries.labels(department, operation)
            for status in FINAL_STATUSES:
                self.item_final.labels(department, status.value)

    def set_breaker(self, key: str, state: str) -> None:
        """One breaker (``department.endpoint``) in state ``closed | half_open | open``."""
        department, _, endpoint = key.partition(".")
        self.breaker.labels(department, endpoint).set(BREAKER_LEVELS[state])

    def set_breaker_states(self, states: Mapping[str, str]) -> None:
        """Every breaker as it is now (``Breakers.states()``): refreshed at scrape time, a
        breaker whose open period ran out shows half-open even before a probe call."""
        for key, state in states.items():
            self.set_breaker(key, state)

    def observe_store(self, counts: Mapping[str, int], oldest_pending_age: float) -> None:
        """The store's job counts (``SqlStore.counts()``: ``jobs_<state>`` keys) and the
        oldest pending job's age. Every state is set, 0 when absent, so a drained
        backlog reads 0 rather than its last non-zero value."""
        for state in OUTBOX_STATES:
            self.outbox.labels(state).set(counts.get(f"jobs_{state}", 0))
        self.oldest_pending.set(oldest_pending_age)

    def render(self) -> bytes:
        return generate_latest(self.registry)
