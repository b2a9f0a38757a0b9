"""The operations files hold together: alert rules and dashboard query only metrics the
gateway exports, the production configuration loads, the Compose file and the Dockerfile
run what they claim. Nothing here starts a container (no engine on this machine): the
files are parsed and checked against the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main as gateway_cli
from gateway.config import load_config
from gateway.metrics import Metrics
from tests.conftest import ROOT

PROM = ROOT / "ops" / "prometheus"
ALERTS = PROM / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "gateway-dashboard.json"
COMPOSE = ROOT / "docker-compose.yml"
PRODUCTION = ROOT / "config" / "gateway.production.toml"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

# Series that Prometheus and the blackbox exporter make, not the gateway.
EXTERNAL_SERIES = {"up": "Prometheus, per scrape target", "probe_success": "blackbox exporter (job gateway-readyz)"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_series() -> set[str]:
    """Every series name /metrics can carry: the registry's families with the suffixes
    prometheus-client gives each type in the exposition."""
    names = set()
    for family in Metrics().registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


# --- PromQL, just enough to find the metric names ----------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or",
             "unless", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (function names, keywords, label names
    and values, durations and Grafana variables left out)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}


def brackets_balance(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in _STRING.sub('""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def test_metric_name_extraction_finds_selectors_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, department) (rate(gateway_department_call_duration_seconds_bucket'
        '{instance=~"$instance", route="/x{y}"}[$__rate_interval]))) > 3 and on (job) up{job="gateway"} offset 5m'
        " / ignoring (instance) gateway_outbox_jobs"
    )
    assert metric_names(expr) == {"gateway_department_call_duration_seconds_bucket", "up", "gateway_outbox_jobs"}
    assert brackets_balance(expr)
    assert not brackets_balance("sum(rate(x[5m])")
    assert not brackets_balance("sum(rate(x[5m)))")


# --- alert rules ---------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_are_valid_yaml_with_groups_of_named_rules() -> None:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert [g["name"] for g in doc["groups"]], "at least one group"
    names = [r.get("alert") for r in alert_rules()]
    assert len(names) == len(set(names)), "alert names are unique"


def test_every_rule_has_alert_expr_for_severity_and_summary() -> None:
    for rule in alert_rules():
        assert isinstance(rule.get("alert"), str) and rule["alert"], rule
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]


def test_the_alerts_the_operators_asked_for_are_there() -> None:
    exprs = {r["alert"]: r["expr"] for r in alert_rules()}
    wanted = {
        "GatewayDown": "up", "GatewayNotReady": "probe_success",
        "GatewayOutboxBacklogGrowing": "gateway_outbox_jobs",
        "GatewayOutboxOldestPendingTooOld": "gateway_outbox_oldest_pending_age_seconds",
        "GatewayDeadLettersIncreasing": "gateway_dead_letters_total",
        "GatewayCircuitBreakerOpen": "gateway_circuit_breaker_state",
        "GatewayDepartmentErrorRatioHigh": "gateway_department_calls_total",
        "GatewayAcceptanceLatencyHigh": "gateway_http_request_duration_seconds_bucket",
        "GatewayHigh5xxRatio": "gateway_http_requests_total",
        "GatewayAuthFailuresSpike": "gateway_auth_failures_total",
    }
    for alert, metric in wanted.items():
        assert metric in metric_names(exprs[alert]), alert


def test_every_alert_expression_uses_only_exported_metrics_and_balances() -> None:
    known = exported_series() | set(EXTERNAL_SERIES)
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric found in its expression"
        assert names <= known, (rule["alert"], names - known)
        assert brackets_balance(rule["expr"]), rule["alert"]


def test_every_job_an_expression_names_is_scraped_by_the_example_config() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    assert config["rule_files"] == ["alerts.yml"]
    exprs = [r["expr"] for r in alert_rules()] + [t["expr"] for t in dashboard_targets()]
    named = {job for e in exprs for job in re.findall(r'job="([^"]+)"', e)}
    assert named and named <= jobs


def test_every_alert_has_a_runbook_section_in_the_operations_doc() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#{2,4} (.+)$", OPERATIONS_DOC.read_text(encoding="utf-8"), re.M)
    }
    for rule in alert_rules():
        runbook = rule["annotations"].get("runbook", "")
        assert runbook.startswith("docs/operations.md#"), rule["alert"]
        assert runbook.split("#", 1)[1] in headings, rule["alert"]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (it ships with Prometheus; install it to run this check)")
    return path


def _run_promtool(*args: str) -> None:
    done = subprocess.run([_promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_rules() -> None:
    _run_promtool("check", "rules", "alerts.yml")


def test_promtool_accepts_the_scrape_config() -> None:
    _run_promtool("check", "config", "prometheus.yml")


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    _run_promtool("test", "rules", "alerts.test.yml")


# --- dashboard -------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))


def dashboard_targets() -> list[dict[str, Any]]:
    return [t for p in _panels(dashboard()["panels"]) for t in p.get("targets", [])]


def test_dashboard_is_json_with_unique_panel_ids_and_layout() -> None:
    panels = list(_panels(dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p.get("targets"), f"{p['title']}: a panel without a query"


def test_every_dashboard_query_uses_only_exported_metrics_and_balances() -> None:
    known = exported_series() | set(EXTERNAL_SERIES)
    for target in dashboard_targets():
        names = metric_names(target["expr"])
        assert names and names <= known, (target["expr"], names - known)
        assert brackets_balance(target["expr"]), target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            metric = re.match(r"label_values\((\w+),", variable["definition"])
            assert metric and metric[1] in known, variable["name"]


def test_the_dashboard_has_the_panels_operators_asked_for() -> None:
    used = {n for t in dashboard_targets() for n in metric_names(t["expr"])}
    for metric in (
        "gateway_http_requests_total", "gateway_http_request_duration_seconds_bucket",
        "gateway_precheck_duration_seconds_bucket", "gateway_department_calls_total",
        "gateway_department_call_duration_seconds_bucket", "gateway_department_retries_total",
        "gateway_circuit_breaker_state", "gateway_outbox_jobs", "gateway_outbox_oldest_pending_age_seconds",
        "gateway_dead_letters_total", "gateway_items_final_total", "gateway_auth_failures_total",
    ):
        assert metric in used, metric
    quantiles = [t["expr"] for t in dashboard_targets() if t["expr"].startswith("histogram_quantile(")]
    assert any("route=\"/api/v1/joint-applications\"" in q for q in quantiles)
    assert any("gateway_precheck_duration_seconds_bucket" in q for q in quantiles)


# --- production configuration ------------------------------------------------------------------


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a deployment sets: the platform key. Nothing from the caller's shell."""
    for name in ("GATEWAY_CONFIG", "GATEWAY_DATABASE_URL", "GATEWAY_ADMIN_TOKEN", "GATEWAY_HRSS_CALLBACK_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_PLATFORM_KEYS", "ops-test:not-a-real-secret")


