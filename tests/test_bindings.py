"""Department bindings changed at run time through the admin API: validated before anything
changes, applied without a restart, kept with their history, followed by other replicas and
by a restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import GatewayConfig
from gateway.demo import running_gateway, submit_and_follow
from sandbox.people import DEFAULT_PEOPLE
from sandbox.runner import run_sandbox
from tests.conftest import ROOT, Running, demo_application
from tests.stores import fresh_url
from tests.test_resilience import ADMIN, fast

AUTH = {"Authorization": f"Bearer {ADMIN}", "X-Operator": "zhang.it"}


class Admin:
    def __init__(self, gw: Running) -> None:
        self.gw = gw

    async def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        async with self.gw.http.request(
            method, self.gw.base_url + path, json=body, headers=AUTH if headers is None else headers
        ) as resp:
            return resp.status, await resp.json(content_type=None)


def nhsa_binding(base_url: str, **extra: Any) -> dict[str, Any]:
    endpoints = {"api": {"adapter": "rest", "base_url": base_url}}
    return {"name": "医保 新平台", "mapping_version": "v1", "endpoints": endpoints, "query_timeout": 2,
            "call_timeout": 5} | extra


@pytest.fixture
async def gw_admin(config: GatewayConfig, tmp_path: Path) -> AsyncIterator[Running]:
    async with running_gateway(replace(fast(config), bindings_poll_seconds=0.2), tmp_path, DEFAULT_PEOPLE,
                               decision_delay=0.02) as (url, sb, cfg):
        async with aiohttp.ClientSession() as http:
            yield Running(url, sb, cfg, http)


async def test_a_new_binding_takes_effect_without_a_restart_and_keeps_its_history(
    gw_admin: Running, tmp_path: Path
) -> None:
    admin = Admin(gw_admin)
    async with run_sandbox(DEFAULT_PEOPLE, hpf_root=tmp_path / "other-hpf", decision_delay=0.02) as other:
        status, view = await admin.call("PUT", "/admin/v1/departments/nhsa", nhsa_binding(other.url("nhsa")))
        assert status == 200, view
        assert view["source"] == "runtime" and view["version"] >= 1
        assert view["endpoints"]["api"]["base_url"] == other.url("nhsa") and view["name"] == "医保 新平台"
        app = demo_application("DEMO-001")  # chooses medical_retiree_registration
        [result] = await submit_and_follow(gw_admin.base_url, [app], timeout=20)
        medical = next(i for i in result["final"]["items"] if i["item"] == "medical_retiree_registration")
        assert medical["status"] == "approved"
        assert medical["delivery"] in other.state.ledger.cases["nhsa"]  # the new system got it...
        assert medical["delivery"] not in gw_admin.sandbox.state.ledger.cases.get("nhsa", {})  # ...not the old
        status, history = await admin.call("GET", "/admin/v1/departments/nhsa/history")
        assert status == 200
        [entry] = history["history"]
        assert entry["action"] == "register" and entry["actor"] == "zhang.it"
        assert entry["binding"]["mapping"] == "mappings/nhsa.v1.toml"
        status, view = await admin.call("DELETE", "/admin/v1/departments/nhsa")
        assert status == 200 and view["source"] == "file"
        assert view["endpoints"]["api"]["base_url"] == gw_admin.sandbox.url("nhsa")
        status, history = await admin.call("GET", "/admin/v1/departments/nhsa/history")
        assert [h["action"] for h in history["history"]] == ["register", "remove"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"mapping_version": "v9"}, "nhsa.v9.toml"),
        ({"mapping_version": "../hrss"}, "mapping_version"),
        ({"endpoints": {"api": {"adapter": "carrier-pigeon", "base_url": "http://x"}}}, "carrier-pigeon"),
        ({"endpoints": {"other": {"adapter": "rest", "base_url": "http://x"}}}, "'api'"),
        ({"endpoints": {"api": {"adapter": "rest", "base_url": "http://x", "token": "s3cret"}}}, "token"),
        ({"retry": {"attempts": 0}}, "attempts"),
        ({"query_timeout": "soon"}, "query_timeout"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_a_binding_that_does_not_validate_is_refused_and_changes_nothing(
    gw_admin: Running, change: dict[str, Any], says: str
) -> None:
    admin = Admin(gw_admin)
    _, before = await admin.call("GET", "/admin/v1/departments/nhsa")
    status, problem = await admin.call("PUT", "/admin/v1/departments/nhsa", nhsa_binding("http://x") | change)
    assert status == 422 and problem["type"].endswith("binding-refused"), problem
    assert says in problem["detail"]
    assert (await admin.call("GET", "/admin/v1/departments/nhsa"))[1] == before
    assert (await admin.call("GET", "/admin/v1/departments/nhsa/history"))[1]["history"] == []


async def test_a_soap_binding_whose_wsdl_cannot_be_loaded_is_refused_before_anything_changes(
    gw_admin: Running,
) -> None:
    admin = Admin(gw_admin)
    binding = {"mapping_version": "v1", "endpoints": {"ws": {"adapter": "soap", "wsdl": "config/wsdl/missing.wsdl",
                                                            "address": "http://127.0.0.1:9/x"}}}
    status, problem = await admin.call("PUT", "/admin/v1/departments/health", binding)
    assert status == 422 and "could not be opened" in problem["detail"]
    assert (await admin.call("GET", "/admin/v1/departments/health"))[1]["source"] == "file"


async def test_a_disabled_department_holds_its_items_and_cannot_be_verified_until_enabled(gw_admin: Running) -> None:
    admin = Admin(gw_admin)
    status, view = await admin.call("POST", "/admin/v1/departments/nhsa/disable")
    assert status == 200 and view["state"] == "disabled"
    status, body, _ = await gw_admin.post("/api/v1/prechecks", demo_application("DEMO-001"))
    medical = [c for c in body["checks"] if c["department"] == "nhsa"]
    assert medical and all(c["result"] == "unverifiable" for c in medical)
    status, view = await admin.call("POST", "/admin/v1/departments/nhsa/enable")
    assert view["state"] == "active"
    status, body, _ = await gw_admin.post("/api/v1/prechecks", demo_application("DEMO-001"))
    assert all(c["result"] != "unverifiable" for c in body["checks"] if c["department"] == "nhsa")
    status, history = await admin.call("GET", "/admin/v1/departments/nhsa/history")
    assert [h["action"] for h in history["history"]] == ["disable", "enable"]


async def test_the_admin_api_refuses_without_its_token_and_names_unknown_departments(gw_admin: Running) -> None:
    admin = Admin(gw_admin)
    assert (await admin.call("GET", "/admin/v1/departments", headers={}))[0] == 401
    platform_signed = gw_admin.signed_headers("PUT", "/admin/v1/departments/nhsa", b"{}", None)
    assert (await admin.call("PUT", "/admin/v1/departments/nhsa", {}, headers=platform_signed))[0] == 401
    status, problem = await admin.call("PUT", "/admin/v1/departments/weather", nhsa_binding("http://x"))
    assert status == 404 and problem["type"].endswith("unknown-department")
    status, listing = await admin.call("GET", "/admin/v1/departments")
    assert {d["department"] for d in listing["departments"]} == {"police", "hrss", "nhsa", "health", "justice", "hpf"}


async def test_another_replica_and_a_restart_follow_a_binding_registered_on_one(
    config: GatewayConfig, tmp_path: Path
) -> None:
    async with fresh_url("postgres", tmp_path) as url:
        cfg = replace(fast(config), bindings_poll_seconds=0.2, database_url=url)
        async with run_sandbox(DEFAULT_PEOPLE, hpf_root=tmp_path / "other-hpf") as other:
            async with running_gateway(cfg, tmp_path / "a", DEFAULT_PEOPLE) as (url_a, sb_a, cfg_a), \
                    running_gateway(cfg, tmp_path / "b", DEFAULT_PEOPLE) as (url_b, sb_b, cfg_b), \
                    aiohttp.ClientSession() as http:
                a, b = Admin(Running(url_a, sb_a, cfg_a, http)), Admin(Running(url_b, sb_b, cfg_b, http))
                status, _ = await a.call("PUT", "/admin/v1/departments/nhsa", nhsa_binding(other.url("nhsa")))
                assert status == 200
                for _ in range(50):
                    _, view = await b.call("GET", "/admin/v1/departments/nhsa")
                    if view["source"] == "runtime":
                        break
                    await asyncio.sleep(0.1)
                assert view["endpoints"]["api"]["base_url"] == other.url("nhsa")
            # A gateway started later applies the stored binding at start.
            async with running_gateway(cfg, tmp_path / "c", DEFAULT_PEOPLE) as (url_c, sb_c, cfg_c), \
                    aiohttp.ClientSession() as http:
                _, view = await Admin(Running(url_c, sb_c, cfg_c, http)).call("GET", "/admin/v1/departments/nhsa")
                assert view["source"] == "runtime" and view["endpoints"]["api"]["base_url"] == other.url("nhsa")


def test_departments_test_probes_the_endpoints_and_runs_the_pre_check_query_without_personal_data(
    tmp_path: Path,
) -> None:
    from tests.processes import Sandbox, gateway_config

    sandbox = Sandbox(tmp_path)
    try:
        config = gateway_config(tmp_path, sandbox, 0, f"sqlite:///{tmp_path / 'g.db'}", "gw")
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "departments", "test", "health",
             "--config", str(config)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["endpoints"] == {"ws": "opened"} and report["query"]["outcome"] == "found"
        assert "children_born_or_adopted" in report["query"]["facts"]
        assert "*" in report["query"]["person"]  # masked
        sandbox.set_faults("hrss", {"down_seconds": 30})
        down = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "--log-level", "WARNING", "departments", "test", "hrss",
             "--config", str(config)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        assert down.returncode == 1 and json.loads(down.stdout)["query"]["outcome"] == "error"
    finally:
        sandbox.stop()
