"""A department's own adapter package plugs in without touching gateway code.

The example package (examples/adapter-formpost) is built and installed for real with pip
into a temporary directory, found through the ``retirement_gateway.adapters`` entry point,
and drives the medical-insurance department end to end against a loopback form-post
system. Its own tests run here too, in a subprocess, as a department would run them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from adapters.base import Adapter
from adapters.context import AdapterContext
from adapters.registry import ENTRY_POINT_GROUP, available_kinds, builtin_kinds, create_adapter
from gateway.app import DEPARTMENTS, build_app
from gateway.config import GatewayConfig, load_config
from gateway.demo import submit_and_follow
from sandbox.people import DEFAULT_PEOPLE, People
from sandbox.runner import run_sandbox
from tests.conftest import ROOT, demo_application

EXAMPLE = ROOT / "examples" / "adapter-formpost"
PACKAGE = "gateway_adapter_formpost"
APPLICATION = "DEMO-020"  # retire_normal + medical_retiree_registration, all approved in the sandbox


def _pip_build_flags() -> list[str]:
    """``--no-build-isolation`` when the venv can build a wheel by itself: setuptools from
    70.1 can, older ones need the ``wheel`` package. Otherwise pip builds in isolation
    (fetching setuptools from the configured index)."""
    try:
        major, minor = (int(p) for p in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return []
    try:
        metadata.version("wheel")
        has_wheel = True
    except metadata.PackageNotFoundError:
        has_wheel = False
    return ["--no-build-isolation"] if (major, minor) >= (70, 1) or has_wheel else []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example installed by pip into its own directory, which is put on sys.path.

    Built from a copy so that setuptools' build/ and *.egg-info never land in the checkout.
    """
    work = tmp_path_factory.mktemp("plugin")
    source = work / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*cache"))
    target = work / "site"
    command = [
        sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--quiet",
        *_pip_build_flags(), "--target", str(target), str(source),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _installed_under(obj: Any, site: Path) -> bool:
    return Path(sys.modules[obj.__module__].__file__ or "").resolve().is_relative_to(site.resolve())


def test_installed_package_is_found_through_the_entry_point_group(site: Path) -> None:
    (ep,) = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "formpost"]
    assert ep.value == "gateway_adapter_formpost:FormPostAdapter"
    assert ep.dist is not None and ep.dist.name == "hunan-gateway-adapter-formpost"
    assert Path(str(ep.dist.locate_file(""))).resolve() == site.resolve()
    kinds = available_kinds()
    assert "formpost" not in builtin_kinds()  # it can only have come from the entry point
    assert {"rest", "soap", "filedrop", "formpost"} <= set(kinds)
    assert _installed_under(kinds["formpost"], site)  # the installed copy, not examples/


async def test_create_adapter_builds_the_plugin_on_the_shared_session(site: Path) -> None:
    async with aiohttp.ClientSession() as session:
        context = AdapterContext(session, ROOT)
        adapter = create_adapter("formpost", "nhsa.api", {"base_url": "http://127.0.0.1:9"}, context)
        assert isinstance(adapter, Adapter) and adapter.kind == "formpost"
        assert _installed_under(type(adapter), site)
        await adapter.open()
        await adapter.close()
        assert not session.closed
        # The plug-in's own checks run at construction, as they would at gateway start-up.
        with pytest.raises(ValueError, match="nhsa.api"):
            create_adapter("formpost", "nhsa.api", {"base_url": "http://x", "encodng": "gbk"}, context)


MAPPING = """\
# 医保 through a county form-post system (formpost plug-in), for this test only.
department = "nhsa"
version = "formpost-test"

[codes.gender]
male = "1"
female = "2"

[operations.query]
endpoint = "api"
path = "/yb/cx"

[operations.query.request]
jylx = { const = "cx" }
sfzh = "applicant.id_number"
xm = "applicant.name"

[operations.query.reply]
ok_path = "fhdm"
ok_values = ["00"]
no_record_values = ["04"]
error_message_path = "fhxx"
record_path = "data"

[operations.submit]
endpoint = "api"
path = "/yb/tx"
result = "sync"

[operations.submit.request]
jylx = { const = "zzzt" }
sfzh = "applicant.id_number"
xm = "applicant.name"
xb = { path = "applicant.gender", code = "gender" }
csrq = { path = "applicant.birth_date", date = "%Y%m%d" }
sqrq = { path = "application.submitted_at", date = "%Y%m%d" }

[operations.submit.reply]
ok_path = "fhdm"
ok_values = ["00"]
error_message_path = "fhxx"
status_path = "jg"
reason_path = "yy"
id_path = "lsh"

[results.status]
"1" = "approved"
"0" = "rejected"
"""

DEPARTMENT = """\
base_dir = "{root}"

[departments.nhsa]
name = "医保 县级表单接口（插件）"
mapping = "{mapping}"
query_timeout = 2.0
call_timeout = 5.0
retry = {{ attempts = 3, max_age = 30, base = 0.05, cap = 0.5 }}
[departments.nhsa.endpoints.api]
adapter = "formpost"
base_url = "{url}"
encoding = "gbk"
delivery_id_field = "lsh"
"""