def test_check_config_accepts_the_production_configuration(
    production_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gateway_cli(["check-config", "--config", str(PRODUCTION)]) == 0
    assert capsys.readouterr().out.startswith("ok: 6 departments")


def test_the_production_configuration_refuses_to_start_without_a_platform_key(
    production_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GATEWAY_PLATFORM_KEYS")
    assert gateway_cli(["check-config", "--config", str(PRODUCTION)]) == 1
    assert "no platform key" in capsys.readouterr().err


def test_the_production_configuration_is_production(production_env: None) -> None:
    config = load_config(PRODUCTION)
    sandbox = load_config(ROOT / "config" / "gateway.toml")
    assert config.host == "0.0.0.0", "inside a container the gateway must listen on every interface"
    assert config.auth.enabled and config.auth.platform_keys == {"ops-test": "not-a-real-secret"}
    assert not config.allow_any_submitted_at
    assert config.database_url.startswith("postgresql://")
    assert not re.search(r"://[^/@]*:[^/@]*@", config.database_url), "no password in the store URL"
    assert config.public_base_url.startswith("https://")
    assert set(config.departments) == set(sandbox.departments)
    for code, dept in config.departments.items():
        for name, ep in dept.endpoints.items():
            address = ep.settings.get("base_url") or ep.settings.get("address")
            if ep.adapter in ("rest", "soap"):
                assert str(address).startswith("https://"), f"{code}.{name}"
                assert "127.0.0.1" not in str(address) and "localhost" not in str(address), f"{code}.{name}"
            if ep.adapter == "filedrop":
                assert all(Path(ep.settings[k]).is_absolute() for k in ("inbox", "outbox", "archive", "error"))


def _strings(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, str):
        yield path, data


def test_the_production_configuration_names_secrets_only_by_environment_variable() -> None:
    data = tomllib.loads(PRODUCTION.read_text(encoding="utf-8"))
    for path, value in _strings(data):
        last = path.rsplit(".", 1)[-1]
        if re.search(r"secret|password|token|keys?$", last) or ".department_keys_env." in f".{path}.":
            assert last.endswith("_env") or ".department_keys_env." in f".{path}.", path
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", value), f"{path} must name an environment variable"


# --- Docker ---------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_runs_the_gateway_postgres_and_prometheus_each_health_checked() -> None:
    services = compose()["services"]
    assert {"gateway", "postgres", "prometheus"} <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    gateway = services["gateway"]
    assert gateway["build"]["context"] == "." and (ROOT / gateway["build"]["dockerfile"]).is_file()
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert str(services["postgres"]["image"]).startswith("postgres:15")
    assert any(str(v).startswith("./ops/prometheus:/etc/prometheus") for v in services["prometheus"]["volumes"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_compose_configures_the_gateway_by_environment_for_postgres(production_env: None) -> None:
    services = compose()["services"]
    env = _environment(services["gateway"])
    assert env["GATEWAY_CONFIG"].startswith("/app/config/")
    assert (ROOT / "config" / env["GATEWAY_CONFIG"].removeprefix("/app/config/")) == PRODUCTION
    url = env["GATEWAY_DATABASE_URL"]
    assert url.startswith("postgresql://") and "@postgres:" in url and "postgres" in services
    port = load_config(PRODUCTION).port
    assert f"{port}:{port}" in [str(p) for p in services["gateway"]["ports"]]
    grace = re.fullmatch(r"(\d+)s", str(services["gateway"]["stop_grace_period"]))
    assert grace and int(grace[1]) > load_config(PRODUCTION).shutdown_deadline + 10


_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?$")
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?-(?P<default>[^}]*))?\}")


def test_compose_has_no_inline_secrets_except_marked_dev_defaults() -> None:
    for name, service in compose()["services"].items():
        for var, value in _environment(service).items():
            for m in _INTERPOLATION.finditer(value):  # a default written here must say what it is
                if m["default"] is not None and _SECRET_NAME.search(var):
                    assert "dev-only" in m["default"], f"{name}.{var}"
            if _SECRET_NAME.search(var):
                assert _INTERPOLATION.fullmatch(value), f"{name}.{var}: a secret comes from the environment"
            assert not re.search(r"://[^/@]*:[^/@]*@", value), f"{name}.{var}: a password inside a URL"


def _dockerfile_final_stage() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    instructions = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(instructions) if line.upper().startswith("FROM "))
    return instructions[last_from:]


