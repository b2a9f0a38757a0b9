"""Gateway configuration: one TOML file (config/gateway.toml) plus the mappings it names.

Loaded and validated entirely at start-up: a bad value or mapping stops the gateway
with the file and the rule, never a failed request later.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.auth import METHODS, AuthSettings, parse_keys
from gateway.domain.retirement_age import EarlyRetirementAges
from gateway.mapping import DepartmentMapping, MappingError, load_mapping
from gateway.store.sealing import Sealer, sealer_from_environment
from gateway.tls import TlsSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "gateway.toml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Values for the one retry policy (gateway/retry.py); departments tune values only."""

    attempts: int = 6
    max_age: float = 600.0  # seconds from the first attempt
    base: float = 0.2  # backoff multiplier (s)
    cap: float = 15.0  # longest single wait (s)


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Where the gateway may POST application states (the request's ``callback_url``)."""

    # Host names the platform's callback_url may name; empty: any public host.
    allowed_hosts: tuple[str, ...] = ()
    # http:// (not only https://) and loopback/private addresses: the sandbox only.
    allow_insecure: bool = False
    # (app key, secret) the gateway signs its notifications with (GATEWAY_NOTIFY_KEY).
    signing_key: tuple[str, str] | None = field(default=None, repr=False)
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    adapter: str
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DepartmentConfig:
    code: str
    name: str
    mapping: DepartmentMapping
    endpoints: dict[str, EndpointConfig]
    query_timeout: float = 2.0
    call_timeout: float = 10.0
    poll_interval: float = 1.0
    # Callback departments: ask the status of an item still undecided this long after it
    # was accepted (a callback lost on the way). 0: never. Needs a status operation.
    reconcile_after: float = 0.0
    retry: RetrySettings = field(default_factory=RetrySettings)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    base_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    database_url: str = "sqlite:///var/gateway.db"
    allow_any_submitted_at: bool = False
    # [policy.early_retirement]: special-type/illness ages, information only (docs/eligibility.md).
    early_retirement: EarlyRetirementAges = field(default_factory=EarlyRetirementAges)
    max_body_bytes: int = 20 * 1024 * 1024
    max_attachment_bytes: int = 5 * 1024 * 1024  # one material, decoded: the body limit is for all of them
    workers: int = 16
    lease_seconds: float = 30.0
    dispatch_interval: float = 0.05
    breaker_threshold: int = 5
    breaker_open_seconds: float = 10.0
    shutdown_deadline: float = 10.0
    # A retry wait longer than this hands the job back to the outbox instead of holding a
    # worker (a long Retry-After, a late backoff step).
    max_inline_wait: float = 5.0
    # Workers that may post platform notifications at once: a platform outage must not
    # take the workers the departments' items need.
    notify_workers: int = 4
    idempotency_key_ttl: float = 7 * 24 * 3600.0
    admin_token: str | None = None
    bindings_poll_seconds: float = 5.0  # how soon a replica follows a binding changed on another
    auth: AuthSettings = field(default_factory=AuthSettings)
    # Key for person tokens in logs (GATEWAY_LOG_TOKEN_KEY). Without it a random key per
    # process: tokens then link lines of one process run only.
    log_token_key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)
    notify_retry: RetrySettings = field(default_factory=RetrySettings)
    notify: NotifySettings = field(default_factory=lambda: NotifySettings())
    # Encryption at rest (GATEWAY_STORE_KEYS / GATEWAY_STORE_KEY_ID); off without keys.
    sealer: Sealer = field(default_factory=Sealer, repr=False)
    tls: TlsSettings | None = None  # [server.tls]: TLS, mutual when a client CA is set
    # Key for the audit chain's HMAC-SM3 (GATEWAY_AUDIT_KEY); without it the chain is plain SM3.
    audit_key: bytes | None = field(default=None, repr=False)
    departments: dict[str, DepartmentConfig] = field(default_factory=dict)

    def with_endpoint(self, department: str, endpoint: str, **settings: Any) -> GatewayConfig:
        """A copy with one endpoint's settings changed (used to point at a sandbox)."""
        dept = self.departments[department]
        ep = dept.endpoints[endpoint]
        new_ep = EndpointConfig(ep.adapter, {**ep.settings, **settings})
        new_dept = replace(dept, endpoints={**dept.endpoints, endpoint: new_ep})
        return replace(self, departments={**self.departments, department: new_dept})


