"""Prometheus metrics on an app-owned registry. Labels come only from closed sets
(route, method, status class, department, operation, outcome, status): never an id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_http_requests", "Inbound requests by route and status", ["route", "method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "gateway_http_request_duration_seconds", "Inbound request latency", ["route"], buckets=_LATENCY,
            registry=r,
        )
        self.applications = Counter(
            "gateway_applications", "Joint applications by outcome", ["outcome"], registry=r
        )
        self.calls = Counter(
            "gateway_department_calls", "Department calls by outcome", ["department", "operation", "outcome"],
            registry=r,
        )
        self.call_seconds = Histogram(
            "gateway_department_call_duration_seconds", "Department call latency", ["department", "operation"],
            buckets=_LATENCY, registry=r,
        )
        self.retries = Counter(
            "gateway_department_retries", "Retried department calls", ["department", "operation"], registry=r
        )
        self.dead_letters = Counter(
            "gateway_dead_letters", "Jobs that exhausted their retry policy", ["department", "kind"], registry=r
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
            "gateway_precheck_duration_seconds", "Pre-check fan-out latency", buckets=_LATENCY, registry=r
        )
        self.breaker = Gauge(
            "gateway_circuit_breaker_state", "Circuit breaker per department endpoint: 0 closed, 1 half-open, 2 open",
            ["department", "endpoint"], registry=r,
        )
        self.oldest_pending = Gauge(
            "gateway_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox job", registry=r
        )
        self.idempotency = Counter(
            "gateway_idempotency_outcomes", "Idempotency-Key outcomes", ["outcome"], registry=r
        )
        self.auth_failures = Counter(
            "gateway_auth_failures", "Refused credentials by realm and reason", ["realm", "reason"], registry=r
        )
        self.outbox = Gauge("gateway_outbox_jobs", "Outbox jobs by state", ["state"], registry=r)

    def department_call(self, department: str, operation: str, outcome: str, seconds: float) -> None:
        self.calls.labels(department, operation, outcome).inc()
        self.call_seconds.labels(department, operation).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
