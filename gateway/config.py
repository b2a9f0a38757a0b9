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
from gateway.mapping import DepartmentMapping, MappingError, load_mapping

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
    retry: RetrySettings = field(default_factory=RetrySettings)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    base_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    database_url: str = "sqlite:///var/gateway.db"
    allow_any_submitted_at: bool = False
    max_body_bytes: int = 20 * 1024 * 1024
    workers: int = 16
    lease_seconds: float = 30.0
    dispatch_interval: float = 0.05
    breaker_threshold: int = 5
    breaker_open_seconds: float = 10.0
    shutdown_deadline: float = 10.0
    idempotency_key_ttl: float = 7 * 24 * 3600.0
    admin_token: str | None = None
    auth: AuthSettings = field(default_factory=AuthSettings)
    # Key for person tokens in logs (GATEWAY_LOG_TOKEN_KEY). Without it a random key per
    # process: tokens then link lines of one process run only.
    log_token_key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)
    notify_retry: RetrySettings = field(default_factory=RetrySettings)
    departments: dict[str, DepartmentConfig] = field(default_factory=dict)

    def with_endpoint(self, department: str, endpoint: str, **settings: Any) -> GatewayConfig:
        """A copy with one endpoint's settings changed (used to point at a sandbox)."""
        dept = self.departments[department]
        ep = dept.endpoints[endpoint]
        new_ep = EndpointConfig(ep.adapter, {**ep.settings, **settings})
        new_dept = replace(dept, endpoints={**dept.endpoints, endpoint: new_ep})
        return replace(self, departments={**self.departments, department: new_dept})


def _retry(data: dict[str, Any], where: str) -> RetrySettings:
    try:
        r = RetrySettings(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if r.attempts < 1 or r.max_age <= 0 or r.base <= 0 or r.cap <= 0:
        raise ConfigError(f"{where}: attempts ≥ 1 and max_age, base, cap > 0")
    return r


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
    departments: dict[str, DepartmentConfig] = {}
    for code, d in data.get("departments", {}).items():
        where = f"{path}: [departments.{code}]"
        if "mapping" not in d or not d.get("endpoints"):
            raise ConfigError(f"{where}: needs mapping and at least one [endpoints.*]")
        try:
            mapping = load_mapping(base_dir / d["mapping"])
        except (OSError, MappingError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if mapping.department != code:
            raise ConfigError(f"{where}: mapping {d['mapping']} is for department {mapping.department!r}")
        endpoints = {}
        for name, ep in d["endpoints"].items():
            if not isinstance(ep.get("adapter"), str):
                raise ConfigError(f"{where}.endpoints.{name}: needs adapter")
            endpoints[name] = EndpointConfig(ep["adapter"], {k: v for k, v in ep.items() if k != "adapter"})
        for op in mapping.operations.values():
            if op.operation.endpoint not in endpoints:
                raise ConfigError(f"{where}: mapping uses endpoint {op.operation.endpoint!r}, not configured")
        departments[code] = DepartmentConfig(
            code=code,
            name=str(d.get("name", code)),
            mapping=mapping,
            endpoints=endpoints,
            query_timeout=float(d.get("query_timeout", 2.0)),
            call_timeout=float(d.get("call_timeout", 10.0)),
            poll_interval=float(d.get("poll_interval", 1.0)),
            retry=_retry(d.get("retry", {}), f"{where}.retry"),
        )
    auth = data.get("auth", {})
    methods = tuple(auth.get("methods", ["HMAC-SM3"]))
    if not set(methods) <= set(METHODS):
        raise ConfigError(f"{path}: [auth] methods: only {', '.join(METHODS)}")
    # Secrets come from the environment only, never from a file kept in git.
    auth_settings = AuthSettings(
        enabled=bool(auth.get("enabled", False)),
        window_seconds=float(auth.get("window_seconds", 300)),
        methods=methods,
        platform_keys=parse_keys(os.environ.get(str(auth.get("platform_keys_env", "GATEWAY_PLATFORM_KEYS")))),
        department_keys={
            dept: parse_keys(os.environ.get(str(env))) for dept, env in auth.get("department_keys_env", {}).items()
        },
    )
    if auth_settings.enabled and not auth_settings.platform_keys:
        raise ConfigError(f"{path}: [auth] is enabled but no platform key is set in the environment")
    db = os.environ.get("GATEWAY_DATABASE_URL") or data.get("store", {}).get("url", "sqlite:///var/gateway.db")
    return GatewayConfig(
        base_dir=base_dir,
        host=str(server.get("host", "127.0.0.1")),
        port=int(server.get("port", 8080)),
        public_base_url=str(server.get("public_base_url", "http://127.0.0.1:8080")).rstrip("/"),
        database_url=db,
        allow_any_submitted_at=bool(data.get("policy", {}).get("allow_any_submitted_at", False)),
        max_body_bytes=int(server.get("max_body_bytes", 20 * 1024 * 1024)),
        workers=int(dispatcher.get("workers", 16)),
        lease_seconds=float(dispatcher.get("lease_seconds", 30.0)),
        dispatch_interval=float(dispatcher.get("interval", 0.05)),
        breaker_threshold=int(dispatcher.get("breaker_threshold", 5)),
        breaker_open_seconds=float(dispatcher.get("breaker_open_seconds", 10.0)),
        shutdown_deadline=float(dispatcher.get("shutdown_deadline", 10.0)),
        idempotency_key_ttl=float(data.get("idempotency", {}).get("key_ttl_seconds", 7 * 24 * 3600)),
        # The admin token is a secret: only ever from the environment, never from a file in git.
        admin_token=os.environ.get(str(data.get("admin", {}).get("token_env", "GATEWAY_ADMIN_TOKEN"))) or None,
        notify_retry=_retry(data.get("notify", {}).get("retry", {}), f"{path}: [notify.retry]"),
        departments=departments,
        auth=auth_settings,
        log_token_key=(os.environ.get("GATEWAY_LOG_TOKEN_KEY") or "").encode() or os.urandom(32),
    )