def _integer(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: must be a whole number") from exc


def _retry(data: dict[str, Any], where: str) -> RetrySettings:
    unknown = set(data) - {"attempts", "max_age", "base", "cap"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in data.values()):
        raise ConfigError(f"{where}: attempts, max_age, base and cap are numbers")
    r = RetrySettings(**data)
    if r.attempts < 1 or r.max_age <= 0 or r.base <= 0 or r.cap <= 0:
        raise ConfigError(f"{where}: attempts ≥ 1 and max_age, base, cap > 0")
    return r


def _tls(data: Any, base_dir: Path, path: Path) -> TlsSettings | None:
    if data is None:
        return None
    where = f"{path}: [server.tls]"
    if not isinstance(data, dict) or not isinstance(data.get("cert"), str) or not isinstance(data.get("key"), str):
        raise ConfigError(f"{where}: needs cert and key (PEM file paths)")
    unknown = set(data) - {"cert", "key", "client_ca", "key_password_env"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")

    def file(key: str) -> Path:
        p = base_dir / str(data[key])
        if not p.is_file():
            raise ConfigError(f"{where}: {key}: no such file {p}")
        return p

    return TlsSettings(file("cert"), file("key"), file("client_ca") if data.get("client_ca") else None,
                       data.get("key_password_env"))


def _keys_from_env(name: str) -> dict[str, str]:
    try:
        return parse_keys(os.environ.get(name))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


def _notify(data: dict[str, Any]) -> NotifySettings:
    key = _keys_from_env(str(data.get("signing_key_env", "GATEWAY_NOTIFY_KEY")))
    return NotifySettings(
        allowed_hosts=tuple(str(h).lower() for h in data.get("allowed_hosts", ())),
        allow_insecure=bool(data.get("allow_insecure", False)),
        signing_key=next(iter(key.items()), None),
        timeout=float(data.get("timeout", 10.0)),
    )


def _early_retirement(policy: Any, where: str) -> EarlyRetirementAges:
    table = policy.get("early_retirement", {}) if isinstance(policy, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    try:
        return EarlyRetirementAges.from_settings(table)
    except ValueError as exc:  # the message starts with the key
        raise ConfigError(f"{where} {exc}") from exc


def _number(data: dict[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number ≥ 0")
    return float(value)


def department_config(code: str, d: dict[str, Any], base_dir: Path, where: str) -> DepartmentConfig:
    """One department's binding from its TOML table (or the admin API's JSON), validated
    entirely: the mapping is loaded and every operation's endpoint must be configured."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(d) - _DEPARTMENT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    if not isinstance(d.get("mapping"), str) or not isinstance(d.get("endpoints"), dict) or not d["endpoints"]:
        raise ConfigError(f"{where}: needs mapping and at least one [endpoints.*]")
    try:
        mapping = load_mapping(base_dir / d["mapping"])
    except (OSError, MappingError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if mapping.department != code:
        raise ConfigError(f"{where}: mapping {d['mapping']} is for department {mapping.department!r}")
    endpoints = {}
    for name, ep in d["endpoints"].items():
        if not isinstance(ep, dict) or not isinstance(ep.get("adapter"), str):
            raise ConfigError(f"{where}.endpoints.{name}: needs adapter")
        endpoints[name] = EndpointConfig(ep["adapter"], {k: v for k, v in ep.items() if k != "adapter"})
    for name, op in mapping.operations.items():
        if op.operation.endpoint not in endpoints:
            line = mapping.endpoint_lines.get(name, 1)
            raise ConfigError(
                f"{mapping.source}:{line}: operations.{name}.endpoint: {op.operation.endpoint!r} is not an endpoint"
                f" of {where} (configured: {', '.join(sorted(endpoints))})"
            )
    retry = d.get("retry", {})
    if not isinstance(retry, dict):
        raise ConfigError(f"{where}.retry: must be a table")
    return DepartmentConfig(
        code=code,
        name=str(d.get("name", code)),
        mapping=mapping,
        endpoints=endpoints,
        query_timeout=_number(d, "query_timeout", 2.0, where),
        call_timeout=_number(d, "call_timeout", 10.0, where),
        poll_interval=_number(d, "poll_interval", 1.0, where),
        reconcile_after=_number(d, "reconcile_after", 0.0, where),
        retry=_retry(retry, f"{where}.retry"),
    )


_DEPARTMENT_KEYS = {
    "name", "mapping", "endpoints", "query_timeout", "call_timeout", "poll_interval", "reconcile_after", "retry",
}


def load_config(path: Path | None = None) -> GatewayConfig:
    path = path or Path(os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    # Relative paths (mappings, WSDLs, folders) are read from base_dir: by default the
    # folder above the config file's, so `config/gateway.toml` resolves against the checkout.
    base_dir = (path.resolve().parent / str(data.get("base_dir", ".."))).resolve()
    server = data.get("server", {})
    dispatcher = data.get("dispatcher", {})
    departments = {
        code: department_config(code, d, base_dir, f"{path}: [departments.{code}]")
        for code, d in data.get("departments", {}).items()
    }
    auth = data.get("auth", {})
    methods = tuple(auth.get("methods", ["HMAC-SM3"]))
    if not set(methods) <= set(METHODS):
        raise ConfigError(f"{path}: [auth] methods: only {', '.join(METHODS)}")
    # Secrets come from the environment only, never from a file kept in git.
    auth_settings = AuthSettings(
        enabled=bool(auth.get("enabled", False)),
        window_seconds=float(auth.get("window_seconds", 300)),
        methods=methods,
        platform_keys=_keys_from_env(str(auth.get("platform_keys_env", "GATEWAY_PLATFORM_KEYS"))),
        department_keys={
            dept: _keys_from_env(str(env)) for dept, env in auth.get("department_keys_env", {}).items()
        },
    )
    if auth_settings.enabled and not auth_settings.platform_keys:
        raise ConfigError(f"{path}: [auth] is enabled but no platform key is set in the environment")
    db = os.environ.get("GATEWAY_DATABASE_URL") or data.get("store", {}).get("url", "sqlite:///var/gateway.db")
    try:
        sealer = sealer_from_environment(os.environ)
    except ValueError as exc:
        raise ConfigError(f"GATEWAY_STORE_KEYS: {exc}") from exc
    # A container sets where to listen and how departments reach it from its environment.
    host = os.environ.get("GATEWAY_HOST") or str(server.get("host", "127.0.0.1"))
    port = _integer(os.environ.get("GATEWAY_PORT") or server.get("port", 8080),
                    "GATEWAY_PORT" if os.environ.get("GATEWAY_PORT") else f"{path}: [server] port")
    public = os.environ.get("GATEWAY_PUBLIC_BASE_URL") or str(server.get("public_base_url", "http://127.0.0.1:8080"))
    try:
        return GatewayConfig(
            base_dir=base_dir,
            host=host,
            port=port,
            public_base_url=public.rstrip("/"),
            sealer=sealer,
            tls=_tls(server.get("tls"), base_dir, path),
            audit_key=(os.environ.get("GATEWAY_AUDIT_KEY") or "").encode() or None,
            database_url=db,
            allow_any_submitted_at=bool(data.get("policy", {}).get("allow_any_submitted_at", False)),
            early_retirement=_early_retirement(data.get("policy", {}), f"{path}: [policy.early_retirement]"),
            max_body_bytes=int(server.get("max_body_bytes", 20 * 1024 * 1024)),
            max_attachment_bytes=int(server.get("max_attachment_bytes", 5 * 1024 * 1024)),
            workers=int(dispatcher.get("workers", 16)),
            lease_seconds=float(dispatcher.get("lease_seconds", 30.0)),
            dispatch_interval=float(dispatcher.get("interval", 0.05)),
            breaker_threshold=int(dispatcher.get("breaker_threshold", 5)),
            breaker_open_seconds=float(dispatcher.get("breaker_open_seconds", 10.0)),
            shutdown_deadline=float(dispatcher.get("shutdown_deadline", 10.0)),
            max_inline_wait=float(dispatcher.get("max_inline_wait", 5.0)),
            notify_workers=int(dispatcher.get("notify_workers", 4)),
            idempotency_key_ttl=float(data.get("idempotency", {}).get("key_ttl_seconds", 7 * 24 * 3600)),
            # The admin token is a secret: only ever from the environment, never from a file in git.
            admin_token=os.environ.get(str(data.get("admin", {}).get("token_env", "GATEWAY_ADMIN_TOKEN"))) or None,
            bindings_poll_seconds=float(data.get("admin", {}).get("bindings_poll_seconds", 5.0)),
            notify_retry=_retry(data.get("notify", {}).get("retry", {}), f"{path}: [notify.retry]"),
            notify=_notify(data.get("notify", {})),
            departments=departments,
            auth=auth_settings,
            log_token_key=(os.environ.get("GATEWAY_LOG_TOKEN_KEY") or "").encode() or os.urandom(32),
        )
    except ValueError as exc:  # a value of the wrong type in the file
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: {exc}") from exc