def test_the_image_runs_gateway_serve_as_non_root_with_a_healthcheck(production_env: None) -> None:
    stage = _dockerfile_final_stage()
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    health = next(line for line in stage if line.upper().startswith("HEALTHCHECK "))
    port = load_config(PRODUCTION).port
    assert f"127.0.0.1:{port}/healthz" in health
    assert f"EXPOSE {port}" in stage
    assert stage[-1] == 'CMD ["gateway", "serve"]'


def test_the_image_defaults_to_the_production_configuration_and_copies_what_it_names() -> None:
    stage = _dockerfile_final_stage()
    env = " ".join(line for line in stage if line.upper().startswith("ENV "))
    assert "GATEWAY_CONFIG=/app/config/gateway.production.toml" in env
    copies = {tuple(line.split()[1:3]) for line in stage if line.upper().startswith("COPY ") and "--from" not in line}
    assert ("config", "./config") in copies and ("mappings", "./mappings") in copies
    # the configuration's relative paths (mappings, WSDL copies) all exist in what is copied
    data = tomllib.loads(PRODUCTION.read_text(encoding="utf-8"))
    for dept in data["departments"].values():
        assert (ROOT / dept["mapping"]).is_file() and dept["mapping"].startswith("mappings/")
        for ep in dept["endpoints"].values():
            if "wsdl" in ep:
                assert (ROOT / ep["wsdl"]).is_file() and ep["wsdl"].startswith("config/")


def test_package_data_covers_every_non_python_file_the_packages_need() -> None:
    """The image installs the packages (not the checkout): schema, SQL and sandbox files
    reach it only as package data."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = project["tool"]["setuptools"]["package-data"]
    packages = project["tool"]["setuptools"]["packages"]
    missing = []
    for package in packages:
        folder = ROOT / package.replace(".", "/")
        top = package.split(".")[0]
        patterns = package_data.get(top, [])
        for path in folder.glob("*") if "." in package else folder.rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT / top).as_posix()
            if not any(Path(relative).match(p) and relative.count("/") == p.count("/") for p in patterns):
                missing.append(f"{top}/{relative}")
    assert not missing, f"not package data, so missing from the image: {missing}"