@dataclass
class CountySystem:
    """A loopback 县级 medical-insurance system: GBK forms in; the query answers JSON,
    the submission ``key=value`` lines. De-duplicates submissions by ``lsh``."""

    people: People
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    decided: dict[str, str] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        charset = request.charset or "utf-8"
        form = dict(parse_qsl((await request.read()).decode("ascii"), keep_blank_values=True, encoding=charset))
        self.received.append({"path": request.path, "charset": charset, "form": form, "headers": dict(request.headers)})
        if request.path == "/yb/cx" and form.get("jylx") == "cx":
            record = self.people.section(form.get("sfzh", ""), "nhsa")
            if record is None:
                return web.json_response({"fhdm": "04", "fhxx": "无参保记录"})
            return web.json_response({"fhdm": "00", "fhxx": "成功", "data": record})
        if request.path == "/yb/tx" and form.get("jylx") == "zzzt" and form.get("lsh"):
            lsh = form["lsh"]
            self.decided.setdefault(lsh, "1")  # a re-sent lsh gets the first answer again
            text = f"fhdm=00\nfhxx=成功\nlsh={lsh}\njg={self.decided[lsh]}\nyy=\n"
            return web.Response(body=text.encode("gbk"), content_type="text/plain", charset="gbk")
        return web.Response(text="fhdm=99\nfhxx=交易类型错误\n", content_type="text/plain")


@pytest.fixture
async def county() -> AsyncIterator[CountySystem]:
    system = CountySystem(People.load(DEFAULT_PEOPLE))
    app = web.Application()
    app.router.add_post("/{tail:.*}", system.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    system.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield system
    finally:
        await runner.cleanup()


def _plugin_department(tmp_path: Path, county_url: str) -> GatewayConfig:
    """The department as its IT staff would configure it: a mapping file and an endpoint
    table with ``adapter = "formpost"``, read by the gateway's own configuration loader."""
    mapping = tmp_path / "nhsa.formpost-test.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    config = tmp_path / "plugin-gateway.toml"
    config.write_text(DEPARTMENT.format(root=ROOT.as_posix(), mapping=mapping.as_posix(), url=county_url), "utf-8")
    return load_config(config)


async def test_department_on_the_plugin_gets_its_item_approved_end_to_end(
    site: Path, county: CountySystem, tmp_path: Path
) -> None:
    plugin = _plugin_department(tmp_path, county.url)
    assert plugin.departments["nhsa"].endpoints["api"].adapter == "formpost"
    async with run_sandbox(DEFAULT_PEOPLE, hpf_root=tmp_path / "hpf", decision_delay=0.05) as sandbox:
        # Every other department on the sandbox, as running_gateway does; then the
        # medical-insurance department replaced by the one configured for the plug-in.
        cfg = sandbox.point_gateway(load_config())
        assert isinstance(cfg, GatewayConfig)
        cfg = cfg.with_endpoint("hpf", "files", archive=str(tmp_path / "hpf-archive"), error=str(tmp_path / "hpf-err"))
        port = _free_port()
        cfg = replace(
            cfg,
            departments={**cfg.departments, "nhsa": plugin.departments["nhsa"]},
            port=port,
            public_base_url=f"http://127.0.0.1:{port}",
            database_url=cfg.database_url if cfg.database_url.startswith("postgres")
            else f"sqlite:///{tmp_path / 'gateway.db'}",  # as running_gateway chooses
        )
        app = build_app(cfg)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            assert _installed_under(type(app[DEPARTMENTS]["nhsa"].adapters["api"]), site)
            application = demo_application(APPLICATION)
            (result,) = await submit_and_follow(cfg.public_base_url, [application], timeout=10)
        finally:
            await runner.cleanup()
        assert "nhsa" not in sandbox.state.ledger.cases  # the sandbox's medical insurance saw nothing

    assert result["http_status"] == 202, result["response"]
    final = result["final"]
    assert final["status"] == "completed"
    items = {i["item"]: i for i in final["items"]}
    medical = items["medical_retiree_registration"]
    assert medical["status"] == "approved"
    assert items["retire_normal"]["status"] == "approved"

    queries = [r for r in county.received if r["path"] == "/yb/cx"]
    submits = [r for r in county.received if r["path"] == "/yb/tx"]
    assert len(queries) == 1  # the pre-check (M01–M07) asked the county system
    assert len(submits) == 1
    sent = submits[0]
    assert sent["charset"] == "gbk"
    assert sent["form"]["lsh"] == sent["headers"]["Idempotency-Key"] == medical["delivery"]
    assert sent["form"]["xm"] == application["applicant"]["name"]  # GBK form decoded back intact
    assert sent["form"]["xb"] == "1" and sent["form"]["csrq"] == "19630424"


def test_the_example_package_passes_its_own_tests() -> None:
    """As department IT would run them: ``python -m pytest`` in the package folder."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
